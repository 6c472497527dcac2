import AsyncHTTPClient
import Foundation
import NIOHTTP1
import TesseraTestSupport
import TesseraUpstream
import Testing

/// `tessera serve --upstreams`, as a real process, against the fake site.
@Suite(.heavy) struct ServeUpstreamsTests {
    static let serviceKey = "tsk_" + String(repeating: "u", count: 43)

    @Test func serveKeepsThePoolsOfItsUpstreamsFileAndLogsNoSecret() async throws {
        try await oneAtATime {
            let fake = try await FakeUpstream.start()
            let client = HTTPUpstreamSessionFactory.makeHTTPClient()
            let directory = TemporaryDirectory()
            defer { _ = directory }
            let passwordFile = directory.url.appendingPathComponent("fake-password")
            try Data("wonderland\n".utf8).write(to: passwordFile)
            let file = directory.url.appendingPathComponent("upstreams.yaml")
            try Data(
                """
                upstreams:
                  - name: fake
                    baseURL: \(fake.baseURL)
                    login:
                      path: /login
                      fields:
                        username: { env: FAKE_USER }
                        password: { file: \(passwordFile.path) }
                      success: { cookie: SESSID }
                    keepAlive: { path: /ping }
                    pool: { min: 1, max: 2 }
                """.utf8
            ).write(to: file)

            let server = try await ServerProcess(
                dataDirectory: directory.url.appendingPathComponent("data").path,
                logDirectory: directory.url,
                environment: ["TESSERA_SERVICE_API_KEY": Self.serviceKey, "FAKE_USER": "alice", "TESSERA_LOG_LEVEL": "debug"],
                arguments: ["--upstreams", file.path],
                name: "serve"
            )
            defer { server.kill() }
            #expect(server.standardOutput.contains("Upstream fake: \(fake.baseURL), 1 to 2 sessions, 1 account(s), keep-alive every 20 s"))

            // The keeper logs in up to the pool's minimum by itself.
            var report = ""
            for _ in 0..<200 {
                report = try await UpstreamHTTPTests.request(client, "\(server.baseURL)/v1/upstreams", key: Self.serviceKey).body
                if report.contains(#""state":"idle""#) { break }
                try await Task.sleep(for: .milliseconds(50))
            }
            #expect(report.contains(#""state":"idle""#))
            #expect(fake.stats.logins == 1)

            let proxied = try await UpstreamHTTPTests.request(client, "\(server.baseURL)/v1/upstreams/fake/proxy/api/items/3", key: Self.serviceKey)
            #expect(proxied.status == 200)
            #expect(proxied.body == #"{"user":"alice","item":3}"#)
            let lent = try await UpstreamHTTPTests.request(client, "\(server.baseURL)/v1/upstreams/fake/session", method: .POST, key: Self.serviceKey)
            let cookie = try #require((lent.json?["cookies"] as? [[String: Any]])?.first { $0["name"] as? String == "SESSID" }?["value"] as? String)

            server.terminate()
            #expect(server.process.terminationStatus == 0)
            let logs = server.standardOutput + server.standardError
            #expect(logs.contains("Logged in to the upstream"))
            #expect(!logs.contains("wonderland"))
            #expect(!logs.contains(cookie))
            try await client.shutdown()
            await fake.stop()
        }
    }

    @Test func anUnusableUpstreamsFileStopsServeWithItsProblem() throws {
        let directory = TemporaryDirectory()
        let file = directory.url.appendingPathComponent("upstreams.json")
        try Data(#"{"upstreams": [{"name": "Bad Name", "baseURL": "https://x.example", "login": {"path": "/login"}}]}"#.utf8).write(to: file)
        let (status, output) = try ServerProcess.run([
            "serve", "--data-dir", directory.url.appendingPathComponent("data").path, "--port", "0", "--upstreams", file.path,
        ])
        #expect(status != 0)
        #expect(output.contains("The upstreams file is not usable: upstream 'Bad Name': the name must be 1 to 64 of a-z, 0-9, '-' and '_'"))
    }

    @Test func upstreamCheckLogsInOncePerAccountAndSaysWhatFailed() async throws {
        try await oneAtATime {
            let fake = try await FakeUpstream.start()
            let directory = TemporaryDirectory()
            let file = directory.url.appendingPathComponent("upstreams.yaml")
            try Data(
                """
                upstreams:
                  - name: fake
                    baseURL: \(fake.baseURL)
                    login:
                      path: /login
                      fields: { username: { env: FAKE_USER }, password: { env: FAKE_PASSWORD } }
                      success: { cookie: SESSID }
                    keepAlive: { path: /ping }
                """.utf8
            ).write(to: file)
            let environment = ["FAKE_USER": "alice", "FAKE_PASSWORD": "wonderland"]
            let passed = try await Self.runOffTheCooperativePool(["upstream", "check", file.path], environment: environment)
            #expect(passed.status == 0)
            #expect(passed.output.contains("fake / default: ok, logged in; /ping answered 200 as logged in"))

            fake.refuseLogins = true
            let failed = try await Self.runOffTheCooperativePool(["upstream", "check", file.path], environment: environment)
            #expect(failed.status != 0)
            #expect(failed.output.contains("fake / default: FAILED, login failed: the login answer did not set the cookie SESSID"))
            #expect(!failed.output.contains("wonderland"))
            #expect(fake.stats.logins == 1)
            await fake.stop()
        }
    }

    @Test func doctorSaysInOneSentenceWhatABrowserUpstreamIsMissing() throws {
        let directory = TemporaryDirectory()
        let file = directory.url.appendingPathComponent("upstreams.yaml")
        try Data(
            """
            upstreams:
              - name: portal
                kind: browser
                baseURL: https://portal.example.com
                login: { path: /login, steps: [{ goto: /login }], success: { selector: "#logout" } }
                browser: { chromium: /nonexistent/chromium, chromedriver: /nonexistent/chromedriver }
            """.utf8
        ).write(to: file)
        let (status, output) = try ServerProcess.run([
            "doctor", "--data-dir", directory.url.appendingPathComponent("data").path, "--upstreams", file.path,
        ])
        #expect(status != 0)
        #expect(
            output.contains(
                "The browser upstream 'portal' cannot log in: Chromium (/nonexistent/chromium) and chromedriver "
                    + "(/nonexistent/chromedriver) not found; "
                    + "install Debian's chromium and chromium-driver packages."
            ),
            "\(output)"
        )
    }

    /// Runs `tessera` to completion on a thread of its own, so that the waiting does not hold a
    /// thread the fake site's handlers need.
    static func runOffTheCooperativePool(_ arguments: [String], environment: [String: String]) async throws -> (status: Int32, output: String) {
        try await withCheckedThrowingContinuation { continuation in
            Thread.detachNewThread {
                continuation.resume(with: Result { try ServerProcess.run(arguments, environment: environment) })
            }
        }
    }

}
