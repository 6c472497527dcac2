import Foundation
import GRDB
import Testing
import Tessera
@testable import TesseraSQLite
import TesseraTestSupport

@Suite(.heavy) struct SQLiteStoreTests {
    let directory = TemporaryDirectory()

    @Test func migrationsRunOnOpenAndAreRecorded() async throws {
        let store = try self.directory.sqliteStore()
        #expect(
            try await store.appliedMigrations() == [
                "v1: sessions, users, throttle counters", "v2: session change feed", "v3: refresh tokens", "v4: login attempts in flight",
                "v5: session events, webhook deliveries", "v6: user roles, disabled users, sessions by creation",
            ]
        )
        #expect(try await store.appliedMigrations() == SQLiteSessionStore.knownMigrations)
        // Opening again applies nothing twice.
        let again = try self.directory.sqliteStore()
        #expect(try await again.appliedMigrations().count == 6)
    }

    /// The writing connection keeps the configured share of the file in memory (activity writes
    /// touch every active session's pages); the readers keep SQLite's default.
    @Test func theWriterKeepsItsConfiguredPageCache() async throws {
        for kib in [64 * 1024, 1234] {
            let store = try SQLiteSessionStore(
                path: self.directory.url.appendingPathComponent("cache-\(kib).sqlite").path,
                configuration: .init(writerCacheKiB: kib)
            )
            #expect(try await store.pool.write { db in try Int.fetchOne(db, sql: "PRAGMA cache_size") } == -kib)
            #expect(try await store.pool.read { db in try Int.fetchOne(db, sql: "PRAGMA cache_size") } == -2000)
        }
    }

    /// An upgrade to session events reports no expiry of a session that had ended before it: only
    /// sessions that end afterwards get their `session.expired`.
    @Test func upgradingToEventsReportsNoOldExpiries() async throws {
        let path = self.directory.url.appendingPathComponent("old.sqlite").path
        let now = Date().truncatedToMilliseconds
        do {
            let pool = try DatabasePool(path: path)
            try SQLiteSessionStore.migrator.migrate(pool, upTo: "v4: login attempts in flight")
            try await pool.write { db in
                for (id, idle) in [("ses_ended", now.addingTimeInterval(-3600)), ("ses_alive", now.addingTimeInterval(3600))] {
                    try db.execute(
                        sql: """
                            INSERT INTO sessions (id, token_hash, user_id, created_at, last_seen_at, idle_expires_at, absolute_expires_at,
                                data, data_version, csrf_token)
                            VALUES (?, randomblob(32), 'usr_a', ?, ?, ?, ?, '{}', 1, 'c')
                            """,
                        arguments: [
                            id, now.millisecondsSince1970 - 7_200_000, now.millisecondsSince1970 - 7_200_000, idle.millisecondsSince1970,
                            now.millisecondsSince1970 + 86_400_000,
                        ]
                    )
                }
            }
        }
        let store = try SQLiteSessionStore(path: path)
        #expect(try await store.appliedMigrations().last == "v6: user roles, disabled users, sessions by creation")
        #expect(try await store.latestSessionEvent() == 0)
        #expect(try await store.recordExpiries(at: now.addingTimeInterval(7200), idleGrace: .seconds(10), limit: 100).count == 1)
        let events = try await store.sessionEvents(after: 0, filter: .all, limit: 10)
        #expect(events.map { "\($0.kind.rawValue) \($0.sessionID ?? "")" } == ["session.expired ses_alive"])
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
