public import Foundation
public import Logging
public import ServiceLifecycle
import Synchronization

/// Reads the outbox once for all the event streams of a node and keeps the newest events in
/// memory, so that a thousand open streams cost one store read per poll, not a thousand.
///
/// A stream asks ``events(after:filter:limit:)`` for what it has not sent yet (from memory when
/// the hub holds that range, from the store otherwise, as after a reconnect with an old
/// `Last-Event-ID`), then ``wait(after:timeout:)`` until more committed. The hub reads the store
/// only while some stream waits.
public final class SessionEventHub: Service {
    public struct Configuration: Sendable {
        /// How often the outbox is read while streams wait: the most an event is late on a stream.
        public var pollInterval: Duration
        /// Events kept in memory.
        public var capacity: Int

        public init(pollInterval: Duration = .milliseconds(250), capacity: Int = 10_000) {
            self.pollInterval = pollInterval
            self.capacity = capacity
        }
    }

    struct Waiter {
        var after: Int64
        var deadline: ContinuousClock.Instant
        var continuation: CheckedContinuation<Bool, Never>
    }

    struct State {
        /// The newest events read, oldest first; every event after `floor` up to `cursor` is here.
        var events: [SessionEvent] = []
        var floor: Int64 = 0
        var cursor: Int64 = 0
        var started = false
        var wasWaiting = false
        var closed = false
        var waiters: [UInt64: Waiter] = [:]
        var nextWaiter: UInt64 = 0
        var streams = 0
        var ended = Set<UInt64>()
        var owners: [String: Int] = [:]
        var streamOwners: [UInt64: String] = [:]
    }

    let store: any SessionStore
    public let configuration: Configuration
    let logger: Logger
    /// The node's session cache, which forgets a session before its end is handed to a stream.
    let cache: SessionCache?
    let state = Mutex(State())

    /// - Parameter cache: the node's session cache: a session whose end (or data change) the hub
    ///   reads is dropped from it before any stream is handed the event, so that a client told
    ///   its session ended finds it refused here at once, not only once the change feed has
    ///   caught up.
    public init(store: any SessionStore, configuration: Configuration = .init(), cache: SessionCache? = nil, logger: Logger) {
        self.store = store
        self.configuration = configuration
        self.cache = cache
        self.logger = logger
    }

    /// Polls while streams wait, until graceful shutdown; then ends every wait.
    public func run() async throws {
        do {
            try await cancelWhenGracefulShutdown {
                while !Task.isCancelled {
                    do {
                        try await self.poll()
                    } catch is CancellationError {
                        return
                    } catch {
                        self.logger.warning("Cannot read session events; streams wait", metadata: ["error": "\(error)"])
                    }
                    try await Task.sleep(for: self.configuration.pollInterval)
                }
            }
        } catch is CancellationError {
            // Shutting down is the expected end of this service.
        }
        self.close()
    }

    /// Ends every wait and refuses new ones: streams end.
    public func close() {
        let waiters = self.state.withLock { state -> [Waiter] in
            state.closed = true
            defer { state.waiters = [:] }
            return Array(state.waiters.values)
        }
        for waiter in waiters { waiter.continuation.resume(returning: false) }
    }

    /// Whether the hub was closed (the node is shutting down).
    public var isClosed: Bool { self.state.withLock { $0.closed } }

    /// One poll: reads what committed since the last (when anyone waits), then wakes the waiters
    /// it concerns and those whose time is up.
    func poll() async throws {
        let (waiting, wasWaiting, started, cursor) = self.state.withLock { ($0.waiters.isEmpty == false, $0.wasWaiting, $0.started, $0.cursor) }
        if !started || (waiting && !wasWaiting) {
            // Nobody read the events while nobody waited: start afresh after the newest (a
            // stream further behind reads the store).
            let latest = try await self.store.latestSessionEvent()
            self.state.withLock { state in
                state.started = true
                if state.cursor < latest {
                    state.events = []
                    state.floor = latest
                    state.cursor = latest
                }
            }
        } else if waiting {
            var from = cursor
            while true {
                let batch = try await self.store.sessionEvents(after: from, filter: .all, limit: 1000)
                guard let last = batch.last else { break }
                self.append(batch)
                from = last.sequence
                if batch.count < 1000 { break }
            }
        }
        self.state.withLock { $0.wasWaiting = waiting }
        let now = ContinuousClock.now
        let ready = self.state.withLock { state -> [(Waiter, Bool)] in
            var ready: [(Waiter, Bool)] = []
            for (id, waiter) in state.waiters where waiter.after < state.cursor || waiter.deadline <= now {
                ready.append((waiter, true))
                state.waiters[id] = nil
            }
            return ready
        }
        for (waiter, value) in ready { waiter.continuation.resume(returning: value) }
    }

    func append(_ batch: [SessionEvent]) {
        let cursor = self.state.withLock { $0.cursor }
        self.dropFromCache(batch.lazy.filter { $0.sequence > cursor })
        self.state.withLock { state in
            let fresh = batch.filter { $0.sequence > state.cursor }
            guard let last = fresh.last else { return }
            state.events.append(contentsOf: fresh)
            state.cursor = last.sequence
            let excess = state.events.count - self.configuration.capacity
            if excess > 0 {
                state.floor = state.events[excess - 1].sequence
                state.events.removeFirst(excess)
            }
        }
    }

    /// Drops from the node's cache the sessions `events` ended or changed, before a stream is
    /// handed them.
    private func dropFromCache(_ events: some Sequence<SessionEvent>) {
        guard let cache = self.cache else { return }
        for event in events {
            if let subject = event.changedSubject { cache.invalidate(subject) }
        }
    }

    /// Events after `after` that pass `filter`, at most `limit`, and the position a stream has
    /// reached once it has sent them (later than the last event when the events between did
    /// not pass the filter).
    public func events(after: Int64, filter: SessionEventFilter, limit: Int) async throws -> (events: [SessionEvent], through: Int64) {
        let held = self.state.withLock { state -> ([SessionEvent], Int64)? in
            guard state.started, after >= state.floor else { return nil }
            var found: [SessionEvent] = []
            var through = max(after, state.cursor)
            // Binary search for the first event after `after`.
            var low = 0
            var high = state.events.count
            while low < high {
                let middle = (low + high) / 2
                if state.events[middle].sequence <= after { low = middle + 1 } else { high = middle }
            }
            for event in state.events[low...] where filter.matches(event) {
                found.append(event)
                if found.count == limit {
                    through = event.sequence
                    break
                }
            }
            return (found, through)
        }
        if let held { return held }
        let floor = self.state.withLock { $0.started ? $0.floor : 0 }
        let read = try await self.store.sessionEvents(after: after, filter: filter, limit: limit)
        // Events the hub did not hold (a stream behind them, or the hub started after them)
        // are handed out from here, so they leave the cache here.
        self.dropFromCache(read)
        // A short read saw everything committed when it ran, which includes all up to the floor.
        let through = read.count == limit ? (read.last?.sequence ?? after) : max(read.last?.sequence ?? after, floor)
        return (read, through)
    }

    /// Waits until events after `after` have committed, or `timeout` has passed.
    /// - Returns: `false` when the hub is closed or the stream was ended (it should end).
    public func wait(after: Int64, timeout: Duration, stream id: UInt64) async -> Bool {
        await withTaskCancellationHandler {
            await withCheckedContinuation { (continuation: CheckedContinuation<Bool, Never>) in
                let immediate = self.state.withLock { state -> Bool? in
                    if state.closed || Task.isCancelled || state.ended.contains(id) { return false }
                    if state.started, after < state.cursor { return true }
                    state.waiters[id] = Waiter(after: after, deadline: .now + timeout, continuation: continuation)
                    return nil
                }
                if let immediate { continuation.resume(returning: immediate) }
            }
        } onCancel: {
            let waiter = self.state.withLock { $0.waiters.removeValue(forKey: id) }
            waiter?.continuation.resume(returning: false)
        }
    }

    /// Counts an open stream, unless `limit` are open already, or `ownerLimit` of `owner`'s (a
    /// session's, say: one client cannot take every stream of the node).
    /// - Returns: the stream's id for ``wait(after:timeout:stream:)``, or `nil` when it may not
    ///   open; it must call ``endStream(_:)`` when it ends.
    public func beginStream(limit: Int, owner: String? = nil, ownerLimit: Int = .max) -> UInt64? {
        self.state.withLock { state in
            guard !state.closed, state.streams < limit else { return nil }
            if let owner {
                guard state.owners[owner, default: 0] < ownerLimit else { return nil }
                state.owners[owner, default: 0] += 1
            }
            state.streams += 1
            state.nextWaiter += 1
            if let owner { state.streamOwners[state.nextWaiter] = owner }
            return state.nextWaiter
        }
    }

    /// Makes the stream's wait (now or next) return `false`: for a node's graceful shutdown.
    public func interrupt(stream id: UInt64) {
        let waiter = self.state.withLock { state in
            state.ended.insert(id)
            return state.waiters.removeValue(forKey: id)
        }
        waiter?.continuation.resume(returning: false)
    }

    public func endStream(_ id: UInt64) {
        self.state.withLock { state in
            state.streams -= 1
            state.ended.remove(id)
            if let owner = state.streamOwners.removeValue(forKey: id) {
                state.owners[owner, default: 1] -= 1
                if state.owners[owner] == 0 { state.owners[owner] = nil }
            }
        }
    }

    /// Streams open now.
    public var openStreams: Int { self.state.withLock { $0.streams } }
}
