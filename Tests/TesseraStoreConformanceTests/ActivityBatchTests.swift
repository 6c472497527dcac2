import Foundation
import Logging
import ServiceLifecycleTestKit
import Testing
import Tessera
import TesseraTestSupport

/// Activity written in batches, on every store.
@Suite(.heavy) struct ActivityBatchTests {
    let clock = ManualClock()

    @Test(arguments: StoreKind.available) func batchesTakeTheGreaterValueAndSkipRevokedSessions(kind: StoreKind) async throws {
        try await StoreFixture.with(kind) { fixture in
            let store = try await fixture.open()
            let sessions = SessionManager(store: store, clock: self.clock)
            let start = self.clock.now
            let a = try await sessions.createSession(userID: "u").session
            let b = try await sessions.createSession(userID: "u").session
            let revoked = try await sessions.createSession(userID: "u").session
            try await sessions.revoke(sessionID: revoked.id, reason: "logout")

            let later = start.addingTimeInterval(300)
            let changed = try await store.touchSessions([
                ActivityUpdate(sessionID: a.id, lastSeenAt: later, idleExpiresAt: later.addingTimeInterval(900)),
                // Older than what is stored: changes nothing.
                ActivityUpdate(sessionID: b.id, lastSeenAt: start.addingTimeInterval(-60), idleExpiresAt: start),
                ActivityUpdate(sessionID: revoked.id, lastSeenAt: later, idleExpiresAt: later.addingTimeInterval(900)),
                ActivityUpdate(sessionID: "ses_unknown", lastSeenAt: later, idleExpiresAt: later),
            ])
            #expect(changed == 1)
            #expect(try await store.session(id: a.id)?.idleExpiresAt == later.addingTimeInterval(900))
            #expect(try await store.session(id: b.id)?.lastSeenAt == b.lastSeenAt)
            #expect(try await store.session(id: revoked.id)?.lastSeenAt == revoked.lastSeenAt)
            // A batch from another node that arrives late never moves a deadline back.
            #expect(
                try await store.touchSessions([
                    ActivityUpdate(sessionID: a.id, lastSeenAt: start.addingTimeInterval(120), idleExpiresAt: start.addingTimeInterval(1020))
                ]) == 0
            )
            #expect(try await store.touchSessions([]) == 0)
        }
    }

    @Test(arguments: StoreKind.available) func bufferedActivityIsReportedExactlyAndWrittenOncePerWindow(kind: StoreKind) async throws {
        try await StoreFixture.with(kind) { fixture in
            let store = CountingStore(try await fixture.open())
            let buffer = ActivityBuffer()
            let sessions = SessionManager(store: store, clock: self.clock, activityBuffer: buffer)
            let created = try await sessions.createSession(userID: "u")
            let start = self.clock.now

            self.clock.advance(by: .seconds(90))
            for _ in 0..<25 {
                let session = try await sessions.authenticate(token: created.token.rawValue)
                #expect(session.idleExpiresAt == start.addingTimeInterval(90 + 900))
            }
            // Nothing written yet; one entry waiting.
            #expect(store.count("touchSession") + store.count("touchSessions") == 0)
            #expect(buffer.count == 1)

            try await buffer.flush(to: store)
            #expect(store.count("touchSessions") == 1)
            #expect(buffer.count == 0)
            #expect(try await store.session(id: created.session.id)?.idleExpiresAt == start.addingTimeInterval(90 + 900))
        }
    }

    @Test(arguments: StoreKind.available) func unwrittenActivityStillKeepsTheSessionAlive(kind: StoreKind) async throws {
        try await StoreFixture.with(kind) { fixture in
            let store = try await fixture.open()
            let sessions = SessionManager(store: store, clock: self.clock, activityBuffer: ActivityBuffer())
            let created = try await sessions.createSession(userID: "u")
            // Activity just before the stored idle deadline, not flushed yet…
            self.clock.advance(by: .seconds(15 * 60 - 1))
            _ = try await sessions.authenticate(token: created.token.rawValue)
            // …still counts on this node after the stored deadline has passed.
            self.clock.advance(by: .seconds(2))
            let session = try await sessions.authenticate(token: created.token.rawValue)
            #expect(session.lastSeenAt == created.session.createdAt.addingTimeInterval(15 * 60 - 1))
        }
    }

    @Test func aFailedFlushKeepsTheActivityForTheNextOne() async throws {
        let directory = TemporaryDirectory()
        let faulty = FaultyStore(try directory.sqliteStore())
        let buffer = ActivityBuffer()
        let sessions = SessionManager(store: faulty, clock: self.clock, activityBuffer: buffer)
        let created = try await sessions.createSession(userID: "u")
        self.clock.advance(by: .seconds(120))
        _ = try await sessions.authenticate(token: created.token.rawValue)

        faulty.set(.down)
        await #expect(throws: StoreUnavailableError.self) { try await buffer.flush(to: faulty) }
        #expect(buffer.count == 1)
        faulty.set(.healthy)
        #expect(try await buffer.flush(to: faulty) == 1)
        #expect(try await faulty.session(id: created.session.id)?.lastSeenAt == created.session.createdAt.addingTimeInterval(120))
    }

    @Test func theFlusherWritesWhatIsLeftOnGracefulShutdown() async throws {
        let directory = TemporaryDirectory()
        let store = CountingStore(try directory.sqliteStore())
        let buffer = ActivityBuffer()
        let sessions = SessionManager(store: store, clock: self.clock, activityBuffer: buffer)
        let created = try await sessions.createSession(userID: "u")
        self.clock.advance(by: .seconds(120))
        _ = try await sessions.authenticate(token: created.token.rawValue)

        let flusher = ActivityFlusher(buffer: buffer, store: store, interval: .seconds(3600), logger: Logger(label: "test"))
        try await testGracefulShutdown { trigger in
            let task = Task { try await flusher.run() }
            trigger.triggerGracefulShutdown()
            try await task.value
        }
        #expect(buffer.count == 0)
        #expect(try await store.session(id: created.session.id)?.lastSeenAt == created.session.createdAt.addingTimeInterval(120))
    }
}
