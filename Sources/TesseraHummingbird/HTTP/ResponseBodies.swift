import Foundation
import Tessera
import TesseraTokens

/// A session as clients see it. The token hash and the CSRF token are never part of it.
///
/// Responses write it with ``JSONWriter/session(_:current:)``; this `Encodable` form is the
/// reference that writer is tested against.
struct SessionBody: Encodable {
    var id: String
    var userId: String
    var createdAt: Date
    var lastSeenAt: Date
    var idleExpiresAt: Date
    var absoluteExpiresAt: Date
    var data: [String: JSONValue]
    var dataVersion: Int
    var metadata: SessionMetadata
    var current: Bool?

    init(_ session: Session, current: Bool? = nil) {
        self.id = session.id
        self.userId = session.userID
        self.createdAt = session.createdAt
        self.lastSeenAt = session.lastSeenAt
        self.idleExpiresAt = session.idleExpiresAt
        self.absoluteExpiresAt = session.absoluteExpiresAt
        self.data = session.data
        self.dataVersion = session.dataVersion
        self.metadata = session.metadata
        self.current = current
    }
}

/// A subject as clients see it: a Tessera user has a username; a subject an application named
/// has only its id.
struct UserBody {
    var id: String
    var username: String?

    func write(to writer: inout JSONWriter) {
        writer.beginObject()
        writer.key("id")
        writer.string(self.id)
        if let username = self.username {
            writer.key("username")
            writer.string(username)
        }
        writer.endObject()
    }
}

/// The answer to a login in cookie mode.
struct LoginResponse: JSONWritable {
    var session: Session
    var user: UserBody
    var csrfToken: String

    func write(to writer: inout JSONWriter) {
        writer.beginObject()
        writer.key("csrfToken")
        writer.string(self.csrfToken)
        writer.key("session")
        writer.session(self.session)
        writer.key("user")
        self.user.write(to: &writer)
        writer.endObject()
    }
}

/// The answer to `POST /v1/sessions` in cookie mode: the token, shown once.
struct CreatedSessionResponse: JSONWritable {
    var session: Session
    var token: String
    var csrfToken: String

    func write(to writer: inout JSONWriter) {
        writer.beginObject()
        writer.key("csrfToken")
        writer.string(self.csrfToken)
        writer.key("session")
        writer.session(self.session)
        writer.key("token")
        writer.string(self.token)
        writer.endObject()
    }
}

/// One session.
struct SessionResponse: JSONWritable {
    var session: Session

    func write(to writer: inout JSONWriter) {
        writer.beginObject()
        writer.key("session")
        writer.session(self.session)
        writer.endObject()
    }
}

/// The caller's sessions, the current one marked.
struct SessionListResponse: JSONWritable {
    var sessions: [Session]
    var currentID: String

    func write(to writer: inout JSONWriter) {
        writer.beginObject()
        writer.key("sessions")
        writer.beginArray()
        for session in self.sessions {
            writer.session(session, current: session.id == self.currentID)
        }
        writer.endArray()
        writer.endObject()
    }
}

struct RevokedCountResponse: Encodable {
    var revoked: Int
}

struct StatusResponse: Encodable {
    var status: String
}

/// Token mode's answer to a login, a session creation and a refresh.
struct TokenResponse: JSONWritable {
    var tokens: TokenService.Tokens
    var user: UserBody?

    init(_ tokens: TokenService.Tokens, user: UserBody?) {
        self.tokens = tokens
        self.user = user
    }

    func write(to writer: inout JSONWriter) {
        writer.beginObject()
        writer.key("accessToken")
        writer.string(self.tokens.accessToken)
        writer.key("expiresIn")
        writer.integer(self.tokens.expiresIn)
        writer.key("refreshToken")
        writer.string(self.tokens.refreshToken)
        writer.key("session")
        writer.session(self.tokens.session)
        writer.key("tokenType")
        writer.string("Bearer")
        if let user = self.user {
            writer.key("user")
            user.write(to: &writer)
        }
        writer.endObject()
    }
}

/// An introspection answer in the shape of RFC 7662: an inactive token gets `active` alone.
struct IntrospectionResponse: Encodable {
    var active: Bool
    var tokenType: String?
    var sub: String?
    var sid: String?
    var iat: Int64?
    var exp: Int64?
    var iss: String?

    init(_ result: TokenService.Introspection) {
        self.active = result.active
        guard result.active else { return }
        self.tokenType = result.tokenType?.rawValue
        self.sub = result.subject
        self.sid = result.sessionID
        self.iat = result.issuedAt.map { Int64($0.timeIntervalSince1970.rounded(.down)) }
        self.exp = result.expiresAt.map { Int64($0.timeIntervalSince1970.rounded(.down)) }
        self.iss = result.issuer
    }

    enum CodingKeys: String, CodingKey {
        case active, sub, sid, iat, exp, iss
        case tokenType = "token_type"
    }
}
