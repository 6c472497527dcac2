import AsyncHTTPClient
import Foundation
import HTTPTypes
import Hummingbird
import Logging
import NIOCore
import Synchronization
import Tessera
@testable import TesseraHummingbird
import TesseraTestSupport
import TesseraUpstream
import Testing

/// Proxied paths stay below the upstream's base path, whatever the raw request target says.
@Suite(.heavy) struct ProxyPathTests {
    /// A site under `/app` that logs in anyone and records the raw target of every request.
    final class RecordingSite: Sendable {
        let targets = Mutex<[String]>([])
        let traceparents = Mutex<[String?]>([])

        var router: Router<BasicRequestContext> {
            let router = Router()
            router.post("/app/login") { _, _ in
                var response = Response(status: .ok, body: .init(byteBuffer: ByteBuffer(string: "welcome")))
                response.headers[.setCookie] = "SESSID=s1; Path=/"
                return response
            }
            router.get("/app/ping") { _, _ in "pong" }
            router.get("/app/**") { request, _ in
                let target = request.uri.path + (request.uri.query.map { "?" + $0 } ?? "")
                self.targets.withLock { $0.append(target) }
                self.traceparents.withLock { $0.append(request.headers[HTTPField.Name("traceparent")!]) }
                return "seen \(target)"
            }
            return router
        }

        var seen: [String] { self.targets.withLock { $0 } }
    }

    static func withProxy(_ body: @Sendable (_ port: Int, _ site: RecordingSite) async throws -> Void) async throws {
        try await Self.withProxy(express: false) { port, site, _ in try await body(port, site) }
    }

    /// ``withProxy(_:)`` on Tessera's server with the proxy's express path when `express`
    /// (`lane` is `nil` without it).
    static func withProxy(
        express: Bool,
        _ body: @Sendable (_ port: Int, _ site: RecordingSite, _ lane: UpstreamExpressLane?) async throws -> Void
    ) async throws {
        let site = RecordingSite()
        try await oneAtATime {
            try await serve(site.router) { siteURL in
                let configuration = UpstreamConfiguration(
                    name: "portal",
                    baseURL: siteURL + "/app",
                    login: .init(path: "/login", fields: ["user": .init(value: "alice")], success: .init(cookie: "SESSID")),
                    pool: .init(min: 1, max: 1),
                    keepAlive: .init(path: "/ping", interval: 20)
                )
                var logger = Logger(label: "tessera.proxy-tests")
                logger.logLevel = .error
                let pool = UpstreamPool(
                    configuration: configuration,
                    factory: try HTTPUpstreamSessionFactory(configuration: configuration),
                    logger: logger
                )
                let directory = TemporaryDirectory()
                let sessions = SessionManager(store: try directory.sqliteStore())
                let service = TesseraHTTPService(
                    login: try await PasswordLogin(sessions: sessions, hasher: BcryptPasswordHasher(cost: 4)),
                    serviceKey: ServiceAPIKey(key: UpstreamHTTPTests.serviceKey),
                    upstreams: UpstreamPools(pools: [pool])
                )
                var serverLogger = Logger(label: "tessera.proxy-tests")
                serverLogger.logLevel = .warning
                let lane = express ? try #require(service.upstreamExpressLane(serverName: nil, logger: serverLogger)) : nil
                try await running({
                    try await serve(service.buildRouter(), server: lane.map { .tessera(express: $0) } ?? .http1()) { tesseraURL in
                        let port = try #require(Int(tesseraURL.split(separator: ":").last ?? ""))
                        try await body(port, site, lane)
                    }
                }) {
                    await pool.shutdown()
                }
            }
        }
    }

    static func get(_ target: String, port: Int, extra: String = "") async throws -> RawHTTP.Answer {
        try await RawHTTP.exchange(
            port: port,
            "GET /v1/upstreams/portal/proxy/\(target) HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer \(UpstreamHTTPTests.serviceKey)\r\n\(extra)Connection: close\r\n\r\n"
        )
    }

    /// A caller's W3C trace goes on to the site: the same trace and flags, Tessera's call as the
    /// parent; a request without one sends none.
    /// Through the router and through the express path alike.
    @Test(arguments: [false, true]) func aCallersTraceReachesTheSiteAsAChild(express: Bool) async throws {
        try await Self.withProxy(express: express) { port, site, lane in
            // The first request finds the session unchecked (the pool probes it first, in a
            // task); the next two find it fresh and are lent it at once.
            #expect(try await Self.get("first", port: port).status == 200)
            let trace = "4bf92f3577b34da6a3ce929d0e0e4736"
            #expect(try await Self.get("traced", port: port, extra: "traceparent: 00-\(trace)-00f067aa0ba902b7-01\r\n").status == 200)
            #expect(try await Self.get("untraced", port: port).status == 200)
            let seen = site.traceparents.withLock { $0 }
            #expect(seen.count == 3)
            let child = try #require(seen.dropFirst().first.flatMap { $0 }.flatMap { TraceContext(traceparent: $0) })
            #expect(child.traceID == trace && child.flags == 1 && child.parentID != "00f067aa0ba902b7")
            #expect(seen.first == .some(nil) && seen.last == .some(nil))
            if let lane { #expect(lane.counts.answeredCount == 3) }
        }
    }

    @Test func pathsThatWouldClimbOutOfTheBasePathAreRefusedAndNeverSent() async throws {
        try await Self.withProxy { port, site in
            for target in [
                "../../v1/session", "%2e%2e/%2E%2E/v1/session", "..%2f..%2fv1/session", "a/./b", ".%2e/x", "bookings/%ff?q=1", "a%00b", "x%zz",
            ] {
                let answer = try await Self.get(target, port: port)
                #expect(answer.status == 400, "\(target): \(answer.text.prefix(300))")
                #expect(answer.errorCode == "REQ_1003", "\(target)")
            }
            #expect(site.seen.isEmpty, "the site saw \(site.seen)")
        }
    }

    @Test func ordinaryPathsArriveBelowTheBasePathAsTheClientWroteThem() async throws {
        try await Self.withProxy { port, site in
            for target in ["bookings/42?q=1", "a%2Bb/c+d?x=%ff&y=1", "trailing/", "caf%C3%A9/%E2%9C%93"] {
                let answer = try await Self.get(target, port: port)
                #expect(answer.status == 200, "\(target): \(answer.text.prefix(300))")
            }
            #expect(site.seen == ["/app/bookings/42?q=1", "/app/a%2Bb/c+d?x=%ff&y=1", "/app/trailing/", "/app/caf%C3%A9/%E2%9C%93"])
        }
    }
}
