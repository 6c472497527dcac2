public import NIOHTTP1

/// An error of ``TesseraClient``. Compare ``code`` with the static codes; new codes may be added.
public struct TesseraClientError: Error, CustomStringConvertible {
    /// What went wrong, as a stable value.
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        private enum Base: String, Hashable, Sendable {
            case notSignedIn, signedOut, invalidCredentials, loginFailed, unauthorized
            case refreshLimitExceeded, refreshUnavailable, transport, invalidResponse
        }

        private let base: Base
        private init(_ base: Base) { self.base = base }

        /// No credentials: the client never signed in (or its store is empty).
        public static let notSignedIn = Code(.notSignedIn)
        /// The session ended; ``TesseraClientError/signOutReason`` says why. Sign in again.
        public static let signedOut = Code(.signedOut)
        /// The login was refused: wrong username or password (`401 AUTH_1001`).
        public static let invalidCredentials = Code(.invalidCredentials)
        /// The login was refused for another reason (throttled, bad request, …); see ``TesseraClientError/serverError``.
        public static let loginFailed = Code(.loginFailed)
        /// The request was answered `401` with a credential the client had just obtained: an
        /// authorization problem, not an expired token. It is not retried again.
        public static let unauthorized = Code(.unauthorized)
        /// More refreshes that were not due were needed in the configured window than allowed;
        /// the request is not retried, and the session is kept.
        public static let refreshLimitExceeded = Code(.refreshLimitExceeded)
        /// A refresh failed for a passing reason (network, timeout, 5xx, 429); the session is kept
        /// and the refresh is tried again after ``TesseraClientError/retryAfter``.
        public static let refreshUnavailable = Code(.refreshUnavailable)
        /// The request could not be sent or no response came; ``TesseraClientError/underlyingError`` says why.
        public static let transport = Code(.transport)
        /// The service answered something the client does not understand.
        public static let invalidResponse = Code(.invalidResponse)

        public var description: String { self.base.rawValue }
    }

    /// What went wrong.
    public let code: Code
    /// A description for logs.
    public let message: String
    /// Why the session ended, for ``Code/signedOut``.
    public var signOutReason: SignOutReason?
    /// The error the server described, when there was one.
    public var serverError: TesseraServerError?
    /// The response status, when a response caused the error.
    public var status: HTTPResponseStatus?
    /// How long to wait before the client tries to refresh again, for ``Code/refreshUnavailable``
    /// and ``Code/refreshLimitExceeded``.
    public var retryAfter: Duration?
    /// The error underneath (a network error, a decoding error).
    public var underlyingError: (any Error)?

    init(
        _ code: Code,
        _ message: String,
        signOutReason: SignOutReason? = nil,
        serverError: TesseraServerError? = nil,
        status: HTTPResponseStatus? = nil,
        retryAfter: Duration? = nil,
        underlyingError: (any Error)? = nil
    ) {
        self.code = code
        self.message = message
        self.signOutReason = signOutReason
        self.serverError = serverError
        self.status = status
        self.retryAfter = retryAfter
        self.underlyingError = underlyingError
    }

    /// Whether trying again later may succeed without signing in again.
    public var isTransient: Bool {
        self.code == .refreshUnavailable || self.code == .transport || self.code == .refreshLimitExceeded
    }

    public var description: String {
        var text = "TesseraClientError(\(self.code)): \(self.message)"
        if let serverError { text += " [\(serverError.code)\(serverError.reason.map { " \($0)" } ?? "")]" }
        return text
    }

    static func signedOut(_ reason: SignOutReason) -> TesseraClientError {
        TesseraClientError(.signedOut, "the session ended (\(reason))", signOutReason: reason)
    }
}
