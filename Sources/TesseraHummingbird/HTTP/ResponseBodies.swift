import Foundation
import Tessera
import TesseraTokens

/// A session as clients see it. The token hash and the CSRF token are never part of it.
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
struct UserBody: Encodable {
    var id: String
    var username: String?
}

struct LoginResponse: Encodable {
    var session: SessionBody
    var user: UserBody
    var csrfToken: String
}

struct WhoAmIResponse: Encodable {
    var session: SessionBody
    var user: UserBody
    /// Only for cookie-authenticated callers, who need it for unsafe requests (for example after
    /// a page reload).
    var csrfToken: String?
}

struct CreatedSessionResponse: Encodable {
    var session: SessionBody
    var token: String
    var csrfToken: String
}

struct SessionResponse: Encodable {
    var session: SessionBody
}

struct SessionListResponse: Encodable {
    var sessions: [SessionBody]
}

struct RevokedCountResponse: Encodable {
    var revoked: Int
}

struct StatusResponse: Encodable {
    var status: String
}

/// Token mode's answer to a login, a session creation and a refresh.
struct TokenResponse: Encodable {
    var accessToken: String
    var tokenType = "Bearer"
    var expiresIn: Int
    var refreshToken: String
    var session: SessionBody
    var user: UserBody?

    init(_ tokens: TokenService.Tokens, user: UserBody?) {
        self.accessToken = tokens.accessToken
        self.expiresIn = tokens.expiresIn
        self.refreshToken = tokens.refreshToken
        self.session = SessionBody(tokens.session)
        self.user = user
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
