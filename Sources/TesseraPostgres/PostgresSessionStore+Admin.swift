public import Foundation
import PostgresNIO
public import Tessera

extension PostgresSessionStore {
    // MARK: Administration

    public func users(prefix: String?, after cursor: String?, limit: Int) async throws -> [User] {
        // By lower(username) in byte order (collation "C"), as SQLite's NOCASE orders, whatever
        // the database's locale: the order and the cursor must agree.
        let pattern = prefix.map { SessionQuery.likePattern(prefix: $0.lowercased()) }
        return try await self.rows(
            """
            SELECT \(unescaped: Self.userColumns) FROM users
            WHERE (\(pattern)::TEXT IS NULL OR lower(username) LIKE \(pattern))
                AND (\(cursor)::TEXT IS NULL OR lower(username) COLLATE "C" > lower(\(cursor)) COLLATE "C")
            ORDER BY lower(username) COLLATE "C"
            LIMIT \(limit)
            """
        ) { try Self.user(from: $0) }
    }

    public func updateUser(_ user: User) async throws -> Bool {
        try await self.count(
            """
            UPDATE users SET password_hash = \(user.passwordHash), role = \(user.role.rawValue),
                disabled_at = \(user.disabledAt?.millisecondsSince1970)
            WHERE id = \(user.id)
            """
        ) == 1
    }

    public func countActiveSessions(at now: Date) async throws -> Int {
        try await self.rows(
            "SELECT count(*) FROM sessions WHERE idle_expires_at > \(now.millisecondsSince1970) AND revoked_at IS NULL"
        ) { try $0.decode(Int.self) }.first ?? 0
    }

    public func sessions(matching query: SessionQuery, at now: Date, after cursor: SessionCursor?, limit: Int) async throws -> [Session] {
        // Only the conditions asked for, so that the plan uses the index that fits: the user's
        // (user_id, created_at), or the creation order's.
        var conditions: [String] = []
        var binds = PostgresBindings()
        func placeholder() -> String { "$\(binds.count)" }
        if let userID = query.userID {
            binds.append(userID)
            conditions.append("user_id = \(placeholder())")
        }
        if let label = query.label {
            binds.append(label)
            conditions.append("label = \(placeholder())")
        }
        if query.activeOnly {
            binds.append(now.millisecondsSince1970)
            conditions.append("revoked_at IS NULL AND idle_expires_at > \(placeholder())")
        }
        if let cursor {
            binds.append(cursor.createdAt.millisecondsSince1970)
            let time = placeholder()
            binds.append(cursor.id)
            conditions.append("(created_at, id) < (\(time), \(placeholder()))")
        }
        binds.append(limit)
        let filter = conditions.isEmpty ? "" : "WHERE " + conditions.joined(separator: " AND ")
        let sql = "SELECT \(Self.sessionColumns) FROM sessions \(filter) ORDER BY created_at DESC, id DESC LIMIT \(placeholder())"
        return try await self.rows(PostgresQuery(unsafeSQL: sql, binds: binds)) { try Self.session(from: $0) }
    }
}
