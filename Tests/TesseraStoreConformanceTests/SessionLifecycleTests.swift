import Foundation
import Logging
import ServiceLifecycleTestKit
import Testing
import Tessera
import TesseraTestSupport

/// Session rules, run the same against every store (a real SQLite file, a real PostgreSQL
/// server), with time moved by a manual clock.
@Suite(.heavy) struct SessionLifecycleTests {
    let clock = ManualClock()

    func manager(_ store: any SessionStore, policy: SessionPolicy = .init()) -> SessionManager {
        SessionManager(store: store, policy: policy, clock: self.clock)
    }

    func expectExpired(_ reason: SessionEndReason, _ body: () async throws -> Void, sourceLocation: SourceLocation = #_sourceLocation) async {
        await #expect(throws: TesseraError.sessionExpired(reason), sourceLocation: sourceLocation) { try await body() }
    }

    @Test(arguments: StoreKind.available) func idleSessionExpiresAtExactlyItsDeadline(kind: StoreKind) async throws {
        try await StoreFixture.with(kind) { fixture in
            let sessions = self.manager(try await fixture.open())
            let atDeadline = try await sessions.createSession(userID: "u1")
            let justBefore = try await sessions.createSession(userID: "u2")
            #expect(atDeadline.session.idleExpiresAt == self.clock.now.addingTimeInterval(15 * 60))

            self.clock.advance(by: .seconds(15 * 60) - .milliseconds(1))
            let valid = try await sessions.authenticate(token: justBefore.token.rawValue)
            #expect(valid.id == justBefore.session.id)

            self.clock.advance(by: .milliseconds(1))
            await self.expectExpired(.idle) { _ = try await sessions.authenticate(token: atDeadline.token.rawValue) }
        }
    }

    @Test(arguments: StoreKind.available) func activitySlidesTheIdleDeadline(kind: StoreKind) async throws {
        try await StoreFixture.with(kind) { fixture in
            let sessions = self.manager(try await fixture.open())
            let created = try await sessions.createSession(userID: "u")
            let start = self.clock.now

            self.clock.advance(by: .seconds(14 * 60))
            let slid = try await sessions.authenticate(token: created.token.rawValue)
            #expect(slid.lastSeenAt == start.addingTimeInterval(14 * 60))
            #expect(slid.idleExpiresAt == start.addingTimeInterval(29 * 60))

            // Past the original deadline, still valid thanks to the activity.
            self.clock.advance(by: .seconds(14 * 60))
            _ = try await sessions.authenticate(token: created.token.rawValue)

            // Fifteen quiet minutes later it is over.
            self.clock.advance(by: .seconds(15 * 60))
            await self.expectExpired(.idle) { _ = try await sessions.authenticate(token: created.token.rawValue) }
        }
    }

    @Test(arguments: StoreKind.available) func absoluteDeadlineWinsOverActivity(kind: StoreKind) async throws {
        try await StoreFixture.with(kind) { fixture in
            let sessions = self.manager(try await fixture.open())
            let created = try await sessions.createSession(userID: "u")
            let start = self.clock.now
            #expect(created.session.absoluteExpiresAt == start.addingTimeInterval(160 * 60))

            for _ in 0..<15 {
                self.clock.advance(by: .seconds(10 * 60))
                _ = try await sessions.authenticate(token: created.token.rawValue)
            }
            // At 150 minutes, the idle deadline is capped by the absolute one.
            let late = try await sessions.authenticate(token: created.token.rawValue)
            #expect(late.idleExpiresAt == late.absoluteExpiresAt)

            self.clock.advance(by: .seconds(10 * 60))
            await self.expectExpired(.absolute) { _ = try await sessions.authenticate(token: created.token.rawValue) }
        }
    }

    @Test(arguments: StoreKind.available) func activityInOneWindowIsWrittenOnce(kind: StoreKind) async throws {
        try await StoreFixture.with(kind) { fixture in
            let store = CountingStore(try await fixture.open())
            let sessions = self.manager(store)
            let created = try await sessions.createSession(userID: "u")
            let start = self.clock.now

            // Within the first window nothing needs writing.
            for _ in 0..<10 {
                self.clock.advance(by: .seconds(5))
                _ = try await sessions.authenticate(token: created.token.rawValue)
            }
            #expect(store.count("touchSession") == 0)

            // The first request past the window writes; the next 20 in the same window do not.
            self.clock.set(start.addingTimeInterval(61))
            for _ in 0..<20 {
                _ = try await sessions.authenticate(token: created.token.rawValue)
                self.clock.advance(by: .seconds(2))
            }
            #expect(store.count("touchSession") == 1)
            let stored = try #require(try await store.session(id: created.session.id))
            #expect(stored.lastSeenAt == start.addingTimeInterval(61))
            #expect(stored.idleExpiresAt == start.addingTimeInterval(61 + 15 * 60))

            // The next window writes once more.
            self.clock.set(start.addingTimeInterval(125))
            _ = try await sessions.authenticate(token: created.token.rawValue)
            #expect(store.count("touchSession") == 2)
        }
    }

    @Test(arguments: StoreKind.available) func concurrentRequestsInOneWindowShareOneWrite(kind: StoreKind) async throws {
        try await StoreFixture.with(kind) { fixture in
            let store = CountingStore(try await fixture.open())
            let sessions = self.manager(store)
            let created = try await sessions.createSession(userID: "u")
            self.clock.advance(by: .seconds(90))
            let expected = self.clock.now.addingTimeInterval(15 * 60)

            let deadlines = try await withThrowingTaskGroup(of: Date.self) { group in
                for _ in 0..<50 {
                    group.addTask { try await sessions.authenticate(token: created.token.rawValue).idleExpiresAt }
                }
                return try await group.reduce(into: [Date]()) { $0.append($1) }
            }
            #expect(store.count("touchSession") == 1)
            // Every validation read the store (there is no cache), alone or in a batch with
            // others; the 50 hashes are one, so a batch asks for it once.
            let reads = store.count("sessionByTokenHash") + store.count("sessionsByTokenHashes")
            #expect(reads >= 1 && reads <= 50)
            #expect(store.count("tokenHashesInBatches") == store.count("sessionsByTokenHashes"))
            // Every one of them reports the deadline the store now holds.
            #expect(deadlines.allSatisfy { $0 == expected })
            #expect(try await store.session(id: created.session.id)?.idleExpiresAt == expected)
        }
    }

    @Test(arguments: StoreKind.available) func revokedTokenStaysRevokedAfterFiveThousandLaterRevocations(kind: StoreKind) async throws {
        try await StoreFixture.with(kind) { fixture in
            let store = try await fixture.open()
            let sessions = self.manager(store)
            let first = try await sessions.createSession(userID: "victim")
            #expect(try await sessions.revoke(sessionID: first.session.id, reason: "logout"))

            for index in 0..<5000 {
                let later = try await sessions.createSession(userID: "user-\(index % 50)")
                try await sessions.revoke(sessionID: later.session.id, reason: "logout")
            }
            let sweeper = SessionSweeper(sessions: sessions, logger: .init(label: "test"))
            try await sweeper.sweep()

            await self.expectExpired(.revoked) { _ = try await sessions.authenticate(token: first.token.rawValue) }

            // Once the retention has passed and the row is swept, the token is unknown: still refused.
            self.clock.advance(by: sessions.policy.retention + .seconds(1))
            #expect(try await sweeper.sweep() == 5001)
            await #expect(throws: TesseraError.tokenInvalid) { _ = try await sessions.authenticate(token: first.token.rawValue) }
        }
    }

    @Test(arguments: StoreKind.available) func revocationIsPermanentAndSurvivesReopening(kind: StoreKind) async throws {
        try await StoreFixture.with(kind) { fixture in
            let token: String
            do {
                let sessions = self.manager(try await fixture.open())
                let created = try await sessions.createSession(userID: "u")
                token = created.token.rawValue
                try await sessions.revoke(sessionID: created.session.id, reason: "logout")
                // A second revocation changes nothing.
                #expect(try await sessions.revoke(sessionID: created.session.id, reason: "admin") == false)
            }
            let reopened = self.manager(try await fixture.open())
            await self.expectExpired(.revoked) { _ = try await reopened.authenticate(token: token) }
            let stored = try #require(try await reopened.store.session(tokenHash: TokenHash(hashing: token)))
            #expect(stored.revocationReason == "logout")
        }
    }

    @Test(arguments: StoreKind.available) func sessionsAndDataSurviveReopening(kind: StoreKind) async throws {
        try await StoreFixture.with(kind) { fixture in
            var tokens: [String: String] = [:]
            do {
                let sessions = self.manager(try await fixture.open())
                for index in 0..<20 {
                    let created = try await sessions.createSession(userID: "u\(index)", metadata: .init(label: "device \(index)"))
                    _ = try await sessions.updateData(of: created.session, expectedVersion: 1, patch: ["n": .number(Double(index))])
                    tokens[created.token.rawValue] = "u\(index)"
                }
            }
            let reopened = self.manager(try await fixture.open())
            for (token, user) in tokens {
                let session = try await reopened.authenticate(token: token)
                #expect(session.userID == user)
                #expect(session.dataVersion == 2)
                #expect(session.data["n"] == .number(Double(user.dropFirst())!))
                #expect(session.metadata.label == "device \(user.dropFirst())")
            }
        }
    }

    @Test(arguments: StoreKind.available) func dataUpdatesNeverSilentlyLoseAWrite(kind: StoreKind) async throws {
        try await StoreFixture.with(kind) { fixture in
            let sessions = self.manager(try await fixture.open())
            let created = try await sessions.createSession(userID: "u", data: ["cart": .array([])])
            let read = try await sessions.authenticate(token: created.token.rawValue)

            // Two writers that read version 1 race; exactly one wins.
            let results = await withTaskGroup(of: Bool.self) { group in
                for item in ["apple", "pear"] {
                    group.addTask {
                        (try? await sessions.updateData(of: read, expectedVersion: 1, patch: ["cart": .array([.string(item)])])) != nil
                    }
                }
                return await group.reduce(into: [Bool]()) { $0.append($1) }
            }
            #expect(results.filter { $0 }.count == 1)

            await #expect(throws: TesseraError.versionConflict(current: 2)) {
                _ = try await sessions.updateData(of: read, expectedVersion: 1, patch: ["x": .bool(true)])
            }
            let current = try await sessions.authenticate(token: created.token.rawValue)
            #expect(current.dataVersion == 2)
            let updated = try await sessions.updateData(of: current, expectedVersion: 2, patch: ["x": .bool(true)])
            #expect(updated.dataVersion == 3)
            #expect(updated.data["x"] == .bool(true))
        }
    }

    @Test(arguments: StoreKind.available) func oversizedDataIsRefusedAndNothingChanges(kind: StoreKind) async throws {
        try await StoreFixture.with(kind) { fixture in
            let sessions = SessionManager(
                store: try await fixture.open(),
                clock: self.clock,
                dataLimits: JSONLimits(maxBytes: 100, maxDepth: 32, maxMembers: 256, maxElements: 1000)
            )
            let created = try await sessions.createSession(userID: "u", data: ["a": .number(1)])
            await #expect(throws: TesseraError.dataTooLarge(limit: 100)) {
                _ = try await sessions.updateData(
                    of: created.session,
                    expectedVersion: 1,
                    patch: ["big": .string(String(repeating: "x", count: 200))]
                )
            }
            let stored = try #require(try await sessions.store.session(id: created.session.id))
            #expect(stored.data == ["a": .number(1)])
            #expect(stored.dataVersion == 1)
        }
    }

    @Test(arguments: StoreKind.available) func listingShowsOnlyActiveSessionsNewestFirst(kind: StoreKind) async throws {
        try await StoreFixture.with(kind) { fixture in
            let sessions = self.manager(try await fixture.open())
            let old = try await sessions.createSession(userID: "u")
            self.clock.advance(by: .seconds(1))
            let revoked = try await sessions.createSession(userID: "u")
            self.clock.advance(by: .seconds(1))
            let newest = try await sessions.createSession(userID: "u")
            _ = try await sessions.createSession(userID: "someone else")
            try await sessions.revoke(sessionID: revoked.session.id, reason: "user")

            let listed = try await sessions.activeSessions(userID: "u")
            #expect(listed.map(\.id) == [newest.session.id, old.session.id])

            #expect(try await sessions.revoke(sessionID: newest.session.id, ofUser: "someone else", reason: "user") == false)
            #expect(try await sessions.revokeAll(userID: "u", keeping: newest.session.id, reason: "user") == 1)
            #expect(try await sessions.activeSessions(userID: "u").map(\.id) == [newest.session.id])
        }
    }

    @Test(arguments: StoreKind.available) func sweeperDeletesOnlySessionsEndedBeyondRetentionInBatches(kind: StoreKind) async throws {
        try await StoreFixture.with(kind) { fixture in
            let store = CountingStore(try await fixture.open())
            let sessions = self.manager(store, policy: SessionPolicy(retention: .seconds(3600)))
            for _ in 0..<35 { _ = try await sessions.createSession(userID: "expired") }
            self.clock.advance(by: .seconds(15 * 60 + 3600 + 1))
            let fresh = try await sessions.createSession(userID: "fresh")
            let recentlyRevoked = try await sessions.createSession(userID: "revoked")
            try await sessions.revoke(sessionID: recentlyRevoked.session.id, reason: "logout")

            let sweeper = SessionSweeper(sessions: sessions, batchSize: 10, logger: .init(label: "test"))
            #expect(try await sweeper.sweep() == 35)
            #expect(store.count("deleteSessions") == 4)
            #expect(try await store.session(id: fresh.session.id) != nil)
            #expect(try await store.session(id: recentlyRevoked.session.id) != nil)
            #expect(try await sweeper.sweep() == 0)
        }
    }

    @Test(arguments: StoreKind.available) func sweeperRunsUntilGracefulShutdownAndThenReturnsCleanly(kind: StoreKind) async throws {
        try await StoreFixture.with(kind) { fixture in
            let store = CountingStore(try await fixture.open())
            let sessions = self.manager(store)
            let sweeper = SessionSweeper(sessions: sessions, interval: .seconds(3600), logger: .init(label: "test"))
            try await testGracefulShutdown { trigger in
                let task = Task { try await sweeper.run() }
                // Wait (bounded) for the first sweep, then shut down in the middle of the long pause.
                for _ in 0..<200 where store.count("deleteSessions") == 0 {
                    try await Task.sleep(for: .milliseconds(10))
                }
                #expect(store.count("deleteSessions") == 1)
                trigger.triggerGracefulShutdown()
                try await task.value
            }
        }
    }

    @Test(arguments: StoreKind.available) func sweeperReturnsCleanlyWhenCancelled(kind: StoreKind) async throws {
        try await StoreFixture.with(kind) { fixture in
            let sweeper = SessionSweeper(sessions: self.manager(try await fixture.open()), interval: .seconds(3600), logger: .init(label: "test"))
            let task = Task { try await sweeper.run() }
            try await Task.sleep(for: .milliseconds(50))
            task.cancel()
            try await task.value
        }
    }

    @Test(arguments: StoreKind.available) func activityRecordedByOneNodeKeepsTheSessionAliveOnAnother(kind: StoreKind) async throws {
        try await StoreFixture.with(kind) { fixture in
            // Two nodes: their own store handles and activity coalescers, one database, one clock.
            let nodeA = self.manager(try await fixture.open())
            let nodeB = self.manager(try await fixture.open())
            let created = try await nodeA.createSession(userID: "u")
            let start = self.clock.now

            self.clock.advance(by: .seconds(14 * 60))
            _ = try await nodeB.authenticate(token: created.token.rawValue)
            self.clock.advance(by: .seconds(14 * 60))
            let seenByA = try await nodeA.authenticate(token: created.token.rawValue)
            #expect(seenByA.idleExpiresAt == start.addingTimeInterval(28 * 60 + 15 * 60))

            // A late write from a node with an older view never moves the deadline back.
            #expect(
                try await nodeB.store.touchSession(id: created.session.id, lastSeenAt: start.addingTimeInterval(20 * 60), idleExpiresAt: start)
                    == false
            )

            self.clock.advance(by: .seconds(15 * 60))
            await self.expectExpired(.idle) { _ = try await nodeA.authenticate(token: created.token.rawValue) }
            await self.expectExpired(.idle) { _ = try await nodeB.authenticate(token: created.token.rawValue) }
        }
    }
}
