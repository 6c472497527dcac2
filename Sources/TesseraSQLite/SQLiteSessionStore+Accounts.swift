public import Foundation
import GRDB
public import Tessera

extension SQLiteSessionStore {
    // MARK: Refresh tokens

    public func insertRefreshToken(_ token: RefreshTokenRecord) async throws {
        try await self.write { db in
            try Self.insert(token, db)
        }
    }

    public func refreshToken(hash: TokenHash) async throws -> RefreshTokenRecord? {
        try await self.read { db in
            try Row.fetchOne(
                db,
                sql: "SELECT token_hash, session_id, created_at, rotated_at, sealed_successor FROM refresh_tokens WHERE token_hash = ?",
                arguments: [Data(hash.bytes)]
            ).map(Self.refreshToken(from:))
        }
    }

    public func rotateRefreshToken(hash: TokenHash, at: Date, sealedSuccessor: [UInt8], successor: RefreshTokenRecord) async throws -> Bool {
        try await self.write { db in
            try db.execute(
                sql: "UPDATE refresh_tokens SET rotated_at = ?, sealed_successor = ? WHERE token_hash = ? AND rotated_at IS NULL",
                arguments: [at.millisecondsSince1970, Data(sealedSuccessor), Data(hash.bytes)]
            )
            guard db.changesCount == 1 else { return false }
            try Self.insert(successor, db)
            return true
        }
    }

    static func insert(_ token: RefreshTokenRecord, _ db: Database) throws {
        try db.execute(
            sql: """
                INSERT INTO refresh_tokens (token_hash, session_id, created_at, rotated_at, sealed_successor) VALUES (?, ?, ?, ?, ?)
                ON CONFLICT (token_hash) DO NOTHING
                """,
            arguments: [
                Data(token.tokenHash.bytes), token.sessionID, token.createdAt.millisecondsSince1970,
                token.rotatedAt?.millisecondsSince1970, token.sealedSuccessor.map { Data($0) },
            ]
        )
    }

    static func refreshToken(from row: Row) throws -> RefreshTokenRecord {
        let hash: Data = try row.decode(forColumn: "token_hash")
        let sealed: Data? = try row.decode(forColumn: "sealed_successor")
        let rotated: Int64? = try row.decode(forColumn: "rotated_at")
        return RefreshTokenRecord(
            tokenHash: hash.withUnsafeBytes(TokenHash.init(bytes:)),
            sessionID: try row.decode(forColumn: "session_id"),
            createdAt: Date(millisecondsSince1970: try row.decode(forColumn: "created_at")),
            rotatedAt: rotated.map(Date.init(millisecondsSince1970:)),
            sealedSuccessor: sealed.map(Array.init)
        )
    }

    // MARK: Users

    public func insertUser(_ user: User) async throws {
        do {
            try await self.write { db in
                try db.execute(
                    sql: "INSERT INTO users (id, username, password_hash, created_at, role, disabled_at) VALUES (?, ?, ?, ?, ?, ?)",
                    arguments: [
                        user.id, user.username, user.passwordHash, user.createdAt.millisecondsSince1970, user.role.rawValue,
                        user.disabledAt?.millisecondsSince1970,
                    ]
                )
            }
        } catch let error as StoreError where error.isUniqueViolation {
            throw UserExistsError(username: user.username)
        }
    }

    public func user(username: String) async throws -> User? {
        try await self.read { db in
            try Row.fetchOne(db, sql: "SELECT * FROM users WHERE username = ?", arguments: [username]).map(Self.user(from:))
        }
    }

    public func user(id: String) async throws -> User? {
        try await self.read { db in
            try Row.fetchOne(db, sql: "SELECT * FROM users WHERE id = ?", arguments: [id]).map(Self.user(from:))
        }
    }

    public func users() async throws -> [User] {
        try await self.read { db in
            try Row.fetchAll(db, sql: "SELECT * FROM users ORDER BY username").map(Self.user(from:))
        }
    }

    // MARK: Throttling

    public func throttleCounter(key: String) async throws -> ThrottleCounter? {
        try await self.read { db in
            try Row.fetchOne(
                db,
                sql: "SELECT failures, window_started_at, in_flight, in_flight_since FROM throttle_counters WHERE key = ?",
                arguments: [key]
            )
            .map(Self.throttleCounter(from:))
        }
    }

    public func beginAttempt(key: String, at now: Date, window: Duration, staleAfter: Duration) async throws -> ThrottleCounter {
        try await self.write { db in
            let row = try Row.fetchOne(
                db,
                sql: """
                    INSERT INTO throttle_counters (key, failures, window_started_at, in_flight, in_flight_since) VALUES (?1, 0, ?2, 1, ?2)
                    ON CONFLICT (key) DO UPDATE SET
                        failures = CASE WHEN window_started_at <= ?2 - ?3 THEN 0 ELSE failures END,
                        window_started_at = CASE WHEN window_started_at <= ?2 - ?3 THEN ?2 ELSE window_started_at END,
                        in_flight = CASE WHEN in_flight <= 0 OR in_flight_since <= ?2 - ?4 THEN 1 ELSE in_flight + 1 END,
                        in_flight_since = CASE WHEN in_flight <= 0 OR in_flight_since <= ?2 - ?4 THEN ?2 ELSE in_flight_since END
                    RETURNING failures, window_started_at, in_flight, in_flight_since
                    """,
                arguments: [key, now.millisecondsSince1970, window.millisecondCount, staleAfter.millisecondCount]
            )
            guard let row else { throw StoreUnavailableError(underlying: "the counter upsert returned no row") }
            return try Self.throttleCounter(from: row)
        }
    }

    public func endAttempt(key: String, at now: Date, window: Duration, outcome: LoginAttemptOutcome) async throws {
        let (failed, succeeded) = (outcome == .failed, outcome == .succeeded)
        try await self.write { db in
            try db.execute(
                sql: """
                    INSERT INTO throttle_counters (key, failures, window_started_at, in_flight, in_flight_since) VALUES (?1, ?4, ?2, 0, ?2)
                    ON CONFLICT (key) DO UPDATE SET
                        in_flight = MAX(in_flight - 1, 0),
                        failures = CASE
                            WHEN ?5 THEN 0
                            WHEN ?4 AND window_started_at <= ?2 - ?3 THEN 1
                            WHEN ?4 THEN failures + 1
                            ELSE failures END,
                        window_started_at = CASE WHEN ?5 OR (?4 AND window_started_at <= ?2 - ?3) THEN ?2 ELSE window_started_at END
                    """,
                arguments: [key, now.millisecondsSince1970, window.millisecondCount, failed, succeeded]
            )
        }
    }

    public func deleteThrottleCounters(startedBefore cutoff: Date) async throws -> Int {
        try await self.write { db in
            try db.execute(sql: "DELETE FROM throttle_counters WHERE window_started_at < ?", arguments: [cutoff.millisecondsSince1970])
            return db.changesCount
        }
    }
}
