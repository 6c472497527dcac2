import Foundation
import Logging
public import Hummingbird
public import Tessera
public import TesseraTokens

/// Authenticates requests against Tessera: takes the session token from
/// `Authorization: Bearer tss_…` or the session cookie (or, with a ``TokenService``, an access
/// token from `Authorization: Bearer`), validates it (which slides the idle deadline), checks
/// `X-CSRF-Token` on cookie-authenticated unsafe requests, and puts the session in the request
/// context. An access token of a revoked or expired session is refused like its session.
///
/// ```swift
/// let router = Router(context: TesseraRequestContext.self)
/// router.add(middleware: CorrelationIDMiddleware())
/// router.add(middleware: ErrorMiddleware())
/// router.group("api")
///     .add(middleware: TesseraAuthenticator(sessions: sessions))
///     .get("me") { _, context in try context.requireSession().session.userID }
/// ```
///
/// A cookie-authenticated unsafe request must also come from an origin ``origins`` allows (the
/// app's own by default): a foreign page cannot act with the browser's cookie even where it
/// could learn the CSRF token.
///
/// Failures are Tessera errors (`AUTH_1002` with its reason, `AUTH_1003`, `AUTH_1004`,
/// `AUTH_1008`, `AUTH_1011`). When a cookie carried a dead session, the answer also clears the cookie, so the
/// browser stops sending it. Every authenticated response carries `Cache-Control: no-store`.
public struct TesseraAuthenticator<Context: SessionRequestContext>: RouterMiddleware {
    public let sessions: SessionManager
    public let cookie: SessionCookie
    public let tokens: TokenService?
    /// The web origins cookie-authenticated unsafe requests may come from.
    public let origins: OriginPolicy
    /// Whether the request's logger gets the session id (`session_id`) as metadata.
    public let logsSessionID: Bool

    /// - Parameters:
    ///   - sessions: validates tokens
    ///   - cookie: the session cookie's settings
    ///   - tokens: validates access tokens; with `nil`, only session tokens are accepted
    ///   - origins: the web origins cookie-authenticated unsafe requests may come from (the
    ///     app's own by default)
    ///   - logsSessionID: put the session id on every log line the rest of the request writes
    ///     (which copies the logger's metadata once per request); Tessera's own service names
    ///     the session on the lines it writes instead
    public init(
        sessions: SessionManager,
        cookie: SessionCookie = .init(),
        tokens: TokenService? = nil,
        origins: OriginPolicy = .sameOrigin,
        logsSessionID: Bool = true
    ) {
        self.sessions = sessions
        self.cookie = cookie
        self.tokens = tokens
        self.origins = origins
        self.logsSessionID = logsSessionID
    }

    public func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        let (token, source) = self.credential(in: request)
        let session: Session
        do {
            if source == .bearer, let tokens = self.tokens, let token, TokenService.isAccessToken(token) {
                session = try await tokens.authenticate(accessToken: token)
            } else {
                session = try await self.sessions.authenticate(token: token)
            }
            self.sessions.metrics.validated(.ok)
        } catch {
            self.sessions.metrics.validated(Self.result(of: error))
            guard source == .cookie, token != nil, let failure = error as? TesseraError, failure.isAuthenticationFailure else { throw error }
            var response = failure.response(correlationID: context.correlationID)
            response.setCookie(self.cookie.clearing())
            return response
        }
        if source == .cookie, !request.method.isSafe {
            guard self.origins.allows(request.head) else { throw TesseraError.originNotAllowed }
            guard let presented = request.headers[.csrfToken],
                constantTimeEquals(presented.utf8, session.csrfToken.utf8)
            else { throw TesseraError.csrfFailed }
        }
        var context = context
        context.authenticatedSession = AuthenticatedSession(session: session, credential: source)
        if self.logsSessionID {
            context.logger[metadataKey: "session_id"] = .string(session.id)
        }
        var response = try await next(request, context)
        response.headers[.cacheControl] = "no-store"
        return response
    }

    /// What a failed validation counts as.
    static func result(of error: any Error) -> SessionMetrics.ValidationResult {
        guard let error = error as? TesseraError else { return .error }
        switch error.code {
        case TesseraError.tokenMissing.code: return .missing
        case TesseraError.tokenInvalid.code: return .invalid
        case TesseraError.accessTokenExpired.code: return .tokenExpired
        case TesseraError.sessionExpired(.idle).code:
            return error.reason.flatMap { SessionEndReason(rawValue: $0) }.map { reason in
                switch reason {
                case .idle: .idle
                case .absolute: .absolute
                case .revoked: .revoked
                }
            } ?? .invalid
        default: return .error
        }
    }

    /// The bearer token when there is one, else the cookie.
    func credential(in request: Request) -> (String?, CredentialSource) {
        if let token = request.headers.bearerToken {
            return (token, .bearer)
        }
        return (self.cookie.token(in: request), .cookie)
    }
}

extension HTTPRequest.Method {
    /// GET, HEAD, OPTIONS and TRACE change nothing and need no CSRF token.
    var isSafe: Bool {
        self == .get || self == .head || self == .options || self == .trace
    }
}
