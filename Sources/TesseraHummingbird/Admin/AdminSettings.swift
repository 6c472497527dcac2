public import CoreMetrics
public import Tessera

/// Who may use the admin API and console, and the figures they show.
public struct AdminSettings: Sendable {
    /// The admin API key (`tak_…`); without one, only operators' sessions (users whose role is
    /// `admin`) reach the admin API.
    public var key: ServiceAPIKey?
    /// The active-session counts of the overview's chart.
    public var activeSessions: ActiveSessionsSampler?
    /// The metrics `GET /v1/admin/metrics` serves (the text `/metrics` serves).
    public var metrics: MetricsEndpoint?
    /// Where requests are counted by route (``HTTPMetricsMiddleware``); `nil` counts none.
    public var requestMetrics: (any MetricsFactory)?
    /// The node's name, shown by the console.
    public var node: String?

    public init(
        key: ServiceAPIKey? = nil,
        activeSessions: ActiveSessionsSampler? = nil,
        metrics: MetricsEndpoint? = nil,
        requestMetrics: (any MetricsFactory)? = nil,
        node: String? = nil
    ) {
        self.key = key
        self.activeSessions = activeSessions
        self.metrics = metrics
        self.requestMetrics = requestMetrics
        self.node = node
    }
}
