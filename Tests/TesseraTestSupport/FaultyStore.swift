public import Foundation
import Synchronization
public import Tessera

/// Wraps a real store and injects the failures a store shows in the field: a number of
/// transient failures, an outage (every call fails), or a hang (calls never answer). Calls that
/// are let through reach the wrapped store unchanged.
public final class FaultyStore: SessionStore {
    public enum Mode: Sendable {
        case healthy
        /// Every call fails with ``StoreUnavailableError``.
        case down
        /// Every call waits until cancelled: a store that stopped answering.
        case hanging
        /// Calls wait until the mode changes, then behave as the new mode says.
        case paused
    }

    private struct State {
        var mode = Mode.healthy
        var transientFailures = 0
        var calls = 0
    }

    public let base: any SessionStore
    private let state = Mutex(State())

    public init(_ base: any SessionStore) {
        self.base = base
    }

    /// The next `count` calls fail with ``StoreUnavailableError``.
    public func failNext(_ count: Int) { self.state.withLock { $0.transientFailures = count } }
    public func set(_ mode: Mode) { self.state.withLock { $0.mode = mode } }
    /// Calls that reached this store (failed or not).
    public var calls: Int { self.state.withLock { $0.calls } }

    func gate() async throws {
        var mode = self.state.withLock { state -> Mode in
            state.calls += 1
            if state.transientFailures > 0 {
                state.transientFailures -= 1
                return .down
            }
            return state.mode
        }
        while mode == .paused {
            try await Task.sleep(for: .milliseconds(1))
            mode = self.state.withLock { $0.mode }
        }
        switch mode {
        case .healthy, .paused: return
        case .down: throw StoreUnavailableError(underlying: "injected failure")
        case .hanging:
            while true { try await Task.sleep(for: .seconds(3600)) }
        }
    }

    public func ping() async throws {
        try await self.gate()
        try await self.base.ping()
    }

    public func insertSessions(_ sessions: [Session]) async throws {
        try await self.gate()
        try await self.base.insertSessions(sessions)
    }

    public func session(tokenHash: TokenHash) async throws -> Session? {
        try await self.gate()
        return try await self.base.session(tokenHash: tokenHash)
    }

    public func sessions(tokenHashes: [TokenHash]) async throws -> [Session] {
        try await self.gate()
        return try await self.base.sessions(tokenHashes: tokenHashes)
    }

    public func session(id: String) async throws -> Session? {
        try await self.gate()
        return try await self.base.session(id: id)
    }

    public func touchSession(id: String, lastSeenAt: Date, idleExpiresAt: Date) async throws -> Bool {
        try await self.gate()
        return try await self.base.touchSession(id: id, lastSeenAt: lastSeenAt, idleExpiresAt: idleExpiresAt)
    }

    public func touchSessions(_ updates: [ActivityUpdate]) async throws -> Int {
        try await self.gate()
        return try await self.base.touchSessions(updates)
    }

    public func updateSessionData(id: String, expectedVersion: Int, data: [String: JSONValue], at: Date) async throws -> Int? {
        try await self.gate()
        return try await self.base.updateSessionData(id: id, expectedVersion: expectedVersion, data: data, at: at)
    }

    public func revokeSession(id: String, at: Date, reason: String) async throws -> Bool {
        try await self.gate()
        return try await self.base.revokeSession(id: id, at: at, reason: reason)
    }

    public func revokeSessions(userID: String, except exceptID: String?, at: Date, reason: String) async throws -> Int {
        try await self.gate()
        return try await self.base.revokeSessions(userID: userID, except: exceptID, at: at, reason: reason)
    }

    public func activeSessions(userID: String?, at now: Date, limit: Int) async throws -> [Session] {
        try await self.gate()
        return try await self.base.activeSessions(userID: userID, at: now, limit: limit)
    }

    public func sessionChanges(after cursor: Int64, limit: Int) async throws -> [SessionChange] {
        try await self.gate()
        return try await self.base.sessionChanges(after: cursor, limit: limit)
    }

    public func latestSessionChange() async throws -> Int64 {
        try await self.gate()
        return try await self.base.latestSessionChange()
    }

    public func deleteSessionChanges(before cutoff: Date) async throws -> Int {
        try await self.gate()
        return try await self.base.deleteSessionChanges(before: cutoff)
    }

    public func sessionEvents(after cursor: Int64, filter: SessionEventFilter, limit: Int) async throws -> [SessionEvent] {
        try await self.gate()
        return try await self.base.sessionEvents(after: cursor, filter: filter, limit: limit)
    }

    public func latestSessionEvent() async throws -> Int64 {
        try await self.gate()
        return try await self.base.latestSessionEvent()
    }

    public func recordExpiries(at now: Date, idleGrace: Duration, limit: Int) async throws -> RecordedExpiries {
        try await self.gate()
        return try await self.base.recordExpiries(at: now, idleGrace: idleGrace, limit: limit)
    }

    public func deleteSessionEvents(before cutoff: Date, limit: Int) async throws -> Int {
        try await self.gate()
        return try await self.base.deleteSessionEvents(before: cutoff, limit: limit)
    }

    public func insertRefreshToken(_ token: RefreshTokenRecord) async throws {
        try await self.gate()
        try await self.base.insertRefreshToken(token)
    }

    public func refreshToken(hash: TokenHash) async throws -> RefreshTokenRecord? {
        try await self.gate()
        return try await self.base.refreshToken(hash: hash)
    }

    public func rotateRefreshToken(hash: TokenHash, at: Date, sealedSuccessor: [UInt8], successor: RefreshTokenRecord) async throws -> Bool {
        try await self.gate()
        return try await self.base.rotateRefreshToken(hash: hash, at: at, sealedSuccessor: sealedSuccessor, successor: successor)
    }

    public func deleteSessions(endedBefore cutoff: Date, limit: Int) async throws -> Int {
        try await self.gate()
        return try await self.base.deleteSessions(endedBefore: cutoff, limit: limit)
    }

    public func insertUser(_ user: User) async throws {
        try await self.gate()
        try await self.base.insertUser(user)
    }

    public func user(username: String) async throws -> User? {
        try await self.gate()
        return try await self.base.user(username: username)
    }

    public func user(id: String) async throws -> User? {
        try await self.gate()
        return try await self.base.user(id: id)
    }

    public func users() async throws -> [User] {
        try await self.gate()
        return try await self.base.users()
    }

    public func users(prefix: String?, after cursor: String?, limit: Int) async throws -> [User] {
        try await self.gate()
        return try await self.base.users(prefix: prefix, after: cursor, limit: limit)
    }

    public func updateUser(_ user: User) async throws -> Bool {
        try await self.gate()
        return try await self.base.updateUser(user)
    }

    public func countActiveSessions(at now: Date) async throws -> Int {
        try await self.gate()
        return try await self.base.countActiveSessions(at: now)
    }

    public func sessions(matching query: SessionQuery, at now: Date, after cursor: SessionCursor?, limit: Int) async throws -> [Session] {
        try await self.gate()
        return try await self.base.sessions(matching: query, at: now, after: cursor, limit: limit)
    }

    public func throttleCounter(key: String) async throws -> ThrottleCounter? {
        try await self.gate()
        return try await self.base.throttleCounter(key: key)
    }

    public func beginAttempt(key: String, at now: Date, window: Duration, staleAfter: Duration) async throws -> ThrottleCounter {
        try await self.gate()
        return try await self.base.beginAttempt(key: key, at: now, window: window, staleAfter: staleAfter)
    }

    public func endAttempt(key: String, at now: Date, window: Duration, outcome: LoginAttemptOutcome) async throws {
        try await self.gate()
        try await self.base.endAttempt(key: key, at: now, window: window, outcome: outcome)
    }

    public func deleteThrottleCounters(startedBefore cutoff: Date) async throws -> Int {
        try await self.gate()
        return try await self.base.deleteThrottleCounters(startedBefore: cutoff)
    }
}
