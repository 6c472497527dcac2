import Foundation
import Tessera
import TesseraUpstream

/// A session as operators see it: never its token hash, CSRF token or data (the application's).
struct AdminSessionBody: Encodable {
    var id: String
    var userId: String
    var createdAt: Date
    var lastSeenAt: Date
    var idleExpiresAt: Date
    var absoluteExpiresAt: Date
    /// Whether it is neither revoked nor expired now.
    var active: Bool
    /// `idle`, `absolute` or `revoked` once it has ended.
    var endReason: String?
    var revokedAt: Date?
    var revocationReason: String?
    var metadata: SessionMetadata

    init(_ session: Session, now: Date) {
        self.id = session.id
        self.userId = session.userID
        self.createdAt = session.createdAt
        self.lastSeenAt = session.lastSeenAt
        self.idleExpiresAt = session.idleExpiresAt
        self.absoluteExpiresAt = session.absoluteExpiresAt
        let reason = session.endReason(at: now)
        self.active = reason == nil
        self.endReason = reason?.rawValue
        self.revokedAt = session.revokedAt
        self.revocationReason = session.revocationReason
        self.metadata = session.metadata
    }
}

struct AdminSessionPage: Encodable {
    var sessions: [AdminSessionBody]
    /// Pass as `cursor` for the next page; absent on the last.
    var nextCursor: String?
}

/// A user as operators see it: never the password hash.
struct AdminUserBody: Encodable {
    var id: String
    var username: String
    var role: String
    var disabled: Bool
    var disabledAt: Date?
    var createdAt: Date

    init(_ user: User) {
        self.id = user.id
        self.username = user.username
        self.role = user.role.rawValue
        self.disabled = !user.isEnabled
        self.disabledAt = user.disabledAt
        self.createdAt = user.createdAt
    }
}

struct AdminUserPage: Encodable {
    var users: [AdminUserBody]
    var nextCursor: String?
}

/// What the console's first screen shows: figures of this node and the store.
struct AdminOverview: Encodable {
    struct Count: Encodable {
        var at: Date
        var count: Int
    }

    struct Store: Encodable {
        /// Whether the store answered a ping just now.
        var reachable: Bool
        /// `closed`, `open` or `half_open`.
        var breaker: String
    }

    struct Cache: Encodable {
        var entries: Int
        var capacity: Int
        /// Whether the cache serves entries (its change feed was read within the bound).
        var current: Bool
        var feedLagSeconds: Double?
        var stalenessBoundSeconds: Double
        var hits: Int
        var misses: Int
    }

    var node: String?
    /// The newest count, and the counts of the last day (thinned).
    var activeSessions: Count?
    var activeSessionsHistory: [Count]
    var store: Store
    /// `nil` when the node runs without a cache.
    var cache: Cache?
    var eventStreams: Int?
    var upstreams: [UpstreamPoolSnapshot]
}
