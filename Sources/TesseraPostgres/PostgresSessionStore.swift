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
        /// The name this node gives itself in the events it records.
        public var node: String = SessionEvent.defaultNode
        /// Whether writes record their ``SessionEvent`` (on by default; off only to measure what
        /// the outbox costs).
        public var recordsEvents = true

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

    // MARK: SessionStore

    public func ping() async throws {
        _ = try await self.rows("SELECT 1") { try $0.decode(Int.self) }
    }

    public func insertSessions(_ sessions: [Session]) async throws {
        guard !sessions.isEmpty else { return }
        let rows = sessions.map { session in (session, session.data.storedJSON) }
        try await self.perform { client in
            try await client.withTransaction(logger: self.logger) { connection in
                // One statement per 1,000 sessions: a group commit's batch is one round trip, not
                // one per session.
                var inserted = Set<String>()
                for batch in Self.statementBatches(rows) {
                    var bindings = PostgresBindings(capacity: batch.count * 15)
                    var values: [String] = []
                    values.reserveCapacity(batch.count)
                    for (session, data) in batch {
                        let base = bindings.count
                        values.append(Self.placeholders(after: base, columns: 15))
                        bindings.append(session.id)
                        bindings.append(ByteBuffer(bytes: session.tokenHash.bytes))
                        bindings.append(session.userID)
                        bindings.append(session.createdAt.millisecondsSince1970)
                        bindings.append(session.lastSeenAt.millisecondsSince1970)
                        bindings.append(session.idleExpiresAt.millisecondsSince1970)
                        bindings.append(session.absoluteExpiresAt.millisecondsSince1970)
                        bindings.append(session.revokedAt?.millisecondsSince1970)
                        bindings.append(session.revocationReason)
                        bindings.append(data)
                        bindings.append(session.dataVersion)
                        bindings.append(session.metadata.ipAddress)
                        bindings.append(session.metadata.userAgent)
                        bindings.append(session.metadata.label)
                        bindings.append(session.csrfToken)
                    }
                    let ids = try await connection.query(
                        PostgresQuery(
                            unsafeSQL: """
                                INSERT INTO sessions (\(Self.sessionColumns))
                                VALUES \(values.joined(separator: ", "))
                                ON CONFLICT (id) DO NOTHING
                                RETURNING id
                                """,
                            binds: bindings
                        ),
                        logger: self.logger
                    ).decode(String.self)
                    for try await id in ids { inserted.insert(id) }
                }
                // In the order the sessions came, as before.
                let events = rows.filter { inserted.contains($0.0.id) }.map { session, _ in
                    (PendingEvent(.sessionCreated, sessionID: session.id, userID: session.userID), session.createdAt)
                }
                try await self.record(events, change: nil, on: connection)
            }
        }
    }

    public func session(tokenHash: TokenHash) async throws -> Session? {
        try await self.rows("SELECT \(unescaped: Self.sessionColumns) FROM sessions WHERE token_hash = \(ByteBuffer(bytes: tokenHash.bytes))") {
            try Self.session(from: $0)
        }.first
    }

    /// One statement, `token_hash = ANY($1)`, one round trip for all of them.
    public func sessions(tokenHashes: [TokenHash]) async throws -> [Session] {
        guard !tokenHashes.isEmpty else { return [] }
        let hashes = tokenHashes.map { ByteBuffer(bytes: $0.bytes) }
        return try await self.rows("SELECT \(unescaped: Self.sessionColumns) FROM sessions WHERE token_hash = ANY(\(hashes))") {
            try Self.session(from: $0)
        }
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
            WHERE id = \(id) AND revoked_at IS NULL AND expiry_recorded_at IS NULL AND last_seen_at < \(lastSeen)
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
            WHERE s.id = v.id AND s.revoked_at IS NULL AND s.expiry_recorded_at IS NULL AND (s.last_seen_at < v.last_seen OR s.idle_expires_at < v.idle)
            """
        )
    }

    public func updateSessionData(id: String, expectedVersion: Int, data: [String: JSONValue], at: Date) async throws -> Int? {
        let encoded = data.storedJSON
        return try await self.changing(.session(id: id), at: at) { connection in
            let updated = try await connection.query(
                """
                UPDATE sessions SET data = \(encoded), data_version = data_version + 1
                WHERE id = \(id) AND data_version = \(expectedVersion)
                RETURNING data_version, user_id
                """,
                logger: self.logger
            ).decode((Int, String).self).first { _ in true }
            guard let (version, userID) = updated else { return (nil, []) }
            return (version, [PendingEvent(.sessionDataChanged, sessionID: id, userID: userID, dataVersion: version)])
        }
    }

    @discardableResult
    public func revokeSession(id: String, at: Date, reason: String) async throws -> Bool {
        try await self.changing(.session(id: id), at: at) { connection in
            let userID = try await connection.query(
                """
                UPDATE sessions SET revoked_at = \(at.millisecondsSince1970), revocation_reason = \(reason)
                WHERE id = \(id) AND revoked_at IS NULL
                RETURNING user_id
                """,
                logger: self.logger
            ).decode(String.self).first { _ in true }
            guard let userID else { return (false, []) }
            return (true, [PendingEvent(.sessionRevoked, sessionID: id, userID: userID, reason: reason)])
        }
    }

    @discardableResult
    public func revokeSessions(userID: String, except exceptID: String?, at: Date, reason: String) async throws -> Int {
        try await self.changing(.user(id: userID), at: at) { connection in
            var revoked: [String] = []
            for try await id in try await connection.query(
                """
                UPDATE sessions SET revoked_at = \(at.millisecondsSince1970), revocation_reason = \(reason)
                WHERE user_id = \(userID) AND revoked_at IS NULL AND id IS DISTINCT FROM \(exceptID)
                RETURNING id
                """,
                logger: self.logger
            ).decode(String.self) {
                revoked.append(id)
            }
            guard !revoked.isEmpty else { return (0, []) }
            return (revoked.count, PendingEvent.revocations(of: revoked.sorted(), userID: userID, reason: reason))
        }
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

    /// Runs a write and, when it changed something, records its events (and the change, in the
    /// feed) and announces them, all in one transaction.
    func changing<T>(
        _ change: SessionChange.Subject,
        at: Date,
        _ write: @escaping (PostgresConnection) async throws -> (T, events: [PendingEvent])
    ) async throws -> T {
        try await self.perform { client in
            try await client.withTransaction(logger: self.logger) { connection in
                let (result, events) = try await write(connection)
                guard !events.isEmpty else { return result }
                try await self.record(events.map { ($0, at) }, change: (change, at), on: connection)
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
}
