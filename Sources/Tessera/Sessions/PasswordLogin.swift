import Foundation

/// Logs users in with a username and password, throttling failed attempts per account and per
/// client address through the store, so every node sees the same counts.
///
/// An unknown user and a wrong password give the same error and take the same time: an unknown
/// user's attempt is checked against a hash of the same cost.
public struct PasswordLogin: Sendable {
    public let sessions: SessionManager
    public let hasher: any PasswordHasher
    public let throttle: LoginThrottlePolicy
    private let decoyHash: String

    /// - Parameters:
    ///   - sessions: creates the session of a successful login
    ///   - hasher: verifies passwords
    ///   - throttle: limits on failed attempts
    public init(sessions: SessionManager, hasher: any PasswordHasher, throttle: LoginThrottlePolicy = .init()) async throws {
        self.sessions = sessions
        self.hasher = hasher
        self.throttle = throttle
        self.decoyHash = try await hasher.hash(Base64URL.encode(secureRandomBytes(count: 18)))
    }

    /// A successful login.
    public struct Result: Sendable {
        public var user: User
        public var session: Session
        public var token: SessionToken
    }

    /// Checks the credentials and creates a new session (a new id and token on every login).
    ///
    /// - Throws: `AUTH_1006` when the account or the client address is throttled, `AUTH_1001`
    ///   when the credentials are wrong.
    public func login(
        username: String,
        password: String,
        clientAddress: String?,
        metadata: SessionMetadata = .init(),
        credential: SessionManager.Credential = .sessionToken
    ) async throws -> Result {
        let store = self.sessions.store
        let now = self.sessions.now
        let keys = [Self.accountKey(username)] + (clientAddress.map { [Self.clientKey($0)] } ?? [])
        let limits = [self.throttle.maxFailuresPerAccount, self.throttle.maxFailuresPerClient]
        for (key, limit) in zip(keys, limits) {
            if let retryAfter = try await self.retryAfter(key: key, limit: limit, now: now) {
                throw TesseraError.throttled(retryAfter: retryAfter)
            }
        }

        let user = try await store.user(username: username)
        let matches = try await self.hasher.verify(password, hash: user?.passwordHash ?? self.decoyHash)
        guard let user, matches else {
            for key in keys {
                _ = try await store.recordFailure(key: key, at: now, window: self.throttle.window)
            }
            throw TesseraError.invalidCredentials
        }
        try await store.clearThrottle(key: keys[0])
        let created = try await self.sessions.createSession(userID: user.id, metadata: metadata, credential: credential)
        return Result(user: user, session: created.session, token: created.token)
    }

    private func retryAfter(key: String, limit: Int, now: Date) async throws -> Int? {
        guard let counter = try await self.sessions.store.throttleCounter(key: key) else { return nil }
        let windowEnd = counter.windowStartedAt.addingTimeInterval(self.throttle.window.timeInterval)
        guard counter.failures >= limit, windowEnd > now else { return nil }
        return Int(windowEnd.timeIntervalSince(now).rounded(.up))
    }

    static func accountKey(_ username: String) -> String { "account:" + username.lowercased() }
    static func clientKey(_ address: String) -> String { "client:" + address }
}
