import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1
import Testing
import TesseraTestSupport

/// The real `tessera` executable over real HTTP on loopback: nothing acknowledged is lost when
/// the process is killed.
@Suite(.serialized, .heavy) struct RestartTests {
    static let environment = ["TESSERA_BCRYPT_COST": "4", "TESSERA_MAX_FAILED_LOGINS": "1000", "TESSERA_LOG_LEVEL": "warning"]

    struct Reply {
        var status: Int
        var headers: [(String, String)]
        var json: [String: Any]

        func header(_ name: String) -> String? { self.headers.first { $0.0.lowercased() == name.lowercased() }?.1 }
    }

    func send(_ method: HTTPMethod, _ url: String, headers: [(String, String)] = [], body: String? = nil) async throws -> Reply {
        var request = HTTPClientRequest(url: url)
        request.method = method
        for (name, value) in headers { request.headers.add(name: name, value: value) }
        if let body {
            request.headers.add(name: "Content-Type", value: "application/json")
            request.body = .bytes(ByteBuffer(string: body))
        }
        let response = try await HTTPClient.shared.execute(request, timeout: .seconds(30))
        let bytes = try await response.body.collect(upTo: 1 << 20)
        let json = (try? JSONSerialization.jsonObject(with: Data(bytes.readableBytesView))) as? [String: Any] ?? [:]
        return Reply(status: Int(response.status.code), headers: response.headers.map { ($0.name, $0.value) }, json: json)
    }

    @Test func hundredSessionsSurviveSIGKILLAndARevokedOneStaysRevoked() async throws {
        let directory = TemporaryDirectory()
        let data = directory.url.appendingPathComponent("data").path
        let added = try ServerProcess.run(["users", "add", "alice", "--data-dir", data], input: "s3cret-pass\n", environment: Self.environment)
        #expect(added.status == 0, "\(added.output)")

        let first = try await ServerProcess(dataDirectory: data, logDirectory: directory.url, environment: Self.environment, name: "first")
        #expect(first.standardOutput.contains("Tessera data directory: \(data)"))

        // 100 logins at once, each then stores its own data.
        struct Held: Sendable {
            var index: Int
            var cookie: String
            var csrf: String
            var id: String
        }
        let firstURL = first.baseURL
        let held = try await withThrowingTaskGroup(of: Held.self) { group in
            for index in 0..<100 {
                group.addTask {
                    let login = try await self.send(
                        .POST,
                        firstURL + "/v1/login",
                        body: #"{"username":"alice","password":"s3cret-pass","label":"device-\#(index)"}"#
                    )
                    guard login.status == 200, let setCookie = login.header("Set-Cookie"),
                        let cookie = setCookie.split(separator: ";").first.map(String.init),
                        let csrf = login.json["csrfToken"] as? String,
                        let id = (login.json["session"] as? [String: Any])?["id"] as? String
                    else { throw HarnessError("login \(index) failed with \(login.status)") }
                    let patch = try await self.send(
                        .PATCH,
                        firstURL + "/v1/session/data",
                        headers: [("Cookie", cookie), ("X-CSRF-Token", csrf), ("If-Match", "\"1\"")],
                        body: #"{"n":\#(index)}"#
                    )
                    guard patch.status == 200 else { throw HarnessError("data \(index) failed with \(patch.status)") }
                    return Held(index: index, cookie: cookie, csrf: csrf, id: id)
                }
            }
            return try await group.reduce(into: [Held]()) { $0.append($1) }
        }
        #expect(held.count == 100)
        #expect(Set(held.map(\.id)).count == 100)

        let revoked = held[0]
        let logout = try await self.send(.POST, first.baseURL + "/v1/logout", headers: [("Cookie", revoked.cookie), ("X-CSRF-Token", revoked.csrf)])
        #expect(logout.status == 204)

        first.kill()
        #expect(first.process.terminationReason == .uncaughtSignal)

        let second = try await ServerProcess(dataDirectory: data, logDirectory: directory.url, environment: Self.environment, name: "second")
        defer { second.terminate() }
        // The key was generated once, by the first start.
        #expect(!second.standardOutput.contains("Generated the service API key"))

        for session in held.dropFirst() {
            let whoami = try await self.send(.GET, second.baseURL + "/v1/session", headers: [("Cookie", session.cookie)])
            #expect(whoami.status == 200, "session \(session.index) lost")
            let body = whoami.json["session"] as? [String: Any]
            #expect(body?["id"] as? String == session.id)
            #expect((body?["data"] as? [String: Any])?["n"] as? Int == session.index)
            #expect(body?["dataVersion"] as? Int == 2)
            #expect((body?["metadata"] as? [String: Any])?["label"] as? String == "device-\(session.index)")
        }
        let dead = try await self.send(.GET, second.baseURL + "/v1/session", headers: [("Cookie", revoked.cookie)])
        #expect(dead.status == 401)
        #expect((dead.json["error"] as? [String: Any])?["reason"] as? String == "revoked")

        // Nothing secret reached the logs.
        for token in held.map(\.cookie) {
            let secret = String(token.split(separator: "=", maxSplits: 1).last ?? "")
            #expect(!first.standardError.contains(secret) && !second.standardError.contains(secret))
        }
    }

    // Asserts a wall-clock bound (a revocation seen within 1 s): runs while no other heavy
    // suite loads the cores.
    @Test(.timed) func commandLineManagesUsersAndSessions() async throws {
        let directory = TemporaryDirectory()
        let data = directory.url.appendingPathComponent("data").path
        #expect(try ServerProcess.run(["users", "add", "carol", "--data-dir", data], input: "pw-1\n", environment: Self.environment).status == 0)
        let duplicate = try ServerProcess.run(["users", "add", "Carol", "--data-dir", data], input: "pw-2\n", environment: Self.environment)
        #expect(duplicate.status != 0 && duplicate.output.contains("already exists"))
        let noPassword = try ServerProcess.run(["users", "add", "dave", "--data-dir", data], environment: Self.environment)
        #expect(noPassword.status != 0 && noPassword.output.contains("No password on standard input"))
        #expect(try ServerProcess.run(["users", "list", "--data-dir", data]).output.contains("carol"))

        let server = try await ServerProcess(dataDirectory: data, logDirectory: directory.url, environment: Self.environment, name: "cli")
        let login = try await self.send(.POST, server.baseURL + "/v1/login", body: #"{"username":"carol","password":"pw-1"}"#)
        #expect(login.status == 200)
        let cookie = try #require(login.header("Set-Cookie")?.split(separator: ";").first.map(String.init))
        let id = try #require((login.json["session"] as? [String: Any])?["id"] as? String)

        let listed = try ServerProcess.run(["sessions", "list", "--user", "carol", "--data-dir", data])
        #expect(listed.status == 0 && listed.output.contains(id))
        // Validated twice, so the service holds it in its cache.
        for _ in 0..<2 {
            #expect(try await self.send(.GET, server.baseURL + "/v1/session", headers: [("Cookie", cookie)]).status == 200)
        }
        let revoked = try ServerProcess.run(["sessions", "revoke", id, "--data-dir", data])
        #expect(revoked.status == 0, "\(revoked.output)")
        // Revoked from another process: the running service refuses the session within its
        // cache's staleness bound (1 s), through the store's change feed.
        // The bound is on when a request is sent, not on when a loaded machine answers it.
        let revokedAt = ContinuousClock.now
        var sentAfter = Duration.zero
        var after = try await self.send(.GET, server.baseURL + "/v1/session", headers: [("Cookie", cookie)])
        while after.status == 200, ContinuousClock.now - revokedAt < .seconds(5) {
            #expect(sentAfter < .seconds(1), "a request sent \(sentAfter) after the revocation was accepted")
            try await Task.sleep(for: .milliseconds(20))
            sentAfter = ContinuousClock.now - revokedAt
            after = try await self.send(.GET, server.baseURL + "/v1/session", headers: [("Cookie", cookie)])
        }
        #expect(after.status == 401)
        #expect((after.json["error"] as? [String: Any])?["reason"] as? String == "revoked")
        #expect(try ServerProcess.run(["sessions", "revoke", id, "--data-dir", data]).status != 0)

        // SIGTERM shuts the service down gracefully.
        server.terminate()
        #expect(server.process.terminationReason == .exit)
        #expect(server.process.terminationStatus == 0)
    }

    @Test func keysRotateWhileServingAndTokensOutliveARestart() async throws {
        let directory = TemporaryDirectory()
        let data = directory.url.appendingPathComponent("data").path
        #expect(try ServerProcess.run(["users", "add", "erin", "--data-dir", data], input: "pw-1\n", environment: Self.environment).status == 0)
        let server = try await ServerProcess(dataDirectory: data, logDirectory: directory.url, environment: Self.environment, name: "keys")
        let keysFile = directory.url.appendingPathComponent("data/signing-keys.json").path
        #expect(try FileManager.default.attributesOfItem(atPath: keysFile)[.posixPermissions] as? Int == 0o600)

        let login = try await self.send(.POST, server.baseURL + "/v1/login", body: #"{"username":"erin","password":"pw-1","mode":"token"}"#)
        #expect(login.status == 200 && login.header("Set-Cookie") == nil)
        let oldAccess = try #require(login.json["accessToken"] as? String)
        let refreshToken = try #require(login.json["refreshToken"] as? String)
        let oldKey = try #require(try Self.kid(of: oldAccess))
        #expect(try await self.publishedKeys(server) == [oldKey])

        let rotated = try ServerProcess.run(["keys", "rotate", "--data-dir", data])
        #expect(rotated.status == 0, "\(rotated.output)")
        // The service rereads the file every 5 seconds.
        let rotatedAt = ContinuousClock.now
        var published = try await self.publishedKeys(server)
        while published.count < 2, ContinuousClock.now - rotatedAt < .seconds(10) {
            try await Task.sleep(for: .milliseconds(100))
            published = try await self.publishedKeys(server)
        }
        #expect(published.count == 2 && published.first == oldKey)
        let newKey = try #require(published.last)
        let listed = try ServerProcess.run(["keys", "list", "--data-dir", data])
        #expect(listed.output.contains(oldKey) && listed.output.contains(newKey) && listed.output.contains("retired"))

        let second = try await self.send(.POST, server.baseURL + "/v1/login", body: #"{"username":"erin","password":"pw-1","mode":"token"}"#)
        #expect(try Self.kid(of: try #require(second.json["accessToken"] as? String)) == newKey)
        #expect(try await self.send(.GET, server.baseURL + "/v1/session", headers: [("Authorization", "Bearer \(oldAccess)")]).status == 200)

        // After a restart, the old token still verifies and the refresh token still refreshes.
        server.kill()
        let restarted = try await ServerProcess(dataDirectory: data, logDirectory: directory.url, environment: Self.environment, name: "keys2")
        #expect(try await self.send(.GET, restarted.baseURL + "/v1/session", headers: [("Authorization", "Bearer \(oldAccess)")]).status == 200)
        let refreshed = try await self.send(.POST, restarted.baseURL + "/v1/token/refresh", body: #"{"refreshToken":"\#(refreshToken)"}"#)
        #expect(refreshed.status == 200)
        #expect(try Self.kid(of: try #require(refreshed.json["accessToken"] as? String)) == newKey)
        restarted.terminate()
    }

    func publishedKeys(_ server: ServerProcess) async throws -> [String] {
        let reply = try await self.send(.GET, server.baseURL + "/.well-known/jwks.json")
        return (reply.json["keys"] as? [[String: Any]] ?? []).compactMap { $0["kid"] as? String }
    }

    static func kid(of token: String) throws -> String? {
        let header = try #require(token.split(separator: ".").first)
        var base64 = header.replacingOccurrences(of: "-", with: "+").replacingOccurrences(of: "_", with: "/")
        base64 += String(repeating: "=", count: (4 - base64.count % 4) % 4)
        let object = try JSONSerialization.jsonObject(with: try #require(Data(base64Encoded: base64))) as? [String: Any]
        return object?["kid"] as? String
    }

    @Test func badConfigurationStopsWithASentence() throws {
        let badDuration = try ServerProcess.run(["serve", "--idle-timeout", "soon"])
        #expect(badDuration.status != 0)
        #expect(badDuration.output.contains("--idle-timeout (or TESSERA_IDLE_TIMEOUT) must be a duration"))
        let directory = TemporaryDirectory()
        let file = directory.url.appendingPathComponent("file").path
        _ = FileManager.default.createFile(atPath: file, contents: Data())
        let notADirectory = try ServerProcess.run(["serve", "--data-dir", file, "--port", "0"])
        #expect(notADirectory.status != 0)
        #expect(notADirectory.output.contains("is a file, not a directory"))
        #expect(!notADirectory.output.contains("Fatal error"))

        let unreachable = try ServerProcess.run(["serve", "--data-dir", directory.path, "--port", "0", "--store", "postgres://u:pw@127.0.0.1:1/db"])
        #expect(unreachable.status != 0)
        #expect(unreachable.output.contains("Cannot use the PostgreSQL store postgres://u:•••@127.0.0.1:1/db: connection refused."))
        let malformedURL = try ServerProcess.run(["serve", "--data-dir", directory.path, "--port", "0", "--store", "postgres://nohost"])
        #expect(malformedURL.status != 0)
        #expect(malformedURL.output.contains("The PostgreSQL URL cannot be used"))
    }

    @Test func doctorReportsProblemsInPlainSentencesAndNeverShowsSecrets() throws {
        let directory = TemporaryDirectory()
        let data = directory.url.appendingPathComponent("data").path
        #expect(try ServerProcess.run(["users", "add", "gus", "--data-dir", data], input: "pw\n", environment: Self.environment).status == 0)
        let secret = "tsk_" + String(repeating: "s3cr3t", count: 6)
        let adminKey = "tak_" + String(repeating: "adm1n", count: 9)
        let healthy = try ServerProcess.run(
            ["doctor", "--data-dir", data],
            environment: ["TESSERA_SERVICE_API_KEY": secret, "TESSERA_ADMIN_API_KEY": adminKey]
        )
        #expect(healthy.status == 0, "\(healthy.output)")
        #expect(healthy.output.contains("Migrations: 6 of 6 applied"))
        #expect(healthy.output.contains("TESSERA_SERVICE_API_KEY: set (secret, not shown)"))
        #expect(!healthy.output.contains(secret))
        #expect(healthy.output.contains("TESSERA_ADMIN_API_KEY: set (secret, not shown)") && !healthy.output.contains(adminKey))

        let password = "hunter2-not-shown"
        let unreachable = try ServerProcess.run(
            ["doctor", "--data-dir", data, "--store", "postgres://tessera:\(password)@127.0.0.1:1/tessera"],
            environment: [:]
        )
        #expect(unreachable.status != 0)
        #expect(unreachable.output.contains("cannot be reached: connection refused."))
        #expect(!unreachable.output.contains(password))

        let malformed = try ServerProcess.run(["doctor", "--data-dir", data, "--store", "mysql://x"])
        #expect(malformed.status != 0)
        #expect(malformed.output.contains("The PostgreSQL URL cannot be used"))
    }
}
