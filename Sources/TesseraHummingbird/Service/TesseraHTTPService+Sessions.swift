import Foundation
import HTTPTypes
import Hummingbird
import Logging
import Tessera
import TesseraTokens

/// The current session, the caller's sessions, and service-created sessions.
extension TesseraHTTPService {
    @Sendable func whoAmI(_ request: Request, context: TesseraRequestContext) async throws -> Response {
        let authenticated = try context.requireSession()
        let username = try await self.usernames.username(of: authenticated.session.userID, in: self.sessions.store)
        return Response(
            status: .ok,
            // Cache-Control: no-store comes from the authenticator, as on every authenticated answer.
            headers: [.contentType: Self.whoAmIContentType, .eTag: Self.eTag(authenticated.session.dataVersion)],
            body: .init(byteBuffer: Self.whoAmIBody(authenticated, username: username))
        )
    }

    static let whoAmIContentType = "application/json; charset=utf-8"

    /// Who-am-I's body, written directly (the hot path), as JSONEncoder would write it.
    static func whoAmIBody(_ authenticated: AuthenticatedSession, username: String?) -> ByteBuffer {
        var writer = JSONWriter()
        writer.beginObject()
        if authenticated.credential == .cookie {
            writer.key("csrfToken")
            writer.string(authenticated.session.csrfToken)
        }
        writer.key("session")
        writer.session(authenticated.session)
        writer.key("user")
        UserBody(id: authenticated.session.userID, username: username).write(to: &writer)
        writer.endObject()
        return writer.buffer
    }

    /// The media types of a data update: a JSON merge patch (RFC 7396), or plain JSON.
    static let dataPatchMediaTypes = ["application/merge-patch+json", JSONCoding.json]

    @Sendable func updateData(_ request: Request, context: TesseraRequestContext) async throws -> Response {
        let session = try context.requireSession().session
        guard let ifMatch = request.headers[.ifMatch] else { throw TesseraError.preconditionRequired }
        guard let version = Self.version(ifMatch: ifMatch) else {
            throw TesseraError.invalidField("If-Match must be the data version you read, such as \"3\".")
        }
        let patch = try await JSONCoding.object(from: request, limit: 32 * 1024, mediaTypes: Self.dataPatchMediaTypes)
        let updated = try await self.sessions.updateData(of: session, expectedVersion: version, patch: patch.members)
        return Response.json(SessionResponse(session: updated), headers: [.eTag: Self.eTag(updated.dataVersion)])
    }

    @Sendable func listSessions(_ request: Request, context: TesseraRequestContext) async throws -> Response {
        let current = try context.requireSession().session
        let sessions = try await self.sessions.activeSessions(userID: current.userID)
        return Response.json(SessionListResponse(sessions: sessions, currentID: current.id))
    }

    @Sendable func revokeSession(_ request: Request, context: TesseraRequestContext) async throws -> Response {
        let current = try context.requireSession().session
        let id = try context.parameters.require("id")
        guard try await self.sessions.revoke(sessionID: id, ofUser: current.userID, reason: RevocationReason.user.rawValue) else {
            throw TesseraError.notFound("No active session with that id.")
        }
        context.logger.info("Revoked session", metadata: ["session_id": .string(current.id), "revoked_session_id": .string(id)])
        var response = Response(status: .noContent)
        if id == current.id {
            response.setCookie(self.configuration.cookie.clearing())
        }
        return response
    }

    @Sendable func revokeSessions(_ request: Request, context: TesseraRequestContext) async throws -> Response {
        let current = try context.requireSession().session
        let scope = request.uri.queryParameters["scope"].map(String.init)
        let revoked: Int
        switch scope {
        case "others":
            revoked = try await self.sessions.revokeAll(userID: current.userID, keeping: current.id, reason: RevocationReason.others.rawValue)
        case "all":
            revoked = try await self.sessions.revokeAll(userID: current.userID, reason: RevocationReason.user.rawValue)
        default:
            throw TesseraError.invalidField("The scope parameter must be 'others' or 'all'.")
        }
        context.logger.info(
            "Revoked sessions",
            metadata: ["session_id": .string(current.id), "scope": .string(scope ?? ""), "count": "\(revoked)"]
        )
        var response = try Response.json(RevokedCountResponse(revoked: revoked))
        if scope == "all" {
            response.setCookie(self.configuration.cookie.clearing())
        }
        return response
    }

    @Sendable func createSession(_ request: Request, context: TesseraRequestContext) async throws -> Response {
        let body = try await JSONCoding.object(from: request, limit: 32 * 1024)
        let subject = try body.string("subject")
        guard (1...256).contains(subject.unicodeScalars.count) else { throw TesseraError.invalidField("The subject must be 1 to 256 characters.") }
        let data = try body.optionalObject("data") ?? [:]
        let label = try Self.label(try body.optionalString("label"))
        let address = self.clientAddress(request, context: context)
        let metadata = self.metadata(request, address: address, label: label)
        if let tokens = try self.tokenService(mode: try body.optionalString("mode")) {
            let issued = try await tokens.createSession(userID: subject, data: data, metadata: metadata)
            context.logger.info("Created token-mode session for a subject", metadata: ["session_id": .string(issued.session.id)])
            return Response.json(
                TokenResponse(issued, user: UserBody(id: subject, username: nil)),
                status: .created,
                headers: [.eTag: Self.eTag(issued.session.dataVersion)]
            )
        }
        let created = try await self.sessions.createSession(userID: subject, data: data, metadata: metadata)
        context.logger.info("Created session for a subject", metadata: ["session_id": .string(created.session.id)])
        return Response.json(
            CreatedSessionResponse(session: created.session, token: created.token.rawValue, csrfToken: created.session.csrfToken),
            status: .created,
            headers: [.eTag: Self.eTag(created.session.dataVersion)]
        )
    }
}
