public import Foundation
public import Logging
import NIOCore
import PostgresNIO
public import ServiceLifecycle
public import Tessera

/// The shared store for several Tessera nodes: PostgreSQL through postgres-nio.
///
/// The store owns a `PostgresClient`, whose connection pool runs as a `Service`: run the store
/// (it is a `Service`) alongside the application, then call ``migrate()`` before serving.
/// Times are stored as integer milliseconds since 1970, as in the SQLite store.
public final class PostgresSessionStore: SessionStore, SessionChangeNotifier, Service {
    /// Where and how to connect.
    public struct Configuration: Sendable {
        public var host: String
        public var port: Int
        public var username: String
        public var password: String?
        public var database: String
        /// The schema holding Tessera's tables (created if missing). Lets several Tessera
        /// deployments, or test runs, share one database.
        public var schema: String
        /// The most connections the pool opens.
        public var maximumConnections: Int
        /// How long to wait for a new connection before the store counts as unavailable.
        public var connectTimeout: Duration

        public init(
            host: String = "127.0.0.1",
            port: Int = 5432,
            username: String,
            password: String? = nil,
            database: String,
            schema: String = "public",
            maximumConnections: Int = 20,
            connectTimeout: Duration = .seconds(2)
        ) {
            self.host = host
            self.port = port
            self.username = username
            self.password = password
            self.database = database
            self.schema = schema
            self.maximumConnections = maximumConnections
            self.connectTimeout = connectTimeout
        }

        /// Parses `postgres://USER:PASS@HOST:PORT/DB[?schema=NAME]` (also `postgresql://`).
        ///
        /// - Throws: ``InvalidURLError`` with a sentence that never repeats the password.
        public init(url text: String) throws {
            guard let components = URLComponents(string: text), let scheme = components.scheme,
                ["postgres", "postgresql"].contains(scheme.lowercased())
            else {
                throw InvalidURLError(reason: "it must look like postgres://USER:PASSWORD@HOST:PORT/DATABASE")
            }
            guard let host = components.host, !host.isEmpty else { throw InvalidURLError(reason: "it names no host") }
            guard let user = components.user, !user.isEmpty else { throw InvalidURLError(reason: "it names no user") }
            let database = String(components.path.drop { $0 == "/" })
            guard !database.isEmpty, !database.contains("/") else { throw InvalidURLError(reason: "it names no database") }
            self.init(
                host: host,
                port: components.port ?? 5432,
                username: user.removingPercentEncoding ?? user,
                password: components.password.map { $0.removingPercentEncoding ?? $0 },
                database: database.removingPercentEncoding ?? database
            )
            if let schema = components.queryItems?.first(where: { $0.name == "schema" })?.value {
                guard Self.isValidIdentifier(schema) else {
                    throw InvalidURLError(reason: "the schema must be lowercase letters, digits and underscores")
                }
                self.schema = schema
            }
        }

        static func isValidIdentifier(_ name: String) -> Bool {
            guard let first = name.utf8.first, (1...63).contains(name.utf8.count), !(0x30...0x39).contains(first) else { return false }
            return name.utf8.allSatisfy { (0x61...0x7A).contains($0) || (0x30...0x39).contains($0) || $0 == UInt8(ascii: "_") }
        }

        /// The URL without its password, for messages and logs.
        public var redactedDescription: String {
            "postgres://\(self.username)\(self.password == nil ? "" : ":•••")@\(self.host):\(self.port)/\(self.database)"
                + (self.schema == "public" ? "" : "?schema=\(self.schema)")
        }
    }

    /// The store URL cannot be used.
    public struct InvalidURLError: Error, CustomStringConvertible {
        public var reason: String
        public var description: String { "The PostgreSQL URL cannot be used: \(self.reason)." }
    }

    public let configuration: Configuration
    let client: PostgresClient
    let logger: Logger

    /// - Throws: ``InvalidURLError`` when the schema is not lowercase letters, digits and
    ///   underscores (it is written into statements as it is).
    public init(configuration: Configuration, logger: Logger = Logger(label: "tessera.postgres")) throws {
        guard Configuration.isValidIdentifier(configuration.schema) else {
            throw InvalidURLError(reason: "the schema must be lowercase letters, digits and underscores")
        }
        var clientConfiguration = PostgresClient.Configuration(
            host: configuration.host,
            port: configuration.port,
            username: configuration.username,
            password: configuration.password,
            database: configuration.database,
            tls: .disable
        )
        clientConfiguration.options.maximumConnections = configuration.maximumConnections
        clientConfiguration.options.connectTimeout = configuration.connectTimeout
        clientConfiguration.options.additionalStartupParameters = [
            ("search_path", configuration.schema), ("application_name", "tessera"),
        ]
        self.configuration = configuration
        self.client = PostgresClient(configuration: clientConfiguration, backgroundLogger: logger)
        self.logger = logger
    }

    /// Runs the connection pool until cancelled.
    public func run() async {
        await self.client.run()
    }

    /// Opens one connection outside the pool and closes it, so that a configuration problem
    /// (server down, wrong password, missing database) is reported with PostgreSQL's own reason
    /// instead of a pool that keeps retrying.
    ///
    /// - Throws: ``ConnectionCheckError`` with a sentence that never contains the password.
    public func checkConnection() async throws {
        do {
            let connection = try await PostgresConnection.connect(configuration: self.connectionConfiguration, id: 0, logger: self.logger)
            try await connection.close()
        } catch let error as PSQLError {
            if let message = error.serverInfo?[.message] {
                throw ConnectionCheckError(reason: message)
            }
            let underlying = error.underlying.map { "\($0)" } ?? "\(error.code)"
            throw ConnectionCheckError(reason: underlying.contains("refused") ? "connection refused" : underlying)
        }
    }

    /// The settings of a connection outside the pool.
    var connectionConfiguration: PostgresConnection.Configuration {
        var configuration = PostgresConnection.Configuration(
            host: self.configuration.host,
            port: self.configuration.port,
            username: self.configuration.username,
            password: self.configuration.password,
            database: self.configuration.database,
            tls: .disable
        )
        configuration.options.connectTimeout = .init(self.configuration.connectTimeout)
        configuration.options.additionalStartupParameters = [("application_name", "tessera")]
        return configuration
    }

    /// The store could not be reached.
    public struct ConnectionCheckError: Error, CustomStringConvertible {
        public var reason: String
        public var description: String { self.reason }
    }

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

    // MARK: SessionStore

    public func ping() async throws {
        _ = try await self.rows("SELECT 1") { try $0.decode(Int.self) }
    }

    public func insertSessions(_ sessions: [Session]) async throws {
        guard !sessions.isEmpty else { return }
        let rows = sessions.map { session in (session, session.data.storedJSON) }
        try await self.perform { client in
            try await client.withTransaction(logger: self.logger) { connection in
                for (session, data) in rows {
                    try await connection.query(
                        """
                        INSERT INTO sessions (id, token_hash, user_id, created_at, last_seen_at, idle_expires_at, absolute_expires_at,
                            revoked_at, revocation_reason, data, data_version, ip_address, user_agent, label, csrf_token)
                        VALUES (\(session.id), \(ByteBuffer(bytes: session.tokenHash.bytes)), \(session.userID),
                            \(session.createdAt.millisecondsSince1970), \(session.lastSeenAt.millisecondsSince1970),
                            \(session.idleExpiresAt.millisecondsSince1970), \(session.absoluteExpiresAt.millisecondsSince1970),
                            \(session.revokedAt?.millisecondsSince1970), \(session.revocationReason), \(data), \(session.dataVersion),
                            \(session.metadata.ipAddress), \(session.metadata.userAgent), \(session.metadata.label), \(session.csrfToken))
                        ON CONFLICT (id) DO NOTHING
                        """,
                        logger: self.logger
                    )
                }
            }
        }
    }

    public func session(tokenHash: TokenHash) async throws -> Session? {
        try await self.rows("SELECT \(unescaped: Self.sessionColumns) FROM sessions WHERE token_hash = \(ByteBuffer(bytes: tokenHash.bytes))") {
            try Self.session(from: $0)
        }.first
    }

    public func session(id: String) async throws -> Session? {
        try await self.rows("SELECT \(unescaped: Self.sessionColumns) FROM sessions WHERE id = \(id)") { try Self.session(from: $0) }.first
    }

    @discardableResult
    public func touchSession(id: String, lastSeenAt: Date, idleExpiresAt: Date) async throws -> Bool {
        let lastSeen = lastSeenAt.millisecondsSince1970
        return try await self.count(
            """
            UPDATE sessions SET last_seen_at = \(lastSeen), idle_expires_at = \(idleExpiresAt.millisecondsSince1970)
            WHERE id = \(id) AND revoked_at IS NULL AND last_seen_at < \(lastSeen)
            """
        ) > 0
    }

    @discardableResult
    public func touchSessions(_ updates: [ActivityUpdate]) async throws -> Int {
        guard !updates.isEmpty else { return 0 }
        let ids = updates.map(\.sessionID)
        let lastSeen = updates.map { $0.lastSeenAt.millisecondsSince1970 }
        let idle = updates.map { $0.idleExpiresAt.millisecondsSince1970 }
        return try await self.count(
            """
            UPDATE sessions AS s
            SET last_seen_at = GREATEST(s.last_seen_at, v.last_seen), idle_expires_at = GREATEST(s.idle_expires_at, v.idle)
            FROM unnest(\(ids)::TEXT[], \(lastSeen)::BIGINT[], \(idle)::BIGINT[]) AS v(id, last_seen, idle)
            WHERE s.id = v.id AND s.revoked_at IS NULL AND (s.last_seen_at < v.last_seen OR s.idle_expires_at < v.idle)
            """
        )
    }

    public func updateSessionData(id: String, expectedVersion: Int, data: [String: JSONValue], at: Date) async throws -> Int? {
        let encoded = data.storedJSON
        return try await self.changing(sessionID: id, at: at) { connection in
            let version = try await connection.query(
                """
                UPDATE sessions SET data = \(encoded), data_version = data_version + 1
                WHERE id = \(id) AND data_version = \(expectedVersion)
                RETURNING data_version
                """,
                logger: self.logger
            ).decode(Int.self).first { _ in true }
            return (version, version != nil)
        }
    }

    @discardableResult
    public func revokeSession(id: String, at: Date, reason: String) async throws -> Bool {
        try await self.changing(sessionID: id, at: at) { connection in
            let revoked =
                try await Self.count(
                    """
                    UPDATE sessions SET revoked_at = \(at.millisecondsSince1970), revocation_reason = \(reason)
                    WHERE id = \(id) AND revoked_at IS NULL
                    """,
                    on: connection,
                    logger: self.logger
                ) > 0
            return (revoked, revoked)
        }
    }

    @discardableResult
    public func revokeSessions(userID: String, except exceptID: String?, at: Date, reason: String) async throws -> Int {
        try await self.changing(userID: userID, at: at) { connection in
            let revoked = try await Self.count(
                """
                UPDATE sessions SET revoked_at = \(at.millisecondsSince1970), revocation_reason = \(reason)
                WHERE user_id = \(userID) AND revoked_at IS NULL AND id IS DISTINCT FROM \(exceptID)
                """,
                on: connection,
                logger: self.logger
            )
            return (revoked, revoked > 0)
        }
    }

    // MARK: Refresh tokens

    public func insertRefreshToken(_ token: RefreshTokenRecord) async throws {
        try await self.execute(Self.insertion(token))
    }

    public func refreshToken(hash: TokenHash) async throws -> RefreshTokenRecord? {
        try await self.rows(
            """
            SELECT token_hash, session_id, created_at, rotated_at, sealed_successor FROM refresh_tokens
            WHERE token_hash = \(ByteBuffer(bytes: hash.bytes))
            """
        ) { row in
            let (hash, sessionID, created, rotated, sealed) = try row.decode((ByteBuffer, String, Int64, Int64?, ByteBuffer?).self)
            return RefreshTokenRecord(
                tokenHash: TokenHash(bytes: Array(hash.readableBytesView)),
                sessionID: sessionID,
                createdAt: Date(millisecondsSince1970: created),
                rotatedAt: rotated.map(Date.init(millisecondsSince1970:)),
                sealedSuccessor: sealed.map { Array($0.readableBytesView) }
            )
        }.first
    }

    public func rotateRefreshToken(hash: TokenHash, at: Date, sealedSuccessor: [UInt8], successor: RefreshTokenRecord) async throws -> Bool {
        try await self.perform { client in
            try await client.withTransaction(logger: self.logger) { connection in
                // Racing rotations queue on the row lock; the losers find it rotated and change nothing.
                let rotated = try await Self.count(
                    """
                    UPDATE refresh_tokens SET rotated_at = \(at.millisecondsSince1970), sealed_successor = \(ByteBuffer(bytes: sealedSuccessor))
                    WHERE token_hash = \(ByteBuffer(bytes: hash.bytes)) AND rotated_at IS NULL
                    """,
                    on: connection,
                    logger: self.logger
                )
                guard rotated == 1 else { return false }
                try await connection.query(Self.insertion(successor), logger: self.logger)
                return true
            }
        }
    }

    static func insertion(_ token: RefreshTokenRecord) -> PostgresQuery {
        """
        INSERT INTO refresh_tokens (token_hash, session_id, created_at, rotated_at, sealed_successor)
        VALUES (\(ByteBuffer(bytes: token.tokenHash.bytes)), \(token.sessionID), \(token.createdAt.millisecondsSince1970),
            \(token.rotatedAt?.millisecondsSince1970), \(token.sealedSuccessor.map { ByteBuffer(bytes: $0) }))
        ON CONFLICT (token_hash) DO NOTHING
        """
    }

    // MARK: The change feed

    /// The channel on which commits of changes are announced: one per schema, so that stores
    /// in different schemas of one database do not wake each other.
    var changeChannel: String { "tessera_changes_\(self.configuration.schema)" }

    public func sessionChanges(after cursor: Int64, limit: Int) async throws -> [SessionChange] {
        try await self.rows("SELECT seq, session_id, user_id FROM session_changes WHERE seq > \(cursor) ORDER BY seq LIMIT \(limit)") { row in
            let (sequence, sessionID, userID) = try row.decode((Int64, String?, String?).self)
            return SessionChange(sequence: sequence, subject: sessionID.map { .session(id: $0) } ?? .user(id: userID ?? ""))
        }
    }

    public func latestSessionChange() async throws -> Int64 {
        try await self.rows("SELECT coalesce(max(seq), 0) FROM session_changes") { try $0.decode(Int64.self) }.first ?? 0
    }

    public func deleteSessionChanges(before cutoff: Date) async throws -> Int {
        try await self.count("DELETE FROM session_changes WHERE changed_at < \(cutoff.millisecondsSince1970)")
    }

    /// Listens on this schema's channel on a connection of its own (not one of the pool's), so
    /// that a node learns of another node's revocation in milliseconds.
    public func listenForSessionChanges(_ onChange: @escaping @Sendable () -> Void) async throws {
        let connection = try await PostgresConnection.connect(configuration: self.connectionConfiguration, id: 1, logger: self.logger)
        do {
            try await connection.listen(on: self.changeChannel) { notifications in
                // Changes may have committed before LISTEN took effect: read the feed once now.
                onChange()
                for try await _ in notifications {
                    onChange()
                }
            }
            try? await connection.close()
        } catch {
            try? await connection.close()
            throw error
        }
    }

    /// Runs a write and, when it changed something, records the change in the feed and
    /// announces it, all in one transaction.
    ///
    /// Sequence numbers must become visible in order, or a reader could move past one whose
    /// transaction has not committed yet. So the change is recorded under a transaction-scoped
    /// advisory lock taken after the write itself: changes are serialized for the few
    /// microseconds between taking the lock and committing, and a number is drawn only by the
    /// holder of the lock.
    func changing<T>(
        sessionID: String? = nil,
        userID: String? = nil,
        at: Date,
        _ write: @escaping (PostgresConnection) async throws -> (T, changed: Bool)
    ) async throws -> T {
        try await self.perform { client in
            try await client.withTransaction(logger: self.logger) { connection in
                let (result, changed) = try await write(connection)
                guard changed else { return result }
                try await connection.query(
                    "SELECT pg_advisory_xact_lock(hashtext(\(self.changeChannel)))",
                    logger: self.logger
                )
                try await connection.query(
                    """
                    INSERT INTO session_changes (session_id, user_id, changed_at)
                    VALUES (\(sessionID), \(userID), \(at.millisecondsSince1970))
                    """,
                    logger: self.logger
                )
                try await connection.query("SELECT pg_notify(\(self.changeChannel), '')", logger: self.logger)
                return result
            }
        }
    }

    public func activeSessions(userID: String?, at now: Date, limit: Int) async throws -> [Session] {
        try await self.rows(
            """
            SELECT \(unescaped: Self.sessionColumns) FROM sessions
            WHERE (\(userID)::TEXT IS NULL OR user_id = \(userID)) AND revoked_at IS NULL AND idle_expires_at > \(now.millisecondsSince1970)
            ORDER BY created_at DESC, id
            LIMIT \(limit)
            """
        ) { try Self.session(from: $0) }
    }

    public func deleteSessions(endedBefore cutoff: Date, limit: Int) async throws -> Int {
        let cutoff = cutoff.millisecondsSince1970
        return try await self.count(
            """
            DELETE FROM sessions WHERE id IN (
                SELECT id FROM sessions WHERE idle_expires_at < \(cutoff) OR revoked_at < \(cutoff)
                LIMIT \(limit) FOR UPDATE SKIP LOCKED
            )
            """
        )
    }

    public func insertUser(_ user: User) async throws {
        do {
            try await self.execute(
                """
                INSERT INTO users (id, username, password_hash, created_at)
                VALUES (\(user.id), \(user.username), \(user.passwordHash), \(user.createdAt.millisecondsSince1970))
                """
            )
        } catch let error as StoreError where error.isUniqueViolation {
            throw UserExistsError(username: user.username)
        }
    }

    public func user(username: String) async throws -> User? {
        try await self.rows("SELECT id, username, password_hash, created_at FROM users WHERE lower(username) = lower(\(username))") {
            try Self.user(from: $0)
        }.first
    }

    public func user(id: String) async throws -> User? {
        try await self.rows("SELECT id, username, password_hash, created_at FROM users WHERE id = \(id)") { try Self.user(from: $0) }.first
    }

    public func users() async throws -> [User] {
        try await self.rows("SELECT id, username, password_hash, created_at FROM users ORDER BY lower(username)") { try Self.user(from: $0) }
    }

    public func throttleCounter(key: String) async throws -> ThrottleCounter? {
        try await self.rows("SELECT failures, window_started_at, in_flight, in_flight_since FROM throttle_counters WHERE key = \(key)") { row in
            try Self.throttleCounter(from: row)
        }.first
    }

    public func beginAttempt(key: String, at now: Date, window: Duration, staleAfter: Duration) async throws -> ThrottleCounter {
        let now = now.millisecondsSince1970
        let windowStart = now - window.millisecondCount
        let staleBefore = now - staleAfter.millisecondCount
        let counters = try await self.rows(
            """
            INSERT INTO throttle_counters AS c (key, failures, window_started_at, in_flight, in_flight_since)
            VALUES (\(key), 0, \(now), 1, \(now))
            ON CONFLICT (key) DO UPDATE SET
                failures = CASE WHEN c.window_started_at <= \(windowStart) THEN 0 ELSE c.failures END,
                window_started_at = CASE WHEN c.window_started_at <= \(windowStart) THEN \(now) ELSE c.window_started_at END,
                in_flight = CASE WHEN c.in_flight <= 0 OR c.in_flight_since <= \(staleBefore) THEN 1 ELSE c.in_flight + 1 END,
                in_flight_since = CASE WHEN c.in_flight <= 0 OR c.in_flight_since <= \(staleBefore) THEN \(now) ELSE c.in_flight_since END
            RETURNING failures, window_started_at, in_flight, in_flight_since
            """
        ) { try Self.throttleCounter(from: $0) }
        guard let counter = counters.first else { throw StoreUnavailableError(underlying: "the counter upsert returned no row") }
        return counter
    }

    public func endAttempt(key: String, at now: Date, window: Duration, outcome: LoginAttemptOutcome) async throws {
        let now = now.millisecondsSince1970
        let windowStart = now - window.millisecondCount
        let (failed, succeeded) = (outcome == .failed, outcome == .succeeded)
        try await self.execute(
            """
            INSERT INTO throttle_counters AS c (key, failures, window_started_at, in_flight, in_flight_since)
            VALUES (\(key), \(failed ? 1 : 0), \(now), 0, \(now))
            ON CONFLICT (key) DO UPDATE SET
                in_flight = GREATEST(c.in_flight - 1, 0),
                failures = CASE
                    WHEN \(succeeded) THEN 0
                    WHEN \(failed) AND c.window_started_at <= \(windowStart) THEN 1
                    WHEN \(failed) THEN c.failures + 1
                    ELSE c.failures END,
                window_started_at = CASE
                    WHEN \(succeeded) OR (\(failed) AND c.window_started_at <= \(windowStart)) THEN \(now)
                    ELSE c.window_started_at END
            """
        )
    }

    public func deleteThrottleCounters(startedBefore cutoff: Date) async throws -> Int {
        try await self.count("DELETE FROM throttle_counters WHERE window_started_at < \(cutoff.millisecondsSince1970)")
    }

    // MARK: Helpers

    static let sessionColumns = """
        id, token_hash, user_id, created_at, last_seen_at, idle_expires_at, absolute_expires_at, revoked_at, \
        revocation_reason, data, data_version, ip_address, user_agent, label, csrf_token
        """

    /// Runs `body` with the client, mapping failures that mean "the store cannot serve now" to
    /// ``StoreUnavailableError``.
    func perform<T>(_ body: (PostgresClient) async throws -> T) async throws -> T {
        do {
            return try await body(self.client)
        } catch {
            throw Self.mapped(error)
        }
    }

    func rows<T>(_ query: PostgresQuery, _ transform: (PostgresRow) throws -> T) async throws -> [T] {
        try await self.perform { client in
            var result: [T] = []
            for try await row in try await client.query(query, logger: self.logger) {
                result.append(try transform(row))
            }
            return result
        }
    }

    func execute(_ query: PostgresQuery) async throws {
        _ = try await self.rows(query) { _ in () }
    }

    /// Runs a data-changing statement on `connection` and returns how many rows it changed.
    static func count(_ statement: PostgresQuery, on connection: PostgresConnection, logger: Logger) async throws -> Int {
        try await connection.query(Self.counting(statement), logger: logger).decode(Int.self).first { _ in true } ?? 0
    }

    /// Runs a data-changing statement and returns how many rows it changed.
    func count(_ statement: PostgresQuery) async throws -> Int {
        try await self.rows(Self.counting(statement)) { try $0.decode(Int.self) }.first ?? 0
    }

    /// `statement` wrapped so that it answers the number of rows it changed.
    static func counting(_ statement: PostgresQuery) -> PostgresQuery {
        var query = PostgresQuery(unsafeSQL: "WITH changed AS (\(statement.sql) RETURNING 1) SELECT count(*) FROM changed")
        query.binds = statement.binds
        return query
    }

    /// Errors that mean "the store cannot serve now" become ``StoreUnavailableError``; other
    /// PostgreSQL errors ``StoreError``, and a value that does not decode ``StoredDataError``:
    /// errors whose descriptions are safe to log (a server error's detail can quote the values
    /// of a row, a decoding error's debug description the stored bytes). An error inside a
    /// transaction counts as the worst of its parts.
    static func mapped(_ error: any Error) -> any Error {
        switch error {
        case let error as PSQLError:
            return Self.mapped(error)
        case let error as PostgresTransactionError:
            let parts = [error.beginError, error.closureError, error.commitError, error.rollbackError].compactMap { $0 }.map(Self.mapped)
            if let unavailable = parts.first(where: { $0 is StoreUnavailableError }) { return unavailable }
            return parts.first ?? StoreError(reason: "a PostgreSQL transaction failed")
        case let error as PostgresDecodingError:
            return StoredDataError(what: "row", reason: "the column '\(error.columnName)' does not hold the type this version of Tessera keeps in it")
        default:
            // Tessera's own errors, and cancellation.
            return error
        }
    }

    static func mapped(_ error: PSQLError) -> any Error {
        switch error.code {
        case .server:
            let state = error.serverInfo?[.sqlState] ?? ""
            let reason = "PostgreSQL \(state): \(error.serverInfo?[.message] ?? "")"
            // Connection failures (08), serialization and deadlock (40), resources (53),
            // operator intervention such as a shutting-down server (57).
            if ["08", "40", "53", "57"].contains(String(state.prefix(2))) {
                return StoreUnavailableError(underlying: reason)
            }
            // The message names the constraint, never the values (those are in the detail).
            return StoreError(reason: reason, isUniqueViolation: state == "23505")
        case .connectionError, .serverClosedConnection, .clientClosedConnection, .uncleanShutdown, .poolClosed, .queryCancelled:
            return StoreUnavailableError(underlying: "PostgreSQL \(error.code)")
        default:
            return StoreError(reason: "PostgreSQL \(error.code)")
        }
    }

    static func session(from row: PostgresRow) throws -> Session {
        let cells = row.makeRandomAccess()
        let tokenHash = try cells["token_hash"].decode(ByteBuffer.self)
        let data = try [String: JSONValue](storedJSON: try cells["data"].decode(String.self))
        return Session(
            id: try cells["id"].decode(String.self),
            tokenHash: TokenHash(bytes: Array(tokenHash.readableBytesView)),
            userID: try cells["user_id"].decode(String.self),
            createdAt: Date(millisecondsSince1970: try cells["created_at"].decode(Int64.self)),
            lastSeenAt: Date(millisecondsSince1970: try cells["last_seen_at"].decode(Int64.self)),
            idleExpiresAt: Date(millisecondsSince1970: try cells["idle_expires_at"].decode(Int64.self)),
            absoluteExpiresAt: Date(millisecondsSince1970: try cells["absolute_expires_at"].decode(Int64.self)),
            revokedAt: try cells["revoked_at"].decode(Int64?.self).map(Date.init(millisecondsSince1970:)),
            revocationReason: try cells["revocation_reason"].decode(String?.self),
            data: data,
            dataVersion: try cells["data_version"].decode(Int.self),
            metadata: SessionMetadata(
                ipAddress: try cells["ip_address"].decode(String?.self),
                userAgent: try cells["user_agent"].decode(String?.self),
                label: try cells["label"].decode(String?.self)
            ),
            csrfToken: try cells["csrf_token"].decode(String.self)
        )
    }

    static func throttleCounter(from row: PostgresRow) throws -> ThrottleCounter {
        let (failures, started, inFlight, since) = try row.decode((Int, Int64, Int, Int64).self)
        return ThrottleCounter(
            failures: failures,
            windowStartedAt: Date(millisecondsSince1970: started),
            inFlight: inFlight,
            inFlightSince: Date(millisecondsSince1970: since)
        )
    }

    static func user(from row: PostgresRow) throws -> User {
        let (id, username, hash, created) = try row.decode((String, String, String, Int64).self)
        return User(id: id, username: username, passwordHash: hash, createdAt: Date(millisecondsSince1970: created))
    }
}
