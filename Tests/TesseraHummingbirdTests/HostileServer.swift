import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1
import TesseraTestSupport

/// A real `tessera serve` on loopback with two users, for the suites that try it as a hostile
/// client would: real HTTP, raw sockets, and the process's own output.
///
/// `@unchecked Sendable`: every stored property is set in `init` and only read afterwards; the
/// process is only read (its output files, whether it runs) from the tasks that share it.
final class HostileServer: @unchecked Sendable {
    static let environment = ["TESSERA_BCRYPT_COST": "4", "TESSERA_LOG_LEVEL": "info"]
    static let password = "correct horse battery staple"

    let directory: TemporaryDirectory
    let dataDirectory: String
    let process: ServerProcess
    let serviceKey: String

    /// - Parameter arguments: more `tessera serve` arguments, such as `--header-timeout 2s`.
    init(arguments: [String] = [], environment: [String: String] = [:]) async throws {
        self.directory = TemporaryDirectory()
        self.dataDirectory = self.directory.url.appendingPathComponent("data").path
        let environment = Self.environment.merging(environment) { $1 }
        for user in ["alice", "bob"] {
            let added = try ServerProcess.run(
                ["users", "add", user, "--data-dir", self.dataDirectory],
                input: Self.password + "\n",
                environment: environment
            )
            guard added.status == 0 else { throw HarnessError("users add \(user): \(added.output)") }
        }
        self.process = try await ServerProcess(
            dataDirectory: self.dataDirectory,
            logDirectory: self.directory.url,
            environment: environment,
            arguments: arguments,
            name: "hostile"
        )
        self.serviceKey = try String(contentsOfFile: self.dataDirectory + "/service-api-key", encoding: .utf8)
            .trimmingCharacters(in: .whitespacesAndNewlines)
    }

    var port: Int { self.process.port }
    var baseURL: String { self.process.baseURL }

    struct Reply: Sendable {
        var status: Int
        var headers: [(String, String)]
        var body: String

        func header(_ name: String) -> String? { self.headers.first { $0.0.lowercased() == name.lowercased() }?.1 }
        var json: [String: Any] { (try? JSONSerialization.jsonObject(with: Data(self.body.utf8))) as? [String: Any] ?? [:] }
        var errorCode: String? { (self.json["error"] as? [String: Any])?["code"] as? String }
        var session: [String: Any]? { self.json["session"] as? [String: Any] }
    }

    /// Sends a request with a real HTTP client. A body is sent as `application/json` unless
    /// `headers` name another `Content-Type`.
    func send(_ method: HTTPMethod, _ path: String, headers: [(String, String)] = [], body: String? = nil) async throws -> Reply {
        var request = HTTPClientRequest(url: self.baseURL + path)
        request.method = method
        for (name, value) in headers { request.headers.add(name: name, value: value) }
        if let body {
            if !headers.contains(where: { $0.0.lowercased() == "content-type" }) {
                request.headers.add(name: "Content-Type", value: "application/json")
            }
            request.body = .bytes(ByteBuffer(string: body))
        }
        let response = try await HTTPClient.shared.execute(request, timeout: .seconds(30))
        let bytes = try await response.body.collect(upTo: 1 << 22)
        return Reply(status: Int(response.status.code), headers: response.headers.map { ($0.name, $0.value) }, body: String(buffer: bytes))
    }

    /// A browser's login: its cookie header and CSRF token.
    struct Browser: Sendable {
        var cookie: String
        var csrfToken: String
        var token: String

        var headers: [(String, String)] { [("Cookie", self.cookie)] }
        var unsafeHeaders: [(String, String)] { [("Cookie", self.cookie), ("X-CSRF-Token", self.csrfToken)] }
    }

    func logIn(_ username: String = "alice") async throws -> Browser {
        let reply = try await self.send(.POST, "/v1/login", body: #"{"username":"\#(username)","password":"\#(Self.password)"}"#)
        guard reply.status == 200, let setCookie = reply.header("Set-Cookie"), let pair = setCookie.split(separator: ";").first,
            let csrf = reply.json["csrfToken"] as? String
        else { throw HarnessError("login failed: \(reply.status) \(reply.body)") }
        return Browser(cookie: String(pair), csrfToken: csrf, token: String(pair.split(separator: "=", maxSplits: 1).last ?? ""))
    }

    /// A session made by the service key, with its bearer token.
    func createSession(subject: String = "svc-user", extra: String = "") async throws -> (reply: Reply, token: String?) {
        let reply = try await self.send(
            .POST,
            "/v1/sessions",
            headers: [("Authorization", "Bearer \(self.serviceKey)")],
            body: #"{"subject":"\#(subject)"\#(extra)}"#
        )
        return (reply, reply.json["token"] as? String)
    }

    /// Sends raw bytes and collects the answer.
    func raw(_ request: String, wait: Duration = .seconds(10)) async throws -> RawHTTP.Answer {
        try await RawHTTP.exchange(port: self.port, request, wait: wait)
    }

    /// Everything the process wrote, standard output and standard error.
    var output: String { self.process.standardOutput + self.process.standardError }

    /// The log lines at level error or critical.
    var errorLines: [String] {
        self.process.standardError.split(separator: "\n").map(String.init).filter { $0.contains(" error ") || $0.contains(" critical ") }
    }

    /// Whether the process still serves: it runs, `/healthz` answers, and another user logs in.
    func stillServes() async throws -> Bool {
        guard self.process.process.isRunning else { return false }
        let health = try await self.send(.GET, "/healthz")
        let bob = try await self.send(.POST, "/v1/login", body: #"{"username":"bob","password":"\#(Self.password)"}"#)
        return health.status == 200 && bob.status == 200
    }

    /// JSON nested `depth` levels: `{"a":{"a":…1…}}`.
    static func nested(_ depth: Int) -> String {
        String(repeating: #"{"a":"#, count: depth) + "1" + String(repeating: "}", count: depth)
    }
}
