public import Foundation

/// The durable state of webhook delivery, kept in the store beside the outbox so that every
/// node sees the same: each endpoint's place in the outbox, and one delivery per event and
/// endpoint until it succeeds or goes dead.
///
/// Several nodes may deliver for one endpoint at once: ``claimWebhookDeliveries(endpoint:at:leaseUntil:limit:)``
/// gives each due delivery to one of them (PostgreSQL: `FOR UPDATE SKIP LOCKED` and a lease).
public protocol WebhookDeliveryStore: Sendable {
    /// Creates the endpoint's state if it has none (starting after the newest event: an endpoint
    /// receives the events recorded after it was first configured), and returns it.
    func registerWebhookEndpoint(_ name: String, at now: Date) async throws -> WebhookEndpointState

    /// Moves the endpoint's cursor over up to `limit` new events, creating a pending delivery of
    /// each whose kind is in `kinds` (all with `nil`).
    /// - Returns: how many events the cursor moved over.
    func fanOutWebhookDeliveries(endpoint: String, kinds: Set<SessionEvent.Kind>?, at now: Date, limit: Int) async throws -> Int

    /// Leases up to `limit` pending deliveries that are due at `now` and not leased, oldest first,
    /// until `leaseUntil`; a delivery waits while an earlier one of its session (or user) is
    /// pending, so that each session's events arrive in order.
    func claimWebhookDeliveries(endpoint: String, at now: Date, leaseUntil: Date, limit: Int) async throws -> [WebhookDelivery]

    /// The receiver took these events: their deliveries are done and forgotten (one write for
    /// a pass's worth).
    func recordWebhookDelivered(endpoint: String, sequences: [Int64], at now: Date) async throws

    /// An attempt failed: another is due at `nextAttemptAt`, or, with `nil`, the delivery is dead.
    func recordWebhookAttemptFailed(
        endpoint: String,
        sequence: Int64,
        at now: Date,
        nextAttemptAt: Date?,
        status: Int?,
        error: String
    ) async throws

    /// Stops deliveries to the endpoint (a receiver answered `410 Gone`), saying why.
    func disableWebhookEndpoint(_ name: String, at now: Date, reason: String) async throws

    /// Resumes deliveries to a disabled endpoint.
    /// - Returns: whether it was disabled.
    func enableWebhookEndpoint(_ name: String) async throws -> Bool

    /// Every endpoint's state, by name.
    func webhookEndpoints(at now: Date) async throws -> [WebhookEndpointState]

    /// Deliveries in `state` (of one endpoint, or all), oldest first, at most `limit`.
    func webhookDeliveries(endpoint: String?, state: WebhookDelivery.State, limit: Int) async throws -> [WebhookDelivery]

    /// Makes dead deliveries pending again, due at `now`, with their attempts counted anew: all
    /// of an endpoint's (or every endpoint's), or the one of event `sequence`.
    /// - Returns: how many.
    func retryWebhookDeliveries(endpoint: String?, sequence: Int64?, at now: Date) async throws -> Int
}

/// One event to deliver to one endpoint.
public struct WebhookDelivery: Sendable, Hashable {
    public enum State: String, Sendable, Hashable {
        /// Due now or at ``WebhookDelivery/nextAttemptAt``.
        case pending
        /// Retried for as long as allowed and given up; `tessera events retry` revives it.
        case dead
    }

    public var endpoint: String
    public var event: SessionEvent
    public var state: State
    /// Attempts made so far.
    public var attempts: Int
    public var nextAttemptAt: Date
    /// The last failed attempt's HTTP status, if it got one.
    public var lastStatus: Int?
    /// The last failed attempt's error, in words of the program's own.
    public var lastError: String?

    public init(
        endpoint: String,
        event: SessionEvent,
        state: State,
        attempts: Int,
        nextAttemptAt: Date,
        lastStatus: Int? = nil,
        lastError: String? = nil
    ) {
        self.endpoint = endpoint
        self.event = event
        self.state = state
        self.attempts = attempts
        self.nextAttemptAt = nextAttemptAt
        self.lastStatus = lastStatus
        self.lastError = lastError
    }
}

/// An endpoint's delivery state, as `doctor` and `tessera events list` show it.
public struct WebhookEndpointState: Sendable, Hashable {
    public var name: String
    /// The sequence number of the newest event handed to the endpoint's deliveries.
    public var cursor: Int64
    public var disabledAt: Date?
    public var disabledReason: String?
    public var pending: Int
    public var dead: Int
    /// When the oldest pending delivery's event happened.
    public var oldestPendingAt: Date?

    public init(
        name: String,
        cursor: Int64,
        disabledAt: Date? = nil,
        disabledReason: String? = nil,
        pending: Int = 0,
        dead: Int = 0,
        oldestPendingAt: Date? = nil
    ) {
        self.name = name
        self.cursor = cursor
        self.disabledAt = disabledAt
        self.disabledReason = disabledReason
        self.pending = pending
        self.dead = dead
        self.oldestPendingAt = oldestPendingAt
    }
}
