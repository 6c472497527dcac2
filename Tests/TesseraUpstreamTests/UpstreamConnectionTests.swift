import Foundation
import NIOCore
import NIOHTTP1
import NIOSSL
import Tessera
import TesseraTestSupport
@testable import TesseraUpstream
import Testing

/// The upstream's own HTTP/1.1 connections, against a site that answers byte by byte as real
/// servers do (``ScriptedSite``), over loopback.
@Suite struct UpstreamConnectionTests {
    static func withSite(tls: NIOSSLContext? = nil, _ body: (ScriptedSite) async throws -> Void) async throws {
        let site = try await ScriptedSite.start(tls: tls)
        do {
            try await body(site)
        } catch {
            await site.stop()
            throw error
        }
        await site.stop()
    }

    static func pool(_ site: ScriptedSite, tls: TLSConfiguration? = nil, host: String = "127.0.0.1") throws -> UpstreamConnectionPool {
        try UpstreamConnectionPool(origin: UpstreamOrigin(host: host, port: site.port, tls: tls != nil), tlsConfiguration: tls)
    }

    static func request(_ path: String, method: HTTPMethod = .GET, body: String? = nil) -> UpstreamConnectionPool.WireRequest {
        var headers = HTTPHeaders([("host", "site")])
        if let body { headers.add(name: "content-length", value: String(body.utf8.count)) }
        return UpstreamConnectionPool.WireRequest(
            head: HTTPRequestHead(version: .http1_1, method: method, uri: path, headers: headers),
            body: body.map { ByteBuffer(string: $0) },
            bodyStream: nil,
            isIdempotent: method != .POST
        )
    }

    /// A loopback port held by a socket that never listens, and the socket (close it after).
    static func boundPortNobodyListensOn() throws -> (socket: Int32, port: Int) {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw HarnessError("socket() failed") }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = 0
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafeMutablePointer(to: &address) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, length) == 0 && getsockname(fd, $0, &length) == 0 }
        }
        guard bound else {
            close(fd)
            throw HarnessError("bind() failed")
        }
        return (fd, Int(UInt16(bigEndian: address.sin_port)))
    }

    /// The whole answer: status and body.
    /// (These tests are about behaviour, not latency, and deadlines have tests of their own,
    /// `UpstreamDeadlineTests`: the timeouts are generous, for a machine that every suite loads
    /// at once — one CI run met a 10 s head timeout here.)
    static func send(_ pool: UpstreamConnectionPool, _ request: UpstreamConnectionPool.WireRequest, wanted: Int = 0) async throws -> (Int, String) {
        let start = try await pool.send(request, wanted: { _ in wanted }, headTimeout: .seconds(60), readTimeout: .seconds(60))
        var body = start.prefix
        if let rest = start.rest {
            for try await var chunk in rest { body.writeBuffer(&chunk) }
        }
        return (start.answer.status, String(buffer: body))
    }

    @Test func aConnectionCarriesRequestAfterRequest() async throws {
        try await Self.withSite { site in
            let pool = try Self.pool(site)
            for index in 0..<20 {
                let (status, body) = try await Self.send(pool, Self.request(index % 2 == 0 ? "/ok" : "/echo", method: index % 2 == 0 ? .GET : .POST, body: index % 2 == 0 ? nil : "body \(index)"))
                #expect(status == 200)
                #expect(body == (index % 2 == 0 ? "ok" : "body \(index)"))
            }
            #expect(site.counts == .init(connections: 1, requests: 20))
            #expect(pool.counts == (open: 1, idle: 1))
            await pool.shutdown()
            #expect(pool.counts == (open: 0, idle: 0))
        }
    }

    @Test func chunkedAndCloseDelimitedAnswersArriveWhole() async throws {
        try await Self.withSite { site in
            let pool = try Self.pool(site)
            for wanted in [0, 100] {
                #expect(try await Self.send(pool, Self.request("/chunked"), wanted: wanted) == (200, "one-two-three"))
                #expect(try await Self.send(pool, Self.request("/until-close"), wanted: wanted) == (200, "to the end"))
            }
            // A chunked answer leaves its connection open; a close-delimited one ends it.
            #expect(site.counts == .init(connections: 2, requests: 4))
            await pool.shutdown()
        }
    }

    @Test func anAnswerThatSaysCloseIsNotReused() async throws {
        try await Self.withSite { site in
            let pool = try Self.pool(site)
            #expect(try await Self.send(pool, Self.request("/close")) == (200, "bye"))
            #expect(try await Self.send(pool, Self.request("/ok")) == (200, "ok"))
            #expect(site.counts == .init(connections: 2, requests: 2))
            await pool.shutdown()
        }
    }

    /// The site closes a kept-alive connection as the next request arrives: an idempotent
    /// request goes again on a new connection; a POST does not (the site may have acted on it).
    @Test func aKeptAliveConnectionTheSiteClosedIsReplacedForIdempotentRequestsOnly() async throws {
        try await Self.withSite { site in
            let pool = try Self.pool(site)
            #expect(try await Self.send(pool, Self.request("/drop-next")) == (200, "ok"))
            #expect(try await Self.send(pool, Self.request("/ok")) == (200, "ok"))
            #expect(site.counts == .init(connections: 2, requests: 3))

            #expect(try await Self.send(pool, Self.request("/drop-next")) == (200, "ok"))
            await #expect {
                try await Self.send(pool, Self.request("/echo", method: .POST, body: "once"))
            } throws: { error in
                guard let failure = error as? UpstreamExchangeFailure else { return false }
                return failure.isStaleConnection
            }
            #expect(site.counts == .init(connections: 2, requests: 5))
            await pool.shutdown()
        }
    }

    @Test func bytesThatAreNotAnAnswerFailTheRequestAndTheConnection() async throws {
        try await Self.withSite { site in
            let pool = try Self.pool(site)
            await #expect(throws: UpstreamExchangeFailure.self) { try await Self.send(pool, Self.request("/garbage", method: .POST, body: "x")) }
            #expect(try await Self.send(pool, Self.request("/ok")) == (200, "ok"))
            #expect(site.counts.connections == 2)
            await pool.shutdown()
        }
    }

    @Test func aSiteThatIsNotThereFailsAsNothingSent() async throws {
        // A port bound and never listened on: refused, and no other test's server can take it
        // meanwhile (a port freed by a stopped server can be, while every suite runs at once).
        let (socket, port) = try Self.boundPortNobodyListensOn()
        defer { close(socket) }
        let factory = try HTTPUpstreamSessionFactory(configuration: fakeConfiguration(baseURL: "http://127.0.0.1:\(port)"))
        let session = HTTPUpstreamSession(factory: factory)
        await #expect {
            try await session.send(UpstreamRequest(method: "POST", pathAndQuery: "/api/orders"))
        } throws: { error in
            (error as? UpstreamTransportError)?.requestSent == false
        }
        await factory.shutdown()
    }

    /// HTTPS with the site's own certificate as the trust root; a client that does not trust it
    /// fails in the handshake, before anything is sent.
    @Test func httpsSitesAreVerified() async throws {
        let identity = try TestCertificate.make(name: "localhost")
        let serverContext = try NIOSSLContext(
            configuration: .makeServerConfiguration(certificateChain: [.certificate(identity.certificate)], privateKey: .privateKey(identity.key))
        )
        try await Self.withSite(tls: serverContext) { site in
            var trusting = TLSConfiguration.makeClientConfiguration()
            trusting.trustRoots = .certificates([identity.certificate])
            let factory = try HTTPUpstreamSessionFactory(configuration: fakeConfiguration(baseURL: "https://localhost:\(site.port)"), tlsConfiguration: trusting)
            let session = HTTPUpstreamSession(factory: factory)
            for _ in 0..<3 {
                let answer = try await session.send(UpstreamRequest(method: "GET", pathAndQuery: "/ok"))
                #expect(answer.status == 200 && answer.text == "ok")
            }
            #expect(site.counts.connections == 1)
            await factory.shutdown()

            // Trusting the system's roots only: the handshake fails.
            let strict = try HTTPUpstreamSessionFactory(configuration: fakeConfiguration(baseURL: "https://localhost:\(site.port)"))
            await #expect {
                try await HTTPUpstreamSession(factory: strict).send(UpstreamRequest(method: "POST", pathAndQuery: "/echo"))
            } throws: { error in
                (error as? UpstreamTransportError)?.requestSent == false
            }
            await strict.shutdown()
        }
    }

    /// Requests go below the base URL's path as it is written, percent-encoding included.
    @Test func requestsGoBelowTheBasePathAsWritten() async throws {
        try await Self.withSite { site in
            for base in ["/my%20app", "/my%20app/", ""] {
                let factory = try HTTPUpstreamSessionFactory(configuration: fakeConfiguration(baseURL: "http://127.0.0.1:\(site.port)\(base)"))
                let answer = try await HTTPUpstreamSession(factory: factory).send(UpstreamRequest(method: "GET", pathAndQuery: "/target/a%2Bb?q=%ff"))
                let expected = (base.hasSuffix("/") ? String(base.dropLast()) : base) + "/target/a%2Bb?q=%ff"
                #expect(answer.text == expected, "\(base)")
                await factory.shutdown()
            }
        }
    }

    /// Requests go below the base path with the session's cookies and a `Host` of the site.
    @Test func requestTargetsAndFieldsAreTheSessionsOwn() async throws {
        #expect(HTTPUpstreamSession.isRequestTarget("/app/a%2Bb/c+d?x=%ff&y=1"))
        for target in ["", "app", "/a b", "/a\u{7F}", "/a#b", "/caf\u{E9}", "/a\r\nHost: evil"] {
            #expect(!HTTPUpstreamSession.isRequestTarget(target), "\(target)")
        }
        #expect(UpstreamOrigin(host: "example.com", port: 443, tls: true).authority == "example.com")
        #expect(UpstreamOrigin(host: "example.com", port: 8443, tls: true).authority == "example.com:8443")
        #expect(UpstreamOrigin(host: "::1", port: 80, tls: false).authority == "[::1]")
        #expect(UpstreamOrigin(host: "10.0.0.1", port: 80, tls: false).hostIsAddress)
        #expect(!UpstreamOrigin(host: "portal.example", port: 80, tls: false).hostIsAddress)
        for own in ["Host", "cookie", "Content-Length", "TRANSFER-ENCODING", "traceparent", "connection"] {
            #expect(HTTPUpstreamSession.isOwnField(own))
        }
        #expect(!HTTPUpstreamSession.isOwnField("accept"))
    }
}
