import NIOCore
import Synchronization

/// Counts one server's open connections, in all and per client address, and decides at each
/// accept whether a connection is served (``HTTPLimits/maxConnections``,
/// ``HTTPLimits/maxConnectionsPerClient``).
///
/// - Up to `maxConnections` open, a connection is admitted.
/// - Past it, it is admitted too, and the longest-open connection that is idle (between
///   requests, nothing owed) is closed to make room: idle keep-alive connections cost their
///   clients nothing to lose, since a client opens another when it next needs one. Up to
///   ``drainDepth`` of the longest-open connections are looked at, one after another on their
///   own event loops; a busy one (a request in flight, an event stream) goes to the back of the
///   line.
/// - Past `maxConnections` and a sixteenth more (``hardLimit``), which only connections that
///   are all busy can reach, a new connection is closed at once, before a byte is read: the
///   file descriptors it would need are the process's last.
/// - A client address (an IPv6 client's /64) with `maxConnectionsPerClient` open already has
///   its next connection's request answered `429 REQ_1011` and closed, so that one client
///   never holds the connections everyone else needs.
///
/// Counting happens at accept and close only: requests on an admitted connection touch none
/// of this.
final class ConnectionLimiter: Sendable {
    /// What becomes of a connection just accepted.
    enum Admission: Equatable {
        /// Served.
        case admitted
        /// Its client has too many open: its request is answered `429 REQ_1011`.
        case overClientLimit
        /// The server is full: closed at once.
        case refused
    }

    /// An open connection, and how to ask it to close should it be idle (on its event loop).
    struct Entry {
        let eventLoop: any EventLoop
        let closeIfIdle: @Sendable () -> Bool
        /// The client it counts against; nil when it counts against none (over its limit).
        let client: ClientKey?
        /// Its place in the order of admission.
        let serial: UInt64
    }

    struct State {
        var entries: [ObjectIdentifier: Entry] = [:]
        /// The connections in the order they are looked at for closing: by admission, a busy one
        /// moved to the back when found busy. Closed ones are dropped lazily.
        var order = CircularBuffer<ObjectIdentifier>()
        var perClient: [ClientKey: Int] = [:]
        /// Connections over `maxConnections` that no drain has made room for yet.
        var owedRoom = 0
        var draining = false
        var nextSerial: UInt64 = 0
        /// Room is made by closing connections admitted before this one (the newest admitted past
        /// the limit): never one for itself or for a connection admitted after it.
        var closableBefore: UInt64 = 0
    }

    let maxConnections: Int
    let maxPerClient: Int
    /// Past this many open, a new connection is closed at once.
    let hardLimit: Int
    private let state = Mutex(State())

    /// How many of the longest-open connections a drain looks at.
    static let drainDepth = 32

    init(maxConnections: Int, maxPerClient: Int) {
        self.maxConnections = max(1, maxConnections)
        self.maxPerClient = max(1, maxPerClient)
        self.hardLimit = self.maxConnections + max(1, self.maxConnections / 16)
    }

    /// Decides `channel`'s fate at accept; an admitted connection is counted, in all and against its
    /// client, until it closes (one over its client's limit, in all only). `closeIfIdle` runs on the
    /// channel's event loop and closes the connection if it is between requests.
    func admit(_ channel: any Channel, closeIfIdle: @escaping @Sendable () -> Bool) -> Admission {
        let id = ObjectIdentifier(channel)
        let client = channel.remoteAddress.flatMap(ClientKey.init)
        let (admission, drain) = self.state.withLock { state -> (Admission, Bool) in
            let open = state.entries.count
            guard open < self.hardLimit else { return (.refused, false) }
            var admission = Admission.admitted
            var counted: ClientKey?
            if let client {
                // A connection over its client's limit is answered and closed: it counts in all
                // (it holds a file) but not against its client, whose next connection is served
                // as soon as one of the served ones closes.
                let count = state.perClient[client, default: 0]
                if count >= self.maxPerClient {
                    admission = .overClientLimit
                } else {
                    state.perClient[client] = count + 1
                    counted = client
                }
            }
            let serial = state.nextSerial
            state.nextSerial += 1
            state.entries[id] = Entry(eventLoop: channel.eventLoop, closeIfIdle: closeIfIdle, client: counted, serial: serial)
            state.order.append(id)
            self.compact(&state)
            guard open + 1 > self.maxConnections else { return (admission, false) }
            state.owedRoom += 1
            state.closableBefore = serial
            let start = !state.draining
            state.draining = true
            return (admission, start)
        }
        if admission == .refused { return .refused }
        channel.closeFuture.whenComplete { _ in self.closed(id) }
        if drain { self.drain() }
        return admission
    }

    private func closed(_ id: ObjectIdentifier) {
        self.state.withLock { state in
            guard let entry = state.entries.removeValue(forKey: id) else { return }
            if let client = entry.client {
                let count = state.perClient[client, default: 1] - 1
                state.perClient[client] = count > 0 ? count : nil
            }
            if state.entries.count <= self.maxConnections { state.owedRoom = 0 }
        }
    }

    /// Drops closed connections from the order once they outnumber the open ones.
    private func compact(_ state: inout State) {
        guard state.order.count > 2 * state.entries.count + 64 else { return }
        var order = CircularBuffer<ObjectIdentifier>(initialCapacity: state.entries.count)
        for id in state.order where state.entries[id] != nil { order.append(id) }
        state.order = order
    }

    /// Closes one idle connection for each one admitted past the limit, the longest-open first,
    /// looking at ``drainDepth`` connections at most per round.
    private func drain() {
        let candidates: [Entry] = self.state.withLock { state in
            guard state.owedRoom > 0, state.entries.count > self.maxConnections else {
                state.owedRoom = 0
                state.draining = false
                return []
            }
            var candidates: [Entry] = []
            var looked = 0
            // The order holds every open connection once at least; stale ids are dropped as met.
            var left = state.order.count
            while looked < Self.drainDepth, left > 0, let id = state.order.popFirst() {
                left -= 1
                guard let entry = state.entries[id] else { continue }
                looked += 1
                // To the back: a connection found busy is looked at last next time, and an idle
                // one is closed and dropped.
                state.order.append(id)
                if entry.serial < state.closableBefore { candidates.append(entry) }
            }
            if candidates.isEmpty { state.draining = false }
            return candidates
        }
        guard !candidates.isEmpty else { return }
        self.tryClosing(candidates[...], closedAny: false)
    }

    /// Asks each candidate in turn, on its own loop, to close if idle, until the room owed is made.
    private func tryClosing(_ candidates: ArraySlice<Entry>, closedAny: Bool) {
        guard let candidate = candidates.first else {
            // Every candidate was busy: stop here; the next admission past the limit starts again.
            let again = self.state.withLock { state -> Bool in
                if closedAny, state.owedRoom > 0, state.entries.count > self.maxConnections { return true }
                state.owedRoom = 0
                state.draining = false
                return false
            }
            if again { self.drain() }
            return
        }
        candidate.eventLoop.execute {
            let closed = candidate.closeIfIdle()
            let more = self.state.withLock { state -> Bool in
                if closed { state.owedRoom -= 1 }
                guard state.owedRoom > 0 else {
                    state.owedRoom = 0
                    state.draining = false
                    return false
                }
                return true
            }
            if more { self.tryClosing(candidates.dropFirst(), closedAny: closedAny || closed) }
        }
    }
}

/// A client's address as the per-client limit counts it: an IPv4 address, or an IPv6 address's
/// first 64 bits (one subscriber's network). An IPv4-mapped IPv6 address counts as its IPv4
/// address.
struct ClientKey: Hashable, Sendable {
    let high: UInt64
    let low: UInt64

    init?(_ address: SocketAddress) {
        // The address bytes at their offsets in `sockaddr_in` (4 from the start) and
        // `sockaddr_in6` (8), the same on every platform NIO runs on.
        switch address {
        case .v4(let v4):
            let bytes = withUnsafeBytes(of: v4.address) { Array($0[4..<8]) }
            self.high = 0
            self.low = bytes.reduce(0) { $0 << 8 | UInt64($1) }
        case .v6(let v6):
            let bytes = withUnsafeBytes(of: v6.address) { Array($0[8..<24]) }
            let mapped = bytes[0..<10].allSatisfy { $0 == 0 } && bytes[10] == 0xFF && bytes[11] == 0xFF
            if mapped {
                self.high = 0
                self.low = bytes[12..<16].reduce(0) { $0 << 8 | UInt64($1) }
            } else {
                self.high = 1
                self.low = bytes[0..<8].reduce(0) { $0 << 8 | UInt64($1) }
            }
        case .unixDomainSocket:
            return nil
        }
    }
}
