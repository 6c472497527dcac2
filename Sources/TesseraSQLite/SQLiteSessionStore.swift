public import Foundation
import GRDB
public import Tessera

/// The embedded store: one SQLite file in write-ahead-log mode, through GRDB.
///
/// Commits are synchronous (`PRAGMA synchronous = FULL`): a returned write survives a crash of
/// the process and of the machine. Several processes (the service and the `tessera` command) may
/// open the same file at once. Times are stored as integer milliseconds since 1970.
public final class SQLiteSessionStore: SessionStore {
    /// Settings of the SQLite store.
    public struct Configuration: Sendable {
        /// How long a writer waits for another process's write lock before it gives up.
        public var busyTimeout: Duration
        /// How many connections read concurrently.
        public var maximumReaderCount: Int
        /// The most the writing connection keeps of the database's pages in memory, in KiB
        /// (default 64 MiB; SQLite's own default is 2 MiB). Activity writes touch the pages of
        /// every active session: with a cache smaller than those, each write reads its pages
        /// from the file again.
        public var writerCacheKiB: Int

        /// The name this process gives itself in the events it records.
        public var node: String
        /// Whether writes record their ``SessionEvent`` (on by default; off only to measure what
        /// the outbox costs).
        public var recordsEvents: Bool

        public init(
            busyTimeout: Duration = .seconds(5),
            maximumReaderCount: Int = 4,
            writerCacheKiB: Int = 64 * 1024,
            node: String = SessionEvent.defaultNode,
            recordsEvents: Bool = true
        ) {
            self.busyTimeout = busyTimeout
            self.maximumReaderCount = maximumReaderCount
            self.writerCacheKiB = max(writerCacheKiB, 0)
            self.node = node
            self.recordsEvents = recordsEvents
        }
    }

    /// The path of the database file.
    public let path: String
    let pool: DatabasePool
    let node: String
    let recordsEvents: Bool

    /// Opens (creating it if needed) the database at `path` and runs pending migrations.
    /// - Parameter runMigrations: `false` to inspect a database as it is (as `tessera doctor` does).
    public init(path: String, configuration: Configuration = .init(), runMigrations: Bool = true) throws {
        var config = GRDB.Configuration()
        config.busyMode = .timeout(configuration.busyTimeout.timeInterval)
        config.maximumReaderCount = configuration.maximumReaderCount
        config.label = "tessera"
        let writerCacheKiB = configuration.writerCacheKiB
        config.prepareDatabase { db in
            try db.execute(sql: "PRAGMA synchronous = FULL")
            // A negative size is in KiB; the readers keep SQLite's default.
            if !db.configuration.readonly, writerCacheKiB > 0 {
                try db.execute(sql: "PRAGMA cache_size = -\(writerCacheKiB)")
            }
        }
        self.path = path
        self.node = configuration.node
        self.recordsEvents = configuration.recordsEvents
        do {
            self.pool = try DatabasePool(path: path, configuration: config)
            if runMigrations { try Self.migrator.migrate(self.pool) }
        } catch {
            throw Self.mapped(error)
        }
    }

    /// The migrations this version of Tessera knows, oldest first.
    public static var knownMigrations: [String] { Self.migrator.migrations }

    /// The migrations applied to the database, oldest first.
    public func appliedMigrations() async throws -> [String] {
        try await self.read { db in try Self.migrator.appliedMigrations(db) }
    }

    public func ping() async throws {
        _ = try await self.read { db in try Int.fetchOne(db, sql: "SELECT 1") }
    }

    // MARK: Sessions

    public func insertSessions(_ sessions: [Session]) async throws {
        guard !sessions.isEmpty else { return }
        let rows = sessions.map { session in (session, session.data.storedJSON) }
        try await self.write { db in
            let statement = try db.cachedStatement(
                sql: """
                    INSERT INTO sessions (id, token_hash, user_id, created_at, last_seen_at, idle_expires_at,
                        absolute_expires_at, revoked_at, revocation_reason, data, data_version, ip_address, user_agent, label,
                        csrf_token)
                    VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                    ON CONFLICT (id) DO NOTHING
                    """
            )
            for (session, data) in rows {
                try statement.execute(arguments: [
                    session.id, Data(session.tokenHash.bytes), session.userID, session.createdAt.millisecondsSince1970,
                    session.lastSeenAt.millisecondsSince1970, session.idleExpiresAt.millisecondsSince1970,
                    session.absoluteExpiresAt.millisecondsSince1970, session.revokedAt?.millisecondsSince1970,
                    session.revocationReason, data, session.dataVersion, session.metadata.ipAddress,
                    session.metadata.userAgent, session.metadata.label, session.csrfToken,
                ])
                if db.changesCount > 0 {
                    try self.record([PendingEvent(.sessionCreated, sessionID: session.id, userID: session.userID)], db, at: session.createdAt)
                }
            }
        }
    }

    public func session(tokenHash: TokenHash) async throws -> Session? {
        try await self.sessions(tokenHashes: [tokenHash]).first
    }

    /// One reader for all of them; each hash is a lookup in the token-hash index with the same
    /// prepared statement, which on an embedded store costs what one `IN (…)` statement would.
    public func sessions(tokenHashes: [TokenHash]) async throws -> [Session] {
        try await self.read { db in
            let statement = try db.cachedStatement(sql: "SELECT \(Self.sessionColumns) FROM sessions WHERE token_hash = ?")
            return try tokenHashes.compactMap { hash in
                try Row.fetchOne(statement, arguments: [Data(hash.bytes)]).map(Self.session(from:))
            }
        }
    }

    public func session(id: String) async throws -> Session? {
        try await self.read { db in
            try Row.fetchOne(db, sql: "SELECT \(Self.sessionColumns) FROM sessions WHERE id = ?", arguments: [id]).map(Self.session(from:))
        }
    }

    @discardableResult
    public func touchSession(id: String, lastSeenAt: Date, idleExpiresAt: Date) async throws -> Bool {
        try await self.write { db in
            try db.execute(
                sql: """
                    UPDATE sessions SET last_seen_at = ?, idle_expires_at = ?
                    WHERE id = ? AND revoked_at IS NULL AND expiry_recorded_at IS NULL AND last_seen_at < ?
                    """,
                arguments: [lastSeenAt.millisecondsSince1970, idleExpiresAt.millisecondsSince1970, id, lastSeenAt.millisecondsSince1970]
            )
            return db.changesCount > 0
        }
    }

    @discardableResult
    public func touchSessions(_ updates: [ActivityUpdate]) async throws -> Int {
        guard !updates.isEmpty else { return 0 }
        return try await self.write { db in
            let statement = try db.cachedStatement(
                sql: """
                    UPDATE sessions SET last_seen_at = MAX(last_seen_at, ?1), idle_expires_at = MAX(idle_expires_at, ?2)
                    WHERE id = ?3 AND revoked_at IS NULL AND expiry_recorded_at IS NULL AND (last_seen_at < ?1 OR idle_expires_at < ?2)
                    """
            )
            var changed = 0
            for update in updates {
                try statement.execute(
                    arguments: [update.lastSeenAt.millisecondsSince1970, update.idleExpiresAt.millisecondsSince1970, update.sessionID]
                )
                changed += db.changesCount
            }
            return changed
        }
    }

    public func updateSessionData(id: String, expectedVersion: Int, data: [String: JSONValue], at: Date) async throws -> Int? {
        let encoded = data.storedJSON
        return try await self.write { db in
            let userID = try String.fetchOne(
                db,
                sql: "UPDATE sessions SET data = ?, data_version = data_version + 1 WHERE id = ? AND data_version = ? RETURNING user_id",
                arguments: [encoded, id, expectedVersion]
            )
            guard let userID else { return nil }
            try Self.recordChange(db, sessionID: id, at: at)
            try self.record(
                [PendingEvent(.sessionDataChanged, sessionID: id, userID: userID, dataVersion: expectedVersion + 1)],
                db,
                at: at
            )
            return expectedVersion + 1
        }
    }

    @discardableResult
    public func revokeSession(id: String, at: Date, reason: String) async throws -> Bool {
        try await self.write { db in
            let userID = try String.fetchOne(
                db,
                sql: "UPDATE sessions SET revoked_at = ?, revocation_reason = ? WHERE id = ? AND revoked_at IS NULL RETURNING user_id",
                arguments: [at.millisecondsSince1970, reason, id]
            )
            guard let userID else { return false }
            try Self.recordChange(db, sessionID: id, at: at)
            try self.record([PendingEvent(.sessionRevoked, sessionID: id, userID: userID, reason: reason)], db, at: at)
            return true
        }
    }

    @discardableResult
    public func revokeSessions(userID: String, except exceptID: String?, at: Date, reason: String) async throws -> Int {
        try await self.write { db in
            let revoked = try String.fetchAll(
                db,
                sql: """
                    UPDATE sessions SET revoked_at = ?, revocation_reason = ?
                    WHERE user_id = ? AND revoked_at IS NULL AND id IS NOT ?
                    RETURNING id
                    """,
                arguments: [at.millisecondsSince1970, reason, userID, exceptID]
            )
            guard !revoked.isEmpty else { return 0 }
            try Self.recordChange(db, userID: userID, at: at)
            try self.record(PendingEvent.revocations(of: revoked.sorted(), userID: userID, reason: reason), db, at: at)
            return revoked.count
        }
    }

    public func activeSessions(userID: String?, at now: Date, limit: Int) async throws -> [Session] {
        try await self.read { db in
            try Row.fetchAll(
                db,
                sql: """
                    SELECT \(Self.sessionColumns) FROM sessions
                    WHERE (?1 IS NULL OR user_id = ?1) AND revoked_at IS NULL AND idle_expires_at > ?2
                    ORDER BY created_at DESC, id
                    LIMIT ?3
                    """,
                arguments: [userID, now.millisecondsSince1970, limit]
            ).map(Self.session(from:))
        }
    }

    // MARK: The change feed

    public func sessionChanges(after cursor: Int64, limit: Int) async throws -> [SessionChange] {
        try await self.read { db in
            try Row.fetchAll(
                db,
                sql: "SELECT seq, session_id, user_id FROM session_changes WHERE seq > ? ORDER BY seq LIMIT ?",
                arguments: [cursor, limit]
            ).map { row in
                let sessionID: String? = try row.decode(forColumn: "session_id")
                let subject: SessionChange.Subject
                if let sessionID {
                    subject = .session(id: sessionID)
                } else {
                    subject = .user(id: try row.decode(forColumn: "user_id"))
                }
                return SessionChange(sequence: try row.decode(forColumn: "seq"), subject: subject)
            }
        }
    }

    public func latestSessionChange() async throws -> Int64 {
        try await self.read { db in
            // The AUTOINCREMENT counter survives deleting the newest rows; max(seq) would not.
            try Int64.fetchOne(db, sql: "SELECT seq FROM sqlite_sequence WHERE name = 'session_changes'") ?? 0
        }
    }

    public func deleteSessionChanges(before cutoff: Date) async throws -> Int {
        try await self.write { db in
            try db.execute(sql: "DELETE FROM session_changes WHERE changed_at < ?", arguments: [cutoff.millisecondsSince1970])
            return db.changesCount
        }
    }

    /// Records a change in the feed, in the transaction of the write it describes. SQLite has
    /// one writer at a time, so sequence numbers commit in order.
    static func recordChange(_ db: Database, sessionID: String? = nil, userID: String? = nil, at: Date) throws {
        try db.execute(
            sql: "INSERT INTO session_changes (session_id, user_id, changed_at) VALUES (?, ?, ?)",
            arguments: [sessionID, userID, at.millisecondsSince1970]
        )
    }

    public func deleteSessions(endedBefore cutoff: Date, limit: Int) async throws -> Int {
        try await self.write { db in
            // The idle deadline is never later than the absolute one, so it alone tells expiry.
            try db.execute(
                sql: """
                    DELETE FROM sessions WHERE id IN (
                        SELECT id FROM sessions WHERE idle_expires_at < ?1
                        UNION ALL
                        SELECT id FROM sessions WHERE revoked_at < ?1
                        LIMIT ?2
                    )
                    """,
                arguments: [cutoff.millisecondsSince1970, limit]
            )
            return db.changesCount
        }
    }

    // MARK: Helpers

    func read<T: Sendable>(_ body: @escaping @Sendable (Database) throws -> T) async throws -> T {
        do {
            return try await self.pool.read(body)
        } catch {
            throw Self.mapped(error)
        }
    }

    func write<T: Sendable>(_ body: @escaping @Sendable (Database) throws -> T) async throws -> T {
        do {
            return try await self.pool.write(body)
        } catch {
            throw Self.mapped(error)
        }
    }

    /// Errors that mean "the store cannot serve now" become ``StoreUnavailableError``; other
    /// SQLite errors ``StoreError``, and a row that does not decode ``StoredDataError``: errors
    /// whose descriptions are safe to log (GRDB's decoding errors print the whole row, CSRF token
    /// and data included).
    static func mapped(_ error: any Error) -> any Error {
        switch error {
        case let error as DatabaseError:
            let reason = "SQLite \(error.resultCode): \(error.message ?? "")"
            switch error.resultCode {
            case .SQLITE_BUSY, .SQLITE_LOCKED, .SQLITE_IOERR, .SQLITE_FULL, .SQLITE_CANTOPEN, .SQLITE_PROTOCOL, .SQLITE_NOMEM,
                .SQLITE_READONLY, .SQLITE_PERM:
                return StoreUnavailableError(underlying: reason)
            default:
                return StoreError(reason: reason, isUniqueViolation: error.extendedResultCode == .SQLITE_CONSTRAINT_UNIQUE)
            }
        case is RowDecodingError:
            return StoredDataError(what: "row", reason: "a column does not hold the type this version of Tessera keeps in it")
        default:
            // Tessera's own errors, thrown by the code that reads the rows.
            return error
        }
    }

    /// The columns ``session(from:)`` reads, in the order it reads them by index (a name lookup
    /// folds the name's case on every read).
    static let sessionColumns = Session.storedColumns

    /// A session from a row that selected ``sessionColumns``.
    static func session(from row: Row) throws -> Session {
        let data = try [String: JSONValue](storedJSON: try row.decode(atIndex: 9))
        let tokenHash: Data = try row.decode(atIndex: 1)
        return Session(
            id: try row.decode(atIndex: 0),
            tokenHash: tokenHash.withUnsafeBytes(TokenHash.init(bytes:)),
            userID: try row.decode(atIndex: 2),
            createdAt: Date(millisecondsSince1970: try row.decode(atIndex: 3)),
            lastSeenAt: Date(millisecondsSince1970: try row.decode(atIndex: 4)),
            idleExpiresAt: Date(millisecondsSince1970: try row.decode(atIndex: 5)),
            absoluteExpiresAt: Date(millisecondsSince1970: try row.decode(atIndex: 6)),
            revokedAt: (try row.decode(Int64?.self, atIndex: 7)).map(Date.init(millisecondsSince1970:)),
            revocationReason: try row.decode(atIndex: 8),
            data: data,
            dataVersion: try row.decode(atIndex: 10),
            metadata: SessionMetadata(
                ipAddress: try row.decode(atIndex: 11),
                userAgent: try row.decode(atIndex: 12),
                label: try row.decode(atIndex: 13)
            ),
            csrfToken: try row.decode(atIndex: 14)
        )
    }

    static func user(from row: Row) throws -> User {
        User(
            id: try row.decode(forColumn: "id"),
            username: try row.decode(forColumn: "username"),
            passwordHash: try row.decode(forColumn: "password_hash"),
            createdAt: Date(millisecondsSince1970: try row.decode(forColumn: "created_at")),
            role: User.Role(rawValue: try row.decode(forColumn: "role")) ?? .user,
            disabledAt: (try row.decode(forColumn: "disabled_at") as Int64?).map(Date.init(millisecondsSince1970:))
        )
    }

    static func throttleCounter(from row: Row) throws -> ThrottleCounter {
        ThrottleCounter(
            failures: try row.decode(forColumn: "failures"),
            windowStartedAt: Date(millisecondsSince1970: try row.decode(forColumn: "window_started_at")),
            inFlight: try row.decode(forColumn: "in_flight"),
            inFlightSince: Date(millisecondsSince1970: try row.decode(forColumn: "in_flight_since"))
        )
    }
}
