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
        /// The browser kind: the browser's process group (chromedriver's pid) and the memory its
        /// processes hold (proportional set size, bytes).
        public var browserPID: Int32?
        public var browserMemoryBytes: Int?
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
        /// Browser actions: lists of steps completed, replayed after meeting an ended session,
        /// answered `UPSTREAM_SESSION_LOST`, and failed at a step.
        public var actions: Int
        public var actionsReplayed: Int
        public var actionsLost: Int
        public var actionsFailed: Int
    }

    /// How long successful logins took, in seconds of real time.
    public struct LoginTime: Sendable, Codable, Equatable {
        public var count: Int
        public var lastSeconds: Double
        public var meanSeconds: Double
        public var maxSeconds: Double
    }

    public var name: String
    /// `http` or `browser`.
    public var kind: String
    public var baseURL: String
    public var minSessions: Int
    public var maxSessions: Int
    public var sessions: [Session]
    public var accounts: [Account]
    public var counters: Counters
    /// `nil` before the first login.
    public var loginTime: LoginTime?
    /// The browser kind: browsers started, crashed, over memory, running.
    public var browsers: BrowserStatistics?
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
                beingReplaced: slot.replacedBy != nil,
                browserPID: (slot.connection as? BrowserUpstreamSession)?.pid,
                browserMemoryBytes: (slot.connection as? BrowserUpstreamSession)?.memoryBytes
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
            retirements: self.counters.retirements,
            actions: self.counters.actions,
            actionsReplayed: self.counters.actionsReplayed,
            actionsLost: self.counters.actionsLost,
            actionsFailed: self.counters.actionsFailed
        )
        let time = self.counters.loginTime
        let loginTime =
            time.count == 0
            ? nil
            : UpstreamPoolSnapshot.LoginTime(
                count: time.count,
                lastSeconds: Self.seconds(of: time.last),
                meanSeconds: Self.seconds(of: time.total) / Double(time.count),
                maxSeconds: Self.seconds(of: time.longest)
            )
        return UpstreamPoolSnapshot(
            name: self.configuration.name,
            kind: self.configuration.kind.rawValue,
            baseURL: self.configuration.baseURL,
            minSessions: self.configuration.pool.min,
            maxSessions: self.configuration.pool.max,
            sessions: sessions,
            accounts: accounts,
            counters: counters,
            loginTime: loginTime,
            browsers: (self.factory as? BrowserUpstreamSessionFactory)?.statistics,
            recentErrors: self.recentErrors.map { .init(at: $0.at, message: $0.message) },
            rateLimitedForSeconds: self.rateLimitedUntil.flatMap { $0 > now ? $0.timeIntervalSince(now) : nil }
        )
    }

    static func seconds(of duration: Duration) -> Double {
        Double(duration.components.seconds) + Double(duration.components.attoseconds) / 1e18
    }
}
