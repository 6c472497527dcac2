import Foundation
import HTTPTypes
import Hummingbird
import Logging
import NIOCore
import Tessera
import TesseraTokens

/// Token mode: refresh, the key set, introspection.
extension TesseraHTTPService {
    @Sendable func refreshTokens(_ request: Request, context: TesseraRequestContext) async throws -> Response {
        let tokens = try self.requireTokens()
        let body = try await JSONCoding.object(from: request, limit: 4 * 1024)
        let refreshToken = try body.string("refreshToken")
        let issued: TokenService.Tokens
        do {
            issued = try await tokens.refresh(refreshToken)
        } catch let error as TesseraError where error == .refreshTokenReused {
            context.logger.warning("Refresh token reused after rotation; revoked its session")
            throw error
        }
        context.logger.debug("Refreshed tokens", metadata: ["session_id": .string(issued.session.id)])
        return Response.json(TokenResponse(issued, user: nil))
    }

    @Sendable func jwks(_ request: Request, context: TesseraRequestContext) async throws -> Response {
        let tokens = try self.requireTokens()
        // Verifiers may cache the set briefly; a key is published before the tokens it signs
        // can reach them only within this time, so they should refetch on an unknown `kid`.
        return Response(
            status: .ok,
            headers: [.contentType: "application/jwk-set+json", .cacheControl: "public, max-age=60"],
            body: .init(byteBuffer: try JSONCoding.encode(tokens.jwks()))
        )
    }

    @Sendable func introspect(_ request: Request, context: TesseraRequestContext) async throws -> Response {
        let tokens = try self.requireTokens()
        let token = try await IntrospectionRequest.token(from: request)
        let result = try await tokens.introspect(token)
        return try Response.json(IntrospectionResponse(result))
    }
}
