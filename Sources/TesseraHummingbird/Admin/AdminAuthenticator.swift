import Hummingbird
import Tessera
import TesseraTokens

/// Lets a request through to the admin API only for an operator: `Authorization: Bearer` with
/// the admin API key (`tak_…`), or a Tessera session of an enabled user whose role is `admin`
/// (the console's, by cookie, with the CSRF token and an allowed origin on unsafe requests, as
/// ``TesseraAuthenticator`` checks them). Anyone else: `401` without a credential that works,
/// `403 AUTH_1005` with a session of a user who is not an operator.
///
/// A key-authenticated request carries no session; a session-authenticated one carries the
/// operator's, so that handlers can name who acted.
struct AdminAuthenticator: RouterMiddleware {
    let key: ServiceAPIKey?
    let sessions: TesseraAuthenticator<TesseraRequestContext>

    func handle(
        _ request: Request,
        context: TesseraRequestContext,
        next: (Request, TesseraRequestContext) async throws -> Response
    ) async throws -> Response {
        if let presented = request.headers.bearerToken, presented.hasPrefix(ServiceAPIKey.adminPrefix) {
            guard let key = self.key, key.matches(presented) else { throw TesseraError.apiKeyInvalid }
            var response = try await next(request, context)
            response.headers[.cacheControl] = "no-store"
            return response
        }
        return try await self.sessions.handle(request, context: context) { request, context in
            let session = try context.requireSession().session
            guard let user = try await self.sessions.sessions.store.user(id: session.userID), user.role == .admin, user.isEnabled else {
                throw TesseraError.forbidden("Only an administrator may do this.")
            }
            return try await next(request, context)
        }
    }
}

extension TesseraRequestContext {
    /// Who acted on an admin request, for the log: the operator's user id, or the admin key.
    var adminActor: String {
        self.authenticatedSession.map { "user:" + $0.session.userID } ?? "admin-key"
    }
}
