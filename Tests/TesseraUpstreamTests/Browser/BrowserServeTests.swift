import AsyncHTTPClient
import Foundation
import NIOHTTP1
import Tessera
import TesseraHummingbird
import TesseraTestSupport
import TesseraUpstream
import TesseraWebDriver
import Testing

/// The browser kind over HTTP: proxied requests with a browser's cookies, the actions API,
/// `tessera serve` and `tessera upstream check` as real processes.
// One test at a time, each heavy on its own (not the whole suite): a timed test elsewhere waits
// for the browser test running, not for every one of them.
@Suite(.serialized, .enabled(if: browsersAvailable)) struct BrowserServeTests {
    static let serviceKey = "tsk_" + String(repeating: "b", count: 43)

    @Test(.heavy) func oneThousandProxiedRequestsWithABrowsersCookiesMeetNoExpiry() async throws {
        try await BrowserPoolFixture.with(configure: { browserConfiguration(baseURL: $0, pool: .init(min: 2, max: 3)) }) { f in
            f.site.randomLifetime = 10...60
            let directory = TemporaryDirectory()
            let sessions = SessionManager(store: try directory.sqliteStore(), clock: f.clock)
            let login = try await PasswordLogin(sessions: sessions, hasher: BcryptPasswordHasher(cost: 4))
            let service = TesseraHTTPService(login: login, serviceKey: ServiceAPIKey(key: UpstreamHTTPTests.serviceKey), upstreams: UpstreamPools(pools: [f.pool]))
            try await serve(service.buildRouter()) { baseURL in
                var failures: [String] = []
                for round in 0..<50 {
                    let answers = try await withThrowingTaskGroup(of: (Int, UpstreamHTTPTests.Answer).self) { group in
                        for index in 0..<20 {
                            let item = round * 20 + index
                            group.addTask { (item, try await UpstreamHTTPTests.request(f.client, "\(baseURL)/v1/upstreams/portal/proxy/api/items/\(item)")) }
                        }
                        return try await group.reduce(into: [(Int, UpstreamHTTPTests.Answer)]()) { $0.append($1) }
                    }
                    for (item, answer) in answers where answer.status != 200 || answer.body != #"{"user":"alice","item":\#(item)}"# {
                        failures.append("item \(item): \(answer.status) \(answer.body.prefix(120))")
                    }
                    f.clock.advance(by: .seconds(3))
                    await f.maintain()
                }
                let snapshot = await f.pool.snapshot()
                let site = f.site.stats
                print(
                    """
                    1,000 proxied requests with browser cookies at concurrency 20: \(1000 - failures.count) answered 200 with their item
                      site: \(site.logins) browser logins, \(site.expiredAnswers) answers to ended sessions, \(site.randomExpiries) random expiries
                      pool: retirements \(snapshot.counters.retirements.sorted { $0.key < $1.key }), \(snapshot.counters.expiredHidden) hidden
                    """
                )
                #expect(failures.isEmpty, "\(failures.prefix(5))")
                #expect(site.itemsServed >= 1000)
                #expect(site.randomExpiries > 0)
                #expect(snapshot.counters.expiredHidden > 0)
                #expect(site.logins > 3)
            }
        }
    }

    @Test(.heavy) func serveRunsBrowserActionsAndLeavesNoBrowserBehindAtShutdown() async throws {
        try await oneAtATime {
            let site = try await FakeBrowserSite.start()
            let client = HTTPUpstreamSessionFactory.makeHTTPClient()
            let directory = TemporaryDirectory()
            let file = directory.url.appendingPathComponent("upstreams.yaml")
            try Data(Self.upstreamsFile(baseURL: site.baseURL).utf8).write(to: file)
            let server = try await ServerProcess(
                dataDirectory: directory.url.appendingPathComponent("data").path,
                logDirectory: directory.url,
                environment: ["TESSERA_SERVICE_API_KEY": Self.serviceKey, "FAKE_USER": "alice", "FAKE_PASSWORD": "wonderland"],
                arguments: ["--upstreams", file.path],
                name: "serve-browser"
            )
            defer { server.kill() }
            #expect(server.standardOutput.contains("Upstream portal: \(site.baseURL), 1 to 2 browser sessions"))
            let marker = "tessera-\(server.process.processIdentifier)-"
            try await waitUntil(timeout: .seconds(60), "the keeper has logged a browser in") { site.stats.logins == 1 }

            let actions = """
                {"idempotent": true, "steps": [{"goto": "/items/7"}, {"waitFor": {"selector": "#price"}}, {"read": {"text": "#price"}, "as": "price"}]}
                """
            let performed = try await Self.post(client, "\(server.baseURL)/v1/upstreams/portal/actions", actions)
            #expect(performed.status == 200)
            #expect(performed.body.contains(#""reads":[{"as":"price","step":2,"truncated":false,"value":"item 7 for alice"}]"#), "\(performed.body)")
            #expect(performed.body.contains(#""replayed":false"#))

            let lent = try await Self.post(client, "\(server.baseURL)/v1/upstreams/portal/session", nil)
            #expect(lent.status == 200)
            #expect(lent.body.contains(#""name":"SESSID""#))
            // Given back, the session serves the proxied request (no second browser needs to log in).
            let lease = try #require(lent.json?["lease"] as? String)
            let givenBack = try await UpstreamHTTPTests.request(
                client, "\(server.baseURL)/v1/upstreams/portal/session/\(lease)", method: .DELETE, key: Self.serviceKey)
            #expect(givenBack.status == 204)
            let proxied = try await UpstreamHTTPTests.request(client, "\(server.baseURL)/v1/upstreams/portal/proxy/api/items/3", key: Self.serviceKey)
            #expect(proxied.body == #"{"user":"alice","item":3}"#)

            // Steps a client may not send, and actions of an upstream that is not a browser.
            for (body, code) in [
                (##"{"steps": [{"fill": {"selector": "#q", "env": "FAKE_PASSWORD"}}]}"##, "REQ_1003"),
                (#"{"steps": [{"goto": "/a/../../etc"}]}"#, "REQ_1003"),
                (##"{"steps": [{"goto": "/", "click": "#x"}]}"##, "REQ_1003"),
                (#"{"steps": []}"#, "REQ_1003"),
                (#"{"steps": "goto"}"#, "REQ_1001"),
            ] {
                let refused = try await Self.post(client, "\(server.baseURL)/v1/upstreams/portal/actions", body)
                #expect(refused.status == 400 && refused.errorCode == code, "\(body): \(refused.status) \(refused.body)")
            }
            let notBrowser = try await Self.post(client, "\(server.baseURL)/v1/upstreams/plain/actions", #"{"steps": [{"goto": "/"}]}"#)
            #expect(notBrowser.status == 409 && notBrowser.errorCode == "UPSTREAM_NOT_BROWSER")
            let missing = try await Self.post(client, "\(server.baseURL)/v1/upstreams/portal/actions", ##"{"steps": [{"click": "#nothing-here"}]}"##)
            #expect(missing.status == 422 && missing.errorCode == "UPSTREAM_ACTION_FAILED")
            #expect(missing.body.contains("Step 1 (click)"))

            #expect(!MarkedProcess.processes(markedWithPrefix: marker).isEmpty)
            server.terminate()
            #expect(server.process.terminationStatus == 0)
            #expect(MarkedProcess.processes(markedWithPrefix: marker).isEmpty)
            let logs = server.standardOutput + server.standardError
            #expect(!logs.contains("wonderland"))
            try await client.shutdown()
            await site.stop()
        }
    }

    @Test(.heavy) func upstreamCheckLogsInInABrowserAndSaysWhatFailed() async throws {
        try await oneAtATime {
            let site = try await FakeBrowserSite.start()
            let directory = TemporaryDirectory()
            let file = directory.url.appendingPathComponent("upstreams.yaml")
            try Data(Self.upstreamsFile(baseURL: site.baseURL, plain: false).utf8).write(to: file)
            let passed = try await ServeUpstreamsTests.runOffTheCooperativePool(
                ["upstream", "check", file.path],
                environment: ["FAKE_USER": "alice", "FAKE_PASSWORD": "wonderland"]
            )
            #expect(passed.status == 0, "\(passed.output)")
            #expect(passed.output.contains("portal / default: ok, logged in in the browser in"))
            #expect(passed.output.contains("/home showed as logged in"))
            let failed = try await ServeUpstreamsTests.runOffTheCooperativePool(
                ["upstream", "check", file.path],
                environment: ["FAKE_USER": "alice", "FAKE_PASSWORD": "not-the-password"]
            )
            #expect(failed.status != 0)
            #expect(failed.output.contains("portal / default: FAILED, login failed: the page after the login did not show an element matching '#user'"))
            #expect(!failed.output.contains("not-the-password"))
            #expect(site.stats.logins == 1)
            #expect(site.stats.refusedLogins == 1)
            await site.stop()
        }
    }

    static func upstreamsFile(baseURL: String, plain: Bool = true) -> String {
        var text = """
            upstreams:
              - name: portal
                kind: browser
                baseURL: \(baseURL)
                login:
                  path: /login
                  fields:
                    username: { env: FAKE_USER }
                    password: { env: FAKE_PASSWORD }
                  steps:
                    - goto: /login
                    - waitFor: { selector: "#username", timeout: 10 }
                    - fill: { selector: "#username", field: username }
                    - fill: { selector: "#password", field: password }
                    - click: "#sign-in"
                  success: { selector: "#user" }
                keepAlive: { path: /home, waitFor: { selector: "#user" } }
                pool: { min: 1, max: 2 }
                borrowTimeout: 30
                browser: { commandTimeout: 30 }

            """
        if plain {
            text += """
                  - name: plain
                    baseURL: \(baseURL)
                    login: { path: /api/login }
                    pool: { min: 0, max: 1 }

                """
        }
        return text
    }

    static func post(_ client: HTTPClient, _ url: String, _ body: String?) async throws -> UpstreamHTTPTests.Answer {
        try await UpstreamHTTPTests.request(
            client,
            url,
            method: .POST,
            key: Self.serviceKey,
            body: body,
            headers: body == nil ? [] : [("content-type", "application/json")]
        )
    }
}
