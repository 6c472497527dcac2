import Foundation
import Logging
public import Tessera
public import TesseraPostgres
import TesseraSQLite

/// The stores the conformance suite runs against.
public enum StoreKind: String, Sendable, CaseIterable, CustomStringConvertible {
    case sqlite
    case postgres

    /// The PostgreSQL server for tests, from `TESSERA_TEST_POSTGRES_URL`
    /// (`scripts/postgres-test-server.sh start` prints one).
    public static var postgresURL: String? {
        ProcessInfo.processInfo.environment["TESSERA_TEST_POSTGRES_URL"].flatMap { $0.isEmpty ? nil : $0 }
    }

    /// Whether a missing PostgreSQL server is a failure rather than a reason to run SQLite only
    /// (`.ci/run` sets `TESSERA_REQUIRE_POSTGRES=1`).
    public static var postgresRequired: Bool {
        ProcessInfo.processInfo.environment["TESSERA_REQUIRE_POSTGRES"] == "1"
    }

    /// SQLite always; PostgreSQL when a server is configured (or required, so that its absence fails).
    public static var available: [StoreKind] {
        (postgresURL != nil || postgresRequired) ? [.sqlite, .postgres] : [.sqlite]
    }

    public var description: String { self.rawValue }
}

/// One test's database: a SQLite file, or a PostgreSQL schema of its own. ``open()`` gives a new
/// handle on the same data each time, as a restarted process would get.
public final class StoreFixture: @unchecked Sendable {
    // Mutable state is only touched by the test that owns the fixture, one call at a time.
    public let kind: StoreKind
    let directory = TemporaryDirectory()
    let schema = "t_" + UUID().uuidString.lowercased().replacingOccurrences(of: "-", with: "")
    private var postgresStores: [(PostgresSessionStore, Task<Void, Never>)] = []

    init(kind: StoreKind) {
        self.kind = kind
    }

    /// Runs `body` with a fresh fixture, and removes the fixture's data afterwards.
    public static func with<T>(_ kind: StoreKind, _ body: (StoreFixture) async throws -> T) async throws -> T {
        let fixture = StoreFixture(kind: kind)
        return try await running({ try await body(fixture) }) { await fixture.tearDown() }
    }

    /// A new handle on this fixture's database, migrated.
    public func open() async throws -> any SessionStore {
        switch self.kind {
        case .sqlite:
            return try SQLiteSessionStore(path: self.directory.url.appendingPathComponent("tessera.sqlite").path)
        case .postgres:
            return try await self.openPostgres()
        }
    }

    /// A new PostgreSQL handle on this fixture's schema, its pool running and migrated.
    public func openPostgres() async throws -> PostgresSessionStore {
        guard let url = StoreKind.postgresURL else {
            throw FixtureError("TESSERA_REQUIRE_POSTGRES=1 but TESSERA_TEST_POSTGRES_URL is not set; run scripts/postgres-test-server.sh start")
        }
        var configuration = try PostgresSessionStore.Configuration(url: url)
        configuration.schema = self.schema
        var logger = Logger(label: "tessera.postgres.test")
        logger.logLevel = .warning
        let store = try PostgresSessionStore(configuration: configuration, logger: logger)
        let task = Task { await store.run() }
        self.postgresStores.append((store, task))
        try await store.migrate()
        return store
    }

    func tearDown() async {
        if let (store, _) = self.postgresStores.first {
            try? await store.dropSchema()
        }
        for (_, task) in self.postgresStores {
            task.cancel()
            await task.value
        }
        self.postgresStores.removeAll()
    }
}

struct FixtureError: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}
