public import Foundation
import NIOCore
import PostgresNIO
public import Tessera

extension PostgresSessionStore {
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
                tokenHash: hash.withUnsafeReadableBytes(TokenHash.init(bytes:)),
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

    public func insertUser(_ user: User) async throws {
        do {
            try await self.execute(
                """
                INSERT INTO users (id, username, password_hash, created_at, role, disabled_at)
                VALUES (
                    \(user.id), \(user.username), \(user.passwordHash), \(user.createdAt.millisecondsSince1970), \(user.role.rawValue),
                    \(user.disabledAt?.millisecondsSince1970)
                )
                """
            )
        } catch let error as StoreError where error.isUniqueViolation {
            throw UserExistsError(username: user.username)
        }
    }

    public func user(username: String) async throws -> User? {
        try await self.rows("SELECT \(unescaped: Self.userColumns) FROM users WHERE lower(username) = lower(\(username))") {
            try Self.user(from: $0)
        }.first
    }

    public func user(id: String) async throws -> User? {
        try await self.rows("SELECT \(unescaped: Self.userColumns) FROM users WHERE id = \(id)") { try Self.user(from: $0) }.first
    }

    public func users() async throws -> [User] {
        try await self.rows("SELECT \(unescaped: Self.userColumns) FROM users ORDER BY lower(username)") { try Self.user(from: $0) }
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
}
