public import Foundation
public import Logging
import NIOCore
public import PostgresNIO
public import Tessera

extension PostgresSessionStore {
    // MARK: Helpers

    static let sessionColumns = Session.storedColumns

    /// One row of a multi-row `VALUES`: `($base+1, …, $base+columns)`.
    static func placeholders(after base: Int, columns: Int) -> String {
        "(" + (1...columns).map { "$\(base + $0)" }.joined(separator: ", ") + ")"
    }

    /// `items` in slices of at most 1,000: multi-row statements that stay under PostgreSQL's
    /// limit of 65,535 parameters.
    static func statementBatches<T>(_ items: [T]) -> [ArraySlice<T>] {
        stride(from: 0, to: items.count, by: 1000).map { items[$0..<min($0 + 1000, items.count)] }
    }

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
            tokenHash: tokenHash.withUnsafeReadableBytes(TokenHash.init(bytes:)),
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

    static let userColumns = "id, username, password_hash, created_at, role, disabled_at"

    static func user(from row: PostgresRow) throws -> User {
        let (id, username, hash, created, role, disabled) = try row.decode((String, String, String, Int64, String, Int64?).self)
        return User(
            id: id,
            username: username,
            passwordHash: hash,
            createdAt: Date(millisecondsSince1970: created),
            role: User.Role(rawValue: role) ?? .user,
            disabledAt: disabled.map(Date.init(millisecondsSince1970:))
        )
    }
}
