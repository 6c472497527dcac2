public import Foundation
public import Logging
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
public actor UpstreamPool {
    /// The upstream's settings.
    public nonisolated let configuration: UpstreamConfiguration
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
    public init(
        configuration: UpstreamConfiguration,
        factory: any UpstreamSessionFactory,
        clock: any WallClock = SystemClock(),
        random: @escaping @Sendable () -> Double = { Double.random(in: 0..<1) },
        logger: Logger = Logger(label: "tessera.upstream")
    ) {
        self.configuration = configuration
        self.factory = factory
        self.clock = clock
        self.reader = UpstreamVerdictReader(configuration: configuration)
        self.random = random
        var logger = logger
        logger[metadataKey: "upstream"] = .string(configuration.name)
        self.logger = logger
        self.accounts = configuration.effectiveAccounts.map { AccountState(account: $0) }
    }

    // MARK: Forwarding

    /// Sends `request` through a pooled session and returns the site's answer, with the
    /// session's expiry hidden.
    ///
    /// The retry rule: a request is sent at most twice.
    /// - An answer that shows the session had ended (an expiry status, phrase or redirect to the
    ///   login page) is retried once on a fresh session, whatever the method: such an answer is
    ///   the site's refusal to serve the request as the user, so it did not act on it.
    /// - A transient failure (`502`, `503`, `504`, or a connection that broke after the request
    ///   was sent) is retried only for idempotent methods (GET, HEAD, OPTIONS, TRACE, PUT,
    ///   DELETE); the site may have acted on a POST or PATCH, so those get the answer as it came
    ///   (or `502 UPSTREAM_UNAVAILABLE`).
    /// - A connection that failed before the request was sent is retried for every method.
    /// - `429` is passed on, and the pool stops sending until its `Retry-After`.
    ///
    /// Throws ``TesseraError`` values: `UPSTREAM_LOGIN_FAILED`, `UPSTREAM_EXHAUSTED`,
    /// `UPSTREAM_UNAVAILABLE`, `UPSTREAM_RATE_LIMITED`, `UPSTREAM_SESSION_LOST`, `UPSTREAM_BLOCKED`.
    public nonisolated func send(_ request: UpstreamRequest) async throws -> UpstreamResponse {
        var attempt = 0
        while true {
            attempt += 1
            // A retry goes to a session seen logged in at this instant: just logged in, or probed
            // now. Another session may have ended unnoticed at the same moment as the first.
            let lease = try await self.borrow(freshness: attempt == 1 ? self.configuration.healthFreshness : 0)
            let outcome: Result<UpstreamResponse, any Error>
            do {
                outcome = .success(try await lease.connection.send(request))
            } catch {
                outcome = .failure(error)
            }
            switch outcome {
            case .success(let response):
                let verdict = self.reader.verdict(on: response)
                await self.finish(lease, verdict: verdict)
                switch verdict {
                case .ok:
                    return response
                case .expired:
                    guard attempt < 2 else { throw TesseraError.upstreamSessionLost(upstream: self.name) }
                    await self.count {
                        $0.expiredHidden += 1
                        $0.retries += 1
                    }
                case .transient:
                    guard attempt < 2, request.isIdempotent else { return response }
                    await self.count { $0.retries += 1 }
                case .rateLimited:
                    return response
                case .blocked:
                    throw TesseraError.upstreamBlocked(upstream: self.name)
                }
            case .failure(let error):
                let sent = (error as? UpstreamTransportError)?.requestSent ?? true
                await self.finish(lease, verdict: .transient, error: "\(error)")
                guard attempt < 2, request.isIdempotent || !sent else { throw TesseraError.upstreamUnavailable(upstream: self.name) }
                await self.count { $0.retries += 1 }
            }
        }
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
        guard let (id, slot) = self.slots.first(where: { $0.value.leaseID == leaseID }) else { return }
        self.release(slotID: id, slot: slot, checkedOK: false)
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
                if now.timeIntervalSince(self.slots[id]?.lastCheckedAt ?? .distantPast) <= freshness {
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
        let (verdict, failure) = await Self.probe(lease.connection, request: self.probeRequest, reader: self.reader)
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
            self.release(slotID: lease.slotID, slot: slot, checkedOK: false)
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
    /// what its answer said.
    func finish(slotID: Int, leaseID: UInt64, verdict: UpstreamVerdict, use: Use, error: String?) {
        guard var slot = self.slots[slotID], slot.leaseID == leaseID else { return }
        let now = self.clock.now
        if use == .request { slot.uses += 1 }
        slot.lastVerdict = Self.describe(verdict)
        switch verdict {
        case .ok:
            slot.lastActivityAt = now
            self.release(slotID: slotID, slot: slot, checkedOK: true)
        case .expired(let evidence):
            self.retire(slotID, reason: evidence == .browserEnded ? .browserEnded : use == .request ? .expiredOnUse : .expiredOnKeepAlive)
        case .blocked:
            self.retire(slotID, reason: .blocked)
        case .rateLimited(let retryAfter):
            self.release(slotID: slotID, slot: slot, checkedOK: false)
            self.backOffRateLimited(retryAfter: retryAfter, now: now)
        case .transient:
            self.noteError("\(use == .request ? "request" : "keep-alive"): \(error ?? "transient answer")", now: now)
            // Not the session's fault, but check it before the next lend.
            slot.lastCheckedAt = .distantPast
            self.release(slotID: slotID, slot: slot, checkedOK: false)
        }
    }

    func release(slotID: Int, slot: Slot, checkedOK: Bool) {
        var slot = slot
        slot.leaseID = nil
        if checkedOK { slot.lastCheckedAt = self.clock.now }
        if slot.replacedBy == .done {
            self.slots[slotID] = slot
            self.retire(slotID, reason: slot.retireReason ?? .maxAge)
            return
        }
        slot.state = .idle
        self.slots[slotID] = slot
        if let maxUses = self.configuration.maxUses, slot.uses >= maxUses, slot.replacedBy == nil {
            self.requestReplacement(of: slotID, reason: .maxUses)
        }
        self.signal()
    }

    func pickIdle(now: Date) -> Int? {
        // Prefer sessions not waiting for replacement, then the least used.
        let idle = self.slots.filter { $0.value.state == .idle }
        let chosen = idle.min { a, b in
            let aOld = a.value.replacedBy != nil
            let bOld = b.value.replacedBy != nil
            if aOld != bOld { return !aOld }
            return (a.value.uses, a.key) < (b.value.uses, b.key)
        }
        if let chosen, now >= chosen.value.retireAt, chosen.value.replacedBy == nil {
            self.requestReplacement(of: chosen.key, reason: .maxAge)
        }
        return chosen?.key
    }

    /// Lends the idle slot `id`; `nil` when it has no session (``pickIdle(now:)`` picks only
    /// slots that have one).
    func lendSlot(_ id: Int, now: Date) -> UpstreamLease? {
        guard var slot = self.slots[id], let connection = slot.connection else { return nil }
        let leaseID = self.nextLeaseID
        self.nextLeaseID += 1
        let until = now.addingTimeInterval(self.configuration.leaseTimeout)
        slot.state = .lent
        slot.leaseID = leaseID
        slot.leaseUntil = until
        self.slots[id] = slot
        self.counters.borrows += 1
        return UpstreamLease(slotID: id, leaseID: leaseID, connection: connection, until: until)
    }

    /// Sends the keep-alive request through `connection`: its verdict, and the failure when no
    /// answer came (a transient verdict).
    static func probe(
        _ connection: any UpstreamSessionConnection,
        request: UpstreamRequest,
        reader: UpstreamVerdictReader
    ) async -> (UpstreamVerdict, String?) {
        await connection.probe(request, reader: reader)
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

    // MARK: Logins

    /// Starts a login if a slot and an account are free; `true` when one started.
    @discardableResult
    func startLoginIfAllowed(replacing old: Int?) -> Bool {
        guard !self.isShutDown else { return false }
        let now = self.clock.now
        let live = self.slots.values.filter { $0.replacedBy == nil }.count
        guard old != nil || live < self.configuration.pool.max else { return false }
        guard self.loginTasks.count < self.configuration.backoff.maxConcurrentLogins else { return false }
        let perAccount = Dictionary(grouping: self.slots.values.filter { $0.replacedBy == nil }, by: \.account).mapValues(\.count)
        let limit = old == nil ? (self.configuration.maxSessionsPerAccount ?? Int.max) : Int.max
        let eligible = self.accounts.indices.filter {
            !self.isLoggingIn(account: $0) && self.accounts[$0].nextAttempt(now: now) <= now && perAccount[$0, default: 0] < limit
        }
        guard let account = eligible.min(by: { (perAccount[$0] ?? 0, $0) < (perAccount[$1] ?? 0, $1) }) else { return false }

        let id = self.nextSlotID
        self.nextSlotID += 1
        self.slots[id] = Slot(account: account, createdAt: now, retireAt: now, replaces: old)
        if let old { self.slots[old]?.replacedBy = .pending }
        let accountConfiguration = self.accounts[account].account
        self.loginTasks[id] = Task {
            let started = ContinuousClock.now
            let result: Result<any UpstreamSessionConnection, UpstreamLoginError>
            do {
                result = .success(try await self.factory.logIn(account: accountConfiguration))
            } catch let error as UpstreamLoginError {
                result = .failure(error)
            } catch {
                result = .failure(UpstreamLoginError(.unreachable, reason: "\(error)"))
            }
            await self.loginFinished(slotID: id, result: result, took: ContinuousClock.now - started)
        }
        return true
    }

    func loginFinished(slotID: Int, result: Result<any UpstreamSessionConnection, UpstreamLoginError>, took: Duration = .zero) async {
        self.loginTasks.removeValue(forKey: slotID)
        guard var slot = self.slots[slotID] else { return }
        let now = self.clock.now
        switch result {
        case .success(let connection):
            if self.isShutDown {
                self.slots.removeValue(forKey: slotID)
                await connection.close()
                return
            }
            self.accounts[slot.account].succeeded()
            self.counters.logins += 1
            self.counters.loginTime.add(took)
            slot.connection = connection
            slot.state = .idle
            slot.createdAt = now
            slot.lastCheckedAt = now
            slot.lastActivityAt = now
            slot.lastVerdict = "ok"
            let jitter = self.configuration.lifetimeJitter * self.random()
            slot.retireAt = now.addingTimeInterval(self.configuration.maxAge * (1 - jitter))
            self.slots[slotID] = slot
            self.logger.info(
                "Logged in to the upstream",
                metadata: ["account": .string(self.accounts[slot.account].account.name), "upstream_session": .stringConvertible(slotID)]
            )
            if let old = slot.replaces, let oldSlot = self.slots[old] {
                // The replacement is ready: the old session goes now, or when it comes back.
                self.slots[old]?.replacedBy = .done
                if oldSlot.state == .idle { self.retire(old, reason: oldSlot.retireReason ?? .maxAge) }
            }
        case .failure(let error):
            self.slots.removeValue(forKey: slotID)
            if let old = slot.replaces { self.slots[old]?.replacedBy = nil }
            self.counters.loginFailures += 1
            let delay = self.accounts[slot.account].failed(error, configuration: self.configuration.backoff, now: now, jitter: self.random())
            let account = self.accounts[slot.account].account.name
            self.noteError("login as '\(account)' failed: \(error.reason)", now: now)
            self.logger.warning(
                "Login to the upstream failed",
                metadata: [
                    "account": .string(account), "reason": .string(error.reason), "backoff_seconds": .stringConvertible(Int(delay.rounded(.up))),
                ]
            )
        }
        self.signal()
    }

    /// Whether a login of `account` is running (logins are single-flight per account).
    func isLoggingIn(account: Int) -> Bool {
        self.slots.values.contains { $0.account == account && $0.state == .loggingIn }
    }

    func requestReplacement(of slotID: Int, reason: RetireReason) {
        guard self.slots[slotID]?.replacedBy == nil else { return }
        self.slots[slotID]?.retireReason = reason
        self.startLoginIfAllowed(replacing: slotID)
    }

    func loginFailedError(now: Date) -> TesseraError {
        let next = self.accounts.map { $0.nextAttempt(now: now) }.min() ?? now
        let reason = self.accounts.compactMap(\.lastError).first
        return .upstreamLoginFailed(upstream: self.name, reason: reason, retryAfter: Self.seconds(next.timeIntervalSince(now)))
    }

    func backOffRateLimited(retryAfter: Double?, now: Date) {
        let delay = min(max(retryAfter ?? self.configuration.backoff.initial, 1), 3600)
        self.rateLimitedUntil = now.addingTimeInterval(delay)
        self.counters.rateLimited += 1
        self.noteError("the upstream answered 429; pausing for \(Int(delay)) s", now: now)
    }

    // MARK: Retiring

    func retire(_ slotID: Int, reason: RetireReason) {
        guard let slot = self.slots.removeValue(forKey: slotID) else { return }
        self.counters.retirements[reason.rawValue, default: 0] += 1
        self.logger.info(
            "Retired an upstream session",
            metadata: ["upstream_session": .stringConvertible(slotID), "reason": .string(reason.rawValue), "uses": .stringConvertible(slot.uses)]
        )
        if let connection = slot.connection {
            Task { await connection.close() }
        }
        // Keep the pool at its minimum without waiting for the next maintenance.
        if !self.isShutDown && self.slots.count < self.configuration.pool.min {
            self.startLoginIfAllowed(replacing: nil)
        }
        self.signal()
    }

    // MARK: Maintenance

    /// One round of background care, at the clock's current time:
    /// 1. reclaims leases held past `leaseTimeout`;
    /// 2. probes idle sessions unused for `keepAlive.interval` (they are not lent meanwhile) and
    ///    retires the dead ones;
    /// 3. starts replacements for sessions past their maximum age or uses;
    /// 4. starts logins up to `pool.min`.
    /// It returns when the probes are done; logins it started finish in the background
    /// (``settle()`` waits for them).
    public func maintain() async {
        guard !self.isShutDown else { return }
        let now = self.clock.now
        for (id, slot) in self.slots where slot.state == .lent {
            if let until = slot.leaseUntil, until <= now {
                self.counters.reclaimed += 1
                self.logger.warning("Reclaimed an upstream session lent too long", metadata: ["upstream_session": .stringConvertible(id)])
                var reclaimed = slot
                reclaimed.lastCheckedAt = .distantPast
                self.release(slotID: id, slot: reclaimed, checkedOK: false)
            }
        }

        let due = self.slots.filter { _, slot in
            slot.state == .idle && now.timeIntervalSince(slot.lastActivityAt) >= self.configuration.keepAlive.interval
        }
        var probes: [(Int, UInt64, any UpstreamSessionConnection)] = []
        for (id, var slot) in due {
            guard let connection = slot.connection else { continue }
            let leaseID = self.nextLeaseID
            self.nextLeaseID += 1
            slot.state = .probing
            slot.leaseID = leaseID
            self.slots[id] = slot
            probes.append((id, leaseID, connection))
        }
        if !probes.isEmpty {
            let request = self.probeRequest
            let reader = self.reader
            let results = await withTaskGroup(of: (Int, UInt64, UpstreamVerdict, String?).self) { group in
                for (id, leaseID, connection) in probes {
                    group.addTask {
                        let (verdict, failure) = await Self.probe(connection, request: request, reader: reader)
                        return (id, leaseID, verdict, failure)
                    }
                }
                var results: [(Int, UInt64, UpstreamVerdict, String?)] = []
                for await result in group { results.append(result) }
                return results
            }
            for (id, leaseID, verdict, error) in results {
                self.counters.keepAliveProbes += 1
                self.finish(slotID: id, leaseID: leaseID, verdict: verdict, use: .keepAlive, error: error)
            }
        }

        let current = self.clock.now
        for (id, slot) in self.slots where slot.state != .loggingIn && slot.replacedBy == nil {
            if current >= slot.retireAt {
                self.requestReplacement(of: id, reason: .maxAge)
            } else if slot.state == .idle, slot.connection?.wantsReplacement == true {
                self.requestReplacement(of: id, reason: .resources)
            } else if let maxUses = self.configuration.maxUses, slot.uses >= maxUses {
                self.requestReplacement(of: id, reason: .maxUses)
            }
        }
        while self.slots.values.filter({ $0.replacedBy == nil }).count < self.configuration.pool.min {
            guard self.startLoginIfAllowed(replacing: nil) else { break }
        }
    }

    /// Waits for the logins running now to finish.
    public func settle() async {
        while let task = self.loginTasks.values.first {
            await task.value
        }
    }

    /// Stops the pool: fails waiting borrowers, cancels running logins and closes every session.
    public func shutdown() async {
        self.isShutDown = true
        self.signal()
        for task in self.loginTasks.values { task.cancel() }
        await self.settle()
        let connections = self.slots.values.compactMap(\.connection)
        self.slots = [:]
        for connection in connections { await connection.close() }
    }

    // MARK: Reporting

    func count(_ update: (inout Counters) -> Void) {
        update(&self.counters)
    }

    func noteError(_ message: String, now: Date) {
        self.recentErrors.append(RecentError(at: now, message: message))
        if self.recentErrors.count > 10 { self.recentErrors.removeFirst(self.recentErrors.count - 10) }
    }

    static func describe(_ verdict: UpstreamVerdict) -> String {
        switch verdict {
        case .ok: "ok"
        case .expired(let evidence): "expired (\(evidence.rawValue))"
        case .blocked: "blocked"
        case .rateLimited: "rate_limited"
        case .transient: "transient"
        }
    }

    static func seconds(_ interval: TimeInterval) -> Int {
        max(1, Int(interval.rounded(.up)))
    }
}

/// A session borrowed from a pool.
public struct UpstreamLease: Sendable {
    let slotID: Int
    /// The lease's identity; a reclaimed lease no longer counts.
    public let leaseID: UInt64
    let connection: any UpstreamSessionConnection
    /// When the pool reclaims the session.
    public let until: Date
}

/// Why a session left the pool.
public enum RetireReason: String, Sendable, CaseIterable {
    /// A client request met the ended session (and was retried on another).
    case expiredOnUse = "expired_on_use"
    /// The health check before lending found it ended.
    case expiredOnCheck = "expired_on_check"
    /// The background keep-alive found it ended.
    case expiredOnKeepAlive = "expired_on_keepalive"
    /// It reached its maximum age; a replacement logged in first.
    case maxAge = "max_age"
    /// It served its maximum number of requests.
    case maxUses = "max_uses"
    /// The site blocked it.
    case blocked
    /// Its browser went past its memory limit; a replacement logged in first.
    case resources
    /// Its browser crashed, hung or closed, and was killed.
    case browserEnded = "browser_ended"
}

extension UpstreamPool {
    struct Slot {
        enum State: String { case loggingIn = "logging_in", idle, lent, probing }
        enum Replacement { case pending, done }

        var account: Int
        var state: State = .loggingIn
        var connection: (any UpstreamSessionConnection)?
        var createdAt: Date
        var retireAt: Date
        var uses = 0
        var lastCheckedAt = Date.distantPast
        var lastActivityAt = Date.distantPast
        var lastVerdict = "none"
        var leaseID: UInt64?
        var leaseUntil: Date?
        /// The session this login replaces.
        var replaces: Int?
        /// Whether a replacement for this session is logging in, or is ready.
        var replacedBy: Replacement?
        var retireReason: RetireReason?

        init(account: Int, createdAt: Date, retireAt: Date, replaces: Int?) {
            self.account = account
            self.createdAt = createdAt
            self.retireAt = retireAt
            self.replaces = replaces
        }
    }

    struct AccountState {
        let account: UpstreamConfiguration.Account
        var consecutiveFailures = 0
        var backoffUntil: Date?
        var circuitOpenUntil: Date?
        var lastError: String?

        init(account: UpstreamConfiguration.Account) {
            self.account = account
        }

        func nextAttempt(now: Date) -> Date {
            max(self.backoffUntil ?? now, self.circuitOpenUntil ?? now)
        }

        mutating func succeeded() {
            self.consecutiveFailures = 0
            self.backoffUntil = nil
            self.circuitOpenUntil = nil
            self.lastError = nil
        }

        /// Records a failed login and returns the back-off in seconds.
        mutating func failed(_ error: UpstreamLoginError, configuration: UpstreamConfiguration.LoginBackoff, now: Date, jitter: Double) -> Double {
            self.lastError = error.reason
            if case .rateLimited(let retryAfter) = error.kind {
                // Not the account's fault: wait as asked, without moving toward the breaker.
                let delay = max(retryAfter ?? configuration.initial, configuration.initial)
                self.backoffUntil = now.addingTimeInterval(delay)
                return delay
            }
            self.consecutiveFailures += 1
            let exponent = Double(min(self.consecutiveFailures - 1, 30))
            let delay = min(configuration.initial * pow(2, exponent), configuration.maximum) * (0.8 + 0.4 * jitter)
            self.backoffUntil = now.addingTimeInterval(delay)
            // Only refusals count toward the breaker: sites lock accounts out for wrong
            // passwords, not for timeouts.
            if error.kind == .refused, self.consecutiveFailures >= configuration.breakerThreshold {
                self.circuitOpenUntil = now.addingTimeInterval(configuration.breakerOpen)
                return max(delay, configuration.breakerOpen)
            }
            return delay
        }
    }

    struct Counters {
        var logins = 0
        var loginFailures = 0
        var borrows = 0
        var lent = 0
        var retries = 0
        var expiredHidden = 0
        var exhausted = 0
        var reclaimed = 0
        var healthChecks = 0
        var keepAliveProbes = 0
        var rateLimited = 0
        var retirements: [String: Int] = [:]
        var actions = 0
        var actionsReplayed = 0
        var actionsLost = 0
        var actionsFailed = 0
        var loginTime = LoginTime()
    }

    /// How long successful logins took (real time: a browser's login is real work).
    struct LoginTime {
        var count = 0
        var total: Duration = .zero
        var last: Duration = .zero
        var longest: Duration = .zero

        mutating func add(_ duration: Duration) {
            self.count += 1
            self.total += duration
            self.last = duration
            self.longest = max(self.longest, duration)
        }
    }

    struct RecentError {
        var at: Date
        var message: String
    }
}
