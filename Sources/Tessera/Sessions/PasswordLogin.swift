import Foundation
import Synchronization

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
    /// Attempts of this process waiting for a place, per key: bounded, so that a flood of
    /// concurrent attempts on one account cannot turn into a flood of store reads.
    private let waiting = WaitingAttempts()

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
    /// Each attempt takes a place on the account's counter and on the client address's before
    /// its password is checked, and gives it back after. An attempt is checked only when the
    /// failures so far and the attempts in flight (each of which may still fail) stay within
    /// the limit; otherwise it waits for those in flight, up to
    /// ``LoginThrottlePolicy/admissionWait``. So concurrent wrong passwords are held to the
    /// limit exactly, and a right password is never refused because others were checked at
    /// the same moment: it is refused only once the failures themselves reach the limit.
    ///
    /// - Throws: `AUTH_1006` when the account or the client address is throttled (or its
    ///   attempts in flight did not end within the admission wait), `AUTH_1001` when the
    ///   credentials are wrong.
    public func login(
        username: String,
        password: String,
        clientAddress: String?,
        metadata: SessionMetadata = .init(),
        credential: SessionManager.Credential = .sessionToken
    ) async throws -> Result {
        let metrics = self.sessions.metrics
        do {
            let result = try await self.attempt(
                username: username,
                password: password,
                clientAddress: clientAddress,
                metadata: metadata,
                credential: credential
            )
            metrics.loggedIn(.ok)
            return result
        } catch is DisabledAccount {
            metrics.loggedIn(.disabled)
            throw TesseraError.invalidCredentials
        } catch let error as TesseraError where error.code == TesseraError.invalidCredentials.code {
            metrics.loggedIn(.badCredentials)
            throw error
        } catch let error as TesseraError where error.statusCode == 429 {
            metrics.loggedIn(.throttled)
            throw error
        } catch {
            metrics.loggedIn(.error)
            throw error
        }
    }

    private func attempt(
        username: String,
        password: String,
        clientAddress: String?,
        metadata: SessionMetadata,
        credential: SessionManager.Credential
    ) async throws -> Result {
        let store = self.sessions.store
        let account = (key: Self.accountKey(username), limit: self.throttle.maxFailuresPerAccount)
        let client = clientAddress.map { (key: Self.clientKey($0), limit: self.throttle.maxFailuresPerClient) }
        try await self.admit(key: account.key, limit: account.limit)
        if let client {
            do {
                try await self.admit(key: client.key, limit: client.limit)
            } catch {
                try await self.end(account.key, .withdrawn)
                throw error
            }
        }
        let user: User?
        let matches: Bool
        do {
            user = try await store.user(username: username)
            matches = try await self.hasher.verify(password, hash: user?.passwordHash ?? self.decoyHash)
        } catch {
            try await self.end(account.key, .withdrawn)
            if let client { try await self.end(client.key, .withdrawn) }
            throw error
        }
        guard let user, matches else {
            try await self.end(account.key, .failed)
            if let client { try await self.end(client.key, .failed) }
            throw TesseraError.invalidCredentials
        }
        guard user.isEnabled else {
            // Answered as wrong credentials: whether an account exists and is disabled is
            // nobody's business but the operator's. The attempt counts as no failure.
            try await self.end(account.key, .withdrawn)
            if let client { try await self.end(client.key, .withdrawn) }
            throw DisabledAccount()
        }
        // A right password: the account starts over; the client address keeps its failures.
        try await self.end(account.key, .succeeded)
        if let client { try await self.end(client.key, .withdrawn) }
        let created = try await self.sessions.createSession(userID: user.id, metadata: metadata, credential: credential)
        return Result(user: user, session: created.session, token: created.token)
    }

    /// A right password for a disabled account.
    private struct DisabledAccount: Error {}

    /// Takes an attempt's place on `key`'s counter: at once while the failures and the attempts
    /// in flight leave room under `limit`, after the attempts in flight end otherwise.
    /// - Throws: `AUTH_1006` once the failures alone reach `limit`, or when no place came free
    ///   within the admission wait.
    private func admit(key: String, limit: Int) async throws {
        let store = self.sessions.store
        let window = self.throttle.window
        let giveUp = ContinuousClock.now + self.throttle.admissionWait
        var pause = Duration.milliseconds(10)
        var isWaiting = false
        defer { if isWaiting { self.waiting.leave(key) } }
        while true {
            let now = self.sessions.now
            // A read first, so that waiting attempts do not write while they wait.
            let seen = try await store.throttleCounter(key: key).map { self.current($0, now: now) }
            if let seen, seen.failures >= limit {
                throw TesseraError.throttled(retryAfter: self.secondsLeft(in: seen, now: now))
            }
            if (seen?.failures ?? 0) + (seen?.inFlight ?? 0) < limit {
                let counter = try await store.beginAttempt(key: key, at: now, window: window, staleAfter: self.throttle.attemptTimeout)
                if counter.failures + counter.inFlight <= limit { return }
                // Others took the room between the read and the write.
                try await store.endAttempt(key: key, at: now, window: window, outcome: .withdrawn)
                if counter.failures >= limit {
                    throw TesseraError.throttled(retryAfter: self.secondsLeft(in: counter, now: now))
                }
            }
            if !isWaiting {
                // Past the bound of waiting attempts, or once the wait is over: try again shortly.
                guard self.waiting.enter(key, limit: self.throttle.maxWaitingPerKey) else { throw TesseraError.throttled(retryAfter: 1) }
                isWaiting = true
            }
            guard ContinuousClock.now < giveUp else { throw TesseraError.throttled(retryAfter: 1) }
            // Jittered, growing pauses: a password check takes tens to hundreds of milliseconds.
            try await Task.sleep(for: pause * Double.random(in: 0.5...1.5))
            pause = min(pause * 2, .milliseconds(200))
        }
    }

    private func end(_ key: String, _ outcome: LoginAttemptOutcome) async throws {
        try await self.sessions.store.endAttempt(key: key, at: self.sessions.now, window: self.throttle.window, outcome: outcome)
    }

    /// `counter` as ``SessionStore/beginAttempt(key:at:window:staleAfter:)`` would see it at
    /// `now`: no failures once its window has passed, no attempts in flight once they are stale.
    private func current(_ counter: ThrottleCounter, now: Date) -> ThrottleCounter {
        var counter = counter
        if self.windowEnd(of: counter) <= now { counter.failures = 0 }
        if counter.inFlightSince.addingTimeInterval(self.throttle.attemptTimeout.timeInterval) <= now { counter.inFlight = 0 }
        return counter
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

/// How many attempts of this process wait for a place, per throttling key.
final class WaitingAttempts: Sendable {
    private let counts = Mutex<[String: Int]>([:])

    /// Counts one more waiting attempt on `key`, unless `limit` already wait.
    func enter(_ key: String, limit: Int) -> Bool {
        self.counts.withLock { counts in
            let count = counts[key, default: 0]
            guard count < limit else { return false }
            counts[key] = count + 1
            return true
        }
    }

    func leave(_ key: String) {
        self.counts.withLock { counts in
            let count = counts[key, default: 0] - 1
            counts[key] = count > 0 ? count : nil
        }
    }
}
