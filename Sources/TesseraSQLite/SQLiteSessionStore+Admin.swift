public import Foundation
import GRDB
public import Tessera

extension SQLiteSessionStore {
    // MARK: Administration

    public func users(prefix: String?, after cursor: String?, limit: Int) async throws -> [User] {
        try await self.read { db in
            // The username column compares without case (NOCASE), so the order and the cursor do too.
            try Row.fetchAll(
                db,
                sql: """
                    SELECT * FROM users
                    WHERE (?1 IS NULL OR username LIKE ?1 ESCAPE '\\') AND (?2 IS NULL OR username > ?2)
                    ORDER BY username
                    LIMIT ?3
                    """,
                arguments: [prefix.map { SessionQuery.likePattern(prefix: $0) }, cursor, limit]
            ).map(Self.user(from:))
        }
    }

    public func updateUser(_ user: User) async throws -> Bool {
        try await self.write { db in
            try db.execute(
                sql: "UPDATE users SET password_hash = ?, role = ?, disabled_at = ? WHERE id = ?",
                arguments: [user.passwordHash, user.role.rawValue, user.disabledAt?.millisecondsSince1970, user.id]
            )
            return db.changesCount == 1
        }
    }

    public func countActiveSessions(at now: Date) async throws -> Int {
        try await self.read { db in
            // A range of the idle-deadline index: only live sessions are visited.
            try Int.fetchOne(
                db,
                sql: "SELECT count(*) FROM sessions WHERE idle_expires_at > ? AND revoked_at IS NULL",
                arguments: [now.millisecondsSince1970]
            ) ?? 0
        }
    }

    public func sessions(matching query: SessionQuery, at now: Date, after cursor: SessionCursor?, limit: Int) async throws -> [Session] {
        // Only the conditions asked for, so that the planner picks the index that fits: the
        // user's (user_id, created_at), or the creation order's.
        var conditions: [String] = []
        var arguments = StatementArguments()
        if let userID = query.userID {
            conditions.append("user_id = ?")
            arguments += [userID]
        }
        if let label = query.label {
            conditions.append("label = ?")
            arguments += [label]
        }
        if query.activeOnly {
            conditions.append("revoked_at IS NULL AND idle_expires_at > ?")
            arguments += [now.millisecondsSince1970]
        }
        if let cursor {
            conditions.append("(created_at, id) < (?, ?)")
            arguments += [cursor.createdAt.millisecondsSince1970, cursor.id]
        }
        arguments += [limit]
        let filter = conditions.isEmpty ? "" : "WHERE " + conditions.joined(separator: " AND ")
        let sql = "SELECT \(Self.sessionColumns) FROM sessions \(filter) ORDER BY created_at DESC, id DESC LIMIT ?"
        let values = arguments
        return try await self.read { db in
            try Row.fetchAll(db, sql: sql, arguments: values).map(Self.session(from:))
        }
    }
}
