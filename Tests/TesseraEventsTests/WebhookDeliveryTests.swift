import Foundation
import Logging
import Testing
import Tessera
import TesseraEvents
import TesseraTestSupport

/// Webhook delivery from each store's outbox to a real receiver over loopback HTTP, with time
/// moved by a manual clock.
@Suite(.heavy) struct WebhookDeliveryTests {
    let clock = ManualClock()
    let secret = WebhookSecret.generate()

    typealias DeliveryStore = any WebhookDeliveryStore & SessionStore

    func open(_ fixture: StoreFixture) async throws -> DeliveryStore {
        try #require(try await fixture.open() as? DeliveryStore)
    }

    func dispatcher(_ store: DeliveryStore, _ receiver: WebhookReceiver, kinds: Set<SessionEvent.Kind>? = nil, retry: WebhookRetryPolicy = .init())
        throws -> WebhookDispatcher
    {
        let endpoint = WebhookEndpoint(
            name: "app",
            url: receiver.url,
            secrets: [try WebhookSecret(self.secret)],
            kinds: kinds,
            timeout: .seconds(5),
            retry: retry
        )
        var logger = Logger(label: "test.webhooks")
        logger.logLevel = .critical
        return WebhookDispatcher(store: store, endpoints: [endpoint], clock: self.clock, logger: logger)
    }

    /// Runs `body` with a dispatcher, and shuts it down afterwards.
    func with<T>(_ dispatcher: WebhookDispatcher, _ body: (WebhookDispatcher) async throws -> T) async throws -> T {
        try await running({ try await body(dispatcher) }) { await dispatcher.shutdown() }
    }

    /// Passes until one makes no attempt.
    func drain(_ dispatcher: WebhookDispatcher) async throws {
        for _ in 0..<100 where try await dispatcher.deliverDue() > 0 {}
    }

    func withReceiver<T>(_ body: (WebhookReceiver) async throws -> T) async throws -> T {
        let receiver = try await WebhookReceiver.start()
        return try await running({ try await body(receiver) }) { await receiver.stop() }
    }

    func type(_ request: WebhookReceiver.Request) -> String {
        let json = try? JSONSerialization.jsonObject(with: Data(request.body)) as? [String: Any]
        return json?["type"] as? String ?? "?"
    }

    func sessionID(_ request: WebhookReceiver.Request) -> String {
        let json = try? JSONSerialization.jsonObject(with: Data(request.body)) as? [String: Any]
        return (json?["data"] as? [String: Any])?["sessionId"] as? String ?? "-"
    }

    @Test(arguments: StoreKind.available) func everyEventArrivesSignedOnceAndInOrderPerSession(kind: StoreKind) async throws {
        try await StoreFixture.with(kind) { fixture in
            try await self.withReceiver { receiver in
                let store = try await self.open(fixture)
                let dispatcher = try self.dispatcher(store, receiver)
                try await self.with(dispatcher) { dispatcher in
                    try await dispatcher.register()
                    let sessions = SessionManager(store: store, clock: self.clock)
                    var ids: [String] = []
                    for index in 0..<20 {
                        ids.append(try await sessions.createSession(userID: "usr_\(index % 4)").session.id)
                    }
                    for id in ids.prefix(10) { try await sessions.revoke(sessionID: id, reason: RevocationReason.logout.rawValue) }
                    try await sessions.revokeAll(userID: "usr_3", reason: RevocationReason.admin.rawValue)
                    try await self.drain(dispatcher)

                    let events = try await store.sessionEvents(after: 0, filter: .all, limit: 1000)
                    let requests = receiver.requests
                    #expect(requests.count == events.count)
                    #expect(Set(requests.map(\.id)) == Set(events.map(\.id)))
                    for request in requests {
                        #expect(throws: Never.self) {
                            try WebhookSignature.verify(
                                body: request.body,
                                id: request.id,
                                timestamp: request.timestamp,
                                signatures: request.signature,
                                secret: try WebhookSecret(self.secret),
                                now: self.clock.now
                            )
                        }
                    }
                    // In order per session: each session's events arrive in the order they happened.
                    let order = Dictionary(uniqueKeysWithValues: events.map { ($0.id, $0.sequence) })
                    for id in ids {
                        let arrivals = requests.filter { self.sessionID($0) == id }.map { order[$0.id] ?? 0 }
                        #expect(arrivals == arrivals.sorted() && !arrivals.isEmpty)
                    }
                    #expect(requests.filter { self.type($0) == "user.sessions_revoked" }.count == 1)
                    #expect(try await store.webhookEndpoints(at: self.clock.now).map { [$0.pending, $0.dead] } == [[0, 0]])
                    #expect(dispatcher.statistics.delivered == events.count)
                }
            }
        }
    }

    @Test(arguments: StoreKind.available) func anEndpointReceivesOnlyTheKindsItAsksForAndOnlyEventsAfterItWasConfigured(kind: StoreKind) async throws
    {
        try await StoreFixture.with(kind) { fixture in
            try await self.withReceiver { receiver in
                let store = try await self.open(fixture)
                let sessions = SessionManager(store: store, clock: self.clock)
                let before = try await sessions.createSession(userID: "usr_a").session.id
                let dispatcher = try self.dispatcher(store, receiver, kinds: [.sessionRevoked])
                try await self.with(dispatcher) { dispatcher in
                    try await dispatcher.register()
                    let after = try await sessions.createSession(userID: "usr_a").session.id
                    try await sessions.revoke(sessionID: before, reason: "admin")
                    try await sessions.revoke(sessionID: after, reason: "logout")
                    try await self.drain(dispatcher)
                    // Events of different sessions are sent concurrently: in any order.
                    #expect(
                        Set(receiver.requests.map { "\(self.type($0)) \(self.sessionID($0))" }) == [
                            "session.revoked \(before)", "session.revoked \(after)",
                        ]
                    )
                    #expect(receiver.requests.count == 2)
                }
            }
        }
    }

    @Test(arguments: StoreKind.available) func aFailingReceiverIsRetriedWithGrowingDelaysAndTheSessionsLaterEventsWait(kind: StoreKind) async throws {
        try await StoreFixture.with(kind) { fixture in
            try await self.withReceiver { receiver in
                let store = try await self.open(fixture)
                let dispatcher = try self.dispatcher(store, receiver)
                try await self.with(dispatcher) { dispatcher in
                    try await dispatcher.register()
                    let sessions = SessionManager(store: store, clock: self.clock)
                    let created = try await sessions.createSession(userID: "usr_a").session.id
                    try await sessions.revoke(sessionID: created, reason: "logout")
                    // The first event fails four times, then succeeds.
                    let firstID = try #require(try await store.sessionEvents(after: 0, filter: .all, limit: 1).first?.id)
                    receiver.answer { attempt, id in id == firstID && attempt <= 4 ? 500 : 200 }
                    var delays: [TimeInterval] = []
                    for _ in 0..<4 {
                        #expect(try await dispatcher.deliverDue() == 1)
                        let pending = try await store.webhookDeliveries(endpoint: "app", state: .pending, limit: 10)
                        let first = try #require(pending.first)
                        #expect(first.event.kind == .sessionCreated && first.lastStatus == 500)
                        delays.append(first.nextAttemptAt.timeIntervalSince(self.clock.now))
                        // Nothing is due until the delay has passed; the revocation waits behind the creation.
                        #expect(try await dispatcher.deliverDue() == 0)
                        self.clock.set(first.nextAttemptAt)
                    }
                    #expect(delays == delays.sorted() && Set(delays).count == 4)
                    #expect(delays.first.map { $0 > 3.7 && $0 <= 5 } == true)
                    try await self.drain(dispatcher)
                    #expect(receiver.accepted.map(self.type) == ["session.created", "session.revoked"])
                    // Duplicates only with the same id: the five attempts of the first event share one.
                    #expect(Set(receiver.requests.prefix(5).map(\.id)).count == 1)
                }
            }
        }
    }

    @Test(arguments: StoreKind.available) func attemptsEndInADeadDeliveryAndARetryRevivesIt(kind: StoreKind) async throws {
        try await StoreFixture.with(kind) { fixture in
            try await self.withReceiver { receiver in
                let store = try await self.open(fixture)
                let retry = WebhookRetryPolicy(initialDelay: .seconds(10), maximumDelay: .seconds(20), retryFor: .seconds(60))
                let dispatcher = try self.dispatcher(store, receiver, retry: retry)
                try await self.with(dispatcher) { dispatcher in
                    try await dispatcher.register()
                    receiver.answer(503)
                    let sessions = SessionManager(store: store, clock: self.clock)
                    _ = try await sessions.createSession(userID: "usr_a")
                    for _ in 0..<10 {
                        try await self.drain(dispatcher)
                        self.clock.advance(by: .seconds(20))
                    }
                    let dead = try await store.webhookDeliveries(endpoint: nil, state: .dead, limit: 10)
                    #expect(dead.count == 1)
                    #expect(dead.first?.lastStatus == 503 && (dead.first?.attempts ?? 0) >= 4)
                    #expect(try await store.webhookEndpoints(at: self.clock.now).map { [$0.pending, $0.dead] } == [[0, 1]])
                    #expect(dispatcher.statistics.dead == 1)
                    let attempts = receiver.requests.count
                    try await self.drain(dispatcher)
                    #expect(receiver.requests.count == attempts)

                    receiver.answer(204)
                    #expect(try await store.retryWebhookDeliveries(endpoint: "app", sequence: nil, at: self.clock.now) == 1)
                    try await self.drain(dispatcher)
                    #expect(receiver.accepted.count == 1)
                    #expect(try await store.webhookEndpoints(at: self.clock.now).map { [$0.pending, $0.dead] } == [[0, 0]])
                }
            }
        }
    }

    @Test(arguments: StoreKind.available) func aGoneReceiverDisablesTheEndpointUntilItIsEnabled(kind: StoreKind) async throws {
        try await StoreFixture.with(kind) { fixture in
            try await self.withReceiver { receiver in
                let store = try await self.open(fixture)
                let dispatcher = try self.dispatcher(store, receiver)
                try await self.with(dispatcher) { dispatcher in
                    try await dispatcher.register()
                    receiver.answer(410)
                    let sessions = SessionManager(store: store, clock: self.clock)
                    _ = try await sessions.createSession(userID: "usr_a")
                    try await self.drain(dispatcher)
                    let state = try #require(try await store.webhookEndpoints(at: self.clock.now).first)
                    #expect(state.disabledAt != nil && state.disabledReason?.contains("410") == true)
                    #expect(dispatcher.statistics.disabled == 1)
                    // Disabled: new events are not sent, however long.
                    _ = try await sessions.createSession(userID: "usr_b")
                    self.clock.advance(by: .seconds(3600))
                    try await self.drain(dispatcher)
                    #expect(receiver.requests.count == 1)

                    receiver.answer(200)
                    #expect(try await store.enableWebhookEndpoint("app"))
                    #expect(try await store.enableWebhookEndpoint("app") == false)
                    try await self.drain(dispatcher)
                    #expect(receiver.accepted.map { self.type($0) } == ["session.created", "session.created"])
                }
            }
        }
    }

    @Test(.timed) func anAttemptPastItsTimeoutFailsAndIsRetried() async throws {
        try await StoreFixture.with(.sqlite) { fixture in
            try await self.withReceiver { receiver in
                let store = try await self.open(fixture)
                let endpoint = WebhookEndpoint(name: "app", url: receiver.url, secrets: [try WebhookSecret(self.secret)], timeout: .milliseconds(300))
                let dispatcher = WebhookDispatcher(store: store, endpoints: [endpoint], clock: self.clock, logger: Logger(label: "test", factory: { _ in SwiftLogNoOpLogHandler() }))
                try await self.with(dispatcher) { dispatcher in
                    try await dispatcher.register()
                    receiver.delay(.seconds(2))
                    _ = try await SessionManager(store: store, clock: self.clock).createSession(userID: "usr_a")
                    #expect(try await dispatcher.deliverDue() == 1)
                    let pending = try #require(try await store.webhookDeliveries(endpoint: "app", state: .pending, limit: 1).first)
                    #expect(pending.attempts == 1 && pending.lastStatus == nil && pending.lastError == "the attempt timed out")
                }
            }
        }
    }

    @Test(arguments: StoreKind.available) func aFailingEndpointHoldsUpNoOtherEndpoint(kind: StoreKind) async throws {
        try await StoreFixture.with(kind) { fixture in
            try await self.withReceiver { good in
                try await self.withReceiver { failing in
                    failing.answer(503)
                    let store = try await self.open(fixture)
                    let key = try WebhookSecret(self.secret)
                    let endpoints = [
                        WebhookEndpoint(name: "good", url: good.url, secrets: [key]),
                        WebhookEndpoint(name: "failing", url: failing.url, secrets: [key]),
                    ]
                    var logger = Logger(label: "test.webhooks")
                    logger.logLevel = .critical
                    let dispatcher = WebhookDispatcher(store: store, endpoints: endpoints, clock: self.clock, logger: logger)
                    try await self.with(dispatcher) { dispatcher in
                        try await dispatcher.register()
                        let sessions = SessionManager(store: store, clock: self.clock)
                        for index in 0..<5 { _ = try await sessions.createSession(userID: "usr_\(index)") }
                        try await self.drain(dispatcher)
                        #expect(good.accepted.count == 5)
                        #expect(failing.requests.count == 5 && failing.accepted.isEmpty)
                        let states = try await store.webhookEndpoints(at: self.clock.now)
                        #expect(states.map { "\($0.name) \($0.pending)" } == ["failing 5", "good 0"])
                    }
                }
            }
        }
    }
}
