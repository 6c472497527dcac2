public import Foundation
import GRDB
public import Tessera

extension SQLiteSessionStore: WebhookDeliveryStore {
    public func registerWebhookEndpoint(_ name: String, at now: Date) async throws -> WebhookEndpointState {
        try await self.write { db in
            try db.execute(
                sql: """
                    INSERT INTO webhook_endpoints (name, cursor, created_at)
                    VALUES (?, coalesce((SELECT seq FROM sqlite_sequence WHERE name = 'session_events'), 0), ?)
                    ON CONFLICT (name) DO NOTHING
                    """,
                arguments: [name, now.millisecondsSince1970]
            )
            guard let state = try Self.endpointStates(db, name: name).first else {
                throw StoreError(reason: "the webhook endpoint was not created")
            }
            return state
        }
    }

    public func fanOutWebhookDeliveries(endpoint: String, kinds: Set<SessionEvent.Kind>?, at now: Date, limit: Int) async throws -> Int {
        try await self.write { db in
            guard
                let row = try Row.fetchOne(db, sql: "SELECT cursor, disabled_at FROM webhook_endpoints WHERE name = ?", arguments: [endpoint]),
                (try row.decode(Int64?.self, forColumn: "disabled_at")) == nil
            else { return 0 }
            let cursor: Int64 = try row.decode(forColumn: "cursor")
            let events = try Row.fetchAll(
                db,
                sql: "SELECT seq, type, order_key FROM session_events WHERE seq > ? ORDER BY seq LIMIT ?",
                arguments: [cursor, limit]
            )
            guard let last = events.last else { return 0 }
            let insert = try db.cachedStatement(
                sql: """
                    INSERT INTO webhook_deliveries (endpoint, seq, order_key, state, attempts, next_attempt_at)
                    VALUES (?, ?, ?, 'pending', 0, ?) ON CONFLICT DO NOTHING
                    """
            )
            for event in events {
                let type: String = try event.decode(forColumn: "type")
                if let kinds, !(SessionEvent.Kind(rawValue: type).map(kinds.contains) ?? false) { continue }
                try insert.execute(arguments: [
                    endpoint, try event.decode(Int64.self, forColumn: "seq"), try event.decode(String.self, forColumn: "order_key"),
                    now.millisecondsSince1970,
                ])
            }
            try db.execute(
                sql: "UPDATE webhook_endpoints SET cursor = ? WHERE name = ?",
                arguments: [try last.decode(Int64.self, forColumn: "seq"), endpoint]
            )
            return events.count
        }
    }

    public func claimWebhookDeliveries(endpoint: String, at now: Date, leaseUntil: Date, limit: Int) async throws -> [WebhookDelivery] {
        try await self.write { db in
            let rows = try Row.fetchAll(
                db,
                sql: """
                    SELECT d.endpoint, d.state, d.attempts, d.next_attempt_at, d.last_status, d.last_error, \(Self.eventColumns("e"))
                    FROM webhook_deliveries d JOIN session_events e ON e.seq = d.seq
                    WHERE d.endpoint = ?1 AND d.state = 'pending' AND d.next_attempt_at <= ?2
                        AND EXISTS (SELECT 1 FROM webhook_endpoints w WHERE w.name = d.endpoint AND w.disabled_at IS NULL)
                        AND (d.leased_until IS NULL OR d.leased_until <= ?2)
                        AND NOT EXISTS (
                            SELECT 1 FROM webhook_deliveries p
                            WHERE p.endpoint = d.endpoint AND p.order_key = d.order_key AND p.state = 'pending' AND p.seq < d.seq
                        )
                    ORDER BY d.seq
                    LIMIT ?3
                    """,
                arguments: [endpoint, now.millisecondsSince1970, limit]
            )
            let deliveries = try rows.map(Self.delivery(from:))
            let lease = try db.cachedStatement(sql: "UPDATE webhook_deliveries SET leased_until = ? WHERE endpoint = ? AND seq = ?")
            for delivery in deliveries {
                try lease.execute(arguments: [leaseUntil.millisecondsSince1970, endpoint, delivery.event.sequence])
            }
            return deliveries
        }
    }

    public func recordWebhookDelivered(endpoint: String, sequences: [Int64], at now: Date) async throws {
        guard !sequences.isEmpty else { return }
        try await self.write { db in
            let delete = try db.cachedStatement(sql: "DELETE FROM webhook_deliveries WHERE endpoint = ? AND seq = ?")
            for sequence in sequences { try delete.execute(arguments: [endpoint, sequence]) }
        }
    }

    public func recordWebhookAttemptFailed(
        endpoint: String,
        sequence: Int64,
        at now: Date,
        nextAttemptAt: Date?,
        status: Int?,
        error: String
    ) async throws {
        try await self.write { db in
            try db.execute(
                sql: """
                    UPDATE webhook_deliveries
                    SET attempts = attempts + 1, leased_until = NULL, last_status = ?, last_error = ?,
                        state = CASE WHEN ?3 IS NULL THEN 'dead' ELSE 'pending' END, next_attempt_at = coalesce(?3, next_attempt_at)
                    WHERE endpoint = ? AND seq = ?
                    """,
                arguments: [status, error, nextAttemptAt?.millisecondsSince1970, endpoint, sequence]
            )
        }
    }

    public func disableWebhookEndpoint(_ name: String, at now: Date, reason: String) async throws {
        try await self.write { db in
            try db.execute(
                sql: "UPDATE webhook_endpoints SET disabled_at = ?, disabled_reason = ? WHERE name = ? AND disabled_at IS NULL",
                arguments: [now.millisecondsSince1970, reason, name]
            )
            // Leases end with the endpoint: nothing is in flight for a disabled one.
            try db.execute(sql: "UPDATE webhook_deliveries SET leased_until = NULL WHERE endpoint = ?", arguments: [name])
        }
    }

    public func enableWebhookEndpoint(_ name: String) async throws -> Bool {
        try await self.write { db in
            try db.execute(
                sql: "UPDATE webhook_endpoints SET disabled_at = NULL, disabled_reason = NULL WHERE name = ? AND disabled_at IS NOT NULL",
                arguments: [name]
            )
            return db.changesCount > 0
        }
    }

    public func webhookEndpoints(at now: Date) async throws -> [WebhookEndpointState] {
        try await self.read { db in try Self.endpointStates(db, name: nil) }
    }

    public func webhookDeliveries(endpoint: String?, state: WebhookDelivery.State, limit: Int) async throws -> [WebhookDelivery] {
        try await self.read { db in
            try Row.fetchAll(
                db,
                sql: """
                    SELECT d.endpoint, d.state, d.attempts, d.next_attempt_at, d.last_status, d.last_error, \(Self.eventColumns("e"))
                    FROM webhook_deliveries d JOIN session_events e ON e.seq = d.seq
                    WHERE (?1 IS NULL OR d.endpoint = ?1) AND d.state = ?2
                    ORDER BY d.seq
                    LIMIT ?3
                    """,
                arguments: [endpoint, state.rawValue, limit]
            ).map(Self.delivery(from:))
        }
    }

    public func retryWebhookDeliveries(endpoint: String?, sequence: Int64?, at now: Date) async throws -> Int {
        try await self.write { db in
            try db.execute(
                sql: """
                    UPDATE webhook_deliveries SET state = 'pending', attempts = 0, next_attempt_at = ?1, leased_until = NULL
                    WHERE state = 'dead' AND (?2 IS NULL OR endpoint = ?2) AND (?3 IS NULL OR seq = ?3)
                    """,
                arguments: [now.millisecondsSince1970, endpoint, sequence]
            )
            return db.changesCount
        }
    }

    static func eventColumns(_ table: String) -> String {
        Self.eventColumns.split(separator: ", ").map { "\(table).\($0)" }.joined(separator: ", ")
    }

    static func delivery(from row: Row) throws -> WebhookDelivery {
        let state: String = try row.decode(forColumn: "state")
        return WebhookDelivery(
            endpoint: try row.decode(forColumn: "endpoint"),
            event: try Self.event(from: row),
            state: WebhookDelivery.State(rawValue: state) ?? .pending,
            attempts: try row.decode(forColumn: "attempts"),
            nextAttemptAt: Date(millisecondsSince1970: try row.decode(forColumn: "next_attempt_at")),
            lastStatus: try row.decode(forColumn: "last_status"),
            lastError: try row.decode(forColumn: "last_error")
        )
    }

    static func endpointStates(_ db: Database, name: String?) throws -> [WebhookEndpointState] {
        try Row.fetchAll(
            db,
            sql: """
                SELECT w.name, w.cursor, w.disabled_at, w.disabled_reason,
                    (SELECT count(*) FROM webhook_deliveries d WHERE d.endpoint = w.name AND d.state = 'pending') AS pending,
                    (SELECT count(*) FROM webhook_deliveries d WHERE d.endpoint = w.name AND d.state = 'dead') AS dead,
                    (SELECT min(e.occurred_at) FROM webhook_deliveries d JOIN session_events e ON e.seq = d.seq
                        WHERE d.endpoint = w.name AND d.state = 'pending') AS oldest
                FROM webhook_endpoints w
                WHERE ?1 IS NULL OR w.name = ?1
                ORDER BY w.name
                """,
            arguments: [name]
        ).map { row in
            WebhookEndpointState(
                name: try row.decode(forColumn: "name"),
                cursor: try row.decode(forColumn: "cursor"),
                disabledAt: (try row.decode(Int64?.self, forColumn: "disabled_at")).map(Date.init(millisecondsSince1970:)),
                disabledReason: try row.decode(forColumn: "disabled_reason"),
                pending: try row.decode(forColumn: "pending"),
                dead: try row.decode(forColumn: "dead"),
                oldestPendingAt: (try row.decode(Int64?.self, forColumn: "oldest")).map(Date.init(millisecondsSince1970:))
            )
        }
    }
}
