import AsyncHTTPClient
import Foundation
import HTTPTypes
import Hummingbird
import Logging
import MetricsTestKit
import NIOCore
import NIOEmbedded
import NIOHTTP1
import NIOHTTPTypes
import Tessera
@testable import TesseraHummingbird
import TesseraSQLite
import TesseraTestSupport
import TesseraTokens
import Testing

/// Who-am-I's express path (``SessionExpressLane``): `GET /v1/session` answered below the router
/// from memory, over real HTTP on loopback, on a real SQLite file, with the cache, its change
/// feed and the activity buffer `tessera serve` runs with, and a manual clock.
@Suite(.heavy) struct SessionExpressTests {
    /// A node as `tessera serve` builds it: cache fed by the store's change feed, activity
    /// written in batches.
    struct Node {
        static let serviceKey = ServiceAPIKey.generate()
        let directory = TemporaryDirectory()
        let clock = ManualClock()
        let store: CountingStore
        let cache: SessionCache
        let feed: SessionChangeFeed
        let activity = ActivityBuffer()
        let service: TesseraHTTPService
        let metrics = TestMetrics()

        init() async throws {
            self.store = CountingStore(try self.directory.sqliteStore())
            self.cache = SessionCache(configuration: .init(capacity: 1000, stalenessBound: .seconds(5)), clock: self.clock)
            self.feed = SessionChangeFeed(cache: self.cache, store: self.store, logger: Logger(label: "tests"))
            let sessions = SessionManager(
                store: self.store,
                clock: self.clock,
                activityBuffer: self.activity,
                cache: self.cache,
                metrics: SessionMetrics(factory: self.metrics)
            )
            let login = try await PasswordLogin(sessions: sessions, hasher: BcryptPasswordHasher(cost: 4))
            try await self.store.insertUser(User(id: "usr_alice", username: "alice", passwordHash: "x", createdAt: self.clock.now))
            self.service = TesseraHTTPService(
                login: login,
                serviceKey: ServiceAPIKey(key: Self.serviceKey),
                tokens: TokenService(sessions: sessions, keys: await SigningKeys.ephemeral(clock: self.clock)),
                admin: AdminSettings(requestMetrics: self.metrics)
            )
        }

        /// Serves the node with the express path (`lane` is `nil` without it) and the feed read,
        /// so that the cache is current.
        func serve<Value: Sendable>(
            express: Bool = true,
            _ body: @Sendable (_ baseURL: String, _ lane: SessionExpressLane?) async throws -> Value
        ) async throws -> Value {
            _ = try await self.feed.poll()
            var logger = Logger(label: "tessera.tests")
            logger.logLevel = .warning
            // The test server names no server, so neither does the lane.
            let lane = express ? self.service.sessionExpressLane(serverName: nil, logger: logger) : nil
            return try await TesseraTestSupport.serve(self.service.buildRouter(), server: .tessera(sessions: lane)) { try await body($0, lane) }
        }

        /// A new session of alice's: its session token, or with `token: true` an access token.
        func createSession(_ baseURL: String, token: Bool = false) async throws -> String {
            let answer = try await SessionExpressTests.request(
                "\(baseURL)/v1/sessions",
                method: .POST,
                headers: [("authorization", "Bearer \(Self.serviceKey)"), ("content-type", "application/json")],
                body: token ? #"{"subject":"usr_alice","mode":"token"}"# : #"{"subject":"usr_alice"}"#
            )
            guard answer.status == 201, let value = answer.json?[token ? "accessToken" : "token"] as? String else {
                throw HarnessError("session creation failed: \(answer.status) \(answer.body)")
            }
            return value
        }
    }

    struct Answer: Sendable {
        var status: Int
        var headers: HTTPHeaders
        var body: String
        var json: [String: Any]? { try? JSONSerialization.jsonObject(with: Data(self.body.utf8)) as? [String: Any] }
        var error: [String: Any]? { self.json?["error"] as? [String: Any] }
        /// The fields, names lower-cased, with `date` (which differs by the second) left out.
        var fields: [String: [String]] {
            var fields: [String: [String]] = [:]
            for field in self.headers where field.name.lowercased() != "date" {
                fields[field.name.lowercased(), default: []].append(field.value)
            }
            return fields
        }
    }

    static func request(_ url: String, method: HTTPMethod = .GET, headers: [(String, String)] = [], body: String? = nil) async throws -> Answer {
        var request = HTTPClientRequest(url: url)
        request.method = method
        for (name, value) in headers { request.headers.add(name: name, value: value) }
        if let body { request.body = .bytes(ByteBuffer(string: body)) }
        let response = try await HTTPClient.shared.execute(request, timeout: .seconds(30))
        let bytes = try await response.body.collect(upTo: 1 << 20)
        return Answer(status: Int(response.status.code), headers: response.headers, body: String(buffer: bytes))
    }

    /// Who-am-I by each credential: bearer session token, session cookie, access token.
    static let credentials: [(name: String, tokenMode: Bool, header: @Sendable (String) -> (String, String))] = [
        ("bearer", false, { ("authorization", "Bearer \($0)") }),
        ("cookie", false, { ("cookie", "theme=dark; tessera_session=\($0)") }),
        ("access token", true, { ("authorization", "Bearer \($0)") }),
    ]

    @Test(arguments: 0..<3) func theExpressPathAnswersWhatTheRouterAnswers(credential: Int) async throws {
        let (_, tokenMode, header) = Self.credentials[credential]
        let node = try await Node()
        let (token, express) = try await node.serve { baseURL, lane in
            let lane = try #require(lane)
            let token = try await node.createSession(baseURL, token: tokenMode)
            let headers = [header(token), ("x-correlation-id", "req-who-1")]
            // The first: the session is read from the store (and the user's name) by the router.
            let first = try await Self.request("\(baseURL)/v1/session", headers: headers)
            #expect(first.status == 200)
            #expect(lane.counts.answeredCount == 0)
            #expect(lane.counts.declinedCount == 1)
            let second = try await Self.request("\(baseURL)/v1/session", headers: headers)
            #expect(lane.counts.answeredCount == 1)
            #expect(second.body == first.body)
            return (token, second)
        }
        let routed = try await node.serve(express: false) { baseURL, _ in
            try await Self.request("\(baseURL)/v1/session", headers: [header(token), ("x-correlation-id", "req-who-1")])
        }
        #expect(express.status == 200)
        #expect(express.body == routed.body)
        #expect(express.fields == routed.fields)
        #expect(express.headers["x-correlation-id"] == ["req-who-1"])
        #expect(express.headers["cache-control"] == ["no-store"])
        #expect(express.headers["etag"] == ["\"1\""])
        #expect(express.headers["date"].count == 1)
        #expect((express.json?["user"] as? [String: Any])?["username"] as? String == "alice")
        #expect((express.json?["csrfToken"] != nil) == (credential == 1))
    }

    @Test func activitySlidesTheIdleDeadlineAndAnIdleSessionIsRefusedByTheRouter() async throws {
        let node = try await Node()
        try await node.serve { baseURL, lane in
            let lane = try #require(lane)
            let token = try await node.createSession(baseURL)
            let headers = [("authorization", "Bearer \(token)")]
            let first = try await Self.request("\(baseURL)/v1/session", headers: headers)
            let firstSeen = try #require((first.json?["session"] as? [String: Any])?["lastSeenAt"] as? String)
            _ = try await node.activity.flush(to: node.store)

            // Ten minutes on (past the activity granularity): the express answer slides the
            // idle deadline, and the activity is buffered for the store.
            node.clock.advance(by: .seconds(600))
            _ = try await node.feed.poll()
            let slid = try await Self.request("\(baseURL)/v1/session", headers: headers)
            #expect(lane.counts.answeredCount == 1)
            let session = try #require(slid.json?["session"] as? [String: Any])
            #expect(session["lastSeenAt"] as? String != firstSeen)
            #expect(session["idleExpiresAt"] as? String != (first.json?["session"] as? [String: Any])?["idleExpiresAt"] as? String)
            #expect(try await node.activity.flush(to: node.store) == 1)
            let hash = try #require(SessionToken(token)).hash
            let stored = try #require(try await node.store.session(tokenHash: hash))
            #expect(stored.lastSeenAt == node.clock.now.truncatedToMilliseconds)
            // Within the same granularity window nothing more is written.
            _ = try await Self.request("\(baseURL)/v1/session", headers: headers)
            #expect(lane.counts.answeredCount == 2)
            #expect(try await node.activity.flush(to: node.store) == 0)

            // Past the idle timeout (30 minutes by default): the lane declines, and the router
            // refuses the session with its reason.
            node.clock.advance(by: .seconds(31 * 60))
            _ = try await node.feed.poll()
            let idle = try await Self.request("\(baseURL)/v1/session", headers: headers)
            #expect(idle.status == 401)
            #expect(idle.error?["code"] as? String == "AUTH_1002")
            #expect(idle.error?["reason"] as? String == "idle")
            #expect(lane.counts.answeredCount == 2)
        }
    }

    @Test func aRevokedSessionIsRefusedAndItsCookieCleared() async throws {
        let node = try await Node()
        try await node.serve { baseURL, lane in
            let lane = try #require(lane)
            let token = try await node.createSession(baseURL)
            let cookie = [("cookie", "tessera_session=\(token)")]
            _ = try await Self.request("\(baseURL)/v1/session", headers: cookie)
            #expect(try await Self.request("\(baseURL)/v1/session", headers: cookie).status == 200)
            #expect(lane.counts.answeredCount == 1)
            let id = try #require(SessionToken(token)).hash
            let session = try #require(try await node.store.session(tokenHash: id))
            #expect(try await node.service.sessions.revoke(sessionID: session.id, reason: "test"))
            let refused = try await Self.request("\(baseURL)/v1/session", headers: cookie)
            #expect(refused.status == 401)
            #expect(refused.error?["reason"] as? String == "revoked")
            #expect(refused.headers["set-cookie"].first?.contains("Max-Age=0") == true)
            #expect(lane.counts.answeredCount == 1)
        }
    }

    @Test func whatTheLaneDoesNotTakeOrCannotValidateTheRouterAnswers() async throws {
        let node = try await Node()
        try await node.serve { baseURL, lane in
            let lane = try #require(lane)
            let token = try await node.createSession(baseURL)
            let bearer = ("authorization", "Bearer \(token)")
            _ = try await Self.request("\(baseURL)/v1/session", headers: [bearer])
            #expect(lane.counts.declinedCount == 1)
            // Not taken: HEAD, a query, a body.
            let head = try await Self.request("\(baseURL)/v1/session", method: .HEAD, headers: [bearer])
            #expect(head.status == 200)
            #expect(try await Self.request("\(baseURL)/v1/session?x=1", headers: [bearer]).status == 200)
            #expect(try await Self.request("\(baseURL)/v1/session", headers: [bearer], body: "{}").status == 200)
            #expect(lane.counts.answeredCount == 0)
            #expect(lane.counts.declinedCount == 1)
            // Taken, and handed to the router: no credential, a malformed or unknown token, a
            // cookie of another name.
            let missing = try await Self.request("\(baseURL)/v1/session")
            #expect(missing.error?["code"] as? String == "AUTH_1004")
            let malformed = try await Self.request("\(baseURL)/v1/session", headers: [("authorization", "Bearer nope")])
            #expect(malformed.error?["code"] as? String == "AUTH_1003")
            let unknown = try await Self.request("\(baseURL)/v1/session", headers: [("authorization", "Bearer \(SessionToken.generate().rawValue)")])
            #expect(unknown.error?["code"] as? String == "AUTH_1003")
            let otherCookie = try await Self.request("\(baseURL)/v1/session", headers: [("cookie", "session=\(token)")])
            #expect(otherCookie.error?["code"] as? String == "AUTH_1004")
            #expect(lane.counts.answeredCount == 0)
            #expect(lane.counts.declinedCount == 5)
            // A cache that is not current (its feed unread for longer than the staleness bound)
            // serves nothing: the router reads the store.
            node.clock.advance(by: .seconds(6))
            let reads = node.store.count("sessionByTokenHash")
            #expect(try await Self.request("\(baseURL)/v1/session", headers: [bearer]).status == 200)
            #expect(node.store.count("sessionByTokenHash") == reads + 1)
            #expect(lane.counts.answeredCount == 0)
        }
    }

    @Test func pipelinedRequestsAreAnsweredInTheOrderTheyCame() async throws {
        let node = try await Node()
        try await node.serve { baseURL, lane in
            let lane = try #require(lane)
            let port = try #require(URL(string: baseURL)?.port)
            let token = try await node.createSession(baseURL)
            _ = try await Self.request("\(baseURL)/v1/session", headers: [("authorization", "Bearer \(token)")])
            // Who-am-I (the lane's), the session list (the router's), who-am-I (waits for the
            // router's answer, so the router's too), who-am-I again (the lane's once the router
            // owes nothing: it depends on when the reads arrive), in one write.
            let whoAmI = "GET /v1/session HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer \(token)\r\nX-Correlation-ID: "
            let requests =
                whoAmI + "one\r\n\r\n"
                + "GET /v1/sessions HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer \(token)\r\nX-Correlation-ID: two\r\n\r\n"
                + whoAmI + "three\r\n\r\n"
                + whoAmI + "four\r\nConnection: close\r\n\r\n"
            let answer = try await RawHTTP.exchange(port: port, requests)
            #expect(answer.closedByServer)
            #expect(answer.responseCount == 4)
            let text = answer.text
            let order = ["one", "two", "three", "four"].compactMap { text.range(of: "X-Correlation-ID: \($0)\r\n")?.lowerBound }
            #expect(order.count == 4)
            #expect(order == order.sorted())
            #expect(text.components(separatedBy: "\"sessions\":[").count - 1 == 1)
            #expect(lane.counts.answeredCount >= 1)
        }
    }

    @Test func requestAndValidationMetricsCountExpressAnswersAsTheRouterDoes() async throws {
        let node = try await Node()
        for express in [true, false] {
            try await node.serve(express: express) { baseURL, lane in
                let token = try await node.createSession(baseURL)
                for _ in 0..<2 {
                    #expect(try await Self.request("\(baseURL)/v1/session", headers: [("authorization", "Bearer \(token)")]).status == 200)
                }
                #expect(lane?.counts.answeredCount == (express ? 1 : nil))
            }
        }
        let requests = try node.metrics.expectCounter(
            "tessera_http_requests_total",
            [("route", "/v1/session"), ("method", "GET"), ("status", "2xx")]
        )
        #expect(requests.totalValue == 4)
        let validations = try node.metrics.expectCounter("tessera_session_validations_total", [("result", "ok")])
        #expect(validations.totalValue == 4)
        // Each first validation missed the cache once; the express path's own look does not count.
        #expect(node.cache.statistics.misses == 2)
        #expect(node.cache.statistics.hits == 2)
    }
}

/// The who-am-I express handler alone, on an embedded channel.
struct SessionExpressHandlerTests {
    @Test func anErrorWhileAHeldRequestIsReadGoesToTheRouterWithTheRequest() async throws {
        let node = try await SessionExpressTests.Node()
        let lane = try #require(node.service.sessionExpressLane(serverName: nil, logger: Logger(label: "tests")))
        let channel = NIOAsyncTestingChannel()
        try await channel.pipeline.addHandler(SessionExpressHandler(lane: lane))
        var head = HTTPRequest(method: .get, scheme: nil, authority: "t", path: "/v1/session")
        head.headerFields[.authorization] = "Bearer \(SessionToken.generate().rawValue)"
        try await channel.writeInbound(HTTPRequestPart.head(head))
        // Held: nothing reaches the router before the request's end.
        #expect(try await channel.readInbound(as: HTTPRequestPart.self) == nil)
        channel.pipeline.fireErrorCaught(HTTPParserError.invalidEOFState)
        #expect(try await channel.readInbound(as: HTTPRequestPart.self) == .head(head))
        await #expect(throws: HTTPParserError.self) { try await channel.throwIfErrorCaught() }
        // The router answers it; then the lane takes requests again.
        try await channel.writeOutbound(HTTPResponsePart.end(nil))
        _ = try await channel.readOutbound(as: HTTPResponsePart.self)
        // A request the lane cannot validate goes up whole, head and end.
        try await channel.writeInbound(HTTPRequestPart.head(head))
        try await channel.writeInbound(HTTPRequestPart.end(nil))
        #expect(try await channel.readInbound(as: HTTPRequestPart.self) == .head(head))
        #expect(try await channel.readInbound(as: HTTPRequestPart.self) == .end(nil))
        #expect(lane.counts.declinedCount == 1)
        _ = try await channel.finish()
    }
}
