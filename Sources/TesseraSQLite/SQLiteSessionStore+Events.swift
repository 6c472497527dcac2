public import Foundation
import GRDB
public import Tessera

extension SQLiteSessionStore {
    /// Records events in the transaction of the write they report. SQLite has one writer at a
    /// time, so sequence numbers commit in order.
    func record(_ events: [PendingEvent], _ db: Database, at time: Date) throws {
        guard self.recordsEvents, !events.isEmpty else { return }
        let statement = try db.cachedStatement(
            sql: """
                INSERT INTO session_events (id, type, occurred_at, session_id, user_id, reason, node, detail, order_key)
                VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
                """
        )
        for event in events {
            try statement.execute(arguments: [
                SessionEvent.makeID(at: time), event.kind.rawValue, time.millisecondsSince1970, event.sessionID, event.userID,
                event.reason, self.node, event.detail, event.orderKey,
            ])
        }
    }

    static let eventColumns = "seq, id, type, occurred_at, session_id, user_id, reason, node, detail"

    public func sessionEvents(after cursor: Int64, filter: SessionEventFilter, limit: Int) async throws -> [SessionEvent] {
        var conditions = ["seq > ?"]
        var arguments: [any DatabaseValueConvertible] = [cursor]
        if let sessionID = filter.sessionID {
            conditions.append("session_id = ?")
            arguments.append(sessionID)
        }
        if let userID = filter.userID {
            conditions.append("user_id = ?")
            arguments.append(userID)
        }
        if let kinds = filter.kinds {
            guard !kinds.isEmpty else { return [] }
            conditions.append("type IN (\(Array(repeating: "?", count: kinds.count).joined(separator: ", ")))")
            arguments.append(contentsOf: kinds.map(\.rawValue).sorted())
        }
        arguments.append(limit)
        let sql = "SELECT \(Self.eventColumns) FROM session_events WHERE \(conditions.joined(separator: " AND ")) ORDER BY seq LIMIT ?"
        guard let values = StatementArguments(arguments) else { throw StoreError(reason: "event filter arguments") }
        return try await self.read { db in
            try Row.fetchAll(db, sql: sql, arguments: values).map(Self.event(from:))
        }
    }

    public func latestSessionEvent() async throws -> Int64 {
        try await self.read { db in
            // The AUTOINCREMENT counter survives deleting the newest rows; max(seq) would not.
            try Int64.fetchOne(db, sql: "SELECT seq FROM sqlite_sequence WHERE name = 'session_events'") ?? 0
        }
    }

    public func recordExpiries(at now: Date, idleGrace: Duration, limit: Int) async throws -> RecordedExpiries {
        let graceCutoff = now.millisecondsSince1970 - idleGrace.millisecondCount
        return try await self.write { db in
            let rows = try Row.fetchAll(
                db,
                sql: """
                    UPDATE sessions SET expiry_recorded_at = ?1
                    WHERE id IN (
                        SELECT id FROM sessions
                        WHERE revoked_at IS NULL AND expiry_recorded_at IS NULL AND idle_expires_at <= ?1
                            AND (idle_expires_at <= ?2 OR idle_expires_at >= absolute_expires_at)
                        ORDER BY idle_expires_at
                        LIMIT ?3
                    )
                    RETURNING id, user_id, idle_expires_at, absolute_expires_at
                    """,
                arguments: [now.millisecondsSince1970, graceCutoff, limit]
            )
            let events = try rows.map { row in
                PendingEvent.expiry(
                    sessionID: try row.decode(forColumn: "id"),
                    userID: try row.decode(forColumn: "user_id"),
                    idleExpiresAt: Date(millisecondsSince1970: try row.decode(forColumn: "idle_expires_at")),
                    absoluteExpiresAt: Date(millisecondsSince1970: try row.decode(forColumn: "absolute_expires_at"))
                )
            }
            try self.record(PendingEvent.inDeadlineOrder(events), db, at: now)
            return RecordedExpiries(events)
        }
    }

    public func deleteSessionEvents(before cutoff: Date, limit: Int) async throws -> Int {
        try await self.write { db in
            // The oldest events first, in sequence order, up to the first one recorded at or after
            // the cutoff: a walk of the primary key that never reads past the batch.
            let oldest = try Row.fetchAll(db, sql: "SELECT seq, occurred_at FROM session_events ORDER BY seq LIMIT ?", arguments: [limit])
            let expired = oldest.prefix { row in (row["occurred_at"] as Int64? ?? .max) < cutoff.millisecondsSince1970 }
            guard let last = expired.last, let sequence = last["seq"] as Int64? else { return 0 }
            try db.execute(sql: "DELETE FROM session_events WHERE seq <= ?", arguments: [sequence])
            return db.changesCount
        }
    }

    static func event(from row: Row) throws -> SessionEvent {
        try SessionEvent(
            sequence: try row.decode(forColumn: "seq"),
            id: try row.decode(forColumn: "id"),
            type: try row.decode(forColumn: "type"),
            time: Date(millisecondsSince1970: try row.decode(forColumn: "occurred_at")),
            sessionID: try row.decode(forColumn: "session_id"),
            userID: try row.decode(forColumn: "user_id"),
            reason: try row.decode(forColumn: "reason"),
            node: try row.decode(forColumn: "node"),
            detail: try row.decode(forColumn: "detail")
        )
    }
}
