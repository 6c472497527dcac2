import Foundation
import Tessera

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
