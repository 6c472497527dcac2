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
        // While a window is full, attempts are refused at once: no password check, not counted.
        for (key, limit) in zip(keys, limits) {
            if let counter = try await store.throttleCounter(key: key), counter.failures >= limit, self.windowEnd(of: counter) > now {
                throw TesseraError.throttled(retryAfter: self.secondsLeft(in: counter, now: now))
            }
        }
        // Every attempt is counted before its password is checked: of many concurrent attempts,
        // all of which passed the check above, only those within the limit reach the password.
        for (key, limit) in zip(keys, limits) {
            let counter = try await store.recordFailure(key: key, at: now, window: self.throttle.window)
            if counter.failures > limit {
                throw TesseraError.throttled(retryAfter: self.secondsLeft(in: counter, now: now))
            }
        }

        let user = try await store.user(username: username)
        let matches = try await self.hasher.verify(password, hash: user?.passwordHash ?? self.decoyHash)
        guard let user, matches else { throw TesseraError.invalidCredentials }
        // A right password: the account starts over, and the client's attempt is taken back.
        try await store.clearThrottle(key: keys[0])
        for key in keys.dropFirst() {
            try await store.withdrawFailure(key: key)
        }
        let created = try await self.sessions.createSession(userID: user.id, metadata: metadata, credential: credential)
        return Result(user: user, session: created.session, token: created.token)
    }

    private func secondsLeft(in counter: ThrottleCounter, now: Date) -> Int {
        Int(self.windowEnd(of: counter).timeIntervalSince(now).rounded(.up))
    }

    private func windowEnd(of counter: ThrottleCounter) -> Date {
        counter.windowStartedAt.addingTimeInterval(self.throttle.window.timeInterval)
    }

    static func accountKey(_ username: String) -> String { "account:" + username.lowercased() }
    static func clientKey(_ address: String) -> String { "client:" + address }
}
