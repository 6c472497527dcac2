import AsyncHTTPClient
import CoreMetrics
import Foundation
import HummingbirdCore
import Logging
import NIOCore
import NIOHTTP1
import Tessera
@testable import TesseraHummingbird
import TesseraTestSupport
import TesseraUpstream
import Testing

/// The `/v1/upstreams` API over real HTTP: a client, Tessera on loopback, and the fake site on
/// loopback, with the pool and the site on one manual clock.
@Suite(.heavy) struct UpstreamHTTPTests {
    static let serviceKey = ServiceAPIKey.generate()

    /// Tessera's service with `fixture`'s pool, served on loopback while `body` runs, by
    /// Tessera's server with the proxy's express path (`express`), or by Hummingbird's plain
    /// HTTP/1.1 server, where every request goes through the router.
    static func withService<Value: Sendable>(
        _ fixture: PoolFixture,
        express: Bool = true,
        _ body: @Sendable (_ baseURL: String) async throws -> Value
    ) async throws -> Value {
        try await Self.withService(fixture, express: express) { baseURL, _ in try await body(baseURL) }
    }

    /// ``withService(_:express:_:)`` that also hands `body` the express path (`nil` without it).
    static func withService<Value: Sendable>(
        _ fixture: PoolFixture,
        express: Bool = true,
        metrics: (any MetricsFactory)? = nil,
        _ body: @Sendable (_ baseURL: String, _ lane: UpstreamExpressLane?) async throws -> Value
    ) async throws -> Value {
        let directory = TemporaryDirectory()
        let sessions = SessionManager(store: try directory.sqliteStore(), clock: fixture.clock)
        let login = try await PasswordLogin(sessions: sessions, hasher: BcryptPasswordHasher(cost: 4))
        let service = TesseraHTTPService(
            login: login,
            serviceKey: ServiceAPIKey(key: Self.serviceKey),
            upstreams: UpstreamPools(pools: [fixture.pool]),
            admin: AdminSettings(requestMetrics: metrics)
        )
        var logger = Logger(label: "tessera.tests")
        logger.logLevel = .warning
        let lane = express ? service.upstreamExpressLane(serverName: nil, logger: logger) : nil
        // The largest body a route takes is the pool's, as `tessera serve` sets it.
        var limits = HTTPLimits()
        limits.maxBodyBytes = max(limits.maxBodyBytes, fixture.pool.configuration.maxBodyBytes)
        return try await serve(service.buildRouter(), server: lane.map { .tessera(limits: limits, express: $0) } ?? .http1()) { try await body($0, lane) }
    }

    struct Answer: Sendable {
        var status: Int
        var headers: HTTPHeaders
        var body: String
        var json: [String: Any]? {
            try? JSONSerialization.jsonObject(with: Data(self.body.utf8)) as? [String: Any]
        }
        var errorCode: String? { (self.json?["error"] as? [String: Any])?["code"] as? String }
    }

    static func request(
        _ client: HTTPClient,
        _ url: String,
        method: HTTPMethod = .GET,
        key: String? = Self.serviceKey,
        body: String? = nil,
        headers: [(String, String)] = []
    ) async throws -> Answer {
        var request = HTTPClientRequest(url: url)
        request.method = method
        if let key { request.headers.add(name: "authorization", value: "Bearer \(key)") }
        for (name, value) in headers { request.headers.add(name: name, value: value) }
        if let body { request.body = .bytes(ByteBuffer(string: body)) }
        let response = try await client.execute(request, timeout: .seconds(30))
        let buffer = try await response.body.collect(upTo: 1 << 20)
        return Answer(status: Int(response.status.code), headers: response.headers, body: String(buffer: buffer))
    }

    /// By the express path (most requests) and by the router (all of them).
    @Test(arguments: [true, false]) func oneThousandProxiedRequestsAtConcurrencyTwentyMeetNoExpiry(express: Bool) async throws {
        try await PoolFixture.with(configure: { fakeConfiguration(baseURL: $0, pool: .init(min: 2, max: 4)) }) { f in
            // The site ends each session at a random moment 10 to 60 s after its login, and after
            // 60 s idle; expired sessions get the three answers real sites give, at random.
            f.fake.randomLifetime = 10...60
            f.fake.expiredStyle = .random
            try await Self.withService(f, express: express) { baseURL, lane in
                var failures: [String] = []
                // 50 rounds of 20 concurrent requests; between rounds the clock moves 3 s (150 s in
                // all, past the pool's 2 min maximum age) and the keeper runs, as it would every second.
                for round in 0..<50 {
                    let answers = try await withThrowingTaskGroup(of: (Int, Answer).self) { group in
                        for index in 0..<20 {
                            let item = round * 20 + index
                            group.addTask {
                                (item, try await Self.request(f.client, "\(baseURL)/v1/upstreams/fake/proxy/api/items/\(item)"))
                            }
                        }
                        return try await group.reduce(into: [(Int, Answer)]()) { $0.append($1) }
                    }
                    for (item, answer) in answers where answer.status != 200 || !answer.body.contains(#""item":\#(item)"#) {
                        failures.append("item \(item): \(answer.status) \(answer.body.prefix(120))")
                    }
                    f.clock.advance(by: .seconds(3))
                    await f.maintain()
                }
                let snapshot = await f.pool.snapshot()
                let site = f.fake.stats
                print(
                    """
                    1,000 proxied requests at concurrency 20 (\(express ? "express path" : "router only")): \(1000 - failures.count) answered 200 with their item
                      site: \(site.logins) logins, \(site.expiredAnswers) answers to ended sessions \
                    (\(site.expiredByStyle.map { "\($0.key): \($0.value)" }.sorted().joined(separator: ", "))), \
                    \(site.pings) keep-alive pings
                      pool: \(snapshot.counters.logins) logins, retirements \(snapshot.counters.retirements.sorted { $0.key < $1.key }), \
                    \(snapshot.counters.retries) retries, \(snapshot.counters.expiredHidden) ended sessions hidden from clients, \
                    \(snapshot.counters.healthChecks) checks before lending
                    """
                )
                #expect(failures.isEmpty, "\(failures.prefix(5))")
                // The site really did end sessions, and in every way.
                #expect(site.expiredAnswers > 0)
                #expect(site.expiredByStyle.count == 3)
                #expect(snapshot.counters.logins > 2)
                #expect(snapshot.counters.retirements.values.reduce(0, +) > 0)
                if express {
                    let answered = try #require(lane).counts.answeredCount
                    #expect(answered > 0 && answered <= 1000)
                }
            }
        }
    }

    @Test func aRetriedPostIsForwardedWithItsBodyAndTheSessionsCookiesStayInThePool() async throws {
        try await PoolFixture.with { f in
            try await Self.withService(f) { baseURL in
                await f.maintain()
                f.fake.expiredStyle = .redirectToLogin
                f.fake.expireAllSessions()
                let answer = try await Self.request(
                    f.client,
                    "\(baseURL)/v1/upstreams/fake/proxy/api/orders?x=1",
                    method: .POST,
                    body: "two",
                    headers: [("content-type", "text/plain"), ("cookie", "SESSID=client-cookie")]
                )
                #expect(answer.status == 201)
                #expect(answer.body.contains(#""echo":"two""#))
                #expect(answer.headers["set-cookie"].isEmpty)
                #expect(answer.headers["cache-control"] == ["no-store"])
                #expect(f.fake.stats.actionsPerformed == 1)
                #expect(await f.pool.snapshot().counters.retries == 1)
            }
        }
    }

    @Test func refusedLoginsAnswerLoginFailedInTheErrorShape() async throws {
        try await PoolFixture.with { f in
            f.fake.refuseLogins = true
            try await Self.withService(f) { baseURL in
                let answer = try await Self.request(f.client, "\(baseURL)/v1/upstreams/fake/proxy/home")
                #expect(answer.status == 502)
                #expect(answer.errorCode == "UPSTREAM_LOGIN_FAILED")
                #expect(answer.headers["retry-after"] == ["1"])
                #expect(answer.headers["x-correlation-id"].count == 1)
            }
        }
    }

    @Test func theReportListsPoolsAndNeedsTheServiceKey() async throws {
        try await PoolFixture.with { f in
            try await Self.withService(f) { baseURL in
                await f.maintain()
                let refused = try await Self.request(f.client, "\(baseURL)/v1/upstreams", key: nil)
                #expect(refused.status == 401)
                #expect(refused.errorCode == "AUTH_1009")
                let wrong = try await Self.request(f.client, "\(baseURL)/v1/upstreams/fake/proxy/home", key: ServiceAPIKey.generate())
                #expect(wrong.errorCode == "AUTH_1009")

                let report = try await Self.request(f.client, "\(baseURL)/v1/upstreams")
                #expect(report.status == 200)
                let pools = try #require(report.json?["upstreams"] as? [[String: Any]])
                #expect(pools.map { $0["name"] as? String } == ["fake"])
                let sessions = try #require(pools.first?["sessions"] as? [[String: Any]])
                #expect(sessions.count == 1)
                #expect(sessions.first?["state"] as? String == "idle")
                #expect(sessions.first?["lastVerdict"] as? String == "ok")
                #expect((pools.first?["counters"] as? [String: Any])?["logins"] as? Int == 1)
                #expect(!report.body.contains("SESSID"))
            }
        }
    }

    @Test func aLentSessionsCookiesWorkAgainstTheSiteUntilGivenBack() async throws {
        try await PoolFixture.with { f in
            try await Self.withService(f) { baseURL in
                let lent = try await Self.request(f.client, "\(baseURL)/v1/upstreams/fake/session", method: .POST)
                #expect(lent.status == 200)
                let json = try #require(lent.json)
                let cookieHeader = try #require(json["cookieHeader"] as? String)
                #expect(cookieHeader.contains("SESSID="))
                #expect(json["expiresIn"] as? Int == 60)
                let lease = try #require(json["lease"] as? String)

                // The client drives the site itself with the cookies.
                let direct = try await Self.request(f.client, "\(f.fake.baseURL)/api/items/9", key: nil, headers: [("cookie", cookieHeader)])
                #expect(direct.status == 200)
                #expect(await f.pool.snapshot().sessions.first?.state == "lent")

                let returned = try await Self.request(f.client, "\(baseURL)/v1/upstreams/fake/session/\(lease)", method: .DELETE)
                #expect(returned.status == 204)
                #expect(await f.pool.snapshot().sessions.first?.state == "idle")
            }
        }
    }

    @Test func anUnknownUpstreamIsNotFound() async throws {
        try await PoolFixture.with { f in
            try await Self.withService(f) { baseURL in
                let answer = try await Self.request(f.client, "\(baseURL)/v1/upstreams/nope/proxy/home")
                #expect(answer.status == 404)
                #expect(answer.errorCode == "REQ_1004")
            }
        }
    }
}
