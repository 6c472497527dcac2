public import Foundation
import Synchronization

/// Wraps any store so that a store that hiccups does not fail users, and a store that is down
/// fails them fast and honestly.
///
/// - Transient failures (``StoreUnavailableError``: connection resets, timeouts, busy or
///   serialization failures, an attempt with no answer within
///   ``Configuration/attemptTimeout``) are retried with exponential backoff and full jitter.
/// - Every call, retries included, answers within ``Configuration/deadline``: at the latest
///   then it throws ``StoreUnavailableError``, which the service answers with `503` and
///   `Retry-After`, never a hang.
/// - After ``Configuration/breakerThreshold`` calls in a row have failed, a circuit breaker
///   opens: calls fail at once for ``Configuration/breakerCooldown``, then one call at a time
///   probes the store, and the first success closes the breaker. Recovery needs no restart.
public final class ResilientStore: SessionStore {
    /// Retry, deadline and breaker settings.
    public struct Configuration: Sendable {
        /// Attempts per call, the first included (default 3).
        public var attempts: Int
        /// The backoff before the first retry; it doubles for each further one (default 100 ms).
        public var initialBackoff: Duration
        /// The longest backoff (default 1 s).
        public var maximumBackoff: Duration
        /// The longest a call may take, retries included (default 1.5 s).
        public var deadline: Duration
        /// The longest one attempt may take before it counts as failed and is retried (default
        /// 500 ms): a connection that silently died must not use up the whole deadline.
        public var attemptTimeout: Duration
        /// Failed calls in a row that open the breaker (default 5).
        public var breakerThreshold: Int
        /// How long an open breaker refuses calls before letting a probe through (default 1 s).
        public var breakerCooldown: Duration

        public init(
            attempts: Int = 3,
            initialBackoff: Duration = .milliseconds(100),
            maximumBackoff: Duration = .seconds(1),
            deadline: Duration = .milliseconds(1500),
            attemptTimeout: Duration = .milliseconds(500),
            breakerThreshold: Int = 5,
            breakerCooldown: Duration = .seconds(1)
        ) {
            self.attempts = max(1, attempts)
            self.initialBackoff = initialBackoff
            self.maximumBackoff = maximumBackoff
            self.deadline = deadline
            self.attemptTimeout = attemptTimeout
            self.breakerThreshold = max(1, breakerThreshold)
            self.breakerCooldown = breakerCooldown
        }

        /// The most a retry after `retry` earlier retries may wait: the exponential backoff
        /// `initialBackoff × 2^retry`, capped at `maximumBackoff`. The actual wait is drawn
        /// uniformly from zero to this ("full jitter").
        public func backoffCeiling(retry: Int) -> Duration {
            let factor = 1 << min(max(retry, 0), 20)
            return min(self.initialBackoff * factor, self.maximumBackoff)
        }
    }

    /// The breaker's state, for readiness checks and metrics.
    public enum BreakerState: Sendable, Hashable {
        case closed
        case open(until: ContinuousClock.Instant)
        case halfOpen

        /// `closed`, `open` or `half_open`, as metrics and the admin API name it.
        public var name: String {
            switch self {
            case .closed: "closed"
            case .open: "open"
            case .halfOpen: "half_open"
            }
        }
    }

    struct Breaker {
        var consecutiveFailures = 0
        var openUntil: ContinuousClock.Instant?
        var probing = false
    }

    public let base: any SessionStore
    public let configuration: Configuration
    /// Call times, retries, failures and breaker openings.
    public let metrics: StoreMetrics
    private let breaker = Mutex(Breaker())

    /// - Parameters:
    ///   - base: the store to protect
    ///   - configuration: retry, deadline and breaker settings
    ///   - metrics: where counts go (by default to the process's swift-metrics backend)
    public init(_ base: any SessionStore, configuration: Configuration = .init(), metrics: StoreMetrics = StoreMetrics()) {
        self.base = base
        self.configuration = configuration
        self.metrics = metrics
    }

    /// The breaker's state now.
    public var breakerState: BreakerState {
        self.breaker.withLock { breaker in
            guard let until = breaker.openUntil else { return .closed }
            return ContinuousClock.now < until ? .open(until: until) : .halfOpen
        }
    }

    /// Runs `operation` with retries, a deadline and the breaker.
    func run<T: Sendable>(
        _ name: String = #function,
        _ operation: @escaping @Sendable (any SessionStore) async throws -> T
    ) async throws -> T {
        let started = ContinuousClock.now
        defer { self.metrics.record(Self.operationName(name), ContinuousClock.now - started) }
        let isProbe: Bool
        do {
            isProbe = try self.admit()
        } catch {
            self.metrics.failed()
            throw error
        }
        // A probe that ends without a verdict (its caller was cancelled) gives back its turn,
        // so that the next call probes instead of the breaker waiting forever.
        defer { if isProbe { self.breaker.withLock { $0.probing = false } } }
        let deadline = started + self.configuration.deadline
        var retry = 0
        while true {
            let remaining = deadline - ContinuousClock.now
            do {
                guard remaining > .zero else { throw StoreUnavailableError(underlying: "deadline reached") }
                let base = self.base
                let value = try await withDeadline(min(remaining, self.configuration.attemptTimeout)) { try await operation(base) }
                self.recordSuccess()
                return value
            } catch let error as StoreUnavailableError {
                let ceiling = self.configuration.backoffCeiling(retry: retry)
                let wait = Duration.nanoseconds(Int64.random(in: 0...max(0, ceiling.nanoseconds)))
                retry += 1
                guard retry < self.configuration.attempts, ContinuousClock.now + wait < deadline, !Task.isCancelled else {
                    self.recordFailure()
                    self.metrics.failed()
                    throw error
                }
                self.metrics.retried()
                try await Task.sleep(for: wait)
            } catch is CancellationError {
                // The caller went away: that says nothing about the store.
                throw CancellationError()
            } catch {
                // A definite answer (a constraint, a missing row): the store is up.
                self.recordSuccess()
                throw error
            }
        }
    }

    /// Lets a call through, or refuses it while the breaker is open.
    /// - Returns: whether the call is the one probe of a half-open breaker.
    /// `touchSessions(_:)` → `touchSessions`.
    static func operationName(_ function: String) -> String {
        guard let open = function.firstIndex(of: "(") else { return function }
        return String(function[..<open])
    }

    private func admit() throws -> Bool {
        let now = ContinuousClock.now
        return try self.breaker.withLock { breaker in
            guard let until = breaker.openUntil else { return false }
            if now < until || breaker.probing {
                throw StoreUnavailableError(underlying: "circuit breaker open")
            }
            breaker.probing = true
            return true
        }
    }

    private func recordSuccess() {
        self.breaker.withLock { $0 = Breaker() }
    }

    private func recordFailure() {
        let cooldown = self.configuration.breakerCooldown
        let threshold = self.configuration.breakerThreshold
        let opened = self.breaker.withLock { breaker in
            breaker.consecutiveFailures += 1
            breaker.probing = false
            guard breaker.consecutiveFailures >= threshold || breaker.openUntil != nil else { return false }
            let wasClosed = breaker.openUntil == nil
            breaker.openUntil = ContinuousClock.now + cooldown
            return wasClosed
        }
        if opened { self.metrics.breakerOpened() }
    }

    // MARK: SessionStore

    public func ping() async throws { try await self.run { try await $0.ping() } }
    public func insertSessions(_ sessions: [Session]) async throws { try await self.run { try await $0.insertSessions(sessions) } }
    public func session(tokenHash: TokenHash) async throws -> Session? {
        try await self.run("sessionByTokenHash") { try await $0.session(tokenHash: tokenHash) }
    }
    public func sessions(tokenHashes: [TokenHash]) async throws -> [Session] {
        try await self.run("sessionsByTokenHashes") { try await $0.sessions(tokenHashes: tokenHashes) }
    }
    public func session(id: String) async throws -> Session? { try await self.run("sessionByID") { try await $0.session(id: id) } }

    public func touchSession(id: String, lastSeenAt: Date, idleExpiresAt: Date) async throws -> Bool {
        try await self.run { try await $0.touchSession(id: id, lastSeenAt: lastSeenAt, idleExpiresAt: idleExpiresAt) }
    }

    public func touchSessions(_ updates: [ActivityUpdate]) async throws -> Int {
        try await self.run { try await $0.touchSessions(updates) }
    }

    public func updateSessionData(id: String, expectedVersion: Int, data: [String: JSONValue], at: Date) async throws -> Int? {
        try await self.run { try await $0.updateSessionData(id: id, expectedVersion: expectedVersion, data: data, at: at) }
    }

    public func revokeSession(id: String, at: Date, reason: String) async throws -> Bool {
        try await self.run { try await $0.revokeSession(id: id, at: at, reason: reason) }
    }

    public func revokeSessions(userID: String, except exceptID: String?, at: Date, reason: String) async throws -> Int {
        try await self.run { try await $0.revokeSessions(userID: userID, except: exceptID, at: at, reason: reason) }
    }

    public func activeSessions(userID: String?, at now: Date, limit: Int) async throws -> [Session] {
        try await self.run { try await $0.activeSessions(userID: userID, at: now, limit: limit) }
    }

    public func sessionChanges(after cursor: Int64, limit: Int) async throws -> [SessionChange] {
        try await self.run { try await $0.sessionChanges(after: cursor, limit: limit) }
    }

    public func latestSessionChange() async throws -> Int64 {
        try await self.run { try await $0.latestSessionChange() }
    }

    public func deleteSessionChanges(before cutoff: Date) async throws -> Int {
        try await self.run { try await $0.deleteSessionChanges(before: cutoff) }
    }

    public func sessionEvents(after cursor: Int64, filter: SessionEventFilter, limit: Int) async throws -> [SessionEvent] {
        try await self.run { try await $0.sessionEvents(after: cursor, filter: filter, limit: limit) }
    }

    public func latestSessionEvent() async throws -> Int64 {
        try await self.run { try await $0.latestSessionEvent() }
    }

    // Idempotent: a retry after a lost acknowledgement finds those expiries recorded.
    public func recordExpiries(at now: Date, idleGrace: Duration, limit: Int) async throws -> RecordedExpiries {
        try await self.run { try await $0.recordExpiries(at: now, idleGrace: idleGrace, limit: limit) }
    }

    public func deleteSessionEvents(before cutoff: Date, limit: Int) async throws -> Int {
        try await self.run { try await $0.deleteSessionEvents(before: cutoff, limit: limit) }
    }

    public func insertRefreshToken(_ token: RefreshTokenRecord) async throws {
        try await self.run { try await $0.insertRefreshToken(token) }
    }

    public func refreshToken(hash: TokenHash) async throws -> RefreshTokenRecord? {
        try await self.run { try await $0.refreshToken(hash: hash) }
    }

    // A retry after a lost acknowledgement answers `false`; the caller then reads the record
    // and finds its own successor, as a racing caller would.
    public func rotateRefreshToken(hash: TokenHash, at: Date, sealedSuccessor: [UInt8], successor: RefreshTokenRecord) async throws -> Bool {
        try await self.run { try await $0.rotateRefreshToken(hash: hash, at: at, sealedSuccessor: sealedSuccessor, successor: successor) }
    }

    public func deleteSessions(endedBefore cutoff: Date, limit: Int) async throws -> Int {
        try await self.run { try await $0.deleteSessions(endedBefore: cutoff, limit: limit) }
    }

    public func insertUser(_ user: User) async throws { try await self.run { try await $0.insertUser(user) } }
    public func user(username: String) async throws -> User? { try await self.run("userByName") { try await $0.user(username: username) } }
    public func user(id: String) async throws -> User? { try await self.run("userByID") { try await $0.user(id: id) } }
    public func users() async throws -> [User] { try await self.run { try await $0.users() } }

    public func users(prefix: String?, after cursor: String?, limit: Int) async throws -> [User] {
        try await self.run("usersPage") { try await $0.users(prefix: prefix, after: cursor, limit: limit) }
    }

    // Idempotent: writing the same values again changes nothing.
    public func updateUser(_ user: User) async throws -> Bool {
        try await self.run { try await $0.updateUser(user) }
    }

    public func countActiveSessions(at now: Date) async throws -> Int {
        try await self.run { try await $0.countActiveSessions(at: now) }
    }

    public func sessions(matching query: SessionQuery, at now: Date, after cursor: SessionCursor?, limit: Int) async throws -> [Session] {
        try await self.run("sessionsPage") { try await $0.sessions(matching: query, at: now, after: cursor, limit: limit) }
    }

    public func throttleCounter(key: String) async throws -> ThrottleCounter? {
        try await self.run { try await $0.throttleCounter(key: key) }
    }

    public func beginAttempt(key: String, at now: Date, window: Duration, staleAfter: Duration) async throws -> ThrottleCounter {
        try await self.run { try await $0.beginAttempt(key: key, at: now, window: window, staleAfter: staleAfter) }
    }

    public func endAttempt(key: String, at now: Date, window: Duration, outcome: LoginAttemptOutcome) async throws {
        try await self.run { try await $0.endAttempt(key: key, at: now, window: window, outcome: outcome) }
    }

    public func deleteThrottleCounters(startedBefore cutoff: Date) async throws -> Int {
        try await self.run { try await $0.deleteThrottleCounters(startedBefore: cutoff) }
    }
}

extension Duration {
    /// The duration in whole nanoseconds (for timers).
    package var nanoseconds: Int64 {
        let (seconds, attoseconds) = self.components
        return seconds * 1_000_000_000 + attoseconds / 1_000_000_000
    }
}
