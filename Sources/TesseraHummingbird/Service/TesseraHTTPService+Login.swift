import Foundation
import HTTPTypes
import Hummingbird
import Logging
import Tessera
import TesseraTokens

/// Logging in and out.
extension TesseraHTTPService {
    /// The token service, for the operations that exist only in token mode.
    func requireTokens() throws -> TokenService {
        guard let tokens = self.tokens else { throw TesseraError.notFound("Token mode is not enabled on this service.") }
        return tokens
    }

    /// The token service for a request's `mode`, or `nil` for cookie mode.
    func tokenService(mode: String?) throws -> TokenService? {
        switch mode {
        case nil, "cookie": return nil
        case "token":
            guard let tokens = self.tokens else { throw TesseraError.invalidField("Token mode is not enabled on this service.") }
            return tokens
        default: throw TesseraError.invalidField("The mode must be 'cookie' or 'token'.")
        }
    }

    @Sendable func logIn(_ request: Request, context: TesseraRequestContext) async throws -> Response {
        // A foreign page must not log the browser in (login CSRF): checked before the body is read.
        guard self.configuration.origins.allows(request.head) else { throw TesseraError.originNotAllowed }
        let body = try await JSONCoding.object(from: request, limit: 8 * 1024)
        let username = try body.string("username")
        let password = try body.string("password")
        guard (1...256).contains(username.unicodeScalars.count) else { throw TesseraError.invalidField("The username must be 1 to 256 characters.") }
        guard (1...1024).contains(password.utf8.count) else {
            throw TesseraError.invalidField("The password must be 1 to 1024 bytes.")
        }
        let label = try Self.label(try body.optionalString("label"))
        let tokens = try self.tokenService(mode: try body.optionalString("mode"))
        let address = self.clientAddress(request, context: context)
        let result = try await self.login.login(
            username: username,
            password: password,
            clientAddress: address,
            metadata: self.metadata(request, address: address, label: label),
            credential: tokens == nil ? .sessionToken : .tokenMode
        )
        context.logger.info("Logged in", metadata: ["session_id": .string(result.session.id), "user_id": .string(result.user.id)])
        let user = UserBody(id: result.user.id, username: result.user.username)
        if let tokens {
            let issued = try await tokens.issueTokens(for: result.session)
            return Response.json(TokenResponse(issued, user: user))
        }
        var response = Response.json(LoginResponse(session: result.session, user: user, csrfToken: result.session.csrfToken))
        response.setCookie(self.configuration.cookie.cookie(token: result.token, session: result.session, now: self.sessions.clock.now))
        return response
    }

    @Sendable func logOut(_ request: Request, context: TesseraRequestContext) async throws -> Response {
        let current = try context.requireSession().session
        try await self.sessions.revoke(sessionID: current.id, reason: RevocationReason.logout.rawValue)
        context.logger.info("Logged out", metadata: ["session_id": .string(current.id)])
        var response = Response(status: .noContent)
        response.setCookie(self.configuration.cookie.clearing())
        return response
    }
}
