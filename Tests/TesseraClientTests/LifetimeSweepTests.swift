import Foundation
import NIOCore
import NIOHTTP1
import Synchronization
import Tessera
import TesseraClient
import TesseraTestSupport
import Testing

/// The client against a real Tessera service (in the process, through its router: the sweep sends
/// 40,000 requests) at every access-token lifetime the service accepts,
/// one request a second for ten lifetimes, both clocks moved by hand: no request fails, the
/// service never answers `401`, and the client refreshes about twice per lifetime (once per
/// lifetime minus its margin).
@Suite(.heavy) struct LifetimeSweepTests {
    @Test(.timeLimit(.minutes(5)), arguments: [10, 15, 30, 60, 300, 3600])
    func aHealthyClientNeverFailsWhateverTheLifetime(seconds: Int) async throws {
        let lifetime = Duration.seconds(seconds)
        let lifetimes = 10
        // A session that outlives the sweep: only the access tokens' lifetime is under test.
        let horizon = lifetime * (lifetimes + 2)
        let server = try await TesseraServer(
            accessTokenLifetime: lifetime,
            policy: SessionPolicy(idleTimeout: max(horizon, .seconds(900)), absoluteTimeout: max(horizon, .seconds(900)))
        )
        try await server.runInProcess { base in
            let clock = ManualMonotonicClock()
            let statuses = StatusCounter()
            let (client, transport) = TesseraClient.testing(transport: base, clock: clock, wrapping: statuses)
            try await client.login(username: "alice", password: TesseraServer.password)

            var failures: [String] = []
            for second in 1...(seconds * lifetimes) {
                server.clock.advance(by: .seconds(1))
                clock.advance(by: .seconds(1))
                do {
                    let response = try await client.send(.get("/v1/session"))
                    if response.status != .ok { failures.append("t=\(second) s: \(response.status.code)") }
                } catch {
                    failures.append("t=\(second) s: \(error)")
                }
            }
            // Let a refresh the last step started finish before counting.
            await eventually { await client.isSignedIn }

            #expect(failures.isEmpty, "\(failures.count) failures, first: \(failures.prefix(3))")
            #expect(statuses.unauthorized == 0)
            // Refreshed at expiry − margin, the margin min(2 min, lifetime / 2), on the first whole
            // second the clock reaches.
            let margin = min(Duration.seconds(120), lifetime / 2)
            let interval = ((lifetime - margin) / .seconds(1)).rounded(.up)
            let expected = Double(seconds * lifetimes) / interval
            let refreshes = transport.refreshCalls
            print("Access tokens of \(seconds) s, a request a second for \(seconds * lifetimes) s: \(refreshes) refreshes, \(failures.count) failures, \(statuses.unauthorized) 401s")
            #expect(
                Double(refreshes) >= expected.rounded(.down) - 1 && Double(refreshes) <= expected.rounded(.up) + 1,
                "\(refreshes) refreshes, expected about \(expected)"
            )
            #expect(refreshes <= 2 * lifetimes + 1)
        }
    }
}

/// Counts the `401`s the service answered to requests other than a refresh.
final class StatusCounter: Sendable {
    private let count = Mutex(0)
    var unauthorized: Int { self.count.withLock { $0 } }
    func record(_ response: TesseraHTTPResponse, for request: TesseraHTTPRequest) {
        if response.status == .unauthorized, request.path != "/v1/token/refresh" { self.count.withLock { $0 += 1 } }
    }
}
