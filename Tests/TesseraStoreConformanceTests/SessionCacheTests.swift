import Foundation
import Logging
import Testing
import Tessera
import TesseraPostgres
import TesseraTestSupport

/// The validated-session cache and the change feed that keeps it current, on every store.
///
/// A "node" here is a `SessionManager` with its own store handle, cache and feed; two nodes share
/// one database and one injected clock. Feeds are read by calling `poll()`, so every step is
/// deterministic.
@Suite(.heavy) struct SessionCacheTests {
    let clock = ManualClock()

    struct Node {
        let store: CountingStore
        let cache: SessionCache
        let feed: SessionChangeFeed
        let sessions: SessionManager

        init(_ store: any SessionStore, clock: ManualClock, capacity: Int = 1000) {
            self.store = CountingStore(store)
            self.cache = SessionCache(configuration: .init(capacity: capacity, stalenessBound: .seconds(1)), clock: clock)
            self.feed = SessionChangeFeed(cache: self.cache, store: self.store, logger: Logger(label: "test"))
            self.sessions = SessionManager(store: self.store, clock: clock, cache: self.cache)
        }

        var reads: Int { self.store.count("sessionByTokenHash") }

        func status(_ token: SessionToken) async -> String {
            do {
                _ = try await self.sessions.authenticate(token: token.rawValue)
                return "valid"
            } catch let error as TesseraError {
                return error.reason ?? error.code
            } catch {
                return "\(error)"
            }
        }
    }

    @Test(arguments: StoreKind.available) func aCachedSessionIsValidatedWithoutAStoreRead(kind: StoreKind) async throws {
        try await StoreFixture.with(kind) { fixture in
            let node = Node(try await fixture.open(), clock: self.clock)
            try await node.feed.poll()
            let created = try await node.sessions.createSession(userID: "u")
            for _ in 0..<10 {
                #expect(await node.status(created.token) == "valid")
            }
            #expect(node.reads == 1)
            #expect(node.cache.statistics.hits == 9)
            // Activity still slides the idle deadline on a cached session, and the next cached
            // answer carries the new deadline.
            // (The feed is read as often as the staleness bound requires.)
            for _ in 0..<120 {
                self.clock.advance(by: .seconds(1))
                try await node.feed.poll()
            }
            let slid = try await node.sessions.authenticate(token: created.token.rawValue)
            #expect(slid.idleExpiresAt == created.session.idleExpiresAt.addingTimeInterval(120))
            try await node.feed.poll()
            #expect(try await node.sessions.authenticate(token: created.token.rawValue).idleExpiresAt == slid.idleExpiresAt)
            #expect(try await node.store.session(id: created.session.id)?.idleExpiresAt == slid.idleExpiresAt)
            #expect(node.reads == 1)
        }
    }

    @Test(arguments: StoreKind.available) func writesThroughThisNodeAreSeenAtOnce(kind: StoreKind) async throws {
        try await StoreFixture.with(kind) { fixture in
            let node = Node(try await fixture.open(), clock: self.clock)
            try await node.feed.poll()
            let a = try await node.sessions.createSession(userID: "u")
            let b = try await node.sessions.createSession(userID: "u")
            let c = try await node.sessions.createSession(userID: "u")
            for token in [a.token, b.token, c.token] { #expect(await node.status(token) == "valid") }

            try await node.sessions.revoke(sessionID: a.session.id, reason: "logout")
            #expect(await node.status(a.token) == "revoked")

            let session = try await node.sessions.authenticate(token: b.token.rawValue)
            _ = try await node.sessions.updateData(of: session, expectedVersion: 1, patch: ["theme": .string("dark")])
            #expect(try await node.sessions.authenticate(token: b.token.rawValue).dataVersion == 2)

            try await node.sessions.revokeAll(userID: "u", reason: "user")
            #expect(await node.status(b.token) == "revoked")
            #expect(await node.status(c.token) == "revoked")
        }
    }

    @Test(arguments: StoreKind.available) func writesThroughAnotherNodeAreSeenAtTheNextFeedRead(kind: StoreKind) async throws {
        try await StoreFixture.with(kind) { fixture in
            let a = Node(try await fixture.open(), clock: self.clock)
            let b = Node(try await fixture.open(), clock: self.clock)
            try await a.feed.poll()
            try await b.feed.poll()
            let one = try await b.sessions.createSession(userID: "u")
            let two = try await b.sessions.createSession(userID: "u")
            let three = try await b.sessions.createSession(userID: "v")
            for token in [one.token, two.token, three.token] { #expect(await a.status(token) == "valid") }

            // B revokes one session and changes another's data. A's cache still holds them until
            // A reads the feed: this window is what the staleness bound limits.
            try await b.sessions.revoke(sessionID: one.session.id, reason: "logout")
            let current = try await b.sessions.authenticate(token: two.token.rawValue)
            _ = try await b.sessions.updateData(of: current, expectedVersion: 1, patch: ["step": .number(2)])
            #expect(await a.status(one.token) == "valid")
            #expect(try await a.feed.poll() == 2)
            #expect(await a.status(one.token) == "revoked")
            #expect(try await a.sessions.authenticate(token: two.token.rawValue).data == ["step": .number(2)])

            // Everything of one user, through B.
            try await b.sessions.revokeAll(userID: "u", reason: "user")
            #expect(try await a.feed.poll() == 1)
            #expect(await a.status(two.token) == "revoked")
            #expect(await a.status(three.token) == "valid")
        }
    }

    @Test(arguments: StoreKind.available) func aCacheWhoseFeedIsBehindReadsTheStore(kind: StoreKind) async throws {
        try await StoreFixture.with(kind) { fixture in
            let a = Node(try await fixture.open(), clock: self.clock)
            let b = Node(try await fixture.open(), clock: self.clock)
            try await a.feed.poll()
            let created = try await b.sessions.createSession(userID: "u")
            let kept = try await b.sessions.createSession(userID: "u")
            #expect(await a.status(created.token) == "valid")
            #expect(await a.status(kept.token) == "valid")
            #expect(await a.status(created.token) == "valid")
            #expect(a.reads == 2)

            // A's feed has not been read for longer than the bound (say the store was
            // unreachable): A serves nothing from its cache, so B's revocation is seen at once.
            self.clock.advance(by: .milliseconds(1001))
            #expect(!a.cache.isCurrent)
            try await b.sessions.revoke(sessionID: created.session.id, reason: "logout")
            #expect(await a.status(created.token) == "revoked")
            #expect(a.reads == 3)

            // The next successful read applies what was missed and keeps the rest of the cache:
            // no storm of store reads after a slow moment.
            #expect(try await a.feed.poll() == 1)
            #expect(a.cache.isCurrent)
            #expect(await a.status(kept.token) == "valid")
            #expect(await a.status(created.token) == "revoked")
            #expect(a.reads == 4)

            // After a lapse longer than the feed is surely kept, the cache starts over.
            self.clock.advance(by: SessionChangeFeed.maximumLapse + .seconds(1))
            #expect(try await a.feed.poll() == 0)
            #expect(a.cache.statistics.count == 0)
            // (Half an hour later the session has gone idle; what matters is that A asked the store.)
            #expect(await a.status(kept.token) == "idle")
            #expect(a.reads == 5)
        }
    }

    @Test(arguments: StoreKind.available) func aCachedSessionThatLooksIdleIsCheckedWithTheStore(kind: StoreKind) async throws {
        try await StoreFixture.with(kind) { fixture in
            let a = Node(try await fixture.open(), clock: self.clock)
            let b = Node(try await fixture.open(), clock: self.clock)
            try await a.feed.poll()
            let created = try await b.sessions.createSession(userID: "u")
            #expect(await a.status(created.token) == "valid")

            // Only B sees activity; A's cached copy still has the first idle deadline.
            self.clock.advance(by: .seconds(600))
            #expect(await b.status(created.token) == "valid")
            self.clock.advance(by: .seconds(400))
            try await a.feed.poll()
            #expect(a.cache.isCurrent)
            // By A's cached copy the session went idle 100 s ago; the store knows better.
            #expect(await a.status(created.token) == "valid")
            #expect(a.reads == 2)

            // Really idle: refused on both.
            self.clock.advance(by: .seconds(901))
            try await a.feed.poll()
            #expect(await a.status(created.token) == "idle")
            #expect(await b.status(created.token) == "idle")
        }
    }

    @Test(arguments: StoreKind.available) func theFeedReturnsChangesInOrderAndForgetsOldOnes(kind: StoreKind) async throws {
        try await StoreFixture.with(kind) { fixture in
            let store = try await fixture.open()
            let sessions = SessionManager(store: store, clock: self.clock)
            #expect(try await store.latestSessionChange() == 0)
            let a = try await sessions.createSession(userID: "u")
            _ = try await sessions.createSession(userID: "u")
            // Writes that change nothing record nothing.
            #expect(try await store.sessionChanges(after: 0, limit: 10).isEmpty)
            try await sessions.revoke(sessionID: a.session.id, reason: "logout")
            try await sessions.revoke(sessionID: a.session.id, reason: "logout")
            try await sessions.revokeAll(userID: "u", reason: "user")
            try await sessions.revokeAll(userID: "nobody", reason: "user")

            let changes = try await store.sessionChanges(after: 0, limit: 10)
            #expect(changes.map(\.subject) == [.session(id: a.session.id), .user(id: "u")])
            #expect(changes[0].sequence < changes[1].sequence)
            #expect(try await store.latestSessionChange() == changes[1].sequence)
            #expect(try await store.sessionChanges(after: changes[0].sequence, limit: 10) == [changes[1]])
            #expect(try await store.sessionChanges(after: 0, limit: 1) == [changes[0]])

            #expect(try await store.deleteSessionChanges(before: self.clock.now) == 0)
            #expect(try await store.deleteSessionChanges(before: self.clock.now.addingTimeInterval(1)) == 2)
            // Numbers are never reused, even after the newest changes were deleted.
            let b = try await sessions.createSession(userID: "u")
            try await sessions.revoke(sessionID: b.session.id, reason: "logout")
            #expect(try await store.sessionChanges(after: changes[1].sequence, limit: 10).first?.sequence ?? 0 > changes[1].sequence)
        }
    }

    @Test(arguments: StoreKind.available) func fiftyConcurrentRevocationsThroughTwoNodesAreAllInTheFeed(kind: StoreKind) async throws {
        try await StoreFixture.with(kind) { fixture in
            let a = Node(try await fixture.open(), clock: self.clock)
            let b = Node(try await fixture.open(), clock: self.clock)
            try await a.feed.poll()
            var created: [SessionManager.NewSession] = []
            for index in 0..<50 { created.append(try await b.sessions.createSession(userID: "u\(index)")) }
            for session in created { #expect(await a.status(session.token) == "valid") }
            // Revoked concurrently, half through each node, while A keeps reading its feed.
            try await withThrowingTaskGroup(of: Void.self) { group in
                for (index, session) in created.enumerated() {
                    let node = index.isMultiple(of: 2) ? a : b
                    group.addTask { _ = try await node.sessions.revoke(sessionID: session.session.id, reason: "logout") }
                }
                group.addTask {
                    for _ in 0..<5 { _ = try await a.feed.poll() }
                }
                try await group.waitForAll()
            }
            try await a.feed.poll()
            for session in created { #expect(await a.status(session.token) == "revoked") }
        }
    }
}

/// The cache on its own.
@Suite struct SessionCacheUnitTests {
    let clock = ManualClock()

    func session(_ index: Int, user: String = "u") -> Session {
        let token = SessionToken.generate()
        let now = self.clock.now
        return Session(
            id: "ses_\(index)",
            tokenHash: token.hash,
            userID: user,
            createdAt: now,
            lastSeenAt: now,
            idleExpiresAt: now.addingTimeInterval(900),
            absoluteExpiresAt: now.addingTimeInterval(9600),
            data: [:],
            dataVersion: 1,
            metadata: .init(),
            csrfToken: "c"
        )
    }

    @Test func aReadThatRacedAnInvalidationIsNotKept() {
        let cache = SessionCache(configuration: .init(capacity: 10), clock: self.clock)
        cache.markCurrent(asOf: self.clock.now)
        let session = self.session(1)
        let marker = cache.readMarker
        // The store was read (marker taken), then a revocation was applied before the insert.
        cache.invalidate(.session(id: session.id))
        cache.insert(session, readAt: marker)
        #expect(cache.session(tokenHash: session.tokenHash) == nil)
        cache.insert(session, readAt: cache.readMarker)
        #expect(cache.session(tokenHash: session.tokenHash) == session)
    }

    @Test func theCacheNeverHoldsMoreThanItsCapacity() {
        let cache = SessionCache(configuration: .init(capacity: 2048), clock: self.clock)
        cache.markCurrent(asOf: self.clock.now)
        let sessions = (0..<5000).map { self.session($0) }
        for session in sessions { cache.insert(session, readAt: cache.readMarker) }
        #expect(cache.statistics.count == 2048)
        // The newest are kept.
        #expect(cache.session(tokenHash: sessions[4999].tokenHash) == sessions[4999])
        #expect(cache.session(tokenHash: sessions[0].tokenHash) == nil)
        // Dropping by user reaches every shard.
        cache.invalidate(.user(id: "u"))
        #expect(cache.statistics.count == 0)
    }

    @Test func aWorkingSetOfExactlyTheCapacityStaysCachedHoweverItSpreadsOverShards() {
        // Tokens spread unevenly over the 16 shards; the capacity is shared, so none is lost.
        let cache = SessionCache(configuration: .init(capacity: 4096), clock: self.clock)
        cache.markCurrent(asOf: self.clock.now)
        let sessions = (0..<4096).map { self.session($0) }
        for _ in 0..<3 {
            for session in sessions where cache.session(tokenHash: session.tokenHash) == nil {
                cache.insert(session, readAt: cache.readMarker)
            }
        }
        #expect(cache.statistics.count == 4096)
        #expect(sessions.allSatisfy { cache.session(tokenHash: $0.tokenHash) != nil })
        // Invalidated and re-read sessions do not make the bookkeeping grow without bound.
        for session in sessions.prefix(1000) {
            cache.invalidate(.session(id: session.id))
            cache.insert(session, readAt: cache.readMarker)
        }
        #expect(cache.statistics.count == 4096)
    }

    @Test func anUnfedCacheServesNothing() {
        let cache = SessionCache(configuration: .init(capacity: 10), clock: self.clock)
        let session = self.session(1)
        cache.insert(session, readAt: cache.readMarker)
        #expect(!cache.isCurrent)
        #expect(cache.session(tokenHash: session.tokenHash) == nil)
    }
}

/// PostgreSQL announces committed changes, so that nodes need not wait for their next poll.
@Suite struct ChangeNotificationTests {
    @Test(.enabled(if: StoreKind.available.contains(.postgres))) func aCommittedRevocationIsAnnouncedToListeners() async throws {
        try await StoreFixture.with(.postgres) { fixture in
            let listener = try await fixture.openPostgres()
            let writer = try await fixture.open()
            let sessions = SessionManager(store: writer)
            let created = try await sessions.createSession(userID: "u")
            let (announcements, announce) = AsyncStream.makeStream(of: Void.self)
            let listening = Task { try await listener.listenForSessionChanges { announce.yield() } }
            defer { listening.cancel() }
            var iterator = announcements.makeAsyncIterator()
            // Once when listening starts…
            #expect(await iterator.next() != nil)
            // …then once per committed change, and not for a write that changed nothing.
            try await sessions.revoke(sessionID: created.session.id, reason: "logout")
            #expect(await iterator.next() != nil)
            try await sessions.revoke(sessionID: created.session.id, reason: "logout")
            try await sessions.revokeAll(userID: "u", reason: "user")
            let other = try await sessions.createSession(userID: "v")
            try await sessions.revoke(sessionID: other.session.id, reason: "logout")
            #expect(await iterator.next() != nil)
            #expect(try await writer.sessionChanges(after: 0, limit: 10).count == 2)
        }
    }
}
