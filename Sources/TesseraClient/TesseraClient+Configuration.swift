extension TesseraClient {
    /// How a ``TesseraClient`` refreshes. Every default is the one the documentation describes.
    public struct Configuration: Sendable {
        /// How long before the access token expires the client refreshes it (default 2 minutes).
        ///
        /// Capped at half the token's lifetime, so a service that issues tokens shorter than twice
        /// the margin does not make every request refresh.
        public var refreshMargin: Duration
        /// At most this many refreshes that were not due in ``refreshWindow`` (default 3); past it,
        /// requests that need one fail with ``TesseraClientError/Code/refreshLimitExceeded``.
        ///
        /// A refresh is due when the access token is within its margin or expired; the client
        /// makes those at most twice per token lifetime, and they are not counted, so that no
        /// lifetime the service accepts can exhaust the limit. What counts is a refresh asked
        /// for earlier (a `401` to the current token, ``TesseraClient/refresh()``) and one
        /// answered with a token shorter than ``shortestLifetime``; this many of the latter in a
        /// row sign out with ``SignOutReason/refreshLoop``.
        public var maximumRefreshes: Int
        /// The sliding window of ``maximumRefreshes`` (default 30 seconds).
        public var refreshWindow: Duration
        /// The wait after the first transient refresh failure, doubled after each further one
        /// (default 1 second).
        public var initialBackoff: Duration
        /// The longest wait between refresh attempts after transient failures (default 1 minute).
        public var maximumBackoff: Duration
        /// Whether the client refreshes on its own at `expiry − margin`, even with no request
        /// waiting (default `true`). Requests refresh when needed either way.
        public var automaticRefresh: Bool
        /// The label given to sessions this client creates, such as "Alice's phone".
        public var sessionLabel: String?

        /// The shortest access-token lifetime Tessera issues (`--access-token-lifetime` is at
        /// least 10 seconds): a refresh answered with a shorter token is of little use, and is
        /// counted against ``maximumRefreshes`` even when it was due.
        public static let shortestLifetime = Duration.seconds(10)

        /// Creates a configuration.
        public init(
            refreshMargin: Duration = .seconds(120),
            maximumRefreshes: Int = 3,
            refreshWindow: Duration = .seconds(30),
            initialBackoff: Duration = .seconds(1),
            maximumBackoff: Duration = .seconds(60),
            automaticRefresh: Bool = true,
            sessionLabel: String? = nil
        ) {
            self.refreshMargin = refreshMargin
            self.maximumRefreshes = maximumRefreshes
            self.refreshWindow = refreshWindow
            self.initialBackoff = initialBackoff
            self.maximumBackoff = maximumBackoff
            self.automaticRefresh = automaticRefresh
            self.sessionLabel = sessionLabel
        }
    }
}
