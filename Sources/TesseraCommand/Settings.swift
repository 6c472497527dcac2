import ArgumentParser
import Foundation
import Logging
import PostgresNIO
import Tessera
import TesseraPostgres

/// A setting given by a flag, else by its `TESSERA_…` environment variable, else by default.
struct Setting {
    static var environment: [String: String] { ProcessInfo.processInfo.environment }

    static func string(_ flag: String?, env: String, default defaultValue: String) -> String {
        flag ?? self.environment[env] ?? defaultValue
    }

    static func duration(_ flag: String?, env: String, option: String, default defaultValue: Duration) throws -> Duration {
        guard let text = flag ?? self.environment[env] else { return defaultValue }
        guard let duration = Duration(parsing: text), duration > .zero else {
            throw ValidationError("\(option) (or \(env)) must be a duration such as 90s, 15m or 2h, not '\(text)'.")
        }
        return duration
    }

    static func integer(_ flag: Int?, env: String, option: String, range: ClosedRange<Int>, default defaultValue: Int) throws -> Int {
        let value: Int
        if let flag {
            value = flag
        } else if let text = self.environment[env] {
            guard let parsed = Int(text) else { throw ValidationError("\(env) must be a whole number, not '\(text)'.") }
            value = parsed
        } else {
            value = defaultValue
        }
        guard range.contains(value) else {
            throw ValidationError("\(option) (or \(env)) must be between \(range.lowerBound) and \(range.upperBound).")
        }
        return value
    }

    static func flag(_ flag: Bool, env: String) -> Bool {
        if flag { return true }
        guard let text = self.environment[env]?.lowercased() else { return false }
        return ["1", "true", "yes", "on"].contains(text)
    }
}

/// Where Tessera keeps its data: the data directory, and the store (SQLite in the data
/// directory unless `--store` names a PostgreSQL database).
struct StoreOptions: ParsableArguments {
    @Option(name: .customLong("data-dir"), help: "Where Tessera keeps its data (env TESSERA_DATA_DIR; default ./.tessera).")
    var path: String?

    @Option(
        name: .customLong("store"),
        help: "The store: postgres://USER:PASSWORD@HOST:PORT/DATABASE for several nodes (env TESSERA_STORE; default SQLite in the data directory)."
    )
    var store: String?

    var directory: DataDirectory {
        DataDirectory(path: Setting.string(self.path, env: "TESSERA_DATA_DIR", default: ".tessera"))
    }

    /// The PostgreSQL configuration, when a PostgreSQL store is named.
    func postgresConfiguration() throws -> PostgresSessionStore.Configuration? {
        guard let url = self.store ?? Setting.environment["TESSERA_STORE"], !url.isEmpty else { return nil }
        do {
            return try PostgresSessionStore.Configuration(url: url)
        } catch let error as PostgresSessionStore.InvalidURLError {
            throw CommandError("--store (or TESSERA_STORE): \(error)")
        }
    }

    /// A sentence naming the store, without secrets.
    func describeStore() throws -> String {
        if let postgres = try self.postgresConfiguration() { return "PostgreSQL \(postgres.redactedDescription)" }
        return "SQLite \(self.directory.databasePath)"
    }

    /// Opens the store, runs `body` with it and closes it. A PostgreSQL store's pool runs for
    /// the duration of `body`, and its migrations are applied first.
    ///   - node: the name events written through this store carry (default: the host name, and
    ///     `/cli` for the `tessera` command's own changes)
    ///   - recordsEvents: `false` writes no session events (only to measure what they cost)
    func withStore<T: Sendable>(
        logger: Logger = Logger(label: "tessera"),
        node: String = SessionEvent.defaultNode + "/cli",
        recordsEvents: Bool = true,
        _ body: @Sendable (any SessionStore) async throws -> T
    ) async throws -> T {
        guard var configuration = try self.postgresConfiguration() else {
            return try await body(try self.directory.openStore(node: node, recordsEvents: recordsEvents))
        }
        configuration.node = node
        configuration.recordsEvents = recordsEvents
        // The pool logs each failed connection attempt; only problems matter here.
        var postgresLogger = logger
        postgresLogger.logLevel = max(logger.logLevel, .warning)
        let store = try PostgresSessionStore(configuration: configuration, logger: postgresLogger)
        return try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { await store.run() }
            defer { group.cancelAll() }
            do {
                try await withDeadline(.seconds(10)) { try await store.checkConnection() }
                try await withDeadline(.seconds(10)) { try await store.migrate() }
            } catch {
                throw CommandError("Cannot use the PostgreSQL store \(configuration.redactedDescription): \(Self.reason(error)).")
            }
            return try await body(store)
        }
    }

    static func reason(_ error: any Error) -> String {
        if let error = error as? StoreUnavailableError { return error.underlying }
        if let error = error as? PSQLError {
            if let message = error.serverInfo?[.message] { return message }
            return "\(error.code)"
        }
        return "\(error)"
    }
}
