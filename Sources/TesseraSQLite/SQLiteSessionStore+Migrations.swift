package import GRDB

extension SQLiteSessionStore {
    /// The migrations this version of Tessera knows, oldest first. Never edit one that shipped;
    /// add another.
    package static var migrator: DatabaseMigrator {
        var migrator = DatabaseMigrator()
        migrator.registerMigration("v1: sessions, users, throttle counters") { db in
            try db.execute(
                sql: """
                    CREATE TABLE sessions (
                        id TEXT PRIMARY KEY NOT NULL,
                        token_hash BLOB NOT NULL UNIQUE,
                        user_id TEXT NOT NULL,
                        created_at INTEGER NOT NULL,
                        last_seen_at INTEGER NOT NULL,
                        idle_expires_at INTEGER NOT NULL,
                        absolute_expires_at INTEGER NOT NULL,
                        revoked_at INTEGER,
                        revocation_reason TEXT,
                        data TEXT NOT NULL,
                        data_version INTEGER NOT NULL,
                        ip_address TEXT,
                        user_agent TEXT,
                        label TEXT,
                        csrf_token TEXT NOT NULL
                    );
                    CREATE INDEX sessions_by_user ON sessions(user_id, created_at);
                    CREATE INDEX sessions_by_idle_deadline ON sessions(idle_expires_at);
                    CREATE INDEX sessions_by_revocation ON sessions(revoked_at) WHERE revoked_at IS NOT NULL;
                    CREATE TABLE users (
                        id TEXT PRIMARY KEY NOT NULL,
                        username TEXT NOT NULL UNIQUE COLLATE NOCASE,
                        password_hash TEXT NOT NULL,
                        created_at INTEGER NOT NULL
                    );
                    CREATE TABLE throttle_counters (
                        key TEXT PRIMARY KEY NOT NULL,
                        failures INTEGER NOT NULL,
                        window_started_at INTEGER NOT NULL
                    );
                    CREATE INDEX throttle_counters_by_window ON throttle_counters(window_started_at);
                    """
            )
        }
        migrator.registerMigration("v2: session change feed") { db in
            try db.execute(
                sql: """
                    CREATE TABLE session_changes (
                        seq INTEGER PRIMARY KEY AUTOINCREMENT,
                        session_id TEXT,
                        user_id TEXT,
                        changed_at INTEGER NOT NULL
                    );
                    CREATE INDEX session_changes_by_time ON session_changes(changed_at);
                    """
            )
        }
        migrator.registerMigration("v3: refresh tokens") { db in
            try db.execute(
                sql: """
                    CREATE TABLE refresh_tokens (
                        token_hash BLOB PRIMARY KEY NOT NULL,
                        session_id TEXT NOT NULL REFERENCES sessions(id) ON DELETE CASCADE,
                        created_at INTEGER NOT NULL,
                        rotated_at INTEGER,
                        sealed_successor BLOB
                    );
                    CREATE INDEX refresh_tokens_by_session ON refresh_tokens(session_id);
                    """
            )
        }
        migrator.registerMigration("v4: login attempts in flight") { db in
            try db.execute(
                sql: """
                    ALTER TABLE throttle_counters ADD COLUMN in_flight INTEGER NOT NULL DEFAULT 0;
                    ALTER TABLE throttle_counters ADD COLUMN in_flight_since INTEGER NOT NULL DEFAULT 0;
                    """
            )
        }
        migrator.registerMigration("v5: session events, webhook deliveries") { db in
            try db.execute(sql: Self.eventsMigration)
        }
        migrator.registerMigration("v6: user roles, disabled users, sessions by creation") { db in
            // The admin API pages through every session newest first: an index in that order
            // (appended to at the end, as sessions are created in time order).
            try db.execute(
                sql: """
                    ALTER TABLE users ADD COLUMN role TEXT NOT NULL DEFAULT 'user';
                    ALTER TABLE users ADD COLUMN disabled_at INTEGER;
                    CREATE INDEX sessions_by_creation ON sessions(created_at, id);
                    """
            )
        }
        return migrator
    }

    /// The outbox of session events, the expiry marker of sessions (set for sessions that ended
    /// before it existed, so an upgrade reports no old expiries), and webhook delivery state.
    ///
    /// The outbox has no index besides its sequence, so that recording an event is an append:
    /// every index would be a write more on every change (and one keyed by session a random
    /// one). Ids are unique by construction (80 random bits) and nothing looks an event up by
    /// id; readers and the sweeper walk the sequence from a cursor, and streams read the newest
    /// events from memory (``SessionEventHub``).
    static let eventsMigration = """
        CREATE TABLE session_events (
            seq INTEGER PRIMARY KEY AUTOINCREMENT,
            id TEXT NOT NULL,
            type TEXT NOT NULL,
            occurred_at INTEGER NOT NULL,
            session_id TEXT,
            user_id TEXT NOT NULL,
            reason TEXT,
            node TEXT NOT NULL,
            detail TEXT,
            order_key TEXT NOT NULL
        );
        ALTER TABLE sessions ADD COLUMN expiry_recorded_at INTEGER;
        UPDATE sessions SET expiry_recorded_at = idle_expires_at
            WHERE revoked_at IS NULL AND idle_expires_at <= CAST(strftime('%s', 'now') AS INTEGER) * 1000;
        CREATE INDEX sessions_by_unrecorded_expiry ON sessions(idle_expires_at)
            WHERE revoked_at IS NULL AND expiry_recorded_at IS NULL;
        CREATE TABLE webhook_endpoints (
            name TEXT PRIMARY KEY NOT NULL,
            cursor INTEGER NOT NULL,
            created_at INTEGER NOT NULL,
            disabled_at INTEGER,
            disabled_reason TEXT
        );
        CREATE TABLE webhook_deliveries (
            endpoint TEXT NOT NULL,
            seq INTEGER NOT NULL,
            order_key TEXT NOT NULL,
            state TEXT NOT NULL,
            attempts INTEGER NOT NULL DEFAULT 0,
            next_attempt_at INTEGER NOT NULL,
            leased_until INTEGER,
            last_status INTEGER,
            last_error TEXT,
            PRIMARY KEY (endpoint, seq)
        );
        CREATE INDEX webhook_deliveries_pending_by_key ON webhook_deliveries(endpoint, order_key, seq) WHERE state = 'pending';
        CREATE INDEX webhook_deliveries_due ON webhook_deliveries(endpoint, next_attempt_at) WHERE state = 'pending';
        """
}
