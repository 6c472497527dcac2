import Foundation
import GRDB
import Testing
import Tessera
import TesseraSQLite
import TesseraTestSupport

@Suite struct SQLiteStoreTests {
    let directory = TemporaryDirectory()

    @Test func migrationsRunOnOpenAndAreRecorded() async throws {
        let store = try self.directory.sqliteStore()
        #expect(try await store.appliedMigrations() == ["v1: sessions, users, throttle counters"])
        // Opening again applies nothing twice.
        let again = try self.directory.sqliteStore()
        #expect(try await again.appliedMigrations().count == 1)
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

    @Test func usernamesAreUniqueRegardlessOfCase() async throws {
        let store = try self.directory.sqliteStore()
        try await store.insertUser(User(id: "usr_1", username: "Alice", passwordHash: "h", createdAt: Date()))
        await #expect(throws: UserExistsError.self) {
            try await store.insertUser(User(id: "usr_2", username: "alice", passwordHash: "h", createdAt: Date()))
        }
        #expect(try await store.user(username: "ALICE")?.id == "usr_1")
        #expect(try await store.users().count == 1)
    }

    @Test func throttleCountersCountWithinAWindowAndRestartAfterIt() async throws {
        let store = try self.directory.sqliteStore()
        let start = Date(timeIntervalSince1970: 1_800_000_000)
        for expected in 1...3 {
            let counter = try await store.recordFailure(key: "k", at: start.addingTimeInterval(Double(expected)), window: .seconds(60))
            #expect(counter.failures == expected)
            #expect(counter.windowStartedAt == start.addingTimeInterval(1))
        }
        let restarted = try await store.recordFailure(key: "k", at: start.addingTimeInterval(61), window: .seconds(60))
        #expect(restarted == ThrottleCounter(failures: 1, windowStartedAt: start.addingTimeInterval(61)))
        try await store.clearThrottle(key: "k")
        #expect(try await store.throttleCounter(key: "k") == nil)
    }

    @Test func concurrentFailuresAreAllCounted() async throws {
        let store = try self.directory.sqliteStore()
        let now = Date(timeIntervalSince1970: 1_800_000_000)
        try await withThrowingTaskGroup(of: Void.self) { group in
            for _ in 0..<40 {
                group.addTask { _ = try await store.recordFailure(key: "k", at: now, window: .seconds(60)) }
            }
            try await group.waitForAll()
        }
        #expect(try await store.throttleCounter(key: "k")?.failures == 40)
    }

    @Test func touchNeverMovesActivityBackNorRevivesARevokedSession() async throws {
        let store = try self.directory.sqliteStore()
        let clock = ManualClock()
        let sessions = SessionManager(store: store, clock: clock)
        let created = try await sessions.createSession(userID: "u")
        let later = clock.now.addingTimeInterval(120)
        #expect(try await store.touchSession(id: created.session.id, lastSeenAt: later, idleExpiresAt: later.addingTimeInterval(900)))
        #expect(try await store.touchSession(id: created.session.id, lastSeenAt: later.addingTimeInterval(-60), idleExpiresAt: later) == false)
        #expect(try await store.session(id: created.session.id)?.lastSeenAt == later)
        try await store.revokeSession(id: created.session.id, at: later, reason: "logout")
        #expect(try await store.touchSession(id: created.session.id, lastSeenAt: later.addingTimeInterval(60), idleExpiresAt: later) == false)
    }

    @Test func unwritableLocationIsAStoreError() {
        #expect(throws: (any Error).self) { try SQLiteSessionStore(path: "/proc/tessera/none.sqlite") }
    }
}
