import Foundation
import Logging
import Testing
import Tessera
import TesseraTestSupport

/// The node's reader of the outbox for streams, on each store: what a stream is handed, from
/// memory or from the store, and how its waits end.
@Suite(.heavy) struct SessionEventHubTests {
    func hub(_ store: any SessionStore, capacity: Int = 10_000) -> SessionEventHub {
        SessionEventHub(store: store, configuration: .init(pollInterval: .milliseconds(10), capacity: capacity), logger: Logger(label: "test"))
    }

    func create(_ count: Int, in store: any SessionStore, user: String = "usr_a") async throws -> [String] {
        let sessions = SessionManager(store: store)
        var ids: [String] = []
        for _ in 0..<count { ids.append(try await sessions.createSession(userID: user).session.id) }
        return ids
    }

    @Test(arguments: StoreKind.available) func aStreamGetsEveryEventAfterItsCursorFromMemoryOrFromTheStore(kind: StoreKind) async throws {
        try await StoreFixture.with(kind) { fixture in
            let store = try await fixture.open()
            let early = try await self.create(3, in: store)
            let hub = self.hub(store, capacity: 4)
            let run = Task { try await hub.run() }
            defer { run.cancel() }
            let start = try await store.latestSessionEvent()
            guard let stream = hub.beginStream(limit: 10) else { throw HubTestError() }
            defer { hub.endStream(stream) }
            // Nothing yet after the newest: the wait ends when more commit.
            let woken = Task { await hub.wait(after: start, timeout: .seconds(30), stream: stream) }
            try await Task.sleep(for: .milliseconds(50))
            let later = try await self.create(6, in: store, user: "usr_b")
            #expect(await woken.value)
            // A stream's protocol: read, then wait until the hub has read past where it is.
            let newest = try await store.latestSessionEvent()
            #expect(await hub.wait(after: newest - 1, timeout: .seconds(10), stream: stream))
            // The newest four are in memory; the two before them, and the three before the
            // start, come from the store. Either way, every event after the cursor, in order.
            let all = try await hub.events(after: 0, filter: .all, limit: 100)
            #expect(all.events.compactMap(\.sessionID) == early + later)
            let held = try await hub.events(after: start + 4, filter: .all, limit: 100)
            #expect(held.events.compactMap(\.sessionID) == Array(later.suffix(2)))
            // A filter that matches nothing still moves the stream on: past what the store read
            // covered, then (from memory) to the newest event.
            let none = try await hub.events(after: start, filter: .init(userID: "usr_nobody"), limit: 100)
            #expect(none.events.isEmpty && none.through > start)
            let rest = try await hub.events(after: none.through, filter: .init(userID: "usr_nobody"), limit: 100)
            #expect(rest.events.isEmpty && rest.through == newest)
            let users = try await hub.events(after: 0, filter: .init(userID: "usr_b"), limit: 2)
            #expect(users.events.compactMap(\.sessionID) == Array(later.prefix(2)) && users.through == users.events.last?.sequence)
        }
    }

    @Test(arguments: StoreKind.available) func waitsEndAtTheirTimeoutAtAnInterruptionAndWhenTheHubCloses(kind: StoreKind) async throws {
        try await StoreFixture.with(kind) { fixture in
            let store = try await fixture.open()
            let hub = self.hub(store)
            let run = Task { try await hub.run() }
            defer { run.cancel() }
            guard let stream = hub.beginStream(limit: 10) else { throw HubTestError() }
            let latest = try await store.latestSessionEvent()
            // The timeout: true, and nothing new.
            #expect(await hub.wait(after: latest, timeout: .milliseconds(50), stream: stream))
            let interrupted = Task { await hub.wait(after: latest, timeout: .seconds(30), stream: stream) }
            try await Task.sleep(for: .milliseconds(50))
            hub.interrupt(stream: stream)
            #expect(await interrupted.value == false)
            hub.endStream(stream)
            guard let other = hub.beginStream(limit: 10) else { throw HubTestError() }
            let closing = Task { await hub.wait(after: latest, timeout: .seconds(30), stream: other) }
            try await Task.sleep(for: .milliseconds(50))
            hub.close()
            #expect(await closing.value == false)
            #expect(hub.beginStream(limit: 10) == nil)
        }
    }

    /// A session revoked on another node: this node's hub reads the event, and drops the session
    /// from this node's cache before any stream is handed it, so a client told of the end finds
    /// its session refused here at once (the change feed, unread here, would take its time).
    @Test(arguments: StoreKind.available) func aSessionWhoseEndTheHubReadsLeavesTheCacheFirst(kind: StoreKind) async throws {
        try await StoreFixture.with(kind) { fixture in
            let store = try await fixture.open()
            let cache = SessionCache(configuration: .init(capacity: 100, stalenessBound: .seconds(3600)))
            _ = try await SessionChangeFeed(cache: cache, store: store, logger: Logger(label: "test")).poll()
            let here = SessionManager(store: store, cache: cache)
            let created = try await here.createSession(userID: "usr_a")
            _ = try await here.authenticate(token: created.token.rawValue)
            #expect(cache.session(tokenHash: created.token.hash) != nil)
            // One revoked before the hub starts: a stream reading from there reads the store.
            let before = try await store.latestSessionEvent()
            let earlier = try await here.createSession(userID: "usr_a")
            _ = try await here.authenticate(token: earlier.token.rawValue)
            #expect(try await SessionManager(store: store).revoke(sessionID: earlier.session.id, reason: "test"))
            #expect(cache.session(tokenHash: earlier.token.hash) != nil)

            let hub = SessionEventHub(store: store, configuration: .init(pollInterval: .milliseconds(10)), cache: cache, logger: Logger(label: "test"))
            let run = Task { try await hub.run() }
            defer { run.cancel() }
            guard let stream = hub.beginStream(limit: 10) else { throw HubTestError() }
            defer { hub.endStream(stream) }
            let start = try await store.latestSessionEvent()
            let woken = Task { await hub.wait(after: start, timeout: .seconds(30), stream: stream) }
            try await Task.sleep(for: .milliseconds(50))
            // Another node (no cache of this one's) revokes it.
            #expect(try await SessionManager(store: store).revoke(sessionID: created.session.id, reason: "test"))
            #expect(await woken.value)
            let handed = try await hub.events(after: start, filter: .all, limit: 10).events
            #expect(handed.map(\.kind) == [.sessionRevoked])
            #expect(cache.session(tokenHash: created.token.hash) == nil)
            await #expect(throws: TesseraError.self) { try await here.authenticate(token: created.token.rawValue) }
            let behind = try await hub.events(after: before, filter: .all, limit: 10).events
            #expect(behind.contains { $0.kind == .sessionRevoked && $0.sessionID == earlier.session.id })
            #expect(cache.session(tokenHash: earlier.token.hash) == nil)
        }
    }

    @Test func streamsAreLimitedInAllAndPerOwner() async throws {
        try await StoreFixture.with(.sqlite) { fixture in
            let hub = self.hub(try await fixture.open())
            let first = try #require(hub.beginStream(limit: 3, owner: "ses_a", ownerLimit: 2))
            _ = try #require(hub.beginStream(limit: 3, owner: "ses_a", ownerLimit: 2))
            #expect(hub.beginStream(limit: 3, owner: "ses_a", ownerLimit: 2) == nil)
            _ = try #require(hub.beginStream(limit: 3, owner: "ses_b", ownerLimit: 2))
            #expect(hub.beginStream(limit: 3) == nil)
            #expect(hub.openStreams == 3)
            hub.endStream(first)
            #expect(hub.beginStream(limit: 3, owner: "ses_a", ownerLimit: 2) != nil)
        }
    }
}

struct HubTestError: Error {}
