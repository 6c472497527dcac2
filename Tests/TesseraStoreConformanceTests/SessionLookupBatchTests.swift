import Foundation
import Testing
import Tessera
import TesseraTestSupport

/// Validations that miss the cache together are read from the store together, on every store.
@Suite(.heavy) struct SessionLookupBatchTests {
    let clock = ManualClock()

    /// Waits (briefly, in real time) until `condition` holds.
    func eventually(_ condition: () -> Bool) async throws {
        for _ in 0..<5000 where !condition() { try await Task.sleep(for: .milliseconds(1)) }
        #expect(condition())
    }

    @Test(arguments: StoreKind.available) func aReadOfSeveralHashesFindsEachSessionWhateverItsState(kind: StoreKind) async throws {
        try await StoreFixture.with(kind) { fixture in
            let store = try await fixture.open()
            let sessions = SessionManager(store: store, clock: self.clock)
            let created = try await (0..<5).asyncMap { try await sessions.createSession(userID: "u\($0)") }
            try await sessions.revoke(sessionID: created[3].session.id, reason: "logout")
            let unknown = SessionToken.generate().hash

            let found = try await store.sessions(tokenHashes: created.map(\.token.hash) + [unknown])
            #expect(Set(found.map(\.id)) == Set(created.map(\.session.id)))
            for new in created {
                let session = try #require(found.first { $0.id == new.session.id })
                #expect(session.tokenHash == new.token.hash)
                #expect(session == (try await store.session(tokenHash: new.token.hash)))
            }
            #expect(found.first { $0.id == created[3].session.id }?.revocationReason == "logout")
            #expect(try await store.sessions(tokenHashes: [unknown]).isEmpty)
            #expect(try await store.sessions(tokenHashes: []).isEmpty)
        }
    }

    @Test(arguments: StoreKind.available) func missesThatArriveDuringAReadShareTheNextOne(kind: StoreKind) async throws {
        try await StoreFixture.with(kind) { fixture in
            let real = try await fixture.open()
            let faulty = FaultyStore(real)
            let counting = CountingStore(faulty)
            let sessions = SessionManager(store: counting, clock: self.clock)
            let created = try await (0..<41).asyncMap { try await sessions.createSession(userID: "u\($0)") }

            // The first miss's read is held in flight…
            let callsBefore = faulty.calls
            faulty.set(.paused)
            let first = Task { try await sessions.authenticate(token: created[0].token.rawValue) }
            try await self.eventually { faulty.calls == callsBefore + 1 }
            // …while 40 more arrive, the last 20 presenting the same tokens as the 20 before them.
            let rest = (1...40).map { index in
                Task { try await sessions.authenticate(token: created[index <= 20 ? index : index - 20].token.rawValue) }
            }
            try await self.eventually { sessions.lookups.waitingCount == 40 }
            faulty.set(.healthy)

            #expect(try await first.value.id == created[0].session.id)
            for (index, task) in zip(1...40, rest) {
                #expect(try await task.value.id == created[index <= 20 ? index : index - 20].session.id)
            }
            // Two reads for 41 validations: the first alone, then the 40 waiting together, each
            // of their 20 tokens asked for once.
            #expect(counting.count("sessionByTokenHash") == 1)
            #expect(counting.count("sessionsByTokenHashes") == 1)
            #expect(counting.count("tokenHashesInBatches") == 20)
            #expect(sessions.lookups.waitingCount == 0)
        }
    }

    @Test(arguments: StoreKind.available) func aFailedReadFailsEveryValidationInItAndTheNextReadsAgain(kind: StoreKind) async throws {
        try await StoreFixture.with(kind) { fixture in
            let real = try await fixture.open()
            let faulty = FaultyStore(real)
            let sessions = SessionManager(store: faulty, clock: self.clock)
            let created = try await (0..<11).asyncMap { try await sessions.createSession(userID: "u\($0)") }

            let callsBefore = faulty.calls
            faulty.set(.paused)
            let first = Task { try await sessions.authenticate(token: created[0].token.rawValue) }
            try await self.eventually { faulty.calls == callsBefore + 1 }
            let rest = (1...10).map { index in Task { try await sessions.authenticate(token: created[index].token.rawValue) } }
            try await self.eventually { sessions.lookups.waitingCount == 10 }
            // The first read fails, and so does the batch read after it.
            faulty.set(.down)
            for task in [first] + rest {
                await #expect(throws: StoreUnavailableError.self) { try await task.value }
            }
            // Nothing is left waiting or reading: the next miss reads at once.
            faulty.set(.healthy)
            #expect(try await sessions.authenticate(token: created[5].token.rawValue).id == created[5].session.id)
            #expect(sessions.lookups.waitingCount == 0)
        }
    }

    @Test(arguments: StoreKind.available) func aCancelledReaderDoesNotFailTheOthersInItsBatch(kind: StoreKind) async throws {
        try await StoreFixture.with(kind) { fixture in
            let real = try await fixture.open()
            let faulty = FaultyStore(real)
            // As the service runs it (a cancelled caller's store call ends at once), with room
            // for a held read.
            let store = ResilientStore(faulty, configuration: .init(deadline: .seconds(60), attemptTimeout: .seconds(60)))
            let sessions = SessionManager(store: store, clock: self.clock)
            let created = try await (0..<11).asyncMap { try await sessions.createSession(userID: "u\($0)") }

            // The first miss's read is held; `reader` waits first, so it reads next, with the
            // nine that wait after it…
            let callsBefore = faulty.calls
            faulty.set(.paused)
            let first = Task { try await sessions.authenticate(token: created[0].token.rawValue) }
            try await self.eventually { faulty.calls == callsBefore + 1 }
            let reader = Task { try await sessions.authenticate(token: created[1].token.rawValue) }
            try await self.eventually { sessions.lookups.waitingCount == 1 }
            let others = (2...10).map { index in Task { try await sessions.authenticate(token: created[index].token.rawValue) } }
            try await self.eventually { sessions.lookups.waitingCount == 10 }
            // …but it is cancelled before its turn comes.
            reader.cancel()
            faulty.set(.healthy)

            #expect(try await first.value.id == created[0].session.id)
            await #expect(throws: CancellationError.self) { try await reader.value }
            // Its cancellation is not theirs: they are read in the next batch.
            for (index, task) in zip(2...10, others) {
                #expect(try await task.value.id == created[index].session.id)
            }
            #expect(sessions.lookups.waitingCount == 0)
        }
    }
}
