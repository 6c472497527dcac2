import Foundation
import NIOCore
import NIOHTTP1
import Synchronization
import Tessera
import TesseraClient
import TesseraTestSupport
import Testing

/// The client against a real Tessera service in the same process, over loopback HTTP, with the
/// server's wall clock and the client's monotonic clock both moved by hand.
@Suite(.serialized, .timeLimit(.minutes(1)), .heavy)
struct RealServerTests {
    static let session = TesseraHTTPRequest.get("/v1/session")

    @Test func thousandConcurrentRequestsWithAnExpiredTokenShareOneRefresh() async throws {
        let server = try await TesseraServer()
        try await server.run { baseURL in
            let clock = ManualMonotonicClock()
            let (client, transport) = TesseraClient.testing(baseURL: baseURL, clock: clock)
            try await client.login(username: "alice", password: TesseraServer.password)
            server.clock.advance(by: .seconds(360))
            clock.advance(by: .seconds(360))

            let outcomes = await withTaskGroup(of: String.self) { group in
                for _ in 0..<1000 {
                    group.addTask {
                        do {
                            return "\(try await client.send(Self.session).status.code)"
                        } catch {
                            return "\(error)"
                        }
                    }
                }
                return await group.reduce(into: [String: Int]()) { $0[$1, default: 0] += 1 }
            }
            #expect(outcomes == ["200": 1000])
            #expect(transport.refreshCalls == 1)
            #expect(transport.calls("/v1/session") == 1000)
        }
    }

    @Test func rejectedRefreshSignsOutOnceAndNeverRefreshesAgain() async throws {
        let server = try await TesseraServer()
        try await server.run { baseURL in
            let (client, transport) = TesseraClient.testing(baseURL: baseURL)
            let log = EventLog(client)
            let credentials = try await client.login(username: "alice", password: TesseraServer.password)
            #expect(try await server.sessions.revoke(sessionID: credentials.sessionID, reason: "admin"))

            let error = await #expect(throws: TesseraClientError.self) { try await client.refresh() }
            #expect(error?.code == .signedOut)
            try await log.waitForSignOut()
            #expect(transport.refreshCalls == 1)

            // Signed out: everything fails fast, nothing reaches the service.
            for _ in 0..<5 {
                let error = await #expect(throws: TesseraClientError.self) { try await client.send(Self.session) }
                #expect(error?.code == .signedOut)
            }
            await #expect(throws: TesseraClientError.self) { try await client.refresh() }
            #expect(transport.refreshCalls == 1)
            #expect(transport.calls("/v1/session") == 0)
            #expect(await client.credentials == nil)

            // A sign-in is the fence: any event emitted before it has been collected.
            let seen = log.events.count
            try await client.login(username: "alice", password: TesseraServer.password)
            try await log.waitForSignIn(after: seen)
            #expect(log.signOuts == [.revoked])
        }
    }

    @Test func revokedSessionSurfacesAsSignedOutRevoked() async throws {
        let server = try await TesseraServer()
        try await server.run { baseURL in
            let store = InMemoryCredentialStore()
            let (client, transport) = TesseraClient.testing(baseURL: baseURL, store: store)
            let log = EventLog(client)
            let credentials = try await client.login(username: "alice", password: TesseraServer.password)
            #expect(try await client.send(Self.session).status == .ok)
            #expect(try await server.sessions.revoke(sessionID: credentials.sessionID, reason: "admin"))

            // 401 AUTH_1002 revoked → one refresh → 401 AUTH_1002 revoked → signed out.
            let error = await #expect(throws: TesseraClientError.self) { try await client.send(Self.session) }
            #expect(error?.code == .signedOut)
            #expect(error?.signOutReason == .revoked)
            #expect(error?.serverError?.code == "AUTH_1002")
            try await log.waitForSignOut()
            #expect(log.signOuts == [.revoked])
            #expect(transport.refreshCalls == 1)
            #expect(transport.calls("/v1/session") == 2)
            #expect(await client.credentials == nil)
            #expect(store.load() == nil)
        }
    }

    @Test func transientRefreshFailuresKeepTheSession() async throws {
        let server = try await TesseraServer()
        try await server.run { baseURL in
            let clock = ManualMonotonicClock()
            let store = InMemoryCredentialStore()
            let (client, transport) = TesseraClient.testing(
                baseURL: baseURL,
                store: store,
                clock: clock,
                configuration: .init(automaticRefresh: false)
            )
            let log = EventLog(client)
            let original = try await client.login(username: "alice", password: TesseraServer.password)
            server.clock.advance(by: .seconds(360))
            clock.advance(by: .seconds(360))

            // 503 STORE_UNAVAILABLE with Retry-After: the request fails, the session stays.
            transport.failNextRefreshes([
                .respond(
                    .serviceUnavailable,
                    body: #"{"error":{"code":"STORE_UNAVAILABLE","message":"The session store is unavailable."}}"#,
                    headers: ["Retry-After": "5"]
                )
            ])
            let unavailable = await #expect(throws: TesseraClientError.self) { try await client.send(Self.session) }
            #expect(unavailable?.code == .refreshUnavailable)
            #expect(unavailable?.isTransient == true)
            #expect(unavailable?.retryAfter == .seconds(5))
            #expect(await client.credentials == original)
            #expect(store.load() == original)

            // Backing off: the next request fails fast, without another refresh.
            let backingOff = await #expect(throws: TesseraClientError.self) { try await client.send(Self.session) }
            #expect(backingOff?.code == .refreshUnavailable)
            #expect(transport.refreshCalls == 1)

            // A network error: the same.
            clock.advance(by: .seconds(5))
            transport.failNextRefreshes([.networkError])
            let network = await #expect(throws: TesseraClientError.self) { try await client.send(Self.session) }
            #expect(network?.code == .refreshUnavailable)
            #expect(network?.underlyingError is ScriptedTransport.NetworkError)
            #expect(await client.credentials == original)
            #expect(transport.refreshCalls == 2)

            // Once the service is back, the refresh succeeds with the same refresh token.
            clock.advance(by: .seconds(60))
            #expect(try await client.send(Self.session).status == .ok)
            #expect(transport.refreshCalls == 3)
            let refreshed = try #require(await client.credentials)
            #expect(refreshed.refreshToken != original.refreshToken)
            #expect(store.load() == refreshed)
            #expect(log.signOuts.isEmpty)
        }
    }

    @Test func refreshCompletingAfterSignOutLeavesNoCredentialBehind() async throws {
        let server = try await TesseraServer()
        try await server.run { baseURL in
            let store = InMemoryCredentialStore()
            let (client, transport) = TesseraClient.testing(baseURL: baseURL, store: store)
            let log = EventLog(client)
            let gate = Gate()
            transport.holdRefreshes(at: gate)
            try await client.login(username: "alice", password: TesseraServer.password)

            let refreshing = Task { try await client.refresh() }
            await gate.arrival()  // the service has rotated the token; its answer is held
            await client.signOut()
            await client.signOut()  // twice: still one event
            gate.open()

            let result = await refreshing.result
            #expect((result.failure as? TesseraClientError)?.code == .signedOut)
            #expect((result.failure as? TesseraClientError)?.signOutReason == .userInitiated)
            await eventually { transport.answeredRefreshes == 1 }
            for _ in 0..<10 {
                #expect(await client.credentials == nil)
                #expect(store.load() == nil)
                await Task.yield()
            }
            #expect(log.refreshes == 0)
            // The logout reached the service: the session is over there too.
            #expect(try await server.sessions.activeSessions(userID: "usr_alice").isEmpty)

            let seen = log.events.count
            try await client.login(username: "alice", password: TesseraServer.password)
            try await log.waitForSignIn(after: seen)
            #expect(log.signOuts == [.userInitiated])
        }
    }

    @Test func proactiveRefreshAtExpiryMinusMarginWhateverTheWallClockSays() async throws {
        let server = try await TesseraServer()
        try await server.run { baseURL in
            // The device's wall clock is fifty years off; only the monotonic clock matters.
            let clock = ManualMonotonicClock(date: Date(timeIntervalSince1970: 0))
            let (client, transport) = TesseraClient.testing(baseURL: baseURL, clock: clock)
            let log = EventLog(client)
            let original = try await client.login(username: "alice", password: TesseraServer.password)

            clock.advance(by: .seconds(179))  // 300 s lifetime − 120 s margin = 180 s
            for _ in 0..<10 { await Task.yield() }
            #expect(transport.refreshCalls == 0)
            #expect(try await client.send(Self.session).status == .ok)
            #expect(transport.refreshCalls == 0)

            clock.advance(by: .seconds(1))
            try await log.waitForRefreshes(1)
            #expect(transport.refreshCalls == 1)
            #expect(await client.credentials?.refreshToken != original.refreshToken)
            #expect(try await client.send(Self.session).status == .ok)
            #expect(transport.refreshCalls == 1)

            // And again at the new token's expiry − margin, counted from its receipt.
            clock.advance(by: .seconds(180))
            try await log.waitForRefreshes(2)
            #expect(transport.refreshCalls == 2)
        }
    }

    @Test func storedCredentialsAreRebasedOnTheMonotonicClockWhenLoaded() async throws {
        let server = try await TesseraServer()
        try await server.run { baseURL in
            let directory = TemporaryDirectory()
            let store = FileCredentialStore(url: directory.url.appendingPathComponent("credentials.json"))
            let first = ManualMonotonicClock(date: Date(timeIntervalSince1970: 1_000_000))
            let (client, _) = TesseraClient.testing(baseURL: baseURL, store: store, clock: first)
            try await client.login(username: "alice", password: TesseraServer.password)

            // A later launch, 10 s later on the wall clock: 290 s left, no refresh needed.
            let soon = ManualMonotonicClock(date: Date(timeIntervalSince1970: 1_000_010))
            let (fresh, freshTransport) = TesseraClient.testing(baseURL: baseURL, store: store, clock: soon)
            #expect(try await fresh.send(Self.session).status == .ok)
            soon.advance(by: .seconds(169))
            #expect(try await fresh.send(Self.session).status == .ok)
            #expect(freshTransport.refreshCalls == 0)

            // Another, 200 s later: 100 s left, inside the margin: sent with the still-valid
            // token while a refresh runs in the background.
            let late = ManualMonotonicClock(date: Date(timeIntervalSince1970: 1_000_200))
            let (stale, staleTransport) = TesseraClient.testing(baseURL: baseURL, store: store, clock: late)
            let log = EventLog(stale)
            #expect(try await stale.send(Self.session).status == .ok)
            try await log.waitForRefreshes(1)
            #expect(staleTransport.refreshCalls == 1)
        }
    }

    @Test func callerCancellationDoesNotCancelTheSharedRefresh() async throws {
        let server = try await TesseraServer()
        try await server.run { baseURL in
            let clock = ManualMonotonicClock()
            let (client, transport) = TesseraClient.testing(baseURL: baseURL, clock: clock, configuration: .init(automaticRefresh: false))
            let log = EventLog(client)
            let gate = Gate()
            transport.holdRefreshes(at: gate)
            let original = try await client.login(username: "alice", password: TesseraServer.password)
            server.clock.advance(by: .seconds(360))
            clock.advance(by: .seconds(360))

            let caller = Task { try await client.send(Self.session) }
            await gate.arrival()
            caller.cancel()
            // The caller stops waiting at once, while the refresh is still held.
            let result = try #require(await result(of: caller, within: .seconds(20)))
            #expect(result.failure is CancellationError)

            gate.open()
            try await log.waitForRefreshes(1)
            #expect(!gate.sawCancellation)
            let refreshed = try #require(await client.credentials)
            #expect(refreshed.refreshToken != original.refreshToken)
            #expect(try await client.send(Self.session).status == .ok)
            #expect(transport.refreshCalls == 1)
            #expect(log.signOuts.isEmpty)
        }
    }

    @Test func secondClientAdoptsTheCredentialAnotherRotatedInTheSharedStore() async throws {
        let server = try await TesseraServer()
        try await server.run { baseURL in
            let directory = TemporaryDirectory()
            let store = FileCredentialStore(url: directory.url.appendingPathComponent("credentials.json"))
            let clockA = ManualMonotonicClock()
            let clockB = ManualMonotonicClock()
            let (a, transportA) = TesseraClient.testing(baseURL: baseURL, store: store, clock: clockA, configuration: .init(automaticRefresh: false))
            let (b, transportB) = TesseraClient.testing(baseURL: baseURL, store: store, clock: clockB, configuration: .init(automaticRefresh: false))
            let logB = EventLog(b)
            let original = try await a.login(username: "alice", password: TesseraServer.password)
            #expect(await b.credentials == original)

            server.clock.advance(by: .seconds(360))
            clockA.advance(by: .seconds(360))
            clockB.advance(by: .seconds(360))
            #expect(try await a.send(Self.session).status == .ok)
            #expect(transportA.refreshCalls == 1)
            // Past the grace window: presenting the rotated-out token now would end the session
            // as a theft (AUTH_1007).
            server.clock.advance(by: .seconds(20))

            #expect(try await b.send(Self.session).status == .ok)
            #expect(transportB.refreshCalls == 0)
            #expect(await b.credentials == (try store.load()))
            #expect(await b.credentials != original)
            #expect(logB.signOuts.isEmpty)
            #expect(try await server.sessions.activeSessions(userID: "usr_alice").count == 1)
        }
    }
}

extension Result {
    var failure: Failure? {
        if case .failure(let error) = self { return error }
        return nil
    }
}

/// The task's result, or `nil` if it has not finished within `timeout` (a guard, not a timing).
func result<Success: Sendable>(of task: Task<Success, any Error>, within timeout: Duration) async -> Result<Success, any Error>? {
    let resumed = Mutex(false)
    return await withCheckedContinuation { (continuation: CheckedContinuation<Result<Success, any Error>?, Never>) in
        let finish: @Sendable (Result<Success, any Error>?) -> Void = { value in
            let first = resumed.withLock { done -> Bool in
                defer { done = true }
                return !done
            }
            if first { continuation.resume(returning: value) }
        }
        Task { finish(await task.result) }
        Task {
            try? await Task.sleep(for: timeout)
            finish(nil)
        }
    }
}
