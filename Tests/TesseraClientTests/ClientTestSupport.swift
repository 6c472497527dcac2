import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Logging
import NIOCore
import NIOHTTP1
import Synchronization
import Tessera
import TesseraClient
import TesseraHummingbird
import TesseraSQLite
import TesseraTestSupport
import TesseraTokens
import Testing

/// A real Tessera service in token mode, on a SQLite file, with a manual wall clock, served over
/// loopback by `app.test(.live)`.
struct TesseraServer {
    static let password = "pw"

    let directory = TemporaryDirectory()
    let clock = ManualClock()
    let sessions: SessionManager
    let service: TesseraHTTPService

    init(accessTokenLifetime: Duration = .seconds(300), policy: SessionPolicy = .init()) async throws {
        let store = try self.directory.sqliteStore()
        self.sessions = SessionManager(store: store, policy: policy, clock: self.clock)
        let hasher = BcryptPasswordHasher(cost: 4)
        let login = try await PasswordLogin(sessions: self.sessions, hasher: hasher)
        try await store.insertUser(
            User(id: "usr_alice", username: "alice", passwordHash: try await hasher.hash(Self.password), createdAt: self.clock.now)
        )
        let tokens = TokenService(
            sessions: self.sessions,
            keys: await SigningKeys.ephemeral(clock: self.clock),
            configuration: .init(accessTokenLifetime: accessTokenLifetime, refreshGracePeriod: .seconds(10))
        )
        self.service = TesseraHTTPService(login: login, serviceKey: nil, tokens: tokens)
    }

    /// Serves the service on a loopback port while `body` runs, and hands it the base URL.
    func run<Value: Sendable>(_ body: @Sendable (_ baseURL: String) async throws -> Value) async throws -> Value {
        try await serve(self.service.buildRouter(), body)
    }
}

/// Wraps a real transport: counts the calls by route, and injects failures or holds answers of
/// the refresh route when told to.
final class ScriptedTransport: TesseraTransport {
    enum Fault: Sendable {
        /// Answer with this status and body instead of sending.
        case respond(HTTPResponseStatus, body: String, headers: HTTPHeaders = [:])
        /// Throw, as a network failure does.
        case networkError
    }

    struct NetworkError: Error {}

    private struct State {
        var calls: [String: Int] = [:]
        var refreshFaults: [Fault] = []
        var refreshGate: Gate?
        var answeredRefreshes = 0
    }

    let base: any TesseraTransport
    let statuses: StatusCounter?
    private let state = Mutex(State())

    init(_ base: any TesseraTransport, statuses: StatusCounter? = nil) {
        self.base = base
        self.statuses = statuses
    }

    /// How many requests went to `path` (faults and held answers included).
    func calls(_ path: String) -> Int { self.state.withLock { $0.calls[path, default: 0] } }
    var refreshCalls: Int { self.calls("/v1/token/refresh") }
    /// How many refresh answers were handed back to the client.
    var answeredRefreshes: Int { self.state.withLock { $0.answeredRefreshes } }

    /// The next refreshes fail as listed, one fault each.
    func failNextRefreshes(_ faults: [Fault]) { self.state.withLock { $0.refreshFaults = faults } }

    /// Holds the answer of every refresh (after the server has processed it) until `gate` opens.
    func holdRefreshes(at gate: Gate?) { self.state.withLock { $0.refreshGate = gate } }

    func send(_ request: TesseraHTTPRequest) async throws -> TesseraHTTPResponse {
        let (fault, gate) = self.state.withLock { state -> (Fault?, Gate?) in
            state.calls[request.path, default: 0] += 1
            guard request.path == "/v1/token/refresh" else { return (nil, nil) }
            return (state.refreshFaults.isEmpty ? nil : state.refreshFaults.removeFirst(), state.refreshGate)
        }
        switch fault {
        case .respond(let status, let body, let headers):
            return TesseraHTTPResponse(status: status, headers: headers, body: ByteBuffer(string: body))
        case .networkError:
            throw NetworkError()
        case nil:
            let response = try await self.base.send(request)
            self.statuses?.record(response, for: request)
            await gate?.pass()
            if request.path == "/v1/token/refresh" { self.state.withLock { $0.answeredRefreshes += 1 } }
            return response
        }
    }
}

/// A one-shot gate: ``pass()`` waits (ignoring cancellation, as a transport that does not react
/// to it would) until ``open()``; ``arrival()`` waits until someone is at the gate.
final class Gate: Sendable {
    private struct State {
        var arrivals = 0
        var isOpen = false
        var passers: [CheckedContinuation<Void, Never>] = []
        var watchers: [CheckedContinuation<Void, Never>] = []
        var cancelledWhilePassing = false
    }

    private let state = Mutex(State())

    func pass() async {
        let watchers = self.state.withLock { state -> [CheckedContinuation<Void, Never>] in
            state.arrivals += 1
            defer { state.watchers = [] }
            return state.watchers
        }
        for watcher in watchers { watcher.resume() }
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            let open = self.state.withLock { state -> Bool in
                if !state.isOpen { state.passers.append(continuation) }
                return state.isOpen
            }
            if open { continuation.resume() }
        }
        if Task.isCancelled { self.state.withLock { $0.cancelledWhilePassing = true } }
    }

    /// Whether a task passing the gate had been cancelled by the time it passed.
    var sawCancellation: Bool { self.state.withLock { $0.cancelledWhilePassing } }

    func arrival() async {
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            let arrived = self.state.withLock { state -> Bool in
                if state.arrivals == 0 { state.watchers.append(continuation) }
                return state.arrivals > 0
            }
            if arrived { continuation.resume() }
        }
    }

    func open() {
        let passers = self.state.withLock { state -> [CheckedContinuation<Void, Never>] in
            state.isOpen = true
            defer { state.passers = [] }
            return state.passers
        }
        for passer in passers { passer.resume() }
    }
}

/// Collects a client's events and waits for the ones a test expects, with a timeout guard.
final class EventLog: Sendable {
    private struct State {
        var events: [TesseraClientEvent] = []
        var waiters: [(id: Int, predicate: @Sendable ([TesseraClientEvent]) -> Bool, continuation: CheckedContinuation<Void, Never>)] = []
        var nextID = 0
    }

    private final class Storage: Sendable {
        let state = Mutex(State())
    }

    private let storage = Storage()
    private let consumer: Task<Void, Never>

    init(_ client: TesseraClient) {
        let stream = client.events()
        let storage = self.storage
        self.consumer = Task {
            for await event in stream {
                let due = storage.state.withLock { state -> [CheckedContinuation<Void, Never>] in
                    state.events.append(event)
                    let events = state.events
                    let due = state.waiters.filter { $0.predicate(events) }
                    state.waiters.removeAll { waiter in due.contains { $0.id == waiter.id } }
                    return due.map(\.continuation)
                }
                for continuation in due { continuation.resume() }
            }
        }
    }

    deinit { self.consumer.cancel() }

    var events: [TesseraClientEvent] { self.storage.state.withLock { $0.events } }
    var signOuts: [SignOutReason] {
        self.events.compactMap {
            if case .signedOut(let reason) = $0 { return reason }
            return nil
        }
    }
    var refreshes: Int {
        self.events.count {
            if case .credentialsRefreshed = $0 { return true }
            return false
        }
    }

    /// Waits until the events collected so far satisfy `predicate`; fails the test after `timeout`.
    func wait(
        timeout: Duration = .seconds(20),
        sourceLocation: SourceLocation = #_sourceLocation,
        until predicate: @escaping @Sendable ([TesseraClientEvent]) -> Bool
    ) async throws {
        let satisfied = await withTaskGroup(of: Bool.self) { group in
            group.addTask {
                await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
                    let already = self.storage.state.withLock { state -> Bool in
                        if predicate(state.events) { return true }
                        state.nextID += 1
                        state.waiters.append((state.nextID, predicate, continuation))
                        return false
                    }
                    if already { continuation.resume() }
                }
                return true
            }
            group.addTask {
                // The guard: a wall-clock timeout only so a broken client fails instead of hanging.
                try? await Task.sleep(for: timeout)
                return false
            }
            let first = await group.next() ?? false
            if !first {
                // Release the waiter so the group can end.
                let pending = self.storage.state.withLock { state -> [CheckedContinuation<Void, Never>] in
                    defer { state.waiters = [] }
                    return state.waiters.map(\.continuation)
                }
                for continuation in pending { continuation.resume() }
            }
            group.cancelAll()
            return first
        }
        if !satisfied {
            Issue.record("timed out waiting for events; got \(self.events)", sourceLocation: sourceLocation)
            throw CancellationError()
        }
    }

    /// Waits for the `count`-th sign-out.
    func waitForSignOut(count: Int = 1, sourceLocation: SourceLocation = #_sourceLocation) async throws {
        try await self.wait(sourceLocation: sourceLocation) { events in
            events.count {
                if case .signedOut = $0 { return true }
                return false
            } >= count
        }
    }

    /// Waits until `count` refreshes (or adoptions) have been reported.
    func waitForRefreshes(_ count: Int, sourceLocation: SourceLocation = #_sourceLocation) async throws {
        try await self.wait(sourceLocation: sourceLocation) { events in
            events.count {
                if case .credentialsRefreshed = $0 { return true }
                return false
            } >= count
        }
    }

    /// Waits for a `signedIn` after `index` events: everything emitted before it has been collected.
    func waitForSignIn(after index: Int, sourceLocation: SourceLocation = #_sourceLocation) async throws {
        try await self.wait(sourceLocation: sourceLocation) { events in
            events.dropFirst(index).contains {
                if case .signedIn = $0 { return true }
                return false
            }
        }
    }
}

extension TesseraClient {
    /// A client of `baseURL` through a scripted transport over AsyncHTTPClient, on a manual clock.
    static func testing(
        baseURL: String,
        store: any CredentialStore = InMemoryCredentialStore(),
        clock: ManualMonotonicClock = ManualMonotonicClock(),
        configuration: Configuration = .init(),
        wrapping statuses: StatusCounter? = nil
    ) -> (TesseraClient, ScriptedTransport) {
        // A deadline no loaded machine reaches: these tests are about refreshing, and a burst of
        // 1,000 requests may wait its turn for longer than the default 10 s.
        Self.testing(
            transport: HTTPClientTransport(baseURL: baseURL, timeout: .seconds(120)),
            store: store,
            clock: clock,
            configuration: configuration,
            wrapping: statuses
        )
    }

    /// A client through a scripted transport over `transport`, on a manual clock.
    static func testing(
        transport base: any TesseraTransport,
        store: any CredentialStore = InMemoryCredentialStore(),
        clock: ManualMonotonicClock = ManualMonotonicClock(),
        configuration: Configuration = .init(),
        wrapping statuses: StatusCounter? = nil
    ) -> (TesseraClient, ScriptedTransport) {
        let transport = ScriptedTransport(base, statuses: statuses)
        var logger = Logger(label: "tessera.client")
        logger.logLevel = .error
        return (TesseraClient(transport: transport, store: store, configuration: configuration, clock: clock, logger: logger), transport)
    }
}

/// Waits until `condition` holds on the client, giving other tasks a turn between checks, with a
/// timeout guard; for states that emit no event.
func eventually(
    timeout: Duration = .seconds(20),
    sourceLocation: SourceLocation = #_sourceLocation,
    _ condition: @Sendable () async -> Bool
) async {
    let deadline = ContinuousClock.now.advanced(by: timeout)
    while ContinuousClock.now < deadline {
        if await condition() { return }
        await Task.yield()
        try? await Task.sleep(for: .milliseconds(5))
    }
    Issue.record("condition not met in time", sourceLocation: sourceLocation)
}

extension TesseraClientError {
    static func code(of error: any Error) -> Code? { (error as? TesseraClientError)?.code }
}

extension TesseraServer {
    /// Runs the service in the process without sockets (Hummingbird's router test mode) while
    /// `body` runs, and hands it a transport to it: for tests that send tens of thousands of
    /// requests, whose subject is the client's timing rather than the wire.
    func runInProcess<Value: Sendable>(_ body: @Sendable (_ transport: any TesseraTransport) async throws -> Value) async throws -> Value {
        let app = Application(router: self.service.buildRouter())
        return try await app.test(.router) { client in try await body(RouterTransport(client: client)) }
    }
}

/// A transport that hands requests to a router in the same process.
struct RouterTransport: TesseraTransport {
    let client: any TestClientProtocol

    func send(_ request: TesseraHTTPRequest) async throws -> TesseraHTTPResponse {
        var fields = HTTPFields()
        for (name, value) in request.headers {
            if let name = HTTPField.Name(name) { fields.append(HTTPField(name: name, value: value)) }
        }
        let response = try await self.client.executeRequest(
            uri: request.path,
            method: HTTPRequest.Method(rawValue: request.method.rawValue) ?? .get,
            headers: fields,
            body: request.body
        )
        var headers = HTTPHeaders()
        for field in response.headers { headers.add(name: field.name.rawName, value: field.value) }
        return TesseraHTTPResponse(status: HTTPResponseStatus(statusCode: Int(response.status.code)), headers: headers, body: response.body)
    }
}
