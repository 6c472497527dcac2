import Foundation
import NIOCore
import NIOHTTP1
@testable import TesseraClient
import TesseraTestSupport
import Testing

/// Parts of the client that need no service: classification, storage, the clock.
@Suite(.timeLimit(.minutes(1)))
struct OfflineTests {
    private func response(_ status: HTTPResponseStatus, _ body: String = "", headers: HTTPHeaders = [:]) -> TesseraHTTPResponse {
        TesseraHTTPResponse(status: status, headers: headers, body: ByteBuffer(string: body))
    }

    private func error(_ code: String, reason: String? = nil) -> String {
        #"{"error":{"code":"\#(code)","message":"m"\#(reason.map { #","reason":"\#($0)""# } ?? "")}}"#
    }

    @Test func refreshFailuresAreClassified() {
        func terminalReason(_ outcome: RefreshOutcome) -> SignOutReason? {
            if case .terminal(let reason, _) = outcome { return reason }
            return nil
        }
        func isTransient(_ outcome: RefreshOutcome) -> Bool {
            if case .transient = outcome { return true }
            return false
        }
        #expect(terminalReason(.classify(self.response(.unauthorized, self.error("AUTH_1002", reason: "revoked")))) == .revoked)
        #expect(terminalReason(.classify(self.response(.unauthorized, self.error("AUTH_1002", reason: "idle")))) == .expired(.idle))
        #expect(terminalReason(.classify(self.response(.unauthorized, self.error("AUTH_1002", reason: "absolute")))) == .expired(.absolute))
        #expect(terminalReason(.classify(self.response(.unauthorized, self.error("AUTH_1003")))) == .refreshRejected)
        // Only Tessera ends the session: a 4xx without its error body comes from something else.
        #expect(isTransient(.classify(self.response(.unauthorized))))
        #expect(isTransient(.classify(self.response(.notFound, "<html>not found</html>"))))
        #expect(isTransient(.classify(self.response(.forbidden, "blocked by firewall"))))
        #expect(terminalReason(.classify(self.response(.badRequest, self.error("REQ_1001")))) == .refreshRejected)
        if case .alreadyUsed(let server) = RefreshOutcome.classify(self.response(.unauthorized, self.error("AUTH_1007"))) {
            #expect(server?.code == "AUTH_1007")
        } else {
            Issue.record("AUTH_1007 is the already-used case")
        }
        #expect(isTransient(.classify(self.response(.serviceUnavailable, self.error("STORE_UNAVAILABLE")))))
        #expect(isTransient(.classify(self.response(.internalServerError))))
        #expect(isTransient(.classify(self.response(.badGateway, "<html>"))))
        #expect(isTransient(.classify(self.response(.tooManyRequests))))
        #expect(isTransient(.classify(self.response(.requestTimeout))))
        #expect(isTransient(.classify(self.response(.ok, "<html>captive portal</html>"))))
        if case .transient(let error) = RefreshOutcome.classify(self.response(.serviceUnavailable, headers: ["Retry-After": "7"])) {
            #expect(error.retryAfter == .seconds(7))
        }
    }

    @Test func fileStoreWritesMode0600AndReplacesAtomically() throws {
        let directory = TemporaryDirectory()
        let url = directory.url.appendingPathComponent("nested/credentials.json")
        let store = FileCredentialStore(url: url)
        #expect(try store.load() == nil)
        let first = TesseraCredentials(
            accessToken: "at_1",
            refreshToken: "rt_1",
            expiresAt: Date(timeIntervalSince1970: 1_800_000_300),
            lifetime: .seconds(300),
            sessionID: "ses_1",
            userID: "usr_1",
            username: "alice"
        )
        try store.save(first)
        let attributes = try FileManager.default.attributesOfItem(atPath: url.path)
        #expect((attributes[.posixPermissions] as? NSNumber)?.intValue == 0o600)
        #expect(try store.load() == first)

        var second = first
        second.refreshToken = "rt_2"
        try store.save(second)
        #expect(try store.load() == second)
        #expect(try FileManager.default.contentsOfDirectory(atPath: url.deletingLastPathComponent().path) == ["credentials.json"])
        let replaced = try FileManager.default.attributesOfItem(atPath: url.path)
        #expect((replaced[.posixPermissions] as? NSNumber)?.intValue == 0o600)

        try store.clear()
        try store.clear()
        #expect(try store.load() == nil)
    }

    @Test func limiterCountsRefreshesInASlidingWindow() {
        var limiter = RefreshLimiter(maximum: 3, window: .seconds(30))
        let start = MonotonicInstant(offset: .zero)
        func admit(_ second: Int) -> Bool {
            let now = start.advanced(by: .seconds(second))
            guard limiter.allows(at: now) else { return false }
            limiter.record(at: now)
            return true
        }
        #expect([0, 10, 20, 29].map(admit) == [true, true, true, false])
        #expect(limiter.nextAdmission(after: start.advanced(by: .seconds(29))) == start.advanced(by: .seconds(30)))
        #expect([30, 31].map(admit) == [true, false])
        // Recorded after the fact (a refresh answered with a token too short to use), out of order.
        limiter.record(at: start.advanced(by: .seconds(25)))
        #expect(limiter.nextAdmission(after: start.advanced(by: .seconds(31))) == start.advanced(by: .seconds(50)))
    }

    @Test func backoffDoublesUpToItsMaximumAndHonoursRetryAfter() {
        var backoff = RefreshBackoff(initial: .seconds(1), maximum: .seconds(60))
        let now = MonotonicInstant(offset: .zero)
        let delays = [nil, nil, Duration.seconds(10)].map { backoff.fail(at: now, retryAfter: $0) }
        #expect(delays == [.seconds(1), .seconds(2), .seconds(10)])
        for _ in 0..<10 { _ = backoff.fail(at: now, retryAfter: nil) }
        let capped = backoff.fail(at: now, retryAfter: nil)
        #expect(capped == .seconds(60))
        #expect(backoff.remaining(at: now.advanced(by: .seconds(59))) == .seconds(1))
        backoff.reset()
        #expect(backoff.remaining(at: now) == nil)
    }

    @Test func manualClockWakesSleepersWhenAdvancedPastTheirDeadline() async throws {
        let clock = ManualMonotonicClock()
        let sleeper = Task { try await clock.sleep(until: MonotonicInstant(offset: .seconds(10))) }
        await eventually { clock.sleeperCount == 1 }
        clock.advance(by: .seconds(9))
        #expect(clock.sleeperCount == 1)
        clock.advance(by: .seconds(1))
        try await sleeper.value
        #expect(clock.sleeperCount == 0)

        let cancelled = Task { try await clock.sleep(until: MonotonicInstant(offset: .seconds(100))) }
        await eventually { clock.sleeperCount == 1 }
        cancelled.cancel()
        await #expect(throws: CancellationError.self) { try await cancelled.value }
    }

    @Test func signingInWithoutASessionFailsWithNotSignedIn() async throws {
        let client = TesseraClient(transport: HTTPClientTransport(baseURL: "http://127.0.0.1:9"), clock: ManualMonotonicClock())
        let error = await #expect(throws: TesseraClientError.self) { try await client.send(.get("/v1/session")) }
        #expect(error?.code == .notSignedIn)
        await client.signOut()
        #expect(await client.isSignedIn == false)
    }
}
