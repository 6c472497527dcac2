public import Foundation
import PostgresNIO
public import Tessera

extension PostgresSessionStore: WebhookDeliveryStore {
    public func registerWebhookEndpoint(_ name: String, at now: Date) async throws -> WebhookEndpointState {
        try await self.execute(
            """
            INSERT INTO webhook_endpoints (name, cursor, created_at)
            VALUES (\(name), (SELECT coalesce(max(seq), 0) FROM session_events), \(now.millisecondsSince1970))
            ON CONFLICT (name) DO NOTHING
            """
        )
        guard let state = try await self.endpointStates(name: name).first else {
            throw StoreError(reason: "the webhook endpoint was not created")
        }
        return state
    }

    public func fanOutWebhookDeliveries(endpoint: String, kinds: Set<SessionEvent.Kind>?, at now: Date, limit: Int) async throws -> Int {
        let types = kinds.map { $0.map(\.rawValue).sorted() }
        return try await self.perform { client in
            try await client.withTransaction(logger: self.logger) { connection in
                // The endpoint's row lock makes nodes fan out one at a time.
                let endpointRow = try await connection.query(
                    "SELECT cursor FROM webhook_endpoints WHERE name = \(endpoint) AND disabled_at IS NULL FOR UPDATE",
                    logger: self.logger
                ).decode(Int64.self).first { _ in true }
                guard let cursor = endpointRow else { return 0 }
                let moved = try await connection.query(
                    """
                    WITH batch AS (
                        SELECT seq, type, order_key FROM session_events WHERE seq > \(cursor) ORDER BY seq LIMIT \(limit)
                    ), inserted AS (
                        INSERT INTO webhook_deliveries (endpoint, seq, order_key, state, attempts, next_attempt_at)
                        SELECT \(endpoint), seq, order_key, 'pending', 0, \(now.millisecondsSince1970) FROM batch
                        WHERE \(types)::TEXT[] IS NULL OR type = ANY(\(types)::TEXT[])
                        ON CONFLICT DO NOTHING
                    )
                    SELECT count(*), max(seq) FROM batch
                    """,
                    logger: self.logger
                ).decode((Int, Int64?).self).first { _ in true }
                guard let (count, last) = moved, let last else { return 0 }
                try await connection.query("UPDATE webhook_endpoints SET cursor = \(last) WHERE name = \(endpoint)", logger: self.logger)
                return count
            }
        }
    }

    public func claimWebhookDeliveries(endpoint: String, at now: Date, leaseUntil: Date, limit: Int) async throws -> [WebhookDelivery] {
        let at = now.millisecondsSince1970
        // SKIP LOCKED: nodes claiming at once take different deliveries; the lease keeps them
        // from taking one another's after the claim commits.
        return try await self.rows(
            """
            WITH due AS (
                SELECT d.seq FROM webhook_deliveries d
                WHERE d.endpoint = \(endpoint) AND d.state = 'pending' AND d.next_attempt_at <= \(at)
                    AND EXISTS (SELECT 1 FROM webhook_endpoints w WHERE w.name = d.endpoint AND w.disabled_at IS NULL)
                    AND (d.leased_until IS NULL OR d.leased_until <= \(at))
                    AND NOT EXISTS (
                        SELECT 1 FROM webhook_deliveries p
                        WHERE p.endpoint = d.endpoint AND p.order_key = d.order_key AND p.state = 'pending' AND p.seq < d.seq
                    )
                ORDER BY d.seq
                LIMIT \(limit)
                FOR UPDATE SKIP LOCKED
            ), leased AS (
                UPDATE webhook_deliveries w SET leased_until = \(leaseUntil.millisecondsSince1970)
                FROM due WHERE w.endpoint = \(endpoint) AND w.seq = due.seq
                RETURNING w.*
            )
            SELECT \(unescaped: Self.deliveryColumns) FROM leased d JOIN session_events e ON e.seq = d.seq ORDER BY d.seq
            """
        ) { try Self.delivery(from: $0) }
    }

    public func recordWebhookDelivered(endpoint: String, sequences: [Int64], at now: Date) async throws {
        guard !sequences.isEmpty else { return }
        try await self.execute("DELETE FROM webhook_deliveries WHERE endpoint = \(endpoint) AND seq = ANY(\(sequences)::BIGINT[])")
    }

    public func recordWebhookAttemptFailed(
        endpoint: String,
        sequence: Int64,
        at now: Date,
        nextAttemptAt: Date?,
        status: Int?,
        error: String
    ) async throws {
        let next = nextAttemptAt?.millisecondsSince1970
        try await self.execute(
            """
            UPDATE webhook_deliveries
            SET attempts = attempts + 1, leased_until = NULL, last_status = \(status), last_error = \(error),
                state = CASE WHEN \(next)::BIGINT IS NULL THEN 'dead' ELSE 'pending' END,
                next_attempt_at = coalesce(\(next)::BIGINT, next_attempt_at)
            WHERE endpoint = \(endpoint) AND seq = \(sequence)
            """
        )
    }

    public func disableWebhookEndpoint(_ name: String, at now: Date, reason: String) async throws {
        try await self.perform { client in
            try await client.withTransaction(logger: self.logger) { connection in
                try await connection.query(
                    """
                    UPDATE webhook_endpoints SET disabled_at = \(now.millisecondsSince1970), disabled_reason = \(reason)
                    WHERE name = \(name) AND disabled_at IS NULL
                    """,
                    logger: self.logger
                )
                try await connection.query("UPDATE webhook_deliveries SET leased_until = NULL WHERE endpoint = \(name)", logger: self.logger)
            }
        }
    }

    public func enableWebhookEndpoint(_ name: String) async throws -> Bool {
        try await self.count(
            "UPDATE webhook_endpoints SET disabled_at = NULL, disabled_reason = NULL WHERE name = \(name) AND disabled_at IS NOT NULL"
        ) > 0
    }

    public func webhookEndpoints(at now: Date) async throws -> [WebhookEndpointState] {
        try await self.endpointStates(name: nil)
    }

    public func webhookDeliveries(endpoint: String?, state: WebhookDelivery.State, limit: Int) async throws -> [WebhookDelivery] {
        try await self.rows(
            """
            SELECT \(unescaped: Self.deliveryColumns) FROM webhook_deliveries d JOIN session_events e ON e.seq = d.seq
            WHERE (\(endpoint)::TEXT IS NULL OR d.endpoint = \(endpoint)) AND d.state = \(state.rawValue)
            ORDER BY d.seq LIMIT \(limit)
            """
        ) { try Self.delivery(from: $0) }
    }

    public func retryWebhookDeliveries(endpoint: String?, sequence: Int64?, at now: Date) async throws -> Int {
        try await self.count(
            """
            UPDATE webhook_deliveries SET state = 'pending', attempts = 0, next_attempt_at = \(now.millisecondsSince1970), leased_until = NULL
            WHERE state = 'dead' AND (\(endpoint)::TEXT IS NULL OR endpoint = \(endpoint)) AND (\(sequence)::BIGINT IS NULL OR seq = \(sequence))
            """
        )
    }

    static let deliveryColumns =
        "d.endpoint, d.state, d.attempts, d.next_attempt_at, d.last_status, d.last_error, "
        + PostgresSessionStore.eventColumns.split(separator: ", ").map { "e.\($0)" }.joined(separator: ", ")

    static func delivery(from row: PostgresRow) throws -> WebhookDelivery {
        let cells = row.makeRandomAccess()
        let event = try SessionEvent(
            sequence: try cells["seq"].decode(Int64.self),
            id: try cells["id"].decode(String.self),
            type: try cells["type"].decode(String.self),
            time: Date(millisecondsSince1970: try cells["occurred_at"].decode(Int64.self)),
            sessionID: try cells["session_id"].decode(String?.self),
            userID: try cells["user_id"].decode(String.self),
            reason: try cells["reason"].decode(String?.self),
            node: try cells["node"].decode(String.self),
            detail: try cells["detail"].decode(String?.self)
        )
        return WebhookDelivery(
            endpoint: try cells["endpoint"].decode(String.self),
            event: event,
            state: WebhookDelivery.State(rawValue: try cells["state"].decode(String.self)) ?? .pending,
            attempts: try cells["attempts"].decode(Int.self),
            nextAttemptAt: Date(millisecondsSince1970: try cells["next_attempt_at"].decode(Int64.self)),
            lastStatus: try cells["last_status"].decode(Int?.self),
            lastError: try cells["last_error"].decode(String?.self)
        )
    }

    func endpointStates(name: String?) async throws -> [WebhookEndpointState] {
        try await self.rows(
            """
            SELECT w.name, w.cursor, w.disabled_at, w.disabled_reason,
                (SELECT count(*) FROM webhook_deliveries d WHERE d.endpoint = w.name AND d.state = 'pending')::BIGINT,
                (SELECT count(*) FROM webhook_deliveries d WHERE d.endpoint = w.name AND d.state = 'dead')::BIGINT,
                (SELECT min(e.occurred_at) FROM webhook_deliveries d JOIN session_events e ON e.seq = d.seq
                    WHERE d.endpoint = w.name AND d.state = 'pending')
            FROM webhook_endpoints w
            WHERE \(name)::TEXT IS NULL OR w.name = \(name)
            ORDER BY w.name
            """
        ) { row in
            let (name, cursor, disabledAt, reason, pending, dead, oldest) = try row.decode(
                (String, Int64, Int64?, String?, Int, Int, Int64?).self
            )
            return WebhookEndpointState(
                name: name,
                cursor: cursor,
                disabledAt: disabledAt.map(Date.init(millisecondsSince1970:)),
                disabledReason: reason,
                pending: pending,
                dead: dead,
                oldestPendingAt: oldest.map(Date.init(millisecondsSince1970:))
            )
        }
    }
}
