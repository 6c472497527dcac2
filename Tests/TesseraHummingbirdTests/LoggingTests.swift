import AsyncHTTPClient
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import InMemoryLogging
import Logging
import NIOCore
import NIOHTTP1
import Testing
import TesseraTestSupport
import TesseraHummingbird

@Suite(.heavy) struct LoggingTests {
    /// Both ways of putting the correlation id on log lines: set on the request's logger, or
    /// kept in a task-local for the metadata provider the logger carries.
    @Test(arguments: [CorrelationIDLogging.loggerMetadata, .metadataProvider])
    func everyLogLineOfARequestCarriesItsCorrelationIDAndNoSecret(logging: CorrelationIDLogging) async throws {
        let harness = try await ServiceHarness(configuration: .init(trustForwardedFor: true, correlationIDLogging: logging))
        let handler = InMemoryLogHandler()
        var logger: Logger
        switch logging {
        case .loggerMetadata:
            logger = Logger(label: "tessera-test") { _ in handler }
        case .metadataProvider:
            var withProvider = handler
            withProvider.metadataProvider = CorrelationID.metadataProvider
            logger = Logger(label: "tessera-test") { _ in withProvider }
        }
        logger.logLevel = .trace
        let app = Application(router: harness.service.buildRouter(), logger: logger)
        let (cookie, csrf) = try await app.test(.router) { client in
            let login = try await client.execute(
                uri: "/v1/login",
                method: .post,
                headers: [.correlationID: "login-1", .contentType: "application/json"],
                body: ByteBuffer(string: #"{"username":"alice","password":"\#(ServiceHarness.password)"}"#)
            )
            let browser = try await client.logIn()
            _ = try await client.execute(
                uri: "/v1/session",
                method: .get,
                headers: [.cookie: "tessera_session=\(browser.cookie)", .correlationID: "whoami-2"]
            )
            var logout = browser.unsafeHeaders
            logout[.correlationID] = "logout-3"
            _ = try await client.execute(uri: "/v1/logout", method: .post, headers: logout)
            _ = try await client.execute(uri: "/v1/session", method: .get, headers: [.correlationID: "refused-4"])
            return (login.headers[.setCookie] ?? "", browser.csrfToken)
        }
        let entries = handler.entries
        let requestEntries = entries.filter { $0.metadata["hb.request.id"] != nil }
        #expect(requestEntries.count >= 4)
        for entry in requestEntries {
            #expect(entry.metadata["correlation_id"] != nil, "log line without correlation id: \(entry.message)")
        }
        let ids = Set(requestEntries.compactMap { $0.metadata["correlation_id"]?.description })
        #expect(ids.isSuperset(of: ["login-1", "whoami-2", "logout-3", "refused-4"]))
        #expect(requestEntries.contains { $0.message.description == "Logged in" && $0.metadata["correlation_id"] == "login-1" })
        #expect(requestEntries.contains { $0.message.description == "Logged out" && $0.metadata["correlation_id"] == "logout-3" })

        let everything = entries.map { "\($0.message) \($0.metadata)" }.joined(separator: "\n")
        let token = String(cookie.split(separator: ";").first?.split(separator: "=", maxSplits: 1).last ?? "")
        #expect(!token.isEmpty && !everything.contains(token))
        #expect(!everything.contains(ServiceHarness.password))
        #expect(!everything.contains(csrf))
    }

    /// `tessera serve` puts the correlation id on the lines a request writes, and on no other.
    /// A caller's W3C `traceparent` puts its trace on the request's log lines, in both ways of
    /// logging; a malformed one is ignored.
    @Test(arguments: [CorrelationIDLogging.loggerMetadata, .metadataProvider])
    func aRequestsTraceReachesItsLogLines(logging: CorrelationIDLogging) async throws {
        let harness = try await ServiceHarness(configuration: .init(trustForwardedFor: true, correlationIDLogging: logging))
        let handler = InMemoryLogHandler()
        var withProvider = handler
        if logging == .metadataProvider { withProvider.metadataProvider = CorrelationID.metadataProvider }
        var logger = Logger(label: "tessera-test") { _ in withProvider }
        logger.logLevel = .trace
        let app = Application(router: harness.service.buildRouter(), logger: logger)
        let trace = "4bf92f3577b34da6a3ce929d0e0e4736"
        try await app.test(.router) { client in
            let traced = HTTPField.Name("traceparent")!
            _ = try await client.execute(
                uri: "/v1/login",
                method: .post,
                headers: [.correlationID: "traced-1", .contentType: "application/json", traced: "00-\(trace)-00f067aa0ba902b7-01"],
                body: ByteBuffer(string: #"{"username":"alice","password":"\#(ServiceHarness.password)"}"#)
            )
            _ = try await client.execute(
                uri: "/v1/login",
                method: .post,
                headers: [.correlationID: "malformed-2", .contentType: "application/json", traced: "00-\(trace)-0000000000000000-01"],
                body: ByteBuffer(string: #"{"username":"alice","password":"\#(ServiceHarness.password)"}"#)
            )
        }
        let entries = handler.entries
        let traced = entries.filter { $0.metadata["correlation_id"] == "traced-1" && $0.message.description == "Logged in" }
        #expect(traced.count == 1)
        #expect(traced.first?.metadata["trace_id"]?.description == trace)
        #expect(traced.first?.metadata["parent_span_id"]?.description == "00f067aa0ba902b7")
        let untraced = entries.filter { $0.metadata["correlation_id"] == "malformed-2" }
        #expect(!untraced.isEmpty && untraced.allSatisfy { $0.metadata["trace_id"] == nil })
    }

    @Test func theServiceLogsEachRequestsCorrelationID() async throws {
        let directory = TemporaryDirectory()
        let server = try await ServerProcess(
            dataDirectory: directory.path,
            logDirectory: directory.url,
            environment: ["TESSERA_LOG_LEVEL": "info"],
            name: "logging"
        )
        defer { server.terminate() }
        let key = try directory.serviceKey()
        var request = HTTPClientRequest(url: server.baseURL + "/v1/sessions")
        request.method = .POST
        request.headers.add(name: "Authorization", value: "Bearer \(key)")
        request.headers.add(name: "Content-Type", value: "application/json")
        request.headers.add(name: "X-Correlation-ID", value: "create-7")
        request.body = .bytes(ByteBuffer(string: #"{"subject":"svc"}"#))
        let response = try await HTTPClient.shared.execute(request, timeout: .seconds(10))
        #expect(response.status == .created)
        _ = try await response.body.collect(upTo: 1 << 16)

        let lines = server.standardError.split(separator: "\n")
        let created = lines.filter { $0.contains("Created session for a subject") }
        #expect(created.count == 1)
        #expect(created.allSatisfy { $0.contains("correlation_id=create-7") }, "\(created)")
        let started = lines.filter { $0.contains("Server started") }
        #expect(!started.isEmpty)
        #expect(!started.contains { $0.contains("correlation_id") })
    }
}
