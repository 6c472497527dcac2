import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import InMemoryLogging
import Logging
import NIOCore
import Testing
import TesseraTestSupport
import TesseraHummingbird

@Suite(.heavy) struct LoggingTests {
    @Test func everyLogLineOfARequestCarriesItsCorrelationIDAndNoSecret() async throws {
        let harness = try await ServiceHarness()
        let handler = InMemoryLogHandler()
        var logger = Logger(label: "tessera-test") { _ in handler }
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
}
