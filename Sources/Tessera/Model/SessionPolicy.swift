/// How long sessions live and how often their activity is written.
///
/// The defaults are the ones most teams converge on in the field.
public struct SessionPolicy: Sendable, Hashable {
    /// A session ends this long after its last recorded activity.
    public var idleTimeout: Duration
    /// A session ends this long after it was created, however active it is.
    public var absoluteTimeout: Duration
    /// Activity is written at most once per session per this window; the idle deadline that
    /// clients are told is the one the store holds, so it is always the one enforced.
    public var activityGranularity: Duration
    /// How long before expiry clients should refresh.
    public var clientRefreshMargin: Duration
    /// How long a revoked or expired session is kept (so a late client learns *why* it was
    /// signed out) before the sweeper deletes it. A deleted token is simply unknown: it still
    /// never validates.
    public var retention: Duration

    /// - Parameters:
    ///   - idleTimeout: inactivity that ends a session (default 15 minutes)
    ///   - absoluteTimeout: the longest a session lives (default 160 minutes)
    ///   - activityGranularity: at most one activity write per session per window (default 60 s)
    ///   - clientRefreshMargin: how early clients refresh (default 2 minutes)
    ///   - retention: how long ended sessions are kept before they are swept (default 24 hours)
    public init(
        idleTimeout: Duration = .seconds(15 * 60),
        absoluteTimeout: Duration = .seconds(160 * 60),
        activityGranularity: Duration = .seconds(60),
        clientRefreshMargin: Duration = .seconds(120),
        retention: Duration = .seconds(24 * 3600)
    ) {
        self.idleTimeout = idleTimeout
        self.absoluteTimeout = absoluteTimeout
        self.activityGranularity = activityGranularity
        self.clientRefreshMargin = clientRefreshMargin
        self.retention = retention
    }

    /// The activity granularity for an idle timeout when none is chosen: the smaller of 60 s
    /// and a quarter of the idle timeout, so that a session's recorded activity is never more
    /// than a quarter of its idle timeout behind.
    public static func defaultActivityGranularity(idleTimeout: Duration) -> Duration {
        min(.seconds(60), idleTimeout / 4)
    }

    /// Problems that make the policy unusable, as sentences; empty when it is sound.
    public var problems: [String] {
        var problems: [String] = []
        if self.idleTimeout <= .zero { problems.append("The idle timeout must be longer than zero.") }
        if self.absoluteTimeout <= .zero { problems.append("The absolute timeout must be longer than zero.") }
        if self.activityGranularity < .zero { problems.append("The activity granularity cannot be negative.") }
        if self.activityGranularity >= self.idleTimeout {
            problems.append("The activity granularity must be shorter than the idle timeout.")
        }
        if self.retention < .zero { problems.append("The retention cannot be negative.") }
        return problems
    }
}

/// Limits on failed logins, counted in the store so that every node sees the same counts.
public struct LoginThrottlePolicy: Sendable, Hashable {
    /// Failed attempts for one account within ``window`` before further attempts are refused.
    public var maxFailuresPerAccount: Int
    /// Failed attempts from one client address within ``window`` before it is refused.
    public var maxFailuresPerClient: Int
    /// The counting window; a throttled caller may try again when its window ends.
    public var window: Duration
    /// How long an attempt may wait for attempts in flight before it is refused with
    /// `Retry-After: 1` (see ``PasswordLogin/login(username:password:clientAddress:metadata:credential:)``).
    public var admissionWait: Duration
    /// How long an attempt may stay in flight before it is taken for abandoned (its node died
    /// while checking it) and no longer counted.
    public var attemptTimeout: Duration
    /// How many attempts of one process may wait for a place on one key at once; more are
    /// refused with `Retry-After: 1` at once (they would only wait in line).
    public var maxWaitingPerKey: Int

    public init(
        maxFailuresPerAccount: Int = 5,
        maxFailuresPerClient: Int = 50,
        window: Duration = .seconds(15 * 60),
        admissionWait: Duration = .seconds(10),
        attemptTimeout: Duration = .seconds(30),
        maxWaitingPerKey: Int = 64
    ) {
        self.maxFailuresPerAccount = maxFailuresPerAccount
        self.maxFailuresPerClient = maxFailuresPerClient
        self.window = window
        self.admissionWait = admissionWait
        self.attemptTimeout = attemptTimeout
        self.maxWaitingPerKey = max(0, maxWaitingPerKey)
    }
}
