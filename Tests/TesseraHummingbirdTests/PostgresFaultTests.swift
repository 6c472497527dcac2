import AsyncHTTPClient
import Foundation
import Tessera
import NIOCore
import NIOHTTP1
import Testing
import TesseraTestSupport

/// The real `tessera` process on a real PostgreSQL server of this suite's own, which the tests
/// stop, start and disturb.
@Suite(.serialized, .enabled(if: StoreKind.available.contains(.postgres), "needs PostgreSQL (TESSERA_TEST_POSTGRES_URL)"))
struct PostgresFaultTests {
    static let packageRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    /// A PostgreSQL server of the test's own, on its own port and directory.
    struct OwnServer {
        let directory: String
        let port: Int
        var url: String { "postgres://tessera:tessera@127.0.0.1:\(self.port)/tessera_test" }

        init(port: Int) throws {
            self.port = port
            self.directory = "/tmp/tessera-test-postgres-\(port)"
            try self.control("start")
        }

        func control(_ command: String) throws {
            let script = PostgresFaultTests.packageRoot.appendingPathComponent("scripts/postgres-test-server.sh").path
            let status = try spawnAndWait(
                "/bin/bash",
                [script, command],
                environment: ["TESSERA_PG_DIR": self.directory, "TESSERA_PG_PORT": String(self.port)]
            )
            guard status == 0 else { throw HarnessError("postgres-test-server.sh \(command) exited with \(status)") }
        }

        func psql(_ sql: String) throws {
            _ = try spawnAndWait("/usr/bin/psql", [self.url, "-q", "-c", sql])
        }
    }

    struct Reply {
        var status: Int
        var retryAfter: String?
        var elapsed: Duration
        var json: [String: Any]
    }

    func send(_ method: HTTPMethod, _ url: String, headers: [(String, String)] = [], body: String? = nil) async throws -> Reply {
        var request = HTTPClientRequest(url: url)
        request.method = method
        for (name, value) in headers { request.headers.add(name: name, value: value) }
        if let body {
            request.headers.add(name: "Content-Type", value: "application/json")
            request.body = .bytes(ByteBuffer(string: body))
        }
        let started = ContinuousClock.now
        let response = try await HTTPClient.shared.execute(request, timeout: .seconds(10))
        let bytes = try await response.body.collect(upTo: 1 << 20)
        let json = (try? JSONSerialization.jsonObject(with: Data(bytes.readableBytesView))) as? [String: Any] ?? [:]
        return Reply(
            status: Int(response.status.code),
            retryAfter: response.headers.first(name: "Retry-After"),
            elapsed: ContinuousClock.now - started,
            json: json
        )
    }

    // Asserts a wall-clock bound: runs while no heavy suite loads the cores.
    @Test(.timed) func anOutageIsAnswered503WithinTwoSecondsAndTesseraRecoversWithoutARestart() async throws {
        let postgres = try OwnServer(port: 25441)
        defer { try? postgres.control("stop") }
        let directory = TemporaryDirectory()
        let environment = RestartTests.environment.merging(["TESSERA_STORE": postgres.url]) { $1 }
        #expect(
            try ServerProcess.run(["users", "add", "erin", "--data-dir", directory.path], input: "pw-erin\n", environment: environment).status
                == 0
        )
        let server = try await ServerProcess(dataDirectory: directory.path, logDirectory: directory.url, environment: environment, name: "pg")
        defer { server.terminate() }

        let login = try await self.send(.POST, server.baseURL + "/v1/login", body: #"{"username":"erin","password":"pw-erin"}"#)
        #expect(login.status == 200)
        let csrf = try #require(login.json["csrfToken"] as? String)
        let token = try #require(
            try await self.send(
                .POST,
                server.baseURL + "/v1/sessions",
                headers: [("Authorization", "Bearer \(directory.serviceKey())")],
                body: #"{"subject":"svc"}"#
            )
            .json["token"] as? String
        )
        let bearer = [("Authorization", "Bearer \(token)")]
        let patched = try await self.send(.PATCH, server.baseURL + "/v1/session/data", headers: bearer + [("If-Match", "1")], body: #"{"k":"v"}"#)
        #expect(patched.status == 200)
        _ = csrf

        try postgres.control("pause")
        var outage: [Reply] = []
        for _ in 0..<12 {
            outage.append(try await self.send(.GET, server.baseURL + "/v1/session", headers: bearer))
        }
        let elapsed = outage.map { String(format: "%.3f s", $0.elapsed.timeInterval) }.joined(separator: ", ")
        for reply in outage {
            #expect(reply.status == 503)
            #expect(reply.retryAfter != nil)
            #expect(reply.elapsed < .seconds(2), "an answer during the outage took \(reply.elapsed) (all: \(elapsed))")
            #expect((reply.json["error"] as? [String: Any])?["code"] as? String == "STORE_UNAVAILABLE")
        }
        #expect(try await self.send(.GET, server.baseURL + "/readyz").status == 503)

        try postgres.control("resume")
        var back: Reply?
        for _ in 0..<100 {
            let reply = try await self.send(.GET, server.baseURL + "/v1/session", headers: bearer)
            if reply.status == 200 {
                back = reply
                break
            }
            try await Task.sleep(for: .milliseconds(100))
        }
        let recovered = try #require(back, "Tessera did not recover after PostgreSQL came back")
        let session = recovered.json["session"] as? [String: Any]
        #expect(session?["userId"] as? String == "svc")
        #expect((session?["data"] as? [String: Any])?["k"] as? String == "v")
        #expect(try await self.send(.GET, server.baseURL + "/readyz").status == 200)
    }

    @Test(.heavy) func terminatedBackendConnectionsAreRetriedInvisibly() async throws {
        let postgres = try OwnServer(port: 25442)
        defer { try? postgres.control("stop") }
        let directory = TemporaryDirectory()
        let environment = RestartTests.environment.merging(["TESSERA_STORE": postgres.url, "TESSERA_LOG_LEVEL": "debug"]) { $1 }
        let server = try await ServerProcess(dataDirectory: directory.path, logDirectory: directory.url, environment: environment, name: "pg2")
        defer { server.terminate() }
        let created = try await self.send(
            .POST,
            server.baseURL + "/v1/sessions",
            headers: [("Authorization", "Bearer \(directory.serviceKey())")],
            body: #"{"subject":"svc"}"#
        )
        let token = try #require(created.json["token"] as? String)
        let url = server.baseURL
        var statuses: [Int] = []
        for round in 0..<10 {
            // The server ends every Tessera backend connection; the pool must notice and retry.
            try postgres.psql("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'tessera'")
            let replies = try await withThrowingTaskGroup(of: Int.self) { group in
                for _ in 0..<8 {
                    group.addTask { try await self.send(.GET, url + "/v1/session", headers: [("Authorization", "Bearer \(token)")]).status }
                }
                return try await group.reduce(into: [Int]()) { $0.append($1) }
            }
            statuses += replies
            _ = round
        }
        #expect(statuses.count == 80)
        #expect(
            statuses.allSatisfy { $0 == 200 },
            "statuses: \(Dictionary(grouping: statuses, by: { $0 }).mapValues(\.count)); log: \(server.standardError.suffix(3000))"
        )
    }
}
