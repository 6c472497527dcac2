import AsyncHTTPClient
import Foundation
import MetricsTestKit
import NIOCore
import NIOEmbedded
import NIOHTTP1
import NIOHTTPTypes
import HTTPTypes
import Logging
import Tessera
@testable import TesseraHummingbird
import TesseraTestSupport
import TesseraUpstream
import Testing

/// The proxy's express path (``UpstreamExpressLane``): requests served on the connection's event
/// loop, below the router, over real HTTP on loopback. It answers what the router would, in
/// the order requests came, and hands the router what it does not take.
@Suite(.heavy) struct ProxyExpressTests {
    typealias Answer = UpstreamHTTPTests.Answer

    static func get(_ f: PoolFixture, _ url: String, headers: [(String, String)] = []) async throws -> Answer {
        try await UpstreamHTTPTests.request(f.client, url, headers: headers)
    }

    /// The fields an answer carries, names lower-cased, with the values that differ by the
    /// instant (`date`) left out.
    static func fields(_ answer: Answer) -> [String: [String]] {
        var fields: [String: [String]] = [:]
        for field in answer.headers where field.name.lowercased() != "date" {
            fields[field.name.lowercased(), default: []].append(field.value)
        }
        return fields
    }

    @Test func theExpressPathAnswersWhatTheRouterAnswers() async throws {
        try await PoolFixture.with { f in
            await f.maintain()
            let path = "/v1/upstreams/fake/proxy/api/items/7?color=blue%20green"
            let headers = [("x-correlation-id", "req-express-1"), ("accept", "application/json"), ("cookie", "SESSID=client-cookie")]
            let express = try await UpstreamHTTPTests.withService(f, express: true) { baseURL, lane in
                let answer = try await Self.get(f, baseURL + path, headers: headers)
                let lane = try #require(lane)
                #expect(lane.counts.answeredCount == 1)
                #expect(lane.counts.declinedCount == 0)
                return answer
            }
            let routed = try await UpstreamHTTPTests.withService(f, express: false) { baseURL in
                try await Self.get(f, baseURL + path, headers: headers)
            }
            #expect(express.status == 200)
            #expect(express.body.contains(#""item":7"#))
            #expect(express.status == routed.status)
            #expect(express.body == routed.body)
            #expect(Self.fields(express) == Self.fields(routed))
            #expect(express.headers["x-correlation-id"] == ["req-express-1"])
            #expect(express.headers["cache-control"] == ["no-store"])
            #expect(express.headers["set-cookie"].isEmpty)
            #expect(express.headers["date"].count == 1)
        }
    }

    @Test func pipelinedRequestsAreAnsweredInTheOrderTheyCame() async throws {
        try await PoolFixture.with { f in
            await f.maintain()
            try await UpstreamHTTPTests.withService(f) { baseURL, lane in
                let port = try #require(URL(string: baseURL)?.port)
                let key = UpstreamHTTPTests.serviceKey
                // A GET, a POST with its body and a GET, in one write: each answer waits for the
                // one before, and what came during an answer waits for it.
                let requests =
                    "GET /v1/upstreams/fake/proxy/api/items/1 HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer \(key)\r\n\r\n"
                    + "POST /v1/upstreams/fake/proxy/api/orders HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer \(key)\r\n"
                    + "Content-Type: text/plain\r\nContent-Length: 5\r\n\r\nhello"
                    + "GET /v1/upstreams/fake/proxy/api/items/3 HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer \(key)\r\nConnection: close\r\n\r\n"
                let answer = try await RawHTTP.exchange(port: port, requests)
                #expect(answer.closedByServer)
                #expect(answer.responseCount == 3)
                let text = answer.text
                let first = try #require(text.range(of: #""item":1"#))
                let second = try #require(text.range(of: #""echo":"hello""#))
                let third = try #require(text.range(of: #""item":3"#))
                #expect(first.lowerBound < second.lowerBound && second.lowerBound < third.lowerBound)
                #expect(text.components(separatedBy: "HTTP/1.1 200 OK").count - 1 == 2)
                #expect(text.contains("HTTP/1.1 201 Created"))
                #expect(lane?.counts.answeredCount == 3)
            }
        }
    }

    @Test func whatTheExpressPathDoesNotTakeTheRouterAnswers() async throws {
        try await PoolFixture.with { f in
            await f.maintain()
            try await UpstreamHTTPTests.withService(f) { baseURL, lane in
                let lane = try #require(lane)
                let proxy = "\(baseURL)/v1/upstreams/fake/proxy"
                let wrongKey = try await UpstreamHTTPTests.request(f.client, "\(proxy)/api/items/1", key: ServiceAPIKey.generate())
                #expect(wrongKey.status == 401)
                #expect(wrongKey.errorCode == "AUTH_1009")
                let unknown = try await Self.get(f, "\(baseURL)/v1/upstreams/nope/proxy/home")
                #expect(unknown.status == 404)
                // The router forwards HEAD; the site serves none on this path, and its 404 is passed on.
                let head = try await UpstreamHTTPTests.request(f.client, "\(proxy)/api/items/4", method: .HEAD)
                #expect(head.status == 404)
                // A body that streams (chunked): the router's.
                var chunked = HTTPClientRequest(url: "\(proxy)/api/orders")
                chunked.method = .POST
                chunked.headers.add(name: "authorization", value: "Bearer \(UpstreamHTTPTests.serviceKey)")
                chunked.body = .stream(AsyncStream { $0.yield(ByteBuffer(string: "streamed")); $0.finish() }, length: .unknown)
                let streamed = try await f.client.execute(chunked, timeout: .seconds(30))
                #expect(streamed.status == .created)
                #expect(String(buffer: try await streamed.body.collect(upTo: 1 << 20)).contains(#""echo":"streamed""#))
                #expect(lane.counts.answeredCount == 0)
                #expect(lane.counts.declinedCount == 0)

                // No session seen logged in within `healthFreshness`: none can be lent at once,
                // so the pool forwards the request the ordinary way (it probes a session first,
                // as it always did), in a task, and the express path writes the answer.
                f.clock.advance(by: .seconds(6))
                let checksBefore = await f.pool.snapshot().counters.healthChecks
                let stale = try await UpstreamHTTPTests.request(f.client, "\(proxy)/api/orders", method: .POST, body: "probed first")
                #expect(stale.status == 201)
                #expect(stale.body.contains(#""echo":"probed first""#))
                #expect(lane.counts.answeredCount == 1)
                #expect(await f.pool.snapshot().counters.healthChecks == checksBefore + 1)
                // Seen logged in now: the next one is lent at once.
                let fresh = try await Self.get(f, "\(proxy)/api/items/6")
                #expect(fresh.status == 200)
                #expect(lane.counts.answeredCount == 2)
                #expect(lane.counts.declinedCount == 0)
            }
        }
    }

    @Test func anEndedSessionIsRetriedAndAFailureAnsweredInTheErrorShape() async throws {
        try await PoolFixture.with { f in
            await f.maintain()
            try await UpstreamHTTPTests.withService(f) { baseURL, lane in
                let proxy = "\(baseURL)/v1/upstreams/fake/proxy"
                // The site ends the session: the express path's attempt meets it, and the retry
                // logs in anew.
                f.fake.expiredStyle = .redirectToLogin
                f.fake.expireAllSessions()
                let retried = try await Self.get(f, "\(proxy)/api/items/8")
                #expect(retried.status == 200)
                #expect(retried.body.contains(#""item":8"#))
                #expect(await f.pool.snapshot().counters.retries == 1)

                // Now no login works: the retry fails, in the one JSON shape, with the client's id.
                f.fake.refuseLogins = true
                f.fake.expireAllSessions()
                let failed = try await Self.get(f, "\(proxy)/api/items/9", headers: [("x-correlation-id", "req-express-2")])
                #expect(failed.status == 502)
                #expect(failed.errorCode == "UPSTREAM_LOGIN_FAILED")
                #expect(failed.headers["x-correlation-id"] == ["req-express-2"])
                #expect(failed.headers["content-type"] == ["application/json; charset=utf-8"])
                #expect((failed.json?["error"] as? [String: Any])?["correlationId"] as? String == "req-express-2")
                #expect(lane?.counts.answeredCount == 2)
            }
        }
    }

    /// Who-am-I's express path and the proxy's on one connection: each hands the other's
    /// requests on, and the answers keep the order of the requests.
    @Test func whoAmIAndProxyExpressAnswersKeepTheirOrderOnOneConnection() async throws {
        try await PoolFixture.with { f in
            await f.maintain()
            let directory = TemporaryDirectory()
            let store = try directory.sqliteStore()
            let cache = SessionCache(configuration: .init(capacity: 100, stalenessBound: .seconds(3600)), clock: f.clock)
            _ = try await SessionChangeFeed(cache: cache, store: store, logger: Logger(label: "tests")).poll()
            let sessions = SessionManager(store: store, clock: f.clock, activityBuffer: ActivityBuffer(), cache: cache)
            let service = TesseraHTTPService(
                login: try await PasswordLogin(sessions: sessions, hasher: BcryptPasswordHasher(cost: 4)),
                serviceKey: ServiceAPIKey(key: UpstreamHTTPTests.serviceKey),
                upstreams: UpstreamPools(pools: [f.pool])
            )
            var logger = Logger(label: "tessera.tests")
            logger.logLevel = .warning
            let proxyLane = try #require(service.upstreamExpressLane(serverName: nil, logger: logger))
            let whoAmILane = try #require(service.sessionExpressLane(serverName: nil, logger: logger))
            let token = try await sessions.createSession(userID: "usr_x").token.rawValue
            try await serve(service.buildRouter(), server: .tessera(express: proxyLane, sessions: whoAmILane)) { baseURL in
                let port = try #require(URL(string: baseURL)?.port)
                // The first who-am-I reads the session and the user's name, through the router.
                let first = try await UpstreamHTTPTests.request(f.client, "\(baseURL)/v1/session", key: token)
                #expect(first.status == 200)
                let key = UpstreamHTTPTests.serviceKey
                func whoAmI(_ id: String) -> String {
                    "GET /v1/session HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer \(token)\r\nX-Correlation-ID: \(id)\r\n\r\n"
                }
                func proxied(_ item: Int, _ id: String, close: Bool = false) -> String {
                    "GET /v1/upstreams/fake/proxy/api/items/\(item) HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer \(key)\r\n"
                        + "X-Correlation-ID: \(id)\r\n\(close ? "Connection: close\r\n" : "")\r\n"
                }
                let answer = try await RawHTTP.exchange(
                    port: port,
                    whoAmI("one") + proxied(2, "two") + whoAmI("three") + proxied(4, "four") + whoAmI("five") + proxied(6, "six", close: true)
                )
                #expect(answer.closedByServer)
                #expect(answer.responseCount == 6)
                let text = answer.text
                let order = ["one", "two", "three", "four", "five", "six"].compactMap { text.range(of: "X-Correlation-ID: \($0)\r\n")?.lowerBound }
                #expect(order.count == 6)
                #expect(order == order.sorted())
                let items = [2, 4, 6].compactMap { text.range(of: #""item":\#($0)"#)?.lowerBound }
                #expect(items.count == 3 && items == items.sorted())
                #expect(text.components(separatedBy: #""userId":"usr_x""#).count - 1 == 3)
                #expect(whoAmILane.counts.answeredCount >= 1)
                #expect(proxyLane.counts.answeredCount >= 1)
            }
        }
    }

    @Test func requestMetricsCountExpressAnswersUnderTheRoutersRoute() async throws {
        try await PoolFixture.with { f in
            await f.maintain()
            let metrics = TestMetrics()
            for express in [true, false] {
                try await UpstreamHTTPTests.withService(f, express: express, metrics: metrics) { baseURL, lane in
                    let answer = try await Self.get(f, "\(baseURL)/v1/upstreams/fake/proxy/api/items/1")
                    #expect(answer.status == 200)
                    #expect(lane?.counts.answeredCount == (express ? 1 : nil))
                }
            }
            // One series for both: the express path names the route as the router does.
            let counter = try metrics.expectCounter(
                "tessera_http_requests_total",
                [("route", "/v1/upstreams/{name}/proxy/**"), ("method", "GET"), ("status", "2xx")]
            )
            #expect(counter.totalValue == 2)
        }
    }
}

/// The express path's `Date` field, against Foundation's formatter.
struct HTTPDateTests {
    @Test(arguments: [0, 951_782_400, 951_868_799, 1_709_164_800, 1_796_667_351, 4_107_542_399])
    func theDateIsWhatFoundationWrites(seconds: Int) {
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.timeZone = TimeZone(identifier: "GMT")
        formatter.dateFormat = "EEE, dd MMM yyyy HH:mm:ss 'GMT'"
        #expect(HTTPDate.string(secondsSince1970: seconds) == formatter.string(from: Date(timeIntervalSince1970: TimeInterval(seconds))))
    }
}

/// The express handler alone, on an embedded channel: what it hands the router.
struct UpstreamExpressHandlerTests {
    @Test func anErrorWhileAnExpressBodyArrivesGoesToTheRouterWithTheRequest() async throws {
        let configuration = fakeConfiguration(baseURL: "http://127.0.0.1:9")
        let pool = UpstreamPool(
            configuration: configuration,
            factory: try HTTPUpstreamSessionFactory(configuration: configuration, environment: PoolFixture.environment)
        )
        let key = ServiceAPIKey.generate()
        let lane = UpstreamExpressLane(
            upstreams: UpstreamPools(pools: [pool]),
            serviceKey: ServiceAPIKey(key: key),
            metrics: nil,
            serverName: nil,
            logger: Logger(label: "tests")
        )
        let channel = EmbeddedChannel(handler: UpstreamExpressHandler(lane: lane))
        var head = HTTPRequest(method: .post, scheme: nil, authority: nil, path: "/v1/upstreams/fake/proxy/api/orders")
        head.headerFields[.authorization] = "Bearer \(key)"
        head.headerFields[.contentLength] = "10"
        try channel.writeInbound(HTTPRequestPart.head(head))
        try channel.writeInbound(HTTPRequestPart.body(ByteBuffer(string: "abc")))
        // Taken by the express path: nothing has gone up yet.
        #expect(try channel.readInbound(as: HTTPRequestPart.self) == nil)

        channel.pipeline.fireErrorCaught(TesseraError.malformedRequest("cut short"))
        #expect(try channel.readInbound(as: HTTPRequestPart.self) == .head(head))
        #expect(try channel.readInbound(as: HTTPRequestPart.self) == .body(ByteBuffer(string: "abc")))
        #expect(throws: TesseraError.malformedRequest("cut short")) { try channel.throwIfErrorCaught() }
        // The rest of the request is the router's too.
        try channel.writeInbound(HTTPRequestPart.end(nil))
        #expect(try channel.readInbound(as: HTTPRequestPart.self) == .end(nil))
        _ = try? channel.finish()
    }
}
