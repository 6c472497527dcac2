public import Foundation
public import Tessera

/// A receiver of webhooks: where to send which events, signed with which secrets, retried how.
public struct WebhookEndpoint: Sendable, Hashable {
    /// A stable name: the endpoint's delivery state in the store is kept under it.
    public var name: String
    /// An `http` or `https` URL.
    public var url: URL
    /// Every request is signed with each (several during a rotation: add the new secret, let
    /// receivers learn it, then remove the old one).
    public var secrets: [WebhookSecret]
    /// The kinds of events to send; `nil` sends all.
    public var kinds: Set<SessionEvent.Kind>?
    /// How long one attempt may take, connection included.
    public var timeout: Duration
    public var retry: WebhookRetryPolicy

    public init(
        name: String,
        url: URL,
        secrets: [WebhookSecret],
        kinds: Set<SessionEvent.Kind>? = nil,
        timeout: Duration = .seconds(10),
        retry: WebhookRetryPolicy = .init()
    ) {
        self.name = name
        self.url = url
        self.secrets = secrets
        self.kinds = kinds
        self.timeout = timeout
        self.retry = retry
    }
}

extension WebhookEndpoint {
    /// The longest and shortest an attempt may be given.
    public static let timeoutRange = Duration.milliseconds(100)...Duration.seconds(60)
    /// The shortest and longest first retry delay.
    public static let retryDelayRange = Duration.milliseconds(100)...Duration.seconds(3600)

    /// `text` as an endpoint's URL: `http` or `https`, with a host and without credentials.
    public static func url(_ text: String) -> URL? {
        guard let url = URL(string: text), let scheme = url.scheme?.lowercased(), ["http", "https"].contains(scheme),
            url.host?.isEmpty == false, url.user == nil, url.password == nil
        else { return nil }
        return url
    }
}

/// When a failed delivery is tried again: exponential backoff with jitter, for a bounded time
/// after the event, after which the delivery is dead.
public struct WebhookRetryPolicy: Sendable, Hashable {
    /// The delay after the first failed attempt (default 5 s); each later one doubles it.
    public var initialDelay: Duration
    /// The longest delay between attempts (default 1 h, and never less than the first).
    public var maximumDelay: Duration
    /// How long after the event attempts go on (default 24 h).
    public var retryFor: Duration

    public init(initialDelay: Duration = .seconds(5), maximumDelay: Duration = .seconds(3600), retryFor: Duration = .seconds(86_400)) {
        self.initialDelay = initialDelay
        self.maximumDelay = max(maximumDelay, initialDelay)
        self.retryFor = retryFor
    }

    /// The delay after the `attempt`-th failed attempt (1 for the first): `initialDelay` doubled
    /// per attempt up to `maximumDelay`, less up to a quarter at random (`random` in 0...1) so
    /// that endpoints that failed together do not retry together. Delays still grow: the next
    /// one's least is 1.5 times this one's most.
    public func delay(afterAttempt attempt: Int, random: Double) -> Duration {
        let doublings = min(max(attempt - 1, 0), 40)
        let base = min(self.initialDelay.timeInterval * pow(2, Double(doublings)), self.maximumDelay.timeInterval)
        let jittered = base * (1 - 0.25 * min(max(random, 0), 1))
        return .milliseconds(Int64((jittered * 1000).rounded()))
    }

    /// When the next attempt is due after the `attempt`-th failed at `now` for an event of
    /// `eventTime`, or `nil` when attempts are over (the delivery is dead).
    public func nextAttempt(after attempt: Int, at now: Date, eventTime: Date, random: Double) -> Date? {
        let next = now.addingTimeInterval(self.delay(afterAttempt: attempt, random: random).timeInterval)
        return next <= eventTime.addingTimeInterval(self.retryFor.timeInterval) ? next : nil
    }
}
