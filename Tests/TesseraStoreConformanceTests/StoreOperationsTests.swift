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

    @Test(arguments: StoreKind.available) func failedAttemptsCountWithinAWindowAndRestartAfterIt(kind: StoreKind) async throws {
        try await StoreFixture.with(kind) { fixture in
            let store = try await fixture.open()
            let start = Date(timeIntervalSince1970: 1_800_000_000)
            let window = Duration.seconds(60)
            for expected in 1...3 {
                let at = start.addingTimeInterval(Double(expected))
                let begun = try await store.beginAttempt(key: "k", at: at, window: window, staleAfter: .seconds(30))
                #expect(begun.failures == expected - 1)
                #expect(begun.inFlight == 1)
                try await store.endAttempt(key: "k", at: at, window: window, outcome: .failed)
                let counter = try #require(try await store.throttleCounter(key: "k"))
                #expect(counter.failures == expected)
                #expect(counter.inFlight == 0)
                #expect(counter.windowStartedAt == start.addingTimeInterval(1))
            }
            // The window has passed: the next attempt starts a new one with no failures.
            let restarted = try await store.beginAttempt(key: "k", at: start.addingTimeInterval(61), window: window, staleAfter: .seconds(30))
            #expect(restarted.failures == 0)
            #expect(restarted.windowStartedAt == start.addingTimeInterval(61))
            try await store.endAttempt(key: "k", at: start.addingTimeInterval(61), window: window, outcome: .failed)
            #expect(try await store.throttleCounter(key: "k")?.failures == 1)
        }
    }

    @Test(arguments: StoreKind.available) func aSuccessForgetsFailuresAndAWithdrawalKeepsThem(kind: StoreKind) async throws {
        try await StoreFixture.with(kind) { fixture in
            let store = try await fixture.open()
            let now = Date(timeIntervalSince1970: 1_800_000_000)
            let window = Duration.seconds(60)
            for _ in 0..<3 {
                _ = try await store.beginAttempt(key: "k", at: now, window: window, staleAfter: .seconds(30))
                try await store.endAttempt(key: "k", at: now, window: window, outcome: .failed)
            }
            _ = try await store.beginAttempt(key: "k", at: now, window: window, staleAfter: .seconds(30))
            try await store.endAttempt(key: "k", at: now, window: window, outcome: .withdrawn)
            #expect(try await store.throttleCounter(key: "k").map { [$0.failures, $0.inFlight] } == [3, 0])
            _ = try await store.beginAttempt(key: "k", at: now.addingTimeInterval(5), window: window, staleAfter: .seconds(30))
            try await store.endAttempt(key: "k", at: now.addingTimeInterval(5), window: window, outcome: .succeeded)
            let cleared = try #require(try await store.throttleCounter(key: "k"))
            #expect(cleared.failures == 0)
            #expect(cleared.inFlight == 0)
            #expect(cleared.windowStartedAt == now.addingTimeInterval(5))
            // Ending more attempts than were begun never goes below zero in flight.
            try await store.endAttempt(key: "k", at: now, window: window, outcome: .withdrawn)
            #expect(try await store.throttleCounter(key: "k")?.inFlight == 0)
        }
    }

    @Test(arguments: StoreKind.available) func attemptsInFlightAreCountedAndForgottenWhenStale(kind: StoreKind) async throws {
        try await StoreFixture.with(kind) { fixture in
            let store = try await fixture.open()
            let now = Date(timeIntervalSince1970: 1_800_000_000)
            let window = Duration.seconds(900)
            for expected in 1...4 {
                let counter = try await store.beginAttempt(key: "k", at: now, window: window, staleAfter: .seconds(30))
                #expect(counter.inFlight == expected)
                #expect(counter.inFlightSince == now)
            }
            // Four attempts never ended (their node died): 30 s after the oldest began, the next
            // attempt counts alone.
            let later = now.addingTimeInterval(30)
            let fresh = try await store.beginAttempt(key: "k", at: later, window: window, staleAfter: .seconds(30))
            #expect(fresh.inFlight == 1)
            #expect(fresh.inFlightSince == later)
        }
    }

    @Test(arguments: StoreKind.available) func concurrentAttemptsAreAllCounted(kind: StoreKind) async throws {
        try await StoreFixture.with(kind) { fixture in
            let store = try await fixture.open()
            let now = Date(timeIntervalSince1970: 1_800_000_000)
            let window = Duration.seconds(60)
            let inFlight = try await withThrowingTaskGroup(of: Int.self) { group in
                for _ in 0..<40 {
                    group.addTask { try await store.beginAttempt(key: "k", at: now, window: window, staleAfter: .seconds(30)).inFlight }
                }
                return try await group.reduce(into: Set<Int>()) { $0.insert($1) }
            }
            // Each of the 40 saw a different count: none was lost to a race.
            #expect(inFlight == Set(1...40))
            try await withThrowingTaskGroup(of: Void.self) { group in
                for _ in 0..<40 {
                    group.addTask { try await store.endAttempt(key: "k", at: now, window: window, outcome: .failed) }
                }
                try await group.waitForAll()
            }
            #expect(try await store.throttleCounter(key: "k").map { [$0.failures, $0.inFlight] } == [40, 0])
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
