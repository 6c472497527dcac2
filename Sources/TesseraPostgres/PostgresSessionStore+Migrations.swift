public import Foundation
import Tessera
import Logging
import PostgresNIO

extension PostgresSessionStore {
    // MARK: Migrations

    /// The migrations this version of Tessera knows, oldest first. Never edit one that shipped.
    static let migrations: [(version: Int, name: String, statements: [String])] = [
        (
            1, "sessions, users, throttle counters",
            [
                """
                CREATE TABLE sessions (
                    id TEXT PRIMARY KEY,
                    token_hash BYTEA NOT NULL UNIQUE,
                    user_id TEXT NOT NULL,
                    created_at BIGINT NOT NULL,
                    last_seen_at BIGINT NOT NULL,
                    idle_expires_at BIGINT NOT NULL,
                    absolute_expires_at BIGINT NOT NULL,
                    revoked_at BIGINT,
                    revocation_reason TEXT,
                    data TEXT NOT NULL,
                    data_version BIGINT NOT NULL,
                    ip_address TEXT,
                    user_agent TEXT,
                    label TEXT,
                    csrf_token TEXT NOT NULL
                )
                """,
                "CREATE INDEX sessions_by_user ON sessions (user_id, created_at)",
                "CREATE INDEX sessions_by_idle_deadline ON sessions (idle_expires_at)",
                "CREATE INDEX sessions_by_revocation ON sessions (revoked_at) WHERE revoked_at IS NOT NULL",
                """
                CREATE TABLE users (
                    id TEXT PRIMARY KEY,
                    username TEXT NOT NULL,
                    password_hash TEXT NOT NULL,
                    created_at BIGINT NOT NULL
                )
                """,
                "CREATE UNIQUE INDEX users_by_username ON users (lower(username))",
                """
                CREATE TABLE throttle_counters (
                    key TEXT PRIMARY KEY,
                    failures BIGINT NOT NULL,
                    window_started_at BIGINT NOT NULL
                )
                """,
                "CREATE INDEX throttle_counters_by_window ON throttle_counters (window_started_at)",
            ]
        ),
        (
            2, "session change feed",
            [
                """
                CREATE TABLE session_changes (
                    seq BIGSERIAL PRIMARY KEY,
                    session_id TEXT,
                    user_id TEXT,
                    changed_at BIGINT NOT NULL
                )
                """,
                "CREATE INDEX session_changes_by_time ON session_changes (changed_at)",
            ]
        ),
        (
            3, "refresh tokens",
            [
                """
                CREATE TABLE refresh_tokens (
                    token_hash BYTEA PRIMARY KEY,
                    session_id TEXT NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
                    created_at BIGINT NOT NULL,
                    rotated_at BIGINT,
                    sealed_successor BYTEA
                )
                """,
                "CREATE INDEX refresh_tokens_by_session ON refresh_tokens (session_id)",
            ]
        ),
        (
            4, "login attempts in flight",
            [
                "ALTER TABLE throttle_counters ADD COLUMN in_flight BIGINT NOT NULL DEFAULT 0",
                "ALTER TABLE throttle_counters ADD COLUMN in_flight_since BIGINT NOT NULL DEFAULT 0",
            ]
        ),
        (5, "session events, webhook deliveries", PostgresSessionStore.eventsMigration),
        (
            6, "user roles, disabled users, sessions by creation",
            [
                "ALTER TABLE users ADD COLUMN role TEXT NOT NULL DEFAULT 'user'",
                "ALTER TABLE users ADD COLUMN disabled_at BIGINT",
                // The admin API pages through every session newest first.
                "CREATE INDEX sessions_by_creation ON sessions (created_at, id)",
            ]
        ),
    ]

    /// Applies pending migrations in one transaction under an advisory lock, so that nodes
    /// starting at once apply each migration exactly once.
    public func migrate() async throws {
        try await self.perform { client in
            try await client.withTransaction(logger: self.logger) { connection in
                // A fixed key: "tessera" in ASCII.
                try await connection.query("SELECT pg_advisory_xact_lock(\(Int64(0x7465_7373_6572_61)))", logger: self.logger)
                try await connection.query("CREATE SCHEMA IF NOT EXISTS \(unescaped: self.configuration.schema)", logger: self.logger)
                try await connection.query(
                    """
                    CREATE TABLE IF NOT EXISTS tessera_migrations (
                        version BIGINT PRIMARY KEY, name TEXT NOT NULL, applied_at TIMESTAMPTZ NOT NULL DEFAULT now()
                    )
                    """,
                    logger: self.logger
                )
                var applied = Set<Int>()
                for try await version in try await connection.query("SELECT version FROM tessera_migrations", logger: self.logger)
                    .decode(Int.self)
                {
                    applied.insert(version)
                }
                for migration in Self.migrations where !applied.contains(migration.version) {
                    for statement in migration.statements {
                        try await connection.query(PostgresQuery(unsafeSQL: statement), logger: self.logger)
                    }
                    try await connection.query(
                        "INSERT INTO tessera_migrations (version, name) VALUES (\(migration.version), \(migration.name))",
                        logger: self.logger
                    )
                    self.logger.info("Applied migration", metadata: ["version": "\(migration.version)", "name": "\(migration.name)"])
                }
            }
        }
    }

    /// Drops the store's schema and everything in it. For tests that made a schema of their own.
    package func dropSchema() async throws {
        guard self.configuration.schema != "public" else { throw InvalidURLError(reason: "refusing to drop the public schema") }
        try await self.execute("DROP SCHEMA IF EXISTS \(unescaped: self.configuration.schema) CASCADE")
    }

    /// The migrations this version of Tessera knows, oldest first, named as
    /// ``appliedMigrations()`` names them.
    public static var knownMigrations: [String] { Self.migrations.map { "v\($0.version): \($0.name)" } }

    /// The database server's clock, for clock-skew checks.
    public func serverTime() async throws -> Date {
        let milliseconds =
            try await self.rows("SELECT (extract(epoch FROM clock_timestamp()) * 1000)::BIGINT") {
                try $0.decode(Int64.self)
            }.first ?? 0
        return Date(millisecondsSince1970: milliseconds)
    }

    /// The migrations applied to the database, oldest first.
    public func appliedMigrations() async throws -> [String] {
        try await self.rows("SELECT version, name FROM tessera_migrations ORDER BY version") { row in
            let (version, name) = try row.decode((Int, String).self)
            return "v\(version): \(name)"
        }
    }

    /// The outbox of session events, the expiry marker of sessions (set for sessions that ended
    /// before it existed, so an upgrade reports no old expiries), and webhook delivery state; as
    /// in the SQLite store, the outbox has no index besides its sequence.
    static let eventsMigration = [
        """
        CREATE TABLE session_events (
            seq BIGSERIAL PRIMARY KEY,
            id TEXT NOT NULL,
            type TEXT NOT NULL,
            occurred_at BIGINT NOT NULL,
            session_id TEXT,
            user_id TEXT NOT NULL,
            reason TEXT,
            node TEXT NOT NULL,
            detail TEXT,
            order_key TEXT NOT NULL
        )
        """,
        "ALTER TABLE sessions ADD COLUMN expiry_recorded_at BIGINT",
        """
        UPDATE sessions SET expiry_recorded_at = idle_expires_at
        WHERE revoked_at IS NULL AND idle_expires_at <= (extract(epoch FROM now()) * 1000)::BIGINT
        """,
        """
        CREATE INDEX sessions_by_unrecorded_expiry ON sessions (idle_expires_at)
        WHERE revoked_at IS NULL AND expiry_recorded_at IS NULL
        """,
        """
        CREATE TABLE webhook_endpoints (
            name TEXT PRIMARY KEY,
            cursor BIGINT NOT NULL,
            created_at BIGINT NOT NULL,
            disabled_at BIGINT,
            disabled_reason TEXT
        )
        """,
        """
        CREATE TABLE webhook_deliveries (
            endpoint TEXT NOT NULL,
            seq BIGINT NOT NULL,
            order_key TEXT NOT NULL,
            state TEXT NOT NULL,
            attempts INT NOT NULL DEFAULT 0,
            next_attempt_at BIGINT NOT NULL,
            leased_until BIGINT,
            last_status INT,
            last_error TEXT,
            PRIMARY KEY (endpoint, seq)
        )
        """,
        "CREATE INDEX webhook_deliveries_pending_by_key ON webhook_deliveries (endpoint, order_key, seq) WHERE state = 'pending'",
        "CREATE INDEX webhook_deliveries_due ON webhook_deliveries (endpoint, next_attempt_at) WHERE state = 'pending'",
    ]
}
