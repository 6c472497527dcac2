/// Every error a client can see: a stable code, an HTTP status and a message that is safe to
/// show (no secrets, no internals).
///
/// The codes form one table, documented in `docs/errors.md`; new ones are added as static
/// members, so adding a case never breaks users.
public struct TesseraError: Error, Sendable, Hashable, CustomStringConvertible {
    /// The stable code, such as `AUTH_1002`.
    public let code: String
    /// The HTTP status code.
    public let statusCode: Int
    /// A sentence for humans.
    public let message: String
    /// Why a session ended (`idle`, `absolute`, `revoked`), for `AUTH_1002`.
    public let reason: String?
    /// Seconds after which the client may try again, for `429` and `503`.
    public let retryAfter: Int?

    public init(code: String, status: Int, message: String, reason: String? = nil, retryAfter: Int? = nil) {
        self.code = code
        self.statusCode = status
        self.message = message
        self.reason = reason
        self.retryAfter = retryAfter
    }

    public var description: String { "\(self.code) (\(self.statusCode)): \(self.message)" }

    /// Whether the error is a failed authentication (`401`), which carries `WWW-Authenticate`.
    public var isAuthenticationFailure: Bool { self.statusCode == 401 }
}

extension TesseraError {
    /// `AUTH_1001`: the username or password is wrong (the same answer for an unknown user).
    public static var invalidCredentials: Self {
        .init(code: "AUTH_1001", status: 401, message: "The username or password is incorrect.")
    }

    /// `AUTH_1002`: the session has ended.
    public static func sessionExpired(_ reason: SessionEndReason) -> Self {
        let message: String
        switch reason {
        case .idle: message = "The session expired after a period of inactivity."
        case .absolute: message = "The session reached its maximum lifetime."
        case .revoked: message = "The session was revoked."
        }
        return .init(code: "AUTH_1002", status: 401, message: message, reason: reason.rawValue)
    }

    /// `AUTH_1003`: the token is malformed or unknown.
    public static var tokenInvalid: Self {
        .init(code: "AUTH_1003", status: 401, message: "The session token is not valid.")
    }

    /// `AUTH_1004`: no token was sent.
    public static var tokenMissing: Self {
        .init(code: "AUTH_1004", status: 401, message: "No session token was presented.")
    }

    /// `AUTH_1005`: authenticated, but not allowed to do this.
    public static func forbidden(_ message: String = "This operation is not allowed.") -> Self {
        .init(code: "AUTH_1005", status: 403, message: message)
    }

    /// `AUTH_1006`: too many failed attempts.
    public static func throttled(retryAfter seconds: Int) -> Self {
        .init(
            code: "AUTH_1006",
            status: 429,
            message: "Too many failed attempts. Try again later.",
            retryAfter: max(1, seconds)
        )
    }

    /// `AUTH_1007`: a refresh token that was already used came back after the grace window.
    /// Two parties hold the token family, so the session and the family were revoked.
    public static var refreshTokenReused: Self {
        .init(
            code: "AUTH_1007",
            status: 401,
            message: "The refresh token was already used. The session has been revoked; sign in again."
        )
    }

    /// `AUTH_1009`: the service API key is missing or wrong.
    public static var apiKeyInvalid: Self {
        .init(code: "AUTH_1009", status: 401, message: "The service API key is missing or not valid.")
    }

    /// `AUTH_1010`: the access token has expired; a refresh gets a new one.
    public static var accessTokenExpired: Self {
        .init(code: "AUTH_1010", status: 401, message: "The access token has expired.")
    }

    /// `AUTH_1008`: the CSRF token is missing or wrong.
    public static var csrfFailed: Self {
        .init(code: "AUTH_1008", status: 403, message: "The X-CSRF-Token header is missing or does not match the session.")
    }

    /// `REQ_1001`: the body is not the JSON the operation takes.
    public static func malformedBody(_ message: String = "The request body is not valid JSON for this operation.") -> Self {
        .init(code: "REQ_1001", status: 400, message: message)
    }

    /// `REQ_1001`: the request is not valid HTTP/1.1 (its framing, a header field, its method).
    public static func malformedRequest(_ message: String = "The request is not valid HTTP/1.1.") -> Self {
        .init(code: "REQ_1001", status: 400, message: message)
    }

    /// `REQ_1002`: the body is larger than the operation accepts.
    public static func bodyTooLarge(limit: Int) -> Self {
        .init(code: "REQ_1002", status: 413, message: "The request body is larger than \(limit) bytes.")
    }

    /// `REQ_1003`: a field or parameter has a value the operation does not accept.
    public static func invalidField(_ message: String) -> Self {
        .init(code: "REQ_1003", status: 400, message: message)
    }

    /// `REQ_1004`: no such resource (or route).
    public static func notFound(_ message: String = "No such resource.") -> Self {
        .init(code: "REQ_1004", status: 404, message: message)
    }

    /// `REQ_1005`: a conditional request needs `If-Match`.
    public static var preconditionRequired: Self {
        .init(code: "REQ_1005", status: 428, message: "This operation needs an If-Match header with the data version you read.")
    }

    /// `REQ_1006`: the path exists but not for this method.
    public static var methodNotAllowed: Self {
        .init(code: "REQ_1006", status: 405, message: "This method is not allowed here.")
    }

    /// `REQ_1007`: valid JSON past one of the limits every JSON body and all session data keep
    /// (nesting depth, members of an object, elements of an array).
    public static func jsonLimitExceeded(_ message: String) -> Self {
        .init(code: "REQ_1007", status: 422, message: message)
    }

    /// `REQ_1008`: the operation takes a body of another media type.
    public static func unsupportedMediaType(_ expected: String = "application/json") -> Self {
        .init(code: "REQ_1008", status: 415, message: "The request body must be sent as Content-Type: \(expected).")
    }

    /// `REQ_1009`: the request's header or body did not arrive within the time allowed.
    public static var requestTimeout: Self {
        .init(code: "REQ_1009", status: 408, message: "The request did not arrive in time.")
    }

    /// `REQ_1010`: the request's header fields are larger than the service accepts.
    public static func headerFieldsTooLarge(limit: Int) -> Self {
        .init(code: "REQ_1010", status: 431, message: "The request's header fields are larger than \(limit) bytes.")
    }

    /// `REQ_1011`: the client already has as many connections open as the service allows one
    /// client; the request was not read further, and the connection is closed.
    public static var tooManyConnections: Self {
        .init(
            code: "REQ_1011", status: 429,
            message: "This client has too many connections open; reuse them, or close some and try again.",
            retryAfter: 1
        )
    }

    /// `AUTH_1011`: a browser sent the request from an origin that may not log in or act with
    /// the session cookie.
    public static var originNotAllowed: Self {
        .init(code: "AUTH_1011", status: 403, message: "Requests from this Origin are not allowed.")
    }

    /// `DATA_1001`: the session data changed since the version the writer read.
    public static func versionConflict(current: Int) -> Self {
        .init(
            code: "DATA_1001",
            status: 409,
            message: "The session data changed since version you read; it is now at version \(current)."
        )
    }

    /// `DATA_1002`: the session data would exceed its size limit.
    public static func dataTooLarge(limit: Int) -> Self {
        .init(code: "DATA_1002", status: 413, message: "Session data may hold at most \(limit) bytes of JSON.")
    }

    /// `STORE_UNAVAILABLE`: the store cannot be reached; try again shortly.
    public static func storeUnavailable(retryAfter seconds: Int = 1) -> Self {
        .init(code: "STORE_UNAVAILABLE", status: 503, message: "The session store is unavailable. Try again shortly.", retryAfter: seconds)
    }

    /// `UPSTREAM_LOGIN_FAILED`: the upstream site refused the pool's login (or could not be
    /// reached for it), and the pool is backing off before it tries again.
    /// - Parameter reason: why the last login failed, in words safe to show (never a credential)
    public static func upstreamLoginFailed(upstream: String, reason: String? = nil, retryAfter seconds: Int = 1) -> Self {
        let because = reason.map { " (\($0))" } ?? ""
        return .init(
            code: "UPSTREAM_LOGIN_FAILED",
            status: 502,
            message: "Logging in to the upstream '\(upstream)' failed\(because); the next attempt is in \(max(1, seconds)) s.",
            retryAfter: max(1, seconds)
        )
    }

    /// `UPSTREAM_EXHAUSTED`: every session of the upstream pool stayed busy for the whole
    /// borrow timeout.
    public static func upstreamExhausted(upstream: String, retryAfter seconds: Int = 1) -> Self {
        .init(
            code: "UPSTREAM_EXHAUSTED",
            status: 503,
            message: "No session with the upstream '\(upstream)' became free in time. Try again shortly.",
            retryAfter: max(1, seconds)
        )
    }

    /// `UPSTREAM_UNAVAILABLE`: the upstream site could not be reached or failed transiently.
    public static func upstreamUnavailable(upstream: String) -> Self {
        .init(code: "UPSTREAM_UNAVAILABLE", status: 502, message: "The upstream '\(upstream)' could not be reached or failed transiently.")
    }

    /// `UPSTREAM_RATE_LIMITED`: the upstream site asked the pool to slow down.
    public static func upstreamRateLimited(upstream: String, retryAfter seconds: Int) -> Self {
        .init(
            code: "UPSTREAM_RATE_LIMITED",
            status: 503,
            message: "The upstream '\(upstream)' asked for fewer requests; the pool is backing off.",
            retryAfter: max(1, seconds)
        )
    }

    /// `UPSTREAM_SESSION_LOST`: the upstream ended a session again right after the pool
    /// replaced it, so the request could not be served logged in.
    public static func upstreamSessionLost(upstream: String) -> Self {
        .init(
            code: "UPSTREAM_SESSION_LOST",
            status: 502,
            message: "The upstream '\(upstream)' ended the session again on the retry; the request was not served."
        )
    }

    /// `UPSTREAM_SESSION_LOST` for browser actions: a step met an ended session; steps not
    /// marked idempotent are not replayed (an earlier one may have acted), and idempotent ones
    /// met an ended session again on the replay.
    /// - Parameter step: the 0-based index of the step that met it
    public static func upstreamSessionLost(upstream: String, atStep step: Int, replayed: Bool) -> Self {
        let what =
            replayed
            ? "ended the session again when the steps were replayed"
            : "ended the session at step \(step + 1); the steps are not marked idempotent, so they were not replayed (the steps before it were taken)"
        return .init(code: "UPSTREAM_SESSION_LOST", status: 502, message: "The upstream '\(upstream)' \(what).")
    }

    /// `UPSTREAM_ACTION_FAILED`: a browser action's step could not be taken on a logged-in page.
    public static func upstreamActionFailed(upstream: String, step: Int, name: String, reason: String) -> Self {
        .init(
            code: "UPSTREAM_ACTION_FAILED",
            status: 422,
            message: "Step \(step + 1) (\(name)) could not be taken in the upstream '\(upstream)': \(reason.prefix(500))."
        )
    }

    /// `UPSTREAM_NOT_BROWSER`: actions were asked of an upstream that is not of the browser kind.
    public static func upstreamNotBrowser(upstream: String) -> Self {
        .init(
            code: "UPSTREAM_NOT_BROWSER",
            status: 409,
            message: "The upstream '\(upstream)' is not of the browser kind; actions need an upstream with kind: browser."
        )
    }

    /// `UPSTREAM_BLOCKED`: the upstream answered with one of its configured "blocked" markers.
    public static func upstreamBlocked(upstream: String) -> Self {
        .init(code: "UPSTREAM_BLOCKED", status: 502, message: "The upstream '\(upstream)' blocked the pool's session.")
    }

    /// `EVENTS_STREAM_LIMIT`: this node has as many event streams open as it allows (in all, or
    /// for this session).
    public static func tooManyStreams(retryAfter seconds: Int = 5) -> Self {
        .init(
            code: "EVENTS_STREAM_LIMIT",
            status: 503,
            message: "As many event streams are open as this node allows (in all, or for this session). Try again shortly.",
            retryAfter: seconds
        )
    }

    /// `USER_1001`: a user with that username exists (admin API).
    public static var userExists: Self {
        .init(code: "USER_1001", status: 409, message: "A user with that username exists.")
    }

    /// `SRV_1000`: an unexpected failure. Details go to the log under the correlation id.
    public static var internalError: Self {
        .init(code: "SRV_1000", status: 500, message: "An unexpected error occurred.")
    }

    /// Every code, for documentation and the test that keeps the table true.
    public static var table: [TesseraError] {
        [
            .invalidCredentials, .sessionExpired(.idle), .tokenInvalid, .tokenMissing, .forbidden(), .throttled(retryAfter: 1),
            .refreshTokenReused, .csrfFailed, .apiKeyInvalid, .accessTokenExpired, .originNotAllowed, .malformedBody(), .bodyTooLarge(limit: 0),
            .invalidField(""), .notFound(), .jsonLimitExceeded(""), .unsupportedMediaType(), .requestTimeout, .headerFieldsTooLarge(limit: 0), .tooManyConnections,
            .preconditionRequired, .methodNotAllowed, .versionConflict(current: 0), .dataTooLarge(limit: 0), .storeUnavailable(),
            .upstreamLoginFailed(upstream: "name"), .upstreamExhausted(upstream: "name"), .upstreamUnavailable(upstream: "name"),
            .upstreamRateLimited(upstream: "name", retryAfter: 1), .upstreamSessionLost(upstream: "name"), .upstreamBlocked(upstream: "name"),
            .upstreamActionFailed(upstream: "name", step: 0, name: "click", reason: ""), .upstreamNotBrowser(upstream: "name"),
            .tooManyStreams(), .userExists, .internalError,
        ]
    }
}
