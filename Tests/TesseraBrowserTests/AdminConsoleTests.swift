import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1
import TesseraTestSupport
import TesseraWebDriver
import Testing

/// The admin console at `/admin`, in headless Chromium, against a real `tessera serve` on a
/// PostgreSQL server of the test's own (so that an outage is a real one): it signs an
/// administrator in, counts the active sessions, finds a user, revokes one session and then all
/// (the store agrees), refuses a forged action, and shows the outage. Screenshots go to
/// `docs/images/` with `TESSERA_UPDATE_SCREENSHOTS=1`, to the test's directory otherwise.
@Suite(
    .heavy, .serialized, .timeLimit(.minutes(5)),
    .enabled(if: Browser.available, "needs Debian's chromium and chromium-driver"),
    .enabled(if: StoreKind.available.contains(.postgres), "needs PostgreSQL (TESSERA_TEST_POSTGRES_URL)")
)
struct AdminConsoleTests {
    static let password = "correct horse battery staple"
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    /// A PostgreSQL server of this test's own, on its own port and directory.
    struct Postgres {
        static let port = 25451
        static let directory = "/tmp/tessera-test-postgres-\(Self.port)"
        static let url = "postgres://tessera:tessera@127.0.0.1:\(Self.port)/tessera_test"

        static func control(_ command: String) throws {
            let status = try spawnAndWait(
                "/bin/bash",
                [AdminConsoleTests.root.appendingPathComponent("scripts/postgres-test-server.sh").path, command],
                environment: ["TESSERA_PG_DIR": Self.directory, "TESSERA_PG_PORT": String(Self.port)]
            )
            guard status == 0 else { throw HarnessError("postgres-test-server.sh \(command) exited with \(status)") }
        }

        /// The one value `sql` answers, as psql prints it.
        static func value(_ sql: String) throws -> String {
            let process = Process()
            process.executableURL = URL(fileURLWithPath: "/usr/bin/psql")
            process.arguments = [Self.url, "-t", "-A", "-q", "-c", sql]
            let output = Pipe()
            process.standardOutput = output
            try process.run()
            let data = output.fileHandleForReading.readDataToEndOfFile()
            process.waitUntilExit()
            return String(decoding: data, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
        }
    }

    var screenshots: URL {
        ProcessInfo.processInfo.environment["TESSERA_UPDATE_SCREENSHOTS"] == "1"
            ? Self.root.appendingPathComponent("docs/images") : self.directory.url
    }

    let directory = TemporaryDirectory()

    @Test func anAdministratorFindsAUserRevokesOneSessionThenAllAndSeesAnOutage() async throws {
        try Postgres.control("start")
        defer { try? Postgres.control("stop") }
        let environment = ["TESSERA_STORE": Postgres.url, "TESSERA_BCRYPT_COST": "4", "TESSERA_LOG_LEVEL": "info"]
        for (name, admin) in [("root", true), ("alice", false), ("bob", false)] {
            let added = try ServerProcess.run(
                ["users", "add", name] + (admin ? ["--admin"] : []) + ["--data-dir", self.directory.path],
                input: Self.password + "\n",
                environment: environment
            )
            guard added.status == 0 else { throw HarnessError("users add \(name): \(added.output)") }
        }
        let server = try await ServerProcess(dataDirectory: self.directory.path, logDirectory: self.directory.url, environment: environment, name: "console")
        defer { server.terminate() }
        let alice = try Postgres.value("SELECT id FROM users WHERE username = 'alice'")

        // 25 sessions: alice signs in 12 times, bob 5, and an application creates 8.
        for (name, count) in [("alice", 12), ("bob", 5)] {
            for _ in 0..<count {
                let status = try await Self.post(server.baseURL + "/v1/login", #"{"username":"\#(name)","password":"\#(Self.password)"}"#)
                #expect(status == 200)
            }
        }
        for index in 0..<8 {
            let status = try await Self.post(
                server.baseURL + "/v1/sessions",
                #"{"subject":"app-user-\#(index)"}"#,
                headers: ["Authorization": "Bearer \(try self.directory.serviceKey())"]
            )
            #expect(status == 201)
        }

        let browser = try await Browser()
        try await running({
            let session = browser.session
            try await session.setWindowSize(width: 1280, height: 1100)
            try await session.navigate(to: server.baseURL + "/admin")
            try await self.waitFor(session, "the login form", "return !document.getElementById('login').hidden")
            // A user who is no administrator is turned away.
            try await self.signIn(session, "alice")
            try await self.waitFor(session, "the refusal", "return document.getElementById('login-error').textContent.includes('not an administrator')")
            #expect(try Postgres.value("SELECT count(*) FROM sessions WHERE user_id = '\(alice)' AND revoked_at IS NULL") == "12")

            try await self.signIn(session, "root")
            // The 25 and the console's own.
            try await self.waitFor(session, "26 active sessions", "return document.getElementById('active-sessions').textContent === '26'")
            #expect(try Postgres.value("SELECT count(*) FROM sessions WHERE revoked_at IS NULL AND idle_expires_at > (extract(epoch FROM now()) * 1000)") == "26")
            try await self.waitFor(session, "the store's state", "return document.getElementById('store-status').textContent.includes('Store: up')")
            try await self.waitFor(session, "login outcomes", "return document.querySelectorAll('#logins tr').length >= 3")
            try await self.save(session, "admin-overview.png")

            // Find alice and her 12 sessions.
            try await session.findElement("#user-prefix").sendKeys("ali")
            try await session.findElement("#find-user").click()
            try await self.waitFor(session, "alice in the list", "return document.querySelector('#users button[data-user-id]') !== null")
            try await session.findElement("#users button[data-user-id='\(alice)']").click()
            try await self.waitFor(session, "her sessions", "return document.querySelectorAll('#user-sessions tbody tr').length === 12")

            // Revoke one.
            let first = try #require(try await session.execute("return document.querySelector('#user-sessions tbody tr').dataset.sessionId").string)
            try await session.findElement("#user-sessions button[data-session-id='\(first)']").click()
            try await self.waitFor(session, "11 sessions", "return document.querySelectorAll('#user-sessions tbody tr').length === 11")
            #expect(try Postgres.value("SELECT revocation_reason FROM sessions WHERE id = '\(first)'") == "admin")
            #expect(try Postgres.value("SELECT count(*) FROM sessions WHERE user_id = '\(alice)' AND revoked_at IS NULL") == "11")

            // A forged action (the console's cookie, no CSRF token of its session) changes nothing.
            let forged = try await session.execute(
                """
                return fetch('/v1/admin/users/' + arguments[0] + '/sessions', {method: 'DELETE', credentials: 'include',
                    headers: {'X-CSRF-Token': 'forged'}}).then(async (r) => [r.status, (await r.json()).error.code])
                """,
                [.string(alice)]
            )
            #expect(forged.array?.first?.number == 403)
            #expect(forged.array?.last?.string == "AUTH_1008")
            #expect(try Postgres.value("SELECT count(*) FROM sessions WHERE user_id = '\(alice)' AND revoked_at IS NULL") == "11")

            // Revoke all: the console reports the count and the request's correlation id, and the
            // service's log names the same id.
            try await session.findElement("#revoke-all").click()
            try await self.waitFor(session, "no sessions", "return document.querySelectorAll('#user-sessions tbody tr').length === 0")
            #expect(try Postgres.value("SELECT count(*) FROM sessions WHERE user_id = '\(alice)' AND revoked_at IS NULL") == "0")
            let status = try await session.findElement("#action-status").text()
            #expect(status.contains("Revoked all sessions of alice: 11"), "\(status)")
            let correlation = try #require(status.split(separator: " ").last.map { String($0.dropLast()) })
            try await waitUntil("the log line") {
                server.standardError.split(separator: "\n").contains { $0.contains("Admin revoked a user's sessions") && $0.contains(correlation) }
            }
            try await self.save(session, "admin-user.png")

            // The store goes away: the console says so; it comes back: so does the console.
            try Postgres.control("pause")
            try await self.waitFor(session, "the outage", "return document.getElementById('store-status').textContent.includes('Store unavailable')")
            #expect(try await session.findElement("#store-status").attribute("class")?.contains("down") == true)
            #expect(try await session.findElement("#health").text().contains("unavailable (STORE_UNAVAILABLE)"))
            try await self.save(session, "admin-outage.png")
            try Postgres.control("resume")
            try await self.waitFor(session, "the store back", "return document.getElementById('store-status').textContent.includes('Store: up')")
        }) {
            await browser.close()
        }
        // The page's policy allows this origin alone.
        let page = try await Self.get(server.baseURL + "/admin")
        #expect(page.csp?.contains("script-src 'self'") == true && page.csp?.contains("frame-ancestors 'none'") == true)
        #expect(page.body.contains("/admin/console.js") && !page.body.contains("<script>"))
    }

    // MARK: Helpers

    func signIn(_ session: WebDriverSession, _ username: String) async throws {
        let name = try await session.findElement("#username")
        try await name.clear()
        try await name.sendKeys(username)
        try await session.findElement("#password").sendKeys(Self.password)
        try await session.findElement("#sign-in").click()
    }

    func waitFor(_ session: WebDriverSession, _ what: String, _ script: String) async throws {
        try await waitUntil(timeout: .seconds(30), what) { try await session.execute(script).bool == true }
    }

    func save(_ session: WebDriverSession, _ name: String) async throws {
        let png = try await session.screenshot()
        #expect(png.starts(with: [0x89, 0x50, 0x4E, 0x47]), "not a PNG")
        try FileManager.default.createDirectory(at: self.screenshots, withIntermediateDirectories: true)
        try Data(png).write(to: self.screenshots.appendingPathComponent(name))
    }

    static func post(_ url: String, _ body: String, headers: [String: String] = [:]) async throws -> Int {
        var request = HTTPClientRequest(url: url)
        request.method = .POST
        request.headers.add(name: "Content-Type", value: "application/json")
        for (name, value) in headers { request.headers.add(name: name, value: value) }
        request.body = .bytes(ByteBuffer(string: body))
        let response = try await HTTPClient.shared.execute(request, timeout: .seconds(30))
        _ = try await response.body.collect(upTo: 1 << 20)
        return Int(response.status.code)
    }

    static func get(_ url: String) async throws -> (body: String, csp: String?) {
        let response = try await HTTPClient.shared.execute(HTTPClientRequest(url: url), timeout: .seconds(30))
        let body = try await response.body.collect(upTo: 1 << 20)
        return (String(buffer: body), response.headers.first(name: "Content-Security-Policy"))
    }
}
