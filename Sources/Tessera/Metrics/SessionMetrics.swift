public import CoreMetrics

/// What the session core counts, through swift-metrics: the backend the process bootstrapped
/// (`tessera serve` bootstraps Prometheus) receives it; without one, each count is a call that
/// does nothing.
///
/// Every label has a fixed set of values (never a user, a session id or anything a request
/// chose), and every counter of a family exists from the start, so a scrape shows zeros rather
/// than missing series. `docs/operations.md` lists each metric with its meaning.
public final class SessionMetrics: Sendable {
    /// How a presented credential fared.
    public enum ValidationResult: String, Sendable, CaseIterable {
        case ok
        /// The session ended: idle, past its absolute deadline, revoked (`AUTH_1002`).
        case idle, absolute, revoked
        /// Malformed or unknown (`AUTH_1003`).
        case invalid
        /// No credential (`AUTH_1004`).
        case missing
        /// An access token past its expiry (`AUTH_1010`).
        case tokenExpired = "token_expired"
        /// No verdict: the store could not be read.
        case error
    }

    /// How a password login ended.
    public enum LoginResult: String, Sendable, CaseIterable {
        case ok
        case badCredentials = "bad_credentials"
        case throttled
        /// The account is disabled (answered as bad credentials).
        case disabled
        /// No verdict: the store could not be read.
        case error
    }

    /// How a refresh of token mode ended.
    public enum RefreshResult: String, Sendable, CaseIterable {
        case ok
        /// A use of an already-rotated token within the grace window: the same successor.
        case grace
        /// A use after the grace window: the session was revoked (`AUTH_1007`).
        case reuseDetected = "reuse_detected"
        /// Unknown or malformed, or its session has ended.
        case invalid
        /// No verdict: the store could not be read.
        case error
    }

    let created: CounterFamily<SessionManager.Credential>
    let validations: CounterFamily<ValidationResult>
    let revocations: CounterFamily<String>
    let expiries: CounterFamily<SessionEndReason>
    let logins: CounterFamily<LoginResult>
    let refreshes: CounterFamily<RefreshResult>

    /// - Parameter factory: the backend (by default the one bootstrapped for the process)
    public init(factory: any MetricsFactory = MetricsSystem.factory) {
        self.created = CounterFamily(
            "tessera_sessions_created_total",
            label: "credential",
            values: [(.sessionToken, "session_token"), (.tokenMode, "token_mode")],
            factory: factory
        )
        self.validations = CounterFamily("tessera_session_validations_total", label: "result", factory: factory)
        self.revocations = CounterFamily(
            "tessera_session_revocations_total",
            label: "reason",
            values: (RevocationReason.allCases.map(\.rawValue) + ["other"]).map { ($0, $0) },
            factory: factory
        )
        self.expiries = CounterFamily(
            "tessera_session_expiries_total",
            label: "reason",
            values: [(.idle, "idle"), (.absolute, "absolute")],
            factory: factory
        )
        self.logins = CounterFamily("tessera_logins_total", label: "result", factory: factory)
        self.refreshes = CounterFamily("tessera_token_refreshes_total", label: "result", factory: factory)
    }

    /// Counts a session created.
    public func sessionCreated(_ credential: SessionManager.Credential) { self.created.increment(credential) }

    /// Counts the outcome of one presented credential.
    public func validated(_ result: ValidationResult) { self.validations.increment(result) }

    /// Counts `count` sessions revoked for `reason` (a ``RevocationReason`` raw value; any other
    /// is counted as `other`).
    public func revoked(_ count: Int, reason: String) {
        guard count > 0 else { return }
        self.revocations.increment(RevocationReason(rawValue: reason)?.rawValue ?? "other", by: count)
    }

    /// Counts expiries the sweeper recorded.
    public func expired(_ expiries: RecordedExpiries) {
        self.expiries.increment(.idle, by: expiries.idle)
        self.expiries.increment(.absolute, by: expiries.absolute)
    }

    /// Counts the outcome of a password login.
    public func loggedIn(_ result: LoginResult) { self.logins.increment(result) }

    /// Counts the outcome of a refresh.
    public func refreshed(_ result: RefreshResult) { self.refreshes.increment(result) }
}

/// Counters of one metric, one per value of its single label, made once.
package struct CounterFamily<Key: Hashable & Sendable>: Sendable {
    private let counters: [Key: Counter]

    package init(_ name: String, label: String, values: [(Key, String)], factory: any MetricsFactory) {
        var counters: [Key: Counter] = [:]
        for (key, value) in values {
            counters[key] = Counter(label: name, dimensions: [(label, value)], factory: factory)
        }
        self.counters = counters
    }

    package init(_ name: String, label: String, factory: any MetricsFactory)
    where Key: CaseIterable & RawRepresentable<String> {
        self.init(name, label: label, values: Key.allCases.map { ($0, $0.rawValue) }, factory: factory)
    }

    package func increment(_ key: Key, by count: Int = 1) {
        guard count > 0 else { return }
        self.counters[key]?.increment(by: count)
    }
}
