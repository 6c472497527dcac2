public import Foundation
import NIOCore
import PostgresNIO
public import Tessera

extension PostgresSessionStore {
    /// Records events, and the change in the feed, in the transaction of the write they report,
    /// and announces the change.
    ///
    /// Sequence numbers must become visible in order, or a reader could move past one whose
    /// transaction has not committed yet. So they are drawn under a transaction-scoped advisory
    /// lock taken after the write itself: writers are serialized only for the moments between
    /// taking the lock and committing, and a number is drawn only by the holder of the lock.
    func record(_ events: [(PendingEvent, Date)], change: (SessionChange.Subject, Date)?, on connection: PostgresConnection) async throws {
        let events = self.configuration.recordsEvents ? events : []
        guard !events.isEmpty || change != nil else { return }
        try await connection.query("SELECT pg_advisory_xact_lock(hashtext(\(self.changeChannel)))", logger: self.logger)
        if let (subject, at) = change {
            let (sessionID, userID): (String?, String?)
            switch subject {
            case .session(let id): (sessionID, userID) = (id, nil)
            case .user(let id): (sessionID, userID) = (nil, id)
            }
            try await connection.query(
                "INSERT INTO session_changes (session_id, user_id, changed_at) VALUES (\(sessionID), \(userID), \(at.millisecondsSince1970))",
                logger: self.logger
            )
        }
        // One statement for all of them, in batches that stay under the bind limit.
        for batch in Self.statementBatches(events) {
            var bindings = PostgresBindings(capacity: batch.count * 9)
            var rows: [String] = []
            for (event, time) in batch {
                let base = bindings.count
                rows.append(Self.placeholders(after: base, columns: 9))
                bindings.append(SessionEvent.makeID(at: time))
                bindings.append(event.kind.rawValue)
                bindings.append(time.millisecondsSince1970)
                bindings.append(event.sessionID)
                bindings.append(event.userID)
                bindings.append(event.reason)
                bindings.append(self.configuration.node)
                bindings.append(event.detail)
                bindings.append(event.orderKey)
            }
            try await connection.query(
                PostgresQuery(
                    unsafeSQL: """
                        INSERT INTO session_events (id, type, occurred_at, session_id, user_id, reason, node, detail, order_key)
                        VALUES \(rows.joined(separator: ", "))
                        """,
                    binds: bindings
                ),
                logger: self.logger
            )
        }
        if change != nil {
            try await connection.query("SELECT pg_notify(\(self.changeChannel), '')", logger: self.logger)
        }
    }

    static let eventColumns = "seq, id, type, occurred_at, session_id, user_id, reason, node, detail"

    public func sessionEvents(after cursor: Int64, filter: SessionEventFilter, limit: Int) async throws -> [SessionEvent] {
        var bindings = PostgresBindings()
        var conditions: [String] = []
        func bind(_ condition: String, _ value: some PostgresNonThrowingEncodable) {
            bindings.append(value)
            conditions.append(condition.replacingOccurrences(of: "?", with: "$\(bindings.count)"))
        }
        bind("seq > ?", cursor)
        if let sessionID = filter.sessionID { bind("session_id = ?", sessionID) }
        if let userID = filter.userID { bind("user_id = ?", userID) }
        if let kinds = filter.kinds { bind("type = ANY(?::TEXT[])", kinds.map(\.rawValue).sorted()) }
        bindings.append(limit)
        let query = PostgresQuery(
            unsafeSQL: """
                SELECT \(Self.eventColumns) FROM session_events WHERE \(conditions.joined(separator: " AND "))
                ORDER BY seq LIMIT $\(bindings.count)
                """,
            binds: bindings
        )
        return try await self.rows(query) { try Self.event(from: $0) }
    }

    public func latestSessionEvent() async throws -> Int64 {
        try await self.rows("SELECT coalesce(max(seq), 0) FROM session_events") { try $0.decode(Int64.self) }.first ?? 0
    }

    public func recordExpiries(at now: Date, idleGrace: Duration, limit: Int) async throws -> RecordedExpiries {
        let at = now.millisecondsSince1970
        let graceCutoff = at - idleGrace.millisecondCount
        return try await self.perform { client in
            try await client.withTransaction(logger: self.logger) { connection in
                var events: [PendingEvent] = []
                for try await (id, userID, idle, absolute) in try await connection.query(
                    """
                    UPDATE sessions SET expiry_recorded_at = \(at)
                    WHERE id IN (
                        SELECT id FROM sessions
                        WHERE revoked_at IS NULL AND expiry_recorded_at IS NULL AND idle_expires_at <= \(at)
                            AND (idle_expires_at <= \(graceCutoff) OR idle_expires_at >= absolute_expires_at)
                        ORDER BY idle_expires_at
                        LIMIT \(limit)
                        FOR UPDATE SKIP LOCKED
                    )
                    RETURNING id, user_id, idle_expires_at, absolute_expires_at
                    """,
                    logger: self.logger
                ).decode((String, String, Int64, Int64).self) {
                    events.append(
                        PendingEvent.expiry(
                            sessionID: id,
                            userID: userID,
                            idleExpiresAt: Date(millisecondsSince1970: idle),
                            absoluteExpiresAt: Date(millisecondsSince1970: absolute)
                        )
                    )
                }
                try await self.record(PendingEvent.inDeadlineOrder(events).map { ($0, now) }, change: nil, on: connection)
                return RecordedExpiries(events)
            }
        }
    }

    public func deleteSessionEvents(before cutoff: Date, limit: Int) async throws -> Int {
        // The oldest events first, in sequence order, up to the first one recorded at or after
        // the cutoff: a walk of the primary key that never reads past the batch.
        try await self.count(
            """
            DELETE FROM session_events WHERE seq <= (
                SELECT max(seq) FROM (
                    SELECT seq, bool_and(occurred_at < \(cutoff.millisecondsSince1970)) OVER (ORDER BY seq) AS expired
                    FROM (SELECT seq, occurred_at FROM session_events ORDER BY seq LIMIT \(limit)) AS oldest
                ) AS prefix
                WHERE expired
            )
            """
        )
    }

    static func event(from row: PostgresRow) throws -> SessionEvent {
        let (sequence, id, type, time, sessionID, userID, reason, node, detail) = try row.decode(
            (Int64, String, String, Int64, String?, String, String?, String, String?).self
        )
        return try SessionEvent(
            sequence: sequence,
            id: id,
            type: type,
            time: Date(millisecondsSince1970: time),
            sessionID: sessionID,
            userID: userID,
            reason: reason,
            node: node,
            detail: detail
        )
    }
}
