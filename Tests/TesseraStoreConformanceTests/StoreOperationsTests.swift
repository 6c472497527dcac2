import Foundation
import Testing
import Tessera
import TesseraTestSupport

/// Store operations, run the same against every store.
@Suite(.heavy) struct StoreOperationsTests {
    @Test(arguments: StoreKind.available) func usernamesAreUniqueRegardlessOfCase(kind: StoreKind) async throws {
        try await StoreFixture.with(kind) { fixture in
            let store = try await fixture.open()
            try await store.insertUser(User(id: "usr_1", username: "Alice", passwordHash: "h", createdAt: Date()))
            await #expect(throws: UserExistsError.self) {
                try await store.insertUser(User(id: "usr_2", username: "alice", passwordHash: "h", createdAt: Date()))
            }
            #expect(try await store.user(username: "ALICE")?.id == "usr_1")
            #expect(try await store.users().count == 1)
        }
    }

    @Test(arguments: StoreKind.available) func throttleCountersCountWithinAWindowAndRestartAfterIt(kind: StoreKind) async throws {
        try await StoreFixture.with(kind) { fixture in
            let store = try await fixture.open()
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
    }

    @Test(arguments: StoreKind.available) func aWithdrawnFailureIsTakenBackNeverBelowZero(kind: StoreKind) async throws {
        try await StoreFixture.with(kind) { fixture in
            let store = try await fixture.open()
            let start = Date(timeIntervalSince1970: 1_800_000_000)
            for _ in 0..<3 {
                _ = try await store.recordFailure(key: "k", at: start, window: .seconds(60))
            }
            try await store.withdrawFailure(key: "k")
            #expect(try await store.throttleCounter(key: "k") == ThrottleCounter(failures: 2, windowStartedAt: start))
            for _ in 0..<4 {
                try await store.withdrawFailure(key: "k")
            }
            #expect(try await store.throttleCounter(key: "k") == ThrottleCounter(failures: 0, windowStartedAt: start))
            // The window is kept: the next failure is the first of the same window.
            let next = try await store.recordFailure(key: "k", at: start.addingTimeInterval(10), window: .seconds(60))
            #expect(next == ThrottleCounter(failures: 1, windowStartedAt: start))
            // No counter, nothing made.
            try await store.withdrawFailure(key: "other")
            #expect(try await store.throttleCounter(key: "other") == nil)
        }
    }

    @Test(arguments: StoreKind.available) func concurrentFailuresAreAllCounted(kind: StoreKind) async throws {
        try await StoreFixture.with(kind) { fixture in
            let store = try await fixture.open()
            let now = Date(timeIntervalSince1970: 1_800_000_000)
            try await withThrowingTaskGroup(of: Void.self) { group in
                for _ in 0..<40 {
                    group.addTask { _ = try await store.recordFailure(key: "k", at: now, window: .seconds(60)) }
                }
                try await group.waitForAll()
            }
            #expect(try await store.throttleCounter(key: "k")?.failures == 40)
        }
    }

    @Test(arguments: StoreKind.available) func touchNeverMovesActivityBackNorRevivesARevokedSession(kind: StoreKind) async throws {
        try await StoreFixture.with(kind) { fixture in
            let store = try await fixture.open()
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
    }

    @Test func postgresIsConfiguredWhenRequired() {
        #expect(!StoreKind.postgresRequired || StoreKind.postgresURL != nil, "TESSERA_REQUIRE_POSTGRES=1 without TESSERA_TEST_POSTGRES_URL")
    }
}
