import AsyncHTTPClient
import Foundation
import HTTPTypes
import Logging
import Hummingbird
import NIOCore
import NIOHTTP1
import Prometheus
import Tessera
import TesseraHummingbird
import TesseraTestSupport
import TesseraTokens
import Testing

/// The service over real loopback HTTP on a real SQLite file, with a manual clock and a
/// Prometheus registry of its own: a scripted workload, then a scrape whose every figure moved
/// by exactly what the workload did, read by Prometheus's own text-format parser.
@Suite struct MetricsScrapeTests {
    static let password = "correct horse battery staple"
    static let adminKey = ServiceAPIKey.generate(prefix: ServiceAPIKey.adminPrefix)
    static let serviceKey = ServiceAPIKey.generate()

    let directory = TemporaryDirectory()
    let clock = ManualClock()
    let faults: FaultyStore
    let service: TesseraHTTPService
    let sweeper: SessionSweeper
    let metrics: MetricsEndpoint

    init() async throws {
        let registry = PrometheusCollectorRegistry()
        let factory = MetricsEndpoint.factory(registry: registry)
        self.faults = FaultyStore(try self.directory.sqliteStore())
        // Two attempts per call and a breaker that stays open for the rest of the test, so that
        // the retries and the calls refused are exact counts.
        let store = ResilientStore(
            self.faults,
            configuration: .init(attempts: 2, initialBackoff: .milliseconds(1), deadline: .seconds(10), attemptTimeout: .seconds(5), breakerCooldown: .seconds(600)),
            metrics: StoreMetrics(factory: factory)
        )
        let sessions = SessionManager(
            store: store,
            policy: SessionPolicy(idleTimeout: .seconds(60), absoluteTimeout: .seconds(3600), activityGranularity: .seconds(1)),
            clock: self.clock,
            metrics: SessionMetrics(factory: factory)
        )
        let hasher = BcryptPasswordHasher(cost: 4)
        let login = try await PasswordLogin(sessions: sessions, hasher: hasher, throttle: LoginThrottlePolicy(maxFailuresPerAccount: 3))
        for name in ["alice", "bob"] {
            try await store.insertUser(User(id: "usr_\(name)", username: name, passwordHash: try await hasher.hash(Self.password), createdAt: self.clock.now))
        }
        self.metrics = MetricsEndpoint(registry: registry, sources: [SessionCoreMetrics(cache: nil, store: store, factory: factory)])
        self.service = TesseraHTTPService(
            login: login,
            serviceKey: ServiceAPIKey(key: Self.serviceKey),
            tokens: TokenService(sessions: sessions, keys: await SigningKeys.ephemeral(clock: self.clock)),
            admin: AdminSettings(key: ServiceAPIKey(key: Self.adminKey), metrics: self.metrics, requestMetrics: factory)
        )
        self.sweeper = SessionSweeper(sessions: sessions, logger: .init(label: "tests"))
    }

    @Test func everyCounterMovesByExactlyWhatTheWorkloadDid() async throws {
        let clock = self.clock
        let faults = self.faults
        let sweeper = self.sweeper
        try await serve(self.service.buildRouter()) { url in
            let before = try await Self.scrape(url)

            // Logins: bob twice, alice wrong three times (her limit), then right but throttled.
            var tokens: [String] = []
            for _ in 0..<2 {
                let reply = try await Self.send(.POST, url + "/v1/login", body: #"{"username":"bob","password":"\#(Self.password)"}"#)
                #expect(reply.status == 200)
                tokens.append(try #require(reply.cookie))
            }
            for _ in 0..<3 {
                #expect(try await Self.send(.POST, url + "/v1/login", body: #"{"username":"alice","password":"wrong password"}"#).status == 401)
            }
            #expect(try await Self.send(.POST, url + "/v1/login", body: #"{"username":"alice","password":"\#(Self.password)"}"#).status == 429)
            // A session an application created.
            let created = try await Self.send(
                .POST,
                url + "/v1/sessions",
                headers: [("Authorization", "Bearer \(Self.serviceKey)")],
                body: #"{"subject":"svc"}"#
            )
            #expect(created.status == 201)
            let serviceToken = try #require(created.json["token"] as? String)

            // Validations: 4 good, one without a credential, one unknown token.
            for token in tokens + tokens {
                #expect(try await Self.send(.GET, url + "/v1/session", headers: [("Authorization", "Bearer \(token)")]).status == 200)
            }
            #expect(try await Self.send(.GET, url + "/v1/session").status == 401)
            let unknown = "tss_" + String(repeating: "A", count: 43)
            #expect(try await Self.send(.GET, url + "/v1/session", headers: [("Authorization", "Bearer \(unknown)")]).status == 401)

            // Bob logs out of his second session, then presents it: revoked.
            #expect(try await Self.send(.POST, url + "/v1/logout", headers: [("Authorization", "Bearer \(tokens[1])")]).status == 204)
            #expect(try await Self.send(.GET, url + "/v1/session", headers: [("Authorization", "Bearer \(tokens[1])")]).status == 401)

            // Bob's first session goes idle: refused, and the sweeper records its expiry once
            // the grace has passed (the service's session was validated since, and ends idle too).
            #expect(try await Self.send(.GET, url + "/v1/session", headers: [("Authorization", "Bearer \(serviceToken)")]).status == 200)
            clock.advance(by: .seconds(61))
            #expect(try await Self.send(.GET, url + "/v1/session", headers: [("Authorization", "Bearer \(tokens[0])")]).status == 401)
            clock.advance(by: .seconds(15))
            #expect(try await sweeper.recordExpiries() == 2)

            // The store goes down: six validations answered 503, the breaker opens after five.
            let fresh = try await Self.send(.POST, url + "/v1/sessions", headers: [("Authorization", "Bearer \(Self.serviceKey)")], body: #"{"subject":"svc"}"#)
            let freshToken = try #require(fresh.json["token"] as? String)
            faults.set(.down)
            for _ in 0..<6 {
                let reply = try await Self.send(.GET, url + "/v1/session", headers: [("Authorization", "Bearer \(freshToken)")])
                #expect(reply.status == 503)
            }
            let during = try await Self.scrape(url)
            faults.set(.healthy)
            let after = try await Self.scrape(url)

            func moved(_ series: String) -> Double { (after[series] ?? 0) - (before[series] ?? 0) }
            #expect(moved(#"tessera_logins_total{result="ok"}"#) == 2)
            #expect(moved(#"tessera_logins_total{result="bad_credentials"}"#) == 3)
            #expect(moved(#"tessera_logins_total{result="throttled"}"#) == 1)
            #expect(moved(#"tessera_logins_total{result="error"}"#) == 0)
            #expect(moved(#"tessera_sessions_created_total{credential="session_token"}"#) == 4)
            #expect(moved(#"tessera_sessions_created_total{credential="token_mode"}"#) == 0)
            #expect(moved(#"tessera_session_validations_total{result="ok"}"#) == 4 + 1 + 1)  // bob's four, the service's, and bob's logout
            #expect(moved(#"tessera_session_validations_total{result="missing"}"#) == 1)
            #expect(moved(#"tessera_session_validations_total{result="invalid"}"#) == 1)
            #expect(moved(#"tessera_session_validations_total{result="revoked"}"#) == 1)
            #expect(moved(#"tessera_session_validations_total{result="idle"}"#) == 1)
            #expect(moved(#"tessera_session_validations_total{result="error"}"#) == 6)
            #expect(moved(#"tessera_session_revocations_total{reason="logout"}"#) == 1)
            #expect(moved(#"tessera_session_revocations_total{reason="admin"}"#) == 0)
            #expect(moved(#"tessera_session_expiries_total{reason="idle"}"#) == 2)
            #expect(moved(#"tessera_session_expiries_total{reason="absolute"}"#) == 0)
            #expect(moved("tessera_http_unavailable_responses_total") == 6)
            #expect(moved(#"tessera_http_requests_total{method="GET",route="/v1/session",status="5xx"}"#) == 6)
            #expect(moved(#"tessera_http_requests_total{method="GET",route="/v1/session",status="4xx"}"#) == 4)
            #expect(moved(#"tessera_http_requests_total{method="GET",route="/v1/session",status="2xx"}"#) == 5)
            #expect(moved(#"tessera_http_requests_total{method="POST",route="/v1/login",status="4xx"}"#) == 4)
            #expect(moved(#"tessera_http_request_duration_seconds_count{method="GET",route="/v1/session",status="2xx"}"#) == 5)
            // Five calls failed after their one retry each and opened the breaker; the sixth was
            // refused by the open breaker without reaching the store.
            #expect(moved("tessera_store_retries_total") == 5)
            #expect(moved("tessera_store_unavailable_total") == 6)
            #expect(moved("tessera_store_breaker_openings_total") == 1)
            #expect(during[#"tessera_store_breaker_state{state="open"}"#] == 1)
            #expect(during[#"tessera_store_breaker_state{state="closed"}"#] == 0)
            #expect((after[#"tessera_store_call_duration_seconds_count{operation="sessionByTokenHash"}"#] ?? 0) > 0)
            // No series names a user, a subject, a session or a token.
            let text = try await Self.scrapeText(url)
            let sessionIDs = try #require(created.json["session"] as? [String: Any])["id"] as? String
            for secret in ["usr_alice", "usr_bob", "\"svc\"", "tss_", try #require(sessionIDs)] {
                #expect(!text.contains(secret), "the scrape names \(secret)")
            }
        }
    }

    // MARK: Helpers

    /// The scrape through the admin API, parsed by `scripts/parse-metrics.py` (prometheus_client):
    /// each sample as `name{label="value",…}` (labels sorted) → value.
    static func scrape(_ url: String) async throws -> [String: Double] {
        let text = try await Self.scrapeText(url)
        let parsed = try Self.parse(text)
        return parsed
    }

    static func scrapeText(_ url: String) async throws -> String {
        let reply = try await Self.send(.GET, url + "/v1/admin/metrics", headers: [("Authorization", "Bearer \(Self.adminKey)")])
        guard reply.status == 200, reply.contentType == MetricsEndpoint.contentType else {
            throw HarnessError("scrape: \(reply.status) \(reply.contentType ?? "")")
        }
        return reply.text
    }

    static let parser = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("scripts/parse-metrics.py").path

    static func parse(_ text: String) throws -> [String: Double] {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["python3", Self.parser]
        let input = Pipe()
        let output = Pipe()
        let errors = Pipe()
        process.standardInput = input
        process.standardOutput = output
        process.standardError = errors
        try process.run()
        input.fileHandleForWriting.write(Data(text.utf8))
        try input.fileHandleForWriting.close()
        let data = output.fileHandleForReading.readDataToEndOfFile()
        let problems = String(decoding: errors.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        guard process.terminationStatus == 0 else { throw HarnessError("the Prometheus parser refused the scrape: \(problems)") }
        var samples: [String: Double] = [:]
        for line in String(decoding: data, as: UTF8.self).split(separator: "\n") {
            guard let object = try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any],
                let name = object["name"] as? String, let labels = object["labels"] as? [String: String],
                let value = (object["value"] as? NSNumber)?.doubleValue
            else { throw HarnessError("unexpected parser output: \(line)") }
            let rendered = labels.sorted { $0.key < $1.key }.map { "\($0.key)=\"\($0.value)\"" }.joined(separator: ",")
            samples[labels.isEmpty ? name : "\(name){\(rendered)}"] = value
        }
        return samples
    }

    struct Reply {
        var status: Int
        var text: String
        var contentType: String?
        var cookie: String?
        var json: [String: Any] { (try? JSONSerialization.jsonObject(with: Data(self.text.utf8))) as? [String: Any] ?? [:] }
    }

    static func send(_ method: HTTPMethod, _ url: String, headers: [(String, String)] = [], body: String? = nil) async throws -> Reply {
        var request = HTTPClientRequest(url: url)
        request.method = method
        for (name, value) in headers { request.headers.add(name: name, value: value) }
        if let body {
            request.headers.add(name: "Content-Type", value: "application/json")
            request.body = .bytes(ByteBuffer(string: body))
        }
        let response = try await HTTPClient.shared.execute(request, timeout: .seconds(30))
        let bytes = try await response.body.collect(upTo: 4 << 20)
        // The login's session token, from its cookie, to present as a bearer token.
        let cookie = response.headers["Set-Cookie"].first { $0.hasPrefix("tessera_session=tss_") }
            .flatMap { $0.split(separator: ";").first?.split(separator: "=", maxSplits: 1).last.map(String.init) }
        return Reply(
            status: Int(response.status.code),
            text: String(buffer: bytes),
            contentType: response.headers.first(name: "Content-Type"),
            cookie: cookie
        )
    }
}
