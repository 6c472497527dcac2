import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import TesseraTestSupport
import Testing

/// README.md's app, on the store of a real `tessera serve`: a session that logged in there is
/// let through, a request without one is refused.
@Suite(.heavy) struct ReadmeExamplesTests {
    @Test func theProtectedAppAnswersASessionOfTheServiceAndRefusesOthers() async throws {
        let server = try await DocServer()
        let login = try await RawHTTP.exchange(
            port: server.port,
            "POST /v1/login HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: \(Self.body.utf8.count)\r\nConnection: close\r\n\r\n\(Self.body)"
        )
        #expect(login.status == 200, "\(login.text)")
        let cookie = try #require(login.headers["set-cookie"]?.split(separator: ";").first.map(String.init))
        let userID = try #require((login.json?["user"] as? [String: Any])?["id"] as? String)

        let app = Application(router: try makeRouter(databasePath: server.databasePath))
        try await app.test(.router) { client in
            try await client.execute(uri: "/api/hello", method: .get, headers: [.cookie: cookie]) { response in
                #expect(response.status == .ok)
                #expect(String(buffer: response.body) == "Hello, \(userID)")
            }
            try await client.execute(uri: "/api/hello", method: .get) { response in
                #expect(response.status == .unauthorized)
            }
        }
    }

    static let body = #"{"username":"alice","password":"\#(DocServer.password)"}"#
}
