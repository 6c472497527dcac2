import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import NIOCore
import Testing
import Yams
import Tessera
import TesseraHummingbird
import TesseraTestSupport

@testable import ProtectedApp

@Suite struct ServiceBasicsTests {
    @Test func healthAndReadiness() async throws {
        let harness = try await ServiceHarness()
        try await harness.test { client in
            let (health, healthBody) = try await client.json("/healthz")
            #expect(health.status == .ok && healthBody["status"] as? String == "ok")
            let (ready, readyBody) = try await client.json("/readyz")
            #expect(ready.status == .ok && readyBody["status"] as? String == "ready")
        }
    }

    // Asserts a wall-clock bound: runs while no heavy suite loads the cores.
    @Test(.timed) func aStoreOutageIsAFast503WithRetryAfterAndTesseraRecoversByItself() async throws {
        let harness = try await ServiceHarness(resilience: .init(deadline: .milliseconds(800), breakerCooldown: .milliseconds(100)))
        try await harness.test { client in
            let browser = try await client.logIn()
            for mode in [FaultyStore.Mode.down, .hanging] {
                harness.faults.set(mode)
                for _ in 0..<3 {
                    let started = ContinuousClock.now
                    let (response, body) = try await client.json("/v1/session", headers: browser.headers)
                    #expect(ContinuousClock.now - started < .seconds(2))
                    #expect(response.status == .serviceUnavailable)
                    #expect(body.errorCode == "STORE_UNAVAILABLE")
                    #expect(response.headers[.retryAfter] == "1")
                    // The session is not declared dead because the store is.
                    #expect(response.headers[.setCookie] == nil)
                }
                let (ready, readyBody) = try await client.json("/readyz")
                #expect(ready.status == .serviceUnavailable && readyBody.errorCode == "STORE_UNAVAILABLE")
            }
            harness.faults.set(.healthy)
            // Once the breaker's cooldown has passed, the same session validates again.
            var recovered = false
            for _ in 0..<50 where !recovered {
                try await Task.sleep(for: .milliseconds(50))
                recovered = try await client.json("/v1/session", headers: browser.headers).0.status == .ok
            }
            #expect(recovered)
            #expect(try await client.json("/readyz").0.status == .ok)
        }
    }

    @Test func everyResponseCarriesACorrelationID() async throws {
        let harness = try await ServiceHarness()
        try await harness.test { client in
            let (echoed, _) = try await client.json("/healthz", headers: [.correlationID: "trace-123"])
            #expect(echoed.headers[.correlationID] == "trace-123")

            let (error, body) = try await client.json("/v1/session", headers: [.correlationID: "trace-456"])
            #expect(error.headers[.correlationID] == "trace-456")
            #expect((body["error"] as? [String: Any])?["correlationId"] as? String == "trace-456")

            // An unusable id (here, one that would forge log lines) is replaced.
            let (replaced, _) = try await client.json("/healthz", headers: [.correlationID: "a b\"c"])
            let generated = try #require(replaced.headers[.correlationID])
            #expect(generated.hasPrefix("req_"))

            let (fresh, _) = try await client.json("/healthz")
            #expect(fresh.headers[.correlationID]?.hasPrefix("req_") == true)
        }
    }

    @Test func errorsHaveOneShapeAndNoInternals() async throws {
        let harness = try await ServiceHarness()
        try await harness.test { client in
            let (notFound, notFoundBody) = try await client.json("/v1/nothing-here")
            #expect(notFound.status == .notFound && notFoundBody.errorCode == "REQ_1004")
            let (wrongMethod, wrongMethodBody) = try await client.json("/v1/login", method: .get)
            #expect(wrongMethod.status == .methodNotAllowed && wrongMethodBody.errorCode == "REQ_1006")
            #expect(wrongMethod.headers[.allow] == "POST")
            for body in [notFoundBody, wrongMethodBody] {
                let error = try #require(body["error"] as? [String: Any])
                #expect(Set(error.keys).isSubset(of: ["code", "message", "reason", "correlationId"]))
                #expect(body.keys.count == 1)
            }
            let (malformed, raw) = try await client.json("/v1/login", method: .post, body: "{\"username\":")
            #expect(malformed.status == .badRequest)
            #expect(raw.errorCode == "REQ_1001")
            #expect(malformed.headers[.contentType] == "application/json; charset=utf-8")
        }
    }

    @Test func aServedPathWithAnotherMethodIs405WithAllowAndHeadFollowsGet() async throws {
        let harness = try await ServiceHarness()
        try await harness.test { client in
            for (path, method, allow) in [
                ("/healthz", HTTPRequest.Method.delete, "GET, HEAD"), ("/v1/sessions", .put, "POST, GET, HEAD, DELETE"),
                ("/v1/sessions/ses_x", .patch, "DELETE"), ("/v1/upstreams/portal/proxy/a/b", .trace, "GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS"),
            ] {
                let (response, body) = try await client.json(path, method: method)
                #expect(response.status == .methodNotAllowed, "\(method) \(path)")
                #expect(body.errorCode == "REQ_1006")
                #expect(response.headers[.allow] == allow, "\(method) \(path)")
            }
            let head = try await client.execute(uri: "/healthz", method: .head)
            #expect(head.status == .ok)
            #expect(head.body.readableBytes == 0)
            #expect(head.headers[.contentLength] == "15")
        }
    }

    @Test func theRouterAndTheOpenAPIDocumentListTheSameOperations() async throws {
        let harness = try await ServiceHarness()
        let documented = try await harness.test { client in
            let response = try await client.execute(uri: "/openapi.yaml", method: .get)
            #expect(response.status == .ok)
            return Self.operations(inOpenAPI: String(buffer: response.body))
        }
        let served = Set(TesseraHTTPService.operations.map(\.description))
        #expect(documented == served)

        // And every documented operation is really routed: none answers "no such route".
        try await harness.test { client in
            for operation in TesseraHTTPService.operations {
                let path = operation.path.replacingOccurrences(of: "{id}", with: "ses_x")
                let (_, body) = try await client.json(path, method: HTTPRequest.Method(operation.method)!, body: "{}")
                #expect(body.errorCode != "REQ_1004" || operation.path.contains("{id}"), "\(operation) is not routed")
            }
        }
    }

    @Test func theOpenAPIDocumentIsValidYAMLWithEveryPath() throws {
        // A YAML parser, not the line reader above: a stray `: ` in a plain scalar breaks tools.
        let document = try #require(try Yams.load(yaml: OpenAPIDocument.text) as? [String: Any])
        let paths = try #require(document["paths"] as? [String: Any])
        #expect(Set(paths.keys) == Set(TesseraHTTPService.operations.map(\.path)))
    }

    /// The `METHOD /path` pairs under `paths:` of an OpenAPI document written with two-space
    /// path keys and four-space method keys.
    static func operations(inOpenAPI text: String) -> Set<String> {
        var operations = Set<String>()
        var inPaths = false
        var path: String?
        for line in text.split(separator: "\n", omittingEmptySubsequences: false) {
            if !line.hasPrefix(" ") && !line.isEmpty {
                inPaths = line.hasPrefix("paths:")
                continue
            }
            guard inPaths else { continue }
            if line.hasPrefix("  /"), !line.hasPrefix("   ") {
                path = String(line.dropFirst(2).dropLast())
            } else if line.hasPrefix("    "), !line.hasPrefix("     "), let path {
                let key = line.dropFirst(4).split(separator: ":").first.map(String.init) ?? ""
                if ["get", "put", "post", "delete", "patch", "head", "options"].contains(key) {
                    operations.insert("\(key.uppercased()) \(path)")
                }
            }
        }
        return operations
    }

    @Test func theExampleAppAuthenticatesWithTheMiddleware() async throws {
        let directory = TemporaryDirectory()
        let sessions = SessionManager(store: try directory.sqliteStore())
        let created = try await sessions.createSession(userID: "usr_example")
        let app = buildApplication(sessions: sessions)
        try await app.test(.router) { client in
            let open = try await client.execute(uri: "/", method: .get)
            #expect(open.status == .ok)
            let refused = try await client.execute(uri: "/api/hello", method: .get)
            #expect(refused.status == .unauthorized)
            #expect(String(buffer: refused.body).contains("AUTH_1004"))
            let hello = try await client.execute(uri: "/api/hello", method: .get, headers: [.cookie: "tessera_session=\(created.token.rawValue)"])
            #expect(hello.status == .ok)
            #expect(String(buffer: hello.body).hasPrefix("Hello, usr_example."))
            #expect(hello.headers[.cacheControl] == "no-store")
        }
    }
}
