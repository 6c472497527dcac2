public import Foundation
import Tessera

/// What `GET /v1/upstreams` reports of one pool. Never a cookie or a credential.
public struct UpstreamPoolSnapshot: Sendable, Codable, Equatable {
    public struct Session: Sendable, Codable, Equatable {
        public var id: Int
        public var account: String
        /// `logging_in`, `idle`, `lent` or `probing`.
        public var state: String
        public var ageSeconds: Double
        public var uses: Int
        /// The verdict of the last answer the session got: `ok`, `expired (phrase)`, …
        public var lastVerdict: String
        /// Seconds since the session was last seen logged in; `nil` before its first check.
        public var lastCheckedSecondsAgo: Double?
        /// Seconds until the pool replaces it for age.
        public var retiresInSeconds: Double
        /// Whether a replacement is logging in or ready.
        public var beingReplaced: Bool
    }

    public struct Account: Sendable, Codable, Equatable {
        public var name: String
        public var loggingIn: Bool
        public var consecutiveFailures: Int
        /// `closed`, or `open` while the breaker refuses logins.
        public var circuit: String
        /// Seconds until the next login may start; 0 when it may now.
        public var nextLoginInSeconds: Double
        public var lastError: String?
    }

    public struct RecentError: Sendable, Codable, Equatable {
        public var at: Date
        public var message: String
    }

    public struct Counters: Sendable, Codable, Equatable {
        public var logins: Int
        public var loginFailures: Int
        public var borrows: Int
        public var lent: Int
        public var retries: Int
        /// Answers that showed an ended session and were hidden from the client.
        public var expiredHidden: Int
        public var exhausted: Int
        public var reclaimed: Int
        public var healthChecks: Int
        public var keepAliveProbes: Int
        public var rateLimited: Int
        /// Sessions retired, by reason (`expired_on_use`, `expired_on_keepalive`, `max_age`, …).
        public var retirements: [String: Int]
    }

    public var name: String
    public var baseURL: String
    public var minSessions: Int
    public var maxSessions: Int
    public var sessions: [Session]
    public var accounts: [Account]
    public var counters: Counters
    public var recentErrors: [RecentError]
    /// Seconds until the pool sends again after a `429`; `nil` when not paused.
    public var rateLimitedForSeconds: Double?
}

extension UpstreamPool {
    /// The pool's state now.
    public func snapshot() -> UpstreamPoolSnapshot {
        let now = self.clock.now
        let sessions = self.slots.sorted { $0.key < $1.key }.map { id, slot in
            UpstreamPoolSnapshot.Session(
                id: id,
                account: self.accounts[slot.account].account.name,
                state: slot.state.rawValue,
                ageSeconds: slot.state == .loggingIn ? 0 : now.timeIntervalSince(slot.createdAt),
                uses: slot.uses,
                lastVerdict: slot.lastVerdict,
                lastCheckedSecondsAgo: slot.lastCheckedAt == .distantPast ? nil : now.timeIntervalSince(slot.lastCheckedAt),
                retiresInSeconds: slot.state == .loggingIn ? 0 : max(0, slot.retireAt.timeIntervalSince(now)),
                beingReplaced: slot.replacedBy != nil
            )
        }
        let accounts = self.accounts.enumerated().map { index, state in
            UpstreamPoolSnapshot.Account(
                name: state.account.name,
                loggingIn: self.isLoggingIn(account: index),
                consecutiveFailures: state.consecutiveFailures,
                circuit: (state.circuitOpenUntil.map { $0 > now } ?? false) ? "open" : "closed",
                nextLoginInSeconds: max(0, state.nextAttempt(now: now).timeIntervalSince(now)),
                lastError: state.lastError
            )
        }
        let counters = UpstreamPoolSnapshot.Counters(
            logins: self.counters.logins,
            loginFailures: self.counters.loginFailures,
            borrows: self.counters.borrows,
            lent: self.counters.lent,
            retries: self.counters.retries,
            expiredHidden: self.counters.expiredHidden,
            exhausted: self.counters.exhausted,
            reclaimed: self.counters.reclaimed,
            healthChecks: self.counters.healthChecks,
            keepAliveProbes: self.counters.keepAliveProbes,
            rateLimited: self.counters.rateLimited,
            retirements: self.counters.retirements
        )
        return UpstreamPoolSnapshot(
            name: self.configuration.name,
            baseURL: self.configuration.baseURL,
            minSessions: self.configuration.pool.min,
            maxSessions: self.configuration.pool.max,
            sessions: sessions,
            accounts: accounts,
            counters: counters,
            recentErrors: self.recentErrors.map { .init(at: $0.at, message: $0.message) },
            rateLimitedForSeconds: self.rateLimitedUntil.flatMap { $0 > now ? $0.timeIntervalSince(now) : nil }
        )
    }
}
