public import Foundation
public import Logging
public import NIOCore
import NIOPosix
public import Tessera

/// Logged-in sessions with one upstream site, kept healthy so that clients never meet the
/// site's "your session has expired".
///
/// - Borrowing takes an idle session, probes it first when its last check is older than
///   `healthFreshness`, and lends it. A session found ended is retired and another taken or
///   logged in. Sessions being probed by the keep-alive are not lent.
/// - ``send(_:)`` forwards a request through a borrowed session and retries once on a fresh
///   session when the answer shows the session had ended (see ``send(_:)`` for the rule).
/// - ``maintain()``, run by ``UpstreamKeeper`` in the background, probes idle sessions every
///   `keepAlive.interval`, retires dead ones before anyone borrows them, replaces sessions that
///   reached their (jittered) maximum age or uses (the replacement logs in first), reclaims
///   leases held too long, and keeps `pool.min` sessions logged in.
/// - Logins are single-flight per account, at most `maxConcurrentLogins` at once, and back off
///   exponentially per account after a failure; repeated refusals open the account's circuit.
///
/// Every deadline is read on the injected clock; only a borrower's wait for a busy pool is
/// measured in real time.
///
/// The pool runs on one event loop (``eventLoop``, its executor), so that a request served on
/// that loop can borrow and give back a session without a task (``forwardExpress(_:)``).
public actor UpstreamPool {
    /// The upstream's settings.
    public nonisolated let configuration: UpstreamConfiguration
    /// The event loop the pool's state lives on: the actor's executor.
    public nonisolated let eventLoop: any EventLoop
    /// Whether ``forwardExpress(_:)`` can serve this upstream: its sessions speak HTTP.
    public nonisolated let servesExpress: Bool
    public nonisolated var unownedExecutor: UnownedSerialExecutor { self.eventLoop.executor.asUnownedSerialExecutor() }
    /// The pool's name (the upstream's).
    public nonisolated var name: String { self.configuration.name }

    let factory: any UpstreamSessionFactory
    let clock: any WallClock
    let reader: UpstreamVerdictReader
    let random: @Sendable () -> Double
    var logger: Logger

    var slots: [Int: Slot] = [:]
    var accounts: [AccountState]
    var counters = Counters()
    var recentErrors: [RecentError] = []
    var rateLimitedUntil: Date?
    var nextSlotID = 1
    var nextLeaseID: UInt64 = 1
    var loginTasks: [Int: Task<Void, Never>] = [:]
    var waiters: [UInt64: CheckedContinuation<Void, Never>] = [:]
    var nextWaiterID: UInt64 = 1
    var isShutDown = false

    /// - Parameters:
    ///   - configuration: the upstream (validated)
    ///   - factory: logs sessions in
    ///   - clock: the clock of every age, freshness, lease and back-off deadline
    ///   - random: a source of numbers in `0..<1` for jitter (tests pass a fixed one)
    ///   - logger: where logins, retirements and failures are logged (never a credential or cookie)
    ///   - eventLoop: the loop the pool runs on (by default one of NIO's shared loops, which
    ///     Hummingbird's server uses too)
    public init(
        configuration: UpstreamConfiguration,
        factory: any UpstreamSessionFactory,
        clock: any WallClock = SystemClock(),
        random: @escaping @Sendable () -> Double = { Double.random(in: 0..<1) },
        logger: Logger = Logger(label: "tessera.upstream"),
        eventLoop: (any EventLoop)? = nil
    ) {
        self.configuration = configuration
        self.eventLoop = eventLoop ?? MultiThreadedEventLoopGroup.singleton.next()
        self.servesExpress = factory is HTTPUpstreamSessionFactory
        self.factory = factory
        self.clock = clock
        self.reader = UpstreamVerdictReader(configuration: configuration)
        self.random = random
        var logger = logger
        logger[metadataKey: "upstream"] = .string(configuration.name)
        self.logger = logger
        self.accounts = configuration.effectiveAccounts.map { AccountState(account: $0) }
    }

    // MARK: Lending

    /// A session lent out whole: its cookies, for a client that drives the site itself.
    public struct LentSession: Sendable {
        public var lease: UpstreamLease
        public var cookies: [UpstreamCookie]
        /// Until when the client may use the cookies: the lease's end, or the session's planned
        /// retirement if earlier.
        public var expiresAt: Date
    }

    /// Lends a healthy session's cookies until the lease ends (`leaseTimeout`) or
    /// ``giveBack(leaseID:)``. The session is probed before it is lent again.
    public func lend() async throws -> LentSession {
        let lease = try await self.borrow()
        guard let slot = self.slots[lease.slotID] else { throw TesseraError.upstreamSessionLost(upstream: self.name) }
        self.counters.lent += 1
        return LentSession(lease: lease, cookies: lease.connection.cookies(), expiresAt: min(lease.until, slot.retireAt))
    }

    /// Ends a lease taken with ``lend()`` early. Unknown or ended leases are ignored.
    public func giveBack(leaseID: UInt64) {
        guard let id = self.slots.first(where: { $0.value.leaseID == leaseID })?.key else { return }
        self.release(slotID: id, checkedOK: false)
    }

    // MARK: Borrowing

    /// Takes a healthy session for one use, probing it first when it was last seen logged in
    /// more than `freshness` seconds ago. Give it back with ``finish(_:verdict:error:)``.
    func borrow(freshness: Double? = nil) async throws -> UpstreamLease {
        let freshness = freshness ?? self.configuration.healthFreshness
        let deadline = ContinuousClock.now + .milliseconds(Int64(self.configuration.borrowTimeout * 1000))
        while true {
            guard !self.isShutDown else { throw TesseraError.upstreamUnavailable(upstream: self.name) }
            let now = self.clock.now
            if let until = self.rateLimitedUntil, until > now {
                throw TesseraError.upstreamRateLimited(upstream: self.name, retryAfter: Self.seconds(until.timeIntervalSince(now)))
            }
            if let id = self.pickIdle(now: now), let lease = self.lendSlot(id, now: now) {
                if now.timeIntervalSince(self.slots.index(forKey: id).map { Self.peek(&self.slots.values[$0]) { $0.lastCheckedAt } } ?? .distantPast) <= freshness {
                    return lease
                }
                if try await self.healthCheck(lease) { return lease }
                continue
            }
            // One login per waiting borrower at most; the rest wait for a session to come back.
            if self.loginTasks.count <= self.waiters.count {
                self.startLoginIfAllowed(replacing: nil)
            }
            if self.slots.isEmpty {
                // Nothing to wait for: no session, no login running, and every account backing off.
                throw self.loginFailedError(now: now)
            }
            if await self.wait(until: deadline) {
                self.counters.exhausted += 1
                if self.slots.isEmpty {
                    throw self.loginFailedError(now: self.clock.now)
                }
                throw TesseraError.upstreamExhausted(upstream: self.name)
            }
        }
    }

    /// Probes a session just lent, before the borrower uses it; `false` when it was found ended
    /// (and retired) or the site asked to slow down.
    func healthCheck(_ lease: UpstreamLease) async throws -> Bool {
        let (verdict, failure) = await lease.connection.probe(self.probeRequest, reader: self.reader)
        self.counters.healthChecks += 1
        guard var slot = self.slots[lease.slotID], slot.leaseID == lease.leaseID else { return false }
        let now = self.clock.now
        slot.lastVerdict = Self.describe(verdict)
        switch verdict {
        case .ok:
            slot.lastCheckedAt = now
            slot.lastActivityAt = now
            self.slots[lease.slotID] = slot
            return true
        case .transient:
            // Inconclusive: lend it; the request will tell.
            self.slots[lease.slotID] = slot
            self.noteError("health check: \(failure ?? "transient answer")", now: now)
            return true
        case .expired(let evidence):
            self.retire(lease.slotID, reason: evidence == .browserEnded ? .browserEnded : .expiredOnCheck)
            return false
        case .blocked:
            self.retire(lease.slotID, reason: .blocked)
            return false
        case .rateLimited(let retryAfter):
            self.slots[lease.slotID] = slot
            self.release(slotID: lease.slotID, checkedOK: false)
            self.backOffRateLimited(retryAfter: retryAfter, now: now)
            throw TesseraError.upstreamRateLimited(upstream: self.name, retryAfter: Self.seconds(retryAfter ?? self.configuration.backoff.initial))
        }
    }

    /// What a session was used for when it is taken back.
    enum Use {
        /// A client's request: it counts toward `maxUses`.
        case request
        /// The background keep-alive probe.
        case keepAlive
    }

    /// Takes back a borrowed session with what its answer said.
    func finish(_ lease: UpstreamLease, verdict: UpstreamVerdict, error: String? = nil) {
        self.finish(slotID: lease.slotID, leaseID: lease.leaseID, verdict: verdict, use: .request, error: error)
    }

    /// Takes back the session `slotID` under `leaseID` (ignored when that lease has ended) with
    /// what its answer said. The slot is changed where it is: a copy retains its every reference.
    func finish(slotID: Int, leaseID: UInt64, verdict: UpstreamVerdict, use: Use, error: String?) {
        guard let index = self.slots.index(forKey: slotID), self.slots.values[index].leaseID == leaseID else { return }
        let now = self.clock.now
        switch verdict {
        case .expired(let evidence):
            return self.retire(slotID, reason: evidence == .browserEnded ? .browserEnded : use == .request ? .expiredOnUse : .expiredOnKeepAlive)
        case .blocked:
            return self.retire(slotID, reason: .blocked)
        case .ok, .rateLimited, .transient:
            break
        }
        if use == .request { self.slots.values[index].uses += 1 }
        self.slots.values[index].lastVerdict = Self.describe(verdict)
        switch verdict {
        case .ok:
            self.slots.values[index].lastActivityAt = now
            self.release(slotID: slotID, checkedOK: true)
        case .rateLimited(let retryAfter):
            self.release(slotID: slotID, checkedOK: false)
            self.backOffRateLimited(retryAfter: retryAfter, now: now)
        case .transient:
            // Not the session's fault, but check it before the next lend.
            self.slots.values[index].lastCheckedAt = .distantPast
            self.noteError("\(use == .request ? "request" : "keep-alive"): \(error ?? "transient answer")", now: now)
            self.release(slotID: slotID, checkedOK: false)
        case .expired, .blocked:
            break
        }
    }

    /// Puts the lent session `slotID` back idle, in place, or retires it when its replacement
    /// is ready; asks for a replacement when it has served `maxUses`.
    func release(slotID: Int, checkedOK: Bool) {
        guard let index = self.slots.index(forKey: slotID) else { return }
        self.slots.values[index].leaseID = nil
        if checkedOK { self.slots.values[index].lastCheckedAt = self.clock.now }
        if self.slots.values[index].replacedBy == .done {
            return self.retire(slotID, reason: self.slots.values[index].retireReason ?? .maxAge)
        }
        self.slots.values[index].state = .idle
        if let maxUses = self.configuration.maxUses, self.slots.values[index].uses >= maxUses, self.slots.values[index].replacedBy == nil {
            self.requestReplacement(of: slotID, reason: .maxUses)
        }
        self.signal()
    }

    func pickIdle(now: Date) -> Int? {
        // Prefer sessions not waiting for replacement, then the least used: one pass that reads
        // the slots in place (this runs on every borrow). A slot is read through an inout
        // access: the dictionary's getter would copy it, retaining its every reference.
        var chosen: (id: Int, old: Int, uses: Int, retireAt: Date)?
        var index = self.slots.startIndex
        while index != self.slots.endIndex {
            defer { index = self.slots.index(after: index) }
            let (idle, old, uses, retireAt) = Self.peek(&self.slots.values[index]) {
                ($0.state == .idle, $0.replacedBy != nil ? 1 : 0, $0.uses, $0.retireAt)
            }
            guard idle else { continue }
            let id = self.slots.keys[index]
            if let best = chosen, (old, uses, id) >= (best.old, best.uses, best.id) { continue }
            chosen = (id, old, uses, retireAt)
        }
        if let chosen, now >= chosen.retireAt, chosen.old == 0 {
            self.requestReplacement(of: chosen.id, reason: .maxAge)
        }
        return chosen?.id
    }

    /// Reads `slot` where it is.
    @inline(__always)
    static func peek<Value>(_ slot: inout Slot, _ read: (inout Slot) -> Value) -> Value {
        read(&slot)
    }

    /// Lends the idle slot `id`; `nil` when it has no session (``pickIdle(now:)`` picks only
    /// slots that have one).
    func lendSlot(_ id: Int, now: Date) -> UpstreamLease? {
        guard let index = self.slots.index(forKey: id), let connection = self.slots.values[index].connection else { return nil }
        let leaseID = self.nextLeaseID
        self.nextLeaseID += 1
        let until = now.addingTimeInterval(self.configuration.leaseTimeout)
        self.slots.values[index].state = .lent
        self.slots.values[index].leaseID = leaseID
        self.slots.values[index].leaseUntil = until
        self.counters.borrows += 1
        return UpstreamLease(slotID: id, leaseID: leaseID, connection: connection, until: until)
    }

    var probeRequest: UpstreamRequest {
        UpstreamRequest(method: "GET", pathAndQuery: self.configuration.keepAlive.path, headers: [("accept", "text/html,*/*;q=0.8")])
    }

    // MARK: Waiting

    /// Waits until the pool changes or `deadline` passes; `true` on timeout.
    func wait(until deadline: ContinuousClock.Instant) async -> Bool {
        if ContinuousClock.now >= deadline { return true }
        let id = self.nextWaiterID
        self.nextWaiterID += 1
        let timer = Task { [weak self] in
            try? await Task.sleep(until: deadline, clock: .continuous)
            await self?.wake(id)
        }
        await withTaskCancellationHandler {
            await withCheckedContinuation { continuation in
                self.waiters[id] = continuation
            }
        } onCancel: {
            Task { await self.wake(id) }
        }
        timer.cancel()
        return ContinuousClock.now >= deadline || Task.isCancelled
    }

    func wake(_ id: UInt64) {
        self.waiters.removeValue(forKey: id)?.resume()
    }

    /// Wakes every waiting borrower to look again.
    func signal() {
        let waiting = self.waiters
        self.waiters = [:]
        for continuation in waiting.values { continuation.resume() }
    }
}
