import Foundation
import GRDB
import Testing
import Tessera
import TesseraSQLite
import TesseraTestSupport

@Suite(.heavy) struct SQLiteStoreTests {
    let directory = TemporaryDirectory()

    @Test func migrationsRunOnOpenAndAreRecorded() async throws {
        let store = try self.directory.sqliteStore()
        #expect(
            try await store.appliedMigrations() == [
                "v1: sessions, users, throttle counters", "v2: session change feed", "v3: refresh tokens", "v4: login attempts in flight",
                "v5: session events, webhook deliveries",
            ]
        )
        #expect(try await store.appliedMigrations() == SQLiteSessionStore.knownMigrations)
        // Opening again applies nothing twice.
        let again = try self.directory.sqliteStore()
        #expect(try await again.appliedMigrations().count == 5)
    }

    @Test func databaseIsInWriteAheadLogModeAndStoresNoToken() async throws {
        let store = try self.directory.sqliteStore()
        let sessions = SessionManager(store: store)
        let created = try await sessions.createSession(userID: "u")
        let queue = try DatabaseQueue(path: store.path)
        let mode = try await queue.read { db in try String.fetchOne(db, sql: "PRAGMA journal_mode") }
        #expect(mode == "wal")
        let file = try Data(contentsOf: URL(fileURLWithPath: store.path)) + (try Data(contentsOf: URL(fileURLWithPath: store.path + "-wal")))
        #expect(file.range(of: Data(created.token.rawValue.utf8)) == nil)
        #expect(file.range(of: Data(created.token.rawValue.dropFirst(4).utf8)) == nil)
    }

    @Test func unwritableLocationIsAStoreError() {
        #expect(throws: (any Error).self) { try SQLiteSessionStore(path: "/proc/tessera/none.sqlite") }
    }
}
