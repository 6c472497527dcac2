import Foundation
import Testing
import Tessera
import TesseraTestSupport

/// Group commit of session creates, on every store.
@Suite(.heavy) struct GroupCommitTests {
    let clock = ManualClock()

    /// Waits (briefly, in real time) until `condition` holds.
    func eventually(_ condition: () -> Bool) async throws {
        for _ in 0..<5000 where !condition() { try await Task.sleep(for: .milliseconds(1)) }
        #expect(condition())
    }

    @Test(arguments: StoreKind.available) func createsThatArriveDuringAWriteShareTheNextOne(kind: StoreKind) async throws {
        try await StoreFixture.with(kind) { fixture in
            let real = try await fixture.open()
            let faulty = FaultyStore(real)
            let counting = CountingStore(faulty)
            let sessions = SessionManager(store: counting, clock: self.clock, groupCommit: true)
            let batcher = try #require(sessions.insertBatcher)

            // The first create's write is held in flight…
            faulty.set(.paused)
            let first = Task { try await sessions.createSession(userID: "u0") }
            try await self.eventually { faulty.calls == 1 }
            // …while 99 more arrive.
            let rest = (1..<100).map { index in Task { try await sessions.createSession(userID: "u\(index)") } }
            try await self.eventually { batcher.waitingCount == 99 }
            #expect(counting.count("insertSessions") == 1)
            faulty.set(.healthy)

            var created = [try await first.value]
            for task in rest { created.append(try await task.value) }
            // Two transactions for 100 sessions, and each create returned only after its own
            // was committed: every one is in the store.
            #expect(counting.count("insertSessions") == 2)
            for new in created {
                #expect(try await real.session(tokenHash: new.token.hash)?.id == new.session.id)
            }
        }
    }

    @Test(arguments: StoreKind.available) func aFailedWriteFailsEveryCreateInItAndStoresNone(kind: StoreKind) async throws {
        try await StoreFixture.with(kind) { fixture in
            let real = try await fixture.open()
            let faulty = FaultyStore(real)
            let sessions = SessionManager(store: faulty, clock: self.clock, groupCommit: true)
            let batcher = try #require(sessions.insertBatcher)

            faulty.set(.paused)
            let first = Task { try await sessions.createSession(userID: "u") }
            try await self.eventually { faulty.calls == 1 }
            let rest = (0..<10).map { _ in Task { try await sessions.createSession(userID: "u") } }
            try await self.eventually { batcher.waitingCount == 10 }
            faulty.set(.down)
            for task in [first] + rest {
                await #expect(throws: StoreUnavailableError.self) { try await task.value }
            }
            #expect(try await real.activeSessions(userID: "u", at: self.clock.now, limit: 100).isEmpty)

            // The store recovers; creates work again.
            faulty.set(.healthy)
            let later = try await sessions.createSession(userID: "u")
            #expect(try await real.session(id: later.session.id) != nil)
        }
    }

    @Test(arguments: StoreKind.available) func aBatchIsIdempotent(kind: StoreKind) async throws {
        try await StoreFixture.with(kind) { fixture in
            let store = try await fixture.open()
            let sessions = SessionManager(store: store, clock: self.clock)
            let a = try await sessions.createSession(userID: "u").session
            var changed = a
            changed.userID = "someone else"
            // A retried batch whose first attempt committed changes nothing.
            try await store.insertSessions([changed])
            try await store.insertSessions([])
            #expect(try await store.session(id: a.id)?.userID == "u")
        }
    }
}
