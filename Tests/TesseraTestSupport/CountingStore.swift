public import Foundation
import Synchronization
public import Tessera

/// Wraps a real store and counts the writes that reach it, to show how many a behaviour
/// causes. Every call goes through to the wrapped store unchanged.
public final class CountingStore: SessionStore {
    public let base: any SessionStore
    private let counts = Mutex<[String: Int]>([:])

    public init(_ base: any SessionStore) {
        self.base = base
    }

    /// How many times `operation` (a method name such as `touchSession`) was called.
    public func count(_ operation: String) -> Int {
        self.counts.withLock { $0[operation, default: 0] }
    }

    private func record(_ operation: String) {
        self.counts.withLock { $0[operation, default: 0] += 1 }
    }

    public func ping() async throws { try await self.base.ping() }

    public func insertSessions(_ sessions: [Session]) async throws {
        self.record("insertSessions")
        try await self.base.insertSessions(sessions)
    }

    public func session(tokenHash: TokenHash) async throws -> Session? {
        self.record("sessionByTokenHash")
        return try await self.base.session(tokenHash: tokenHash)
    }

    /// Counted as `sessionsByTokenHashes`, and the hashes asked for as `tokenHashesInBatches`.
    public func sessions(tokenHashes: [TokenHash]) async throws -> [Session] {
        self.record("sessionsByTokenHashes")
        self.counts.withLock { $0["tokenHashesInBatches", default: 0] += tokenHashes.count }
        return try await self.base.sessions(tokenHashes: tokenHashes)
    }

    public func session(id: String) async throws -> Session? { try await self.base.session(id: id) }

    public func touchSession(id: String, lastSeenAt: Date, idleExpiresAt: Date) async throws -> Bool {
        self.record("touchSession")
        return try await self.base.touchSession(id: id, lastSeenAt: lastSeenAt, idleExpiresAt: idleExpiresAt)
    }

    public func touchSessions(_ updates: [ActivityUpdate]) async throws -> Int {
        self.record("touchSessions")
        return try await self.base.touchSessions(updates)
    }

    public func updateSessionData(id: String, expectedVersion: Int, data: [String: JSONValue], at: Date) async throws -> Int? {
        self.record("updateSessionData")
        return try await self.base.updateSessionData(id: id, expectedVersion: expectedVersion, data: data, at: at)
    }

    public func revokeSession(id: String, at: Date, reason: String) async throws -> Bool {
        self.record("revokeSession")
        return try await self.base.revokeSession(id: id, at: at, reason: reason)
    }

    public func revokeSessions(userID: String, except exceptID: String?, at: Date, reason: String) async throws -> Int {
        self.record("revokeSessions")
        return try await self.base.revokeSessions(userID: userID, except: exceptID, at: at, reason: reason)
    }

    public func activeSessions(userID: String?, at now: Date, limit: Int) async throws -> [Session] {
        try await self.base.activeSessions(userID: userID, at: now, limit: limit)
    }

    public func sessionChanges(after cursor: Int64, limit: Int) async throws -> [SessionChange] {
        self.record("sessionChanges")
        return try await self.base.sessionChanges(after: cursor, limit: limit)
    }

    public func latestSessionChange() async throws -> Int64 {
        self.record("latestSessionChange")
        return try await self.base.latestSessionChange()
    }

    public func deleteSessionChanges(before cutoff: Date) async throws -> Int {
        try await self.base.deleteSessionChanges(before: cutoff)
    }

    public func sessionEvents(after cursor: Int64, filter: SessionEventFilter, limit: Int) async throws -> [SessionEvent] {
        try await self.base.sessionEvents(after: cursor, filter: filter, limit: limit)
    }

    public func latestSessionEvent() async throws -> Int64 { try await self.base.latestSessionEvent() }

    public func recordExpiries(at now: Date, idleGrace: Duration, limit: Int) async throws -> RecordedExpiries {
        self.record("recordExpiries")
        return try await self.base.recordExpiries(at: now, idleGrace: idleGrace, limit: limit)
    }

    public func deleteSessionEvents(before cutoff: Date, limit: Int) async throws -> Int {
        try await self.base.deleteSessionEvents(before: cutoff, limit: limit)
    }

    public func insertRefreshToken(_ token: RefreshTokenRecord) async throws {
        self.record("insertRefreshToken")
        try await self.base.insertRefreshToken(token)
    }

    public func refreshToken(hash: TokenHash) async throws -> RefreshTokenRecord? {
        self.record("refreshToken")
        return try await self.base.refreshToken(hash: hash)
    }

    public func rotateRefreshToken(hash: TokenHash, at: Date, sealedSuccessor: [UInt8], successor: RefreshTokenRecord) async throws -> Bool {
        self.record("rotateRefreshToken")
        return try await self.base.rotateRefreshToken(hash: hash, at: at, sealedSuccessor: sealedSuccessor, successor: successor)
    }

    public func deleteSessions(endedBefore cutoff: Date, limit: Int) async throws -> Int {
        self.record("deleteSessions")
        return try await self.base.deleteSessions(endedBefore: cutoff, limit: limit)
    }

    public func insertUser(_ user: User) async throws { try await self.base.insertUser(user) }
    public func user(username: String) async throws -> User? { try await self.base.user(username: username) }
    public func user(id: String) async throws -> User? {
        self.record("userByID")
        return try await self.base.user(id: id)
    }
    public func users() async throws -> [User] { try await self.base.users() }
    public func users(prefix: String?, after cursor: String?, limit: Int) async throws -> [User] {
        try await self.base.users(prefix: prefix, after: cursor, limit: limit)
    }
    public func updateUser(_ user: User) async throws -> Bool { try await self.base.updateUser(user) }
    public func countActiveSessions(at now: Date) async throws -> Int { try await self.base.countActiveSessions(at: now) }
    public func sessions(matching query: SessionQuery, at now: Date, after cursor: SessionCursor?, limit: Int) async throws -> [Session] {
        self.record("sessionsPage")
        return try await self.base.sessions(matching: query, at: now, after: cursor, limit: limit)
    }
    public func throttleCounter(key: String) async throws -> ThrottleCounter? { try await self.base.throttleCounter(key: key) }

    public func beginAttempt(key: String, at now: Date, window: Duration, staleAfter: Duration) async throws -> ThrottleCounter {
        self.record("beginAttempt")
        return try await self.base.beginAttempt(key: key, at: now, window: window, staleAfter: staleAfter)
    }

    public func endAttempt(key: String, at now: Date, window: Duration, outcome: LoginAttemptOutcome) async throws {
        self.record("endAttempt")
        try await self.base.endAttempt(key: key, at: now, window: window, outcome: outcome)
    }

    public func deleteThrottleCounters(startedBefore cutoff: Date) async throws -> Int {
        try await self.base.deleteThrottleCounters(startedBefore: cutoff)
    }
}
