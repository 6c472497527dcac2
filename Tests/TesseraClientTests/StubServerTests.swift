import Foundation
import HTTPTypes
import Hummingbird
import NIOCore
import NIOHTTP1
import Synchronization
import TesseraClient
import TesseraTestSupport
import Testing

/// A tiny service that speaks the token API and misbehaves on purpose: its resources answer `401`
/// to every token but the ones a test lets through, and its refresh answers as told.
final class StubService: Sendable {
    enum RefreshAnswer: Sendable {
        /// A new pair each time.
        case rotate
        /// `401 AUTH_1007`: the presented token was used already.
        case reused
        /// A new pair whose access token has expired already (`expiresIn` 0).
        case expired
    }

    private struct State {
        var refreshAnswer = RefreshAnswer.rotate
        var refreshes = 0
        var resourceCalls = 0
        var accepted: Set<String> = []
        var issued = 0
    }

    private let state = Mutex(State())

    var refreshes: Int { self.state.withLock { $0.refreshes } }
    var resourceCalls: Int { self.state.withLock { $0.resourceCalls } }
    func answerRefreshes(_ answer: RefreshAnswer) { self.state.withLock { $0.refreshAnswer = answer } }
    /// Lets requests with this access token through.
    func accept(_ accessToken: String) { _ = self.state.withLock { $0.accepted.insert(accessToken) } }

    func router() -> Router<BasicRequestContext> {
        let router = Router()
        router.post("/v1/login") { _, _ in self.issue() }
        router.post("/v1/token/refresh") { _, _ -> Response in
            let answer = self.state.withLock { state -> RefreshAnswer in
                state.refreshes += 1
                return state.refreshAnswer
            }
            switch answer {
            case .rotate:
                return self.issue()
            case .expired:
                return self.issue(expiresIn: 0)
            case .reused:
                return Self.json(.unauthorized, #"{"error":{"code":"AUTH_1007","message":"The refresh token was used already."}}"#)
            }
        }
        router.get("/resource") { request, _ -> Response in
            let token = request.headers[.authorization].map { String($0.dropFirst("Bearer ".count)) }
            let accepted = self.state.withLock { state -> Bool in
                state.resourceCalls += 1
                return token.map { state.accepted.contains($0) } ?? false
            }
            if accepted { return Self.json(.ok, #"{"ok":true}"#) }
            return Self.json(.unauthorized, #"{"error":{"code":"AUTH_1003","message":"Not authenticated."}}"#)
        }
        router.post("/v1/logout") { _, _ in Response(status: .noContent) }
        return router
    }

    private func issue(expiresIn: Int = 300) -> Response {
        let number = self.state.withLock { state -> Int in
            state.issued += 1
            return state.issued
        }
        return Self.json(
            .ok,
            #"{"accessToken":"at_\#(number)","tokenType":"Bearer","expiresIn":\#(expiresIn),"refreshToken":"rt_\#(number)","#
                + #""session":{"id":"ses_stub","userId":"usr_stub"},"user":{"id":"usr_stub","username":"stub"}}"#
        )
    }

    private static func json(_ status: HTTPResponse.Status, _ body: String) -> Response {
        Response(status: status, headers: [.contentType: "application/json"], body: .init(byteBuffer: ByteBuffer(string: body)))
    }
}

@Suite(.serialized, .timeLimit(.minutes(1)), .heavy)
struct StubServerTests {
    static let resource = TesseraHTTPRequest.get("/resource")

    @Test func refreshLimitStopsAServiceThatKeepsAnswering401() async throws {
        let stub = StubService()
        try await serve(stub.router()) { baseURL in
            let clock = ManualMonotonicClock()
            let (client, transport) = TesseraClient.testing(baseURL: baseURL, clock: clock)
            let log = EventLog(client)
            try await client.login(username: "stub", password: "pw")

            // Each request: 401, one refresh, one retry, 401 again, returned.
            for count in 1...3 {
                let error = await #expect(throws: TesseraClientError.self) { try await client.send(Self.resource) }
                #expect(error?.code == .unauthorized)
                #expect(stub.refreshes == count)
            }
            // The fourth would be the fourth refresh in 30 s: refused, and nothing loops.
            for _ in 0..<10 {
                let error = await #expect(throws: TesseraClientError.self) { try await client.send(Self.resource) }
                #expect(error?.code == .refreshLimitExceeded)
                #expect(error?.retryAfter == .seconds(30))
            }
            #expect(stub.refreshes == 3)
            #expect(transport.refreshCalls == 3)
            #expect(stub.resourceCalls == 3 * 2 + 10)
            // Not a reason to sign out.
            #expect(await client.credentials != nil)
            #expect(log.signOuts.isEmpty)

            // Once the window has passed, one more is allowed.
            clock.advance(by: .seconds(30))
            let error = await #expect(throws: TesseraClientError.self) { try await client.send(Self.resource) }
            #expect(error?.code == .unauthorized)
            #expect(stub.refreshes == 4)
        }
    }

    @Test func aServiceAnsweringOnlyExpiredTokensCannotMakeTheClientLoop() async throws {
        let stub = StubService()
        try await serve(stub.router()) { baseURL in
            let clock = ManualMonotonicClock()
            let (client, transport) = TesseraClient.testing(baseURL: baseURL, clock: clock)
            let log = EventLog(client)
            try await client.login(username: "stub", password: "pw")
            stub.answerRefreshes(.expired)
            // The token comes due: the timer refreshes, and every answer is an expired token.
            clock.advance(by: .seconds(300))
            try await log.waitForSignOut()
            #expect(log.signOuts == [.refreshLoop])
            #expect(stub.refreshes == 3)
            #expect(await client.credentials == nil)

            // Over: nothing more is sent, whatever time passes or the app asks.
            for _ in 0..<5 {
                let error = await #expect(throws: TesseraClientError.self) { try await client.send(Self.resource) }
                #expect(error?.signOutReason == .refreshLoop)
                clock.advance(by: .seconds(60))
            }
            await Task.yield()
            #expect(transport.refreshCalls == 3)
            #expect(stub.resourceCalls == 0)
            #expect(log.signOuts == [.refreshLoop])
        }
    }

    @Test func unauthorizedRightAfterARefreshIsNotRetriedAgain() async throws {
        let stub = StubService()
        try await serve(stub.router()) { baseURL in
            let (client, transport) = TesseraClient.testing(baseURL: baseURL)
            try await client.login(username: "stub", password: "pw")
            let error = await #expect(throws: TesseraClientError.self) { try await client.send(Self.resource) }
            #expect(error?.code == .unauthorized)
            #expect(error?.serverError?.code == "AUTH_1003")
            #expect(stub.resourceCalls == 2)
            #expect(stub.refreshes == 1)
            #expect(transport.refreshCalls == 1)
            #expect(await client.credentials?.accessToken == "at_2")
        }
    }

    @Test func alreadyUsedRefreshTokenAdoptsTheSuccessorAnotherProcessStored() async throws {
        let stub = StubService()
        try await serve(stub.router()) { baseURL in
            let store = InMemoryCredentialStore()
            let clock = ManualMonotonicClock()
            let (client, transport) = TesseraClient.testing(baseURL: baseURL, store: store, clock: clock)
            let log = EventLog(client)
            let gate = Gate()
            transport.holdRefreshes(at: gate)
            stub.answerRefreshes(.reused)
            try await client.login(username: "stub", password: "pw")

            let sending = Task { try await client.send(Self.resource) }
            await gate.arrival()
            // Meanwhile another process sharing the store rotated the token.
            let successor = TesseraCredentials(
                accessToken: "at_other",
                refreshToken: "rt_other",
                expiresAt: clock.date.addingTimeInterval(300),
                lifetime: .seconds(300),
                sessionID: "ses_stub"
            )
            store.save(successor)
            stub.accept("at_other")
            gate.open()

            #expect(try await sending.value.status == .ok)
            #expect(await client.credentials == successor)
            #expect(stub.refreshes == 1)
            #expect(log.signOuts.isEmpty)
        }
    }

    @Test func alreadyUsedRefreshTokenWithNoSuccessorSignsOut() async throws {
        let stub = StubService()
        try await serve(stub.router()) { baseURL in
            let store = InMemoryCredentialStore()
            let (client, _) = TesseraClient.testing(baseURL: baseURL, store: store)
            let log = EventLog(client)
            stub.answerRefreshes(.reused)
            try await client.login(username: "stub", password: "pw")

            let error = await #expect(throws: TesseraClientError.self) { try await client.send(Self.resource) }
            #expect(error?.code == .signedOut)
            #expect(error?.signOutReason == .refreshTokenReused)
            try await log.waitForSignOut()
            #expect(log.signOuts == [.refreshTokenReused])
            #expect(await client.credentials == nil)
            #expect(store.load() == nil)
        }
    }
}
