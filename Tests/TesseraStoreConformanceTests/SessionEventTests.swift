import Foundation
import Logging
import Testing
import Tessera
import TesseraTestSupport

/// The outbox, run the same against every store: each write records its events in its own
/// transaction, a write that changes nothing or fails records none, expiries are recorded once.
@Suite(.heavy) struct SessionEventTests {
    let start = Date(timeIntervalSince1970: 1_800_000_000)

    func session(_ id: String, user: String = "usr_a", at created: Date? = nil, idle: TimeInterval = 3000, absolute: TimeInterval = 9600)
        -> Session
    {
        let created = created ?? self.start
        return Session(
            id: id,
            tokenHash: SessionToken.generate().hash,
            userID: user,
            createdAt: created,
            lastSeenAt: created,
            idleExpiresAt: created.addingTimeInterval(min(idle, absolute)),
            absoluteExpiresAt: created.addingTimeInterval(absolute),
            data: [:],
            dataVersion: 1,
            metadata: .init(),
            csrfToken: "c"
        )
    }

    func events(_ store: any SessionStore, after cursor: Int64 = 0, _ filter: SessionEventFilter = .all) async throws -> [SessionEvent] {
        try await store.sessionEvents(after: cursor, filter: filter, limit: 10_000)
    }

    func summary(_ events: [SessionEvent]) -> [String] {
        events.map { [$0.kind.rawValue, $0.sessionID ?? "-", $0.reason ?? "-"].joined(separator: " ") }
    }

    @Test(arguments: StoreKind.available) func aBatchLargerThanOneStatementLandsWholeWithOneEventPerNewSession(kind: StoreKind) async throws {
        try await StoreFixture.with(kind) { fixture in
            let store = try await fixture.open()
            try await store.insertSessions([self.session("ses_big_7")])
            // 2,500 sessions: more than one statement's worth (1,000) on PostgreSQL; one of them
            // is already stored (a retried batch) and records nothing again.
            let batch = (0..<2500).map { self.session("ses_big_\($0)") }
            try await store.insertSessions(batch)
            for session in [batch[0], batch[999], batch[1000], batch[2499]] {
                #expect(try await store.session(tokenHash: session.tokenHash)?.id == session.id)
            }
            let created = try await self.events(store).filter { $0.kind == .sessionCreated }.compactMap(\.sessionID)
            #expect(created.count == 2500)
            #expect(created.first == "ses_big_7")
            #expect(Array(created.dropFirst()) == batch.map(\.id).filter { $0 != "ses_big_7" })
        }
    }

    @Test(arguments: StoreKind.available) func everyWriteRecordsItsEventsAndAWriteThatChangesNothingRecordsNone(kind: StoreKind) async throws {
        try await StoreFixture.with(kind) { fixture in
            let store = try await fixture.open()
            #expect(try await store.latestSessionEvent() == 0)
            try await store.insertSessions([self.session("ses_1"), self.session("ses_2"), self.session("ses_3", user: "usr_b")])
            // A retried insert (lost acknowledgement) changes nothing and records nothing.
            try await store.insertSessions([self.session("ses_1")])
            let at = self.start.addingTimeInterval(5)
            #expect(try await store.updateSessionData(id: "ses_1", expectedVersion: 1, data: ["k": .string("v")], at: at) == 2)
            #expect(try await store.updateSessionData(id: "ses_1", expectedVersion: 1, data: [:], at: at) == nil)
            try await store.touchSession(id: "ses_2", lastSeenAt: at, idleExpiresAt: at.addingTimeInterval(900))
            #expect(try await store.revokeSession(id: "ses_1", at: at, reason: "logout"))
            #expect(try await store.revokeSession(id: "ses_1", at: at, reason: "admin") == false)
            #expect(try await store.revokeSession(id: "ses_none", at: at, reason: "admin") == false)
            try await store.insertSessions([self.session("ses_4"), self.session("ses_5")])
            #expect(try await store.revokeSessions(userID: "usr_a", except: "ses_5", at: at, reason: "others") == 2)
            #expect(try await store.revokeSessions(userID: "usr_a", except: "ses_5", at: at, reason: "others") == 0)

            let events = try await self.events(store)
            #expect(
                self.summary(events) == [
                    "session.created ses_1 -", "session.created ses_2 -", "session.created ses_3 -",
                    "session.data_changed ses_1 -",
                    "session.revoked ses_1 logout",
                    "session.created ses_4 -", "session.created ses_5 -",
                    "session.revoked ses_2 others", "session.revoked ses_4 others", "user.sessions_revoked - others",
                ]
            )
            #expect(events.map(\.sequence) == events.map(\.sequence).sorted())
            #expect(Set(events.map(\.id)).count == events.count)
            #expect(events.allSatisfy { $0.id.hasPrefix("evt_") && $0.id.count == 30 && !$0.node.isEmpty })
            #expect(events[3].dataVersion == 2 && events[3].userID == "usr_a")
            #expect(events[2].userID == "usr_b")
            #expect(events[9].count == 2 && events[9].userID == "usr_a")
            #expect(events[4].time == at && events[0].time == self.start)
            #expect(try await store.latestSessionEvent() == events.last?.sequence)
            // The JSON carries ids and reasons, never the token hash or the CSRF secret.
            let json = String(decoding: events[4].json, as: UTF8.self)
            #expect(json.contains("\"type\":\"session.revoked\"") && json.contains("\"reason\":\"logout\"") && !json.contains("csrf"))
        }
    }

    @Test(arguments: StoreKind.available) func aFailedWriteRecordsNoEvent(kind: StoreKind) async throws {
        try await StoreFixture.with(kind) { fixture in
            let store = try await fixture.open()
            let existing = self.session("ses_1")
            try await store.insertSessions([existing])
            // The second session of the batch reuses a token hash: the batch fails as a whole.
            var clash = self.session("ses_3")
            clash.tokenHash = existing.tokenHash
            await #expect(throws: (any Error).self) { try await store.insertSessions([self.session("ses_2"), clash]) }
            #expect(try await store.session(id: "ses_2") == nil)
            #expect(self.summary(try await self.events(store)) == ["session.created ses_1 -"])
        }
    }

    @Test(arguments: StoreKind.available) func expiriesAreRecordedOnceWithTheirReasonAndEndActivity(kind: StoreKind) async throws {
        try await StoreFixture.with(kind) { fixture in
            let store = try await fixture.open()
            let now = self.start.addingTimeInterval(1000)
            try await store.insertSessions([
                self.session("ses_idle", idle: 980),  // idle deadline 20 s ago
                self.session("ses_recent", idle: 995),  // 5 s ago: within the grace
                self.session("ses_absolute", absolute: 999),  // absolute deadline 1 s ago
                self.session("ses_alive"),
                self.session("ses_revoked", idle: 900),
            ])
            try await store.revokeSession(id: "ses_revoked", at: self.start, reason: "logout")
            let cursor = try await store.latestSessionEvent()

            #expect(try await store.recordExpiries(at: now, idleGrace: .seconds(10), limit: 100) == RecordedExpiries(idle: 1, absolute: 1))
            #expect(try await store.recordExpiries(at: now, idleGrace: .seconds(10), limit: 100).count == 0)
            let recorded = try await self.events(store, after: cursor)
            #expect(self.summary(recorded) == ["session.expired ses_idle idle", "session.expired ses_absolute absolute"])
            #expect(recorded.map(\.expiredAt) == [self.start.addingTimeInterval(980), self.start.addingTimeInterval(999)])
            #expect(recorded.allSatisfy { $0.time == now })

            // A late activity write (another node's buffer) no longer revives a recorded expiry.
            let late = ActivityUpdate(sessionID: "ses_idle", lastSeenAt: now, idleExpiresAt: now.addingTimeInterval(900))
            #expect(try await store.touchSessions([late]) == 0)
            #expect(try await store.touchSession(id: "ses_idle", lastSeenAt: now, idleExpiresAt: now.addingTimeInterval(900)) == false)
            // Within the grace, activity still moves the deadline, and the session is not expired.
            let revived = ActivityUpdate(sessionID: "ses_recent", lastSeenAt: now, idleExpiresAt: now.addingTimeInterval(900))
            #expect(try await store.touchSessions([revived]) == 1)
            #expect(try await store.recordExpiries(at: now.addingTimeInterval(20), idleGrace: .seconds(10), limit: 100).count == 0)
            // In batches: limit 1 records one at a time.
            try await store.insertSessions([self.session("ses_b1", idle: 10), self.session("ses_b2", idle: 10)])
            #expect(try await store.recordExpiries(at: now, idleGrace: .seconds(10), limit: 1).count == 1)
            #expect(try await store.recordExpiries(at: now, idleGrace: .seconds(10), limit: 1).count == 1)
            #expect(try await store.recordExpiries(at: now, idleGrace: .seconds(10), limit: 1).count == 0)
        }
    }

    @Test(arguments: StoreKind.available) func readersFilterBySessionUserAndKindAndResumeAfterACursor(kind: StoreKind) async throws {
        try await StoreFixture.with(kind) { fixture in
            let store = try await fixture.open()
            try await store.insertSessions([self.session("ses_1"), self.session("ses_2", user: "usr_b")])
            try await store.revokeSession(id: "ses_2", at: self.start, reason: "admin")
            try await store.revokeSession(id: "ses_1", at: self.start, reason: "user")
            let all = try await self.events(store)
            #expect(all.count == 4)
            #expect(self.summary(try await self.events(store, .init(sessionID: "ses_1"))) == ["session.created ses_1 -", "session.revoked ses_1 user"])
            #expect(self.summary(try await self.events(store, .init(userID: "usr_b"))) == ["session.created ses_2 -", "session.revoked ses_2 admin"])
            #expect(
                self.summary(try await self.events(store, .init(kinds: [.sessionRevoked])))
                    == ["session.revoked ses_2 admin", "session.revoked ses_1 user"]
            )
            #expect(try await self.events(store, .init(kinds: [])).isEmpty)
            #expect(try await self.events(store, after: all[1].sequence).map(\.id) == all[2...].map(\.id))
            #expect(try await store.sessionEvents(after: 0, filter: .all, limit: 2).map(\.id) == all[..<2].map(\.id))
        }
    }

    @Test(arguments: StoreKind.available) func sweepingDeletesOnlyEventsPastRetentionInBatches(kind: StoreKind) async throws {
        try await StoreFixture.with(kind) { fixture in
            let store = try await fixture.open()
            for index in 0..<5 {
                try await store.insertSessions([self.session("ses_old\(index)", at: self.start)])
            }
            try await store.insertSessions([self.session("ses_new", at: self.start.addingTimeInterval(3600))])
            let latest = try await store.latestSessionEvent()
            let cutoff = self.start.addingTimeInterval(60)
            #expect(try await store.deleteSessionEvents(before: cutoff, limit: 3) == 3)
            #expect(try await store.deleteSessionEvents(before: cutoff, limit: 3) == 2)
            #expect(try await store.deleteSessionEvents(before: cutoff, limit: 3) == 0)
            #expect(self.summary(try await self.events(store)) == ["session.created ses_new -"])
            // The sequence never goes back, so a reader's cursor stays meaningful.
            #expect(try await store.latestSessionEvent() == latest)
        }
    }

    @Test(arguments: StoreKind.available) func theSweeperRecordsExpiriesBeforeItDeletesSessions(kind: StoreKind) async throws {
        try await StoreFixture.with(kind) { fixture in
            let store = try await fixture.open()
            let clock = ManualClock(start: self.start)
            let policy = SessionPolicy(idleTimeout: .seconds(60), absoluteTimeout: .seconds(600), activityGranularity: .seconds(10), retention: .seconds(0))
            let sessions = SessionManager(store: store, policy: policy, clock: clock)
            let created = try await sessions.createSession(userID: "usr_a")
            clock.advance(by: .seconds(75))
            let sweeper = SessionSweeper(sessions: sessions, logger: .init(label: "test"))
            #expect(try await sweeper.sweep() == 1)
            #expect(try await store.session(id: created.session.id) == nil)
            #expect(self.summary(try await self.events(store)) == ["session.created \(created.session.id) -", "session.expired \(created.session.id) idle"])
        }
    }
}
