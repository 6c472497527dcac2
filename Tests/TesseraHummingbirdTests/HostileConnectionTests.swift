import Foundation
import NIOHTTP1
import Testing
import TesseraTestSupport

/// Connections a hostile client opens against the real process, over raw sockets: broken
/// framing, slow and silent clients, requests the parser refuses, HTTP/1.0, and foreign
/// origins. Each is answered in the one JSON error shape (or closed), none is logged as an
/// error, and the process goes on serving.
// Serialized, so that its wall-clock tests (`.timed`) can give back the suite's place while they run.
@Suite(.heavy, .serialized) struct HostileConnectionTests {
    /// Short deadlines, so that the slow clients below are cut off within seconds.
    static let shortDeadlines = ["--header-timeout", "2s", "--body-timeout", "2s", "--keep-alive-timeout", "2s"]

    @Test func brokenFramingIsA400AndAClientThatLeavesMidBodyIsNoError() async throws {
        let server = try await HostileServer()
        let chunked = try await server.raw(
            "POST /v1/login HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nabc\r\n0\r\n\r\n"
        )
        #expect(chunked.status == 400, "\(chunked.text)")
        #expect(chunked.errorCode == "REQ_1001")
        #expect(chunked.headers["x-correlation-id"]?.hasPrefix("req_") == true)
        #expect(chunked.closedByServer)
        for _ in 0..<5 {
            _ = try await RawHTTP.exchange(
                port: server.port,
                pieces: [
                    (.zero, Array("POST /v1/login HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"user".utf8))
                ],
                wait: .milliseconds(300),
                closeAfterSending: true
            )
        }
        #expect(try await server.stillServes())
        #expect(server.errorLines.isEmpty, "\(server.errorLines)")
    }

    @Test(arguments: [
        ("two lengths", "POST /v1/login HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\n{}", 400, "REQ_1001"),
        (
            "length and chunked", "POST /v1/login HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400,
            "REQ_1001"
        ),
        ("NUL in a field", "GET /healthz HTTP/1.1\r\nHost: x\r\nX-A: a\u{0}b\r\n\r\n", 400, "REQ_1001"),
        ("control byte in a field", "GET /healthz HTTP/1.1\r\nHost: x\r\nX-A: a\u{1}b\r\n\r\n", 400, "REQ_1001"),
        ("obs-fold", "GET /healthz HTTP/1.1\r\nHost: x\r\nX-A: a\r\n b\r\n\r\n", 400, "REQ_1001"),
        ("a 1 MB field", "GET /healthz HTTP/1.1\r\nHost: x\r\nX-A: " + String(repeating: "a", count: 1_000_000) + "\r\n\r\n", 431, "REQ_1010"),
        ("an unknown method", "FOO /healthz HTTP/1.1\r\nHost: x\r\n\r\n", 400, "REQ_1001"),
    ])
    func requestsTheParserRefusesGetTheOneErrorShape(name: String, request: String, status: Int, code: String) async throws {
        let server = try await HostileServer()
        let answer = try await server.raw(request)
        #expect(answer.status == status, "\(name): \(answer.text.prefix(300))")
        #expect(answer.errorCode == code, "\(name)")
        #expect(answer.headers["content-type"] == "application/json; charset=utf-8")
        #expect(answer.headers["x-correlation-id"]?.hasPrefix("req_") == true)
        #expect(answer.closedByServer)
        #expect(try await server.stillServes())
    }

    @Test func aMethodNoRouteNamesIsA405OnAServedPathAndA404Elsewhere() async throws {
        let server = try await HostileServer()
        for (request, status, allow) in [
            ("QUERY /healthz HTTP/1.1", 405, "GET, HEAD"), ("QUERY /v1/sessions/ses_x HTTP/1.1", 405, "DELETE"),
            ("QUERY /v1/upstreams/a/proxy/b/c HTTP/1.1", 405, nil), ("QUERY /nowhere HTTP/1.1", 404, nil),
        ] {
            let answer = try await server.raw(request + "\r\nHost: x\r\nConnection: close\r\n\r\n")
            #expect(answer.status == status, "\(request): \(answer.text.prefix(200))")
            if let allow { #expect(answer.headers["allow"] == allow, "\(request)") }
            #expect(answer.errorCode == (status == 405 ? "REQ_1006" : "REQ_1004"))
        }
    }

    @Test func invalidUTF8InThePathIsA400() async throws {
        let server = try await HostileServer()
        let request = Array("GET /healthz".utf8) + [0xFF, 0xFE] + Array(" HTTP/1.1\r\nHost: x\r\n\r\n".utf8)
        let answer = try await RawHTTP.exchange(port: server.port, bytes: request)
        #expect(answer.status == 400)
        #expect(answer.errorCode == "REQ_1001")
    }

    /// Bounds wall-clock time: runs while no heavy test loads the machine.
    @Test(.timed) func aDeclaredBodyOverTheLimitIsRefusedAtOnce() async throws {
        let server = try await HostileServer()
        let answer = try await RawHTTP.exchange(
            port: server.port,
            pieces: [
                (
                    .zero,
                    Array(
                        "POST /v1/login HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 1000000000000\r\n\r\n{\"a\":1}".utf8
                    )
                )
            ],
            wait: .seconds(10)
        )
        #expect(answer.status == 413)
        #expect(answer.errorCode == "REQ_1002")
        #expect(answer.closedByServer)
        #expect(answer.elapsed < .seconds(3))
    }

    /// Bounds wall-clock time: runs while no heavy test loads the machine.
    @Test(.timed) func http10IsAnsweredInHTTP10AndClosedUnlessKeptAlive() async throws {
        let server = try await HostileServer()
        let closing = try await server.raw("GET /healthz HTTP/1.0\r\n\r\n")
        #expect(closing.statusLine == "HTTP/1.0 200 OK")
        #expect(closing.headers["connection"] == "close")
        #expect(closing.closedByServer)
        #expect(closing.elapsed < .seconds(3))

        // With keep-alive, two requests on one connection, then the client's close ends it.
        let request = "GET /healthz HTTP/1.0\r\nConnection: keep-alive\r\n\r\n"
        let kept = try await RawHTTP.exchange(
            port: server.port,
            pieces: [(.zero, Array(request.utf8)), (.milliseconds(200), Array(request.utf8))],
            wait: .seconds(2)
        )
        #expect(kept.responseCount == 2, "\(kept.text)")
        #expect(kept.headers["connection"] == "keep-alive")
        #expect(!kept.closedByServer)
    }

    @Test func aForeignPageCannotLogABrowserInNorActWithItsCookie() async throws {
        let server = try await HostileServer(arguments: ["--allowed-origins", "https://app.example.com"])
        let body = #"{"username":"alice","password":"\#(HostileServer.password)"}"#
        // What a foreign form with enctype=text/plain sends.
        let form = try await server.send(
            .POST,
            "/v1/login",
            headers: [("Content-Type", "text/plain"), ("Origin", "https://evil.example")],
            body: body
        )
        #expect(form.status == 403)
        #expect(form.errorCode == "AUTH_1011")
        #expect(form.header("Set-Cookie") == nil)
        let plain = try await server.send(.POST, "/v1/login", headers: [("Content-Type", "text/plain")], body: body)
        #expect(plain.status == 415)
        #expect(plain.errorCode == "REQ_1008")
        #expect(plain.header("Set-Cookie") == nil)
        let crossSite = try await server.send(.POST, "/v1/login", headers: [("Sec-Fetch-Site", "cross-site")], body: body)
        #expect(crossSite.status == 403)
        let null = try await server.send(.POST, "/v1/login", headers: [("Origin", "null")], body: body)
        #expect(null.status == 403)

        // The service's own origin and the allowed one log in.
        let own = try await server.send(.POST, "/v1/login", headers: [("Origin", server.baseURL)], body: body)
        #expect(own.status == 200)
        let allowed = try await server.send(.POST, "/v1/login", headers: [("Origin", "https://app.example.com")], body: body)
        #expect(allowed.status == 200)

        // A foreign page that learned the CSRF token still cannot log the browser out.
        let alice = try await server.logIn()
        let logout = try await server.send(.POST, "/v1/logout", headers: alice.unsafeHeaders + [("Origin", "https://evil.example")])
        #expect(logout.status == 403)
        #expect(logout.errorCode == "AUTH_1011")
        #expect(try await server.send(.GET, "/v1/session", headers: alice.headers).status == 200)
    }
}
