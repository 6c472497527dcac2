public import Foundation

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
