import HTTPTypes
import Hummingbird
import NIOCore
import Testing

@testable import TesseraHummingbird

@Suite struct HTTPFieldTests {
    @Test(arguments: [
        ("Bearer tss_abc", "tss_abc"),
        ("bearer tss_abc", "tss_abc"),
        ("BEARER   tss_abc  ", "tss_abc"),
        ("Bearer \ttss_abc\t", "tss_abc"),
        ("Bearer tss_a b", "tss_a b"),
    ])
    func bearerTokensAreRead(header: String, token: String) {
        #expect(HTTPFields([HTTPField(name: .authorization, value: header)]).bearerToken == token)
    }

    @Test(arguments: ["Basic dXNlcjpwdw==", "Bearer", "Bearer ", "Bearer   ", "Bearertss_abc", "Bearer\ttss_abc", "Bear tss", "", "Bearer🙂 x"])
    func otherAuthorizationsAreNotBearerTokens(header: String) {
        #expect(HTTPFields([HTTPField(name: .authorization, value: header)]).bearerToken == nil)
    }

    @Test func aFieldGivenAsBytesIsReadAndTwoAuthorizationFieldsAreNoBearerToken() {
        let bytes = HTTPField(name: .authorization, value: Array("Bearer tss_abc".utf8))
        #expect(HTTPFields([bytes]).bearerToken == "tss_abc")
        // Two fields read as one joined value, as the subscript reads them: no token survives that.
        let two = HTTPFields([HTTPField(name: .authorization, value: "Bearer tss_abc"), HTTPField(name: .authorization, value: "Bearer tss_def")])
        #expect(two.bearerToken == "tss_abc, Bearer tss_def")
        #expect(HTTPFields([HTTPField(name: .accept, value: "*/*")]).bearerToken == nil)
    }

    @Test func correlationIDsAreUniqueAndPrintable() {
        let ids = (0..<10_000).map { _ in makeCorrelationID() }
        #expect(Set(ids).count == ids.count)
        // 15 bytes at most (for the first billion of a process), so that an id is a small string
        // and costs no allocation.
        #expect(ids.allSatisfy { $0.hasPrefix("req_") && $0.utf8.count == 15 })
        for id in ids.prefix(100) {
            #expect(HTTPFields([HTTPField(name: .correlationID, value: id)]).usableCorrelationID == id)
        }
    }
}

@Suite struct SessionCookieReadingTests {
    func request(_ cookies: [String]) -> Request {
        var fields = HTTPFields()
        for cookie in cookies { fields.append(HTTPField(name: .cookie, value: cookie)) }
        return Request(
            head: HTTPRequest(method: .get, scheme: "http", authority: "localhost", path: "/", headerFields: fields),
            body: .init(buffer: ByteBuffer())
        )
    }

    @Test(arguments: [
        (["tessera_session=tss_a"], "tss_a"),
        (["theme=dark; tessera_session=tss_a; lang=en"], "tss_a"),
        (["theme=dark;tessera_session=tss_a"], "tss_a"),
        (["x_tessera_session=tss_wrong; tessera_session=tss_a"], "tss_a"),
        (["tessera_sessionx=tss_wrong", "tessera_session=tss_a"], "tss_a"),
        // Quotes are part of the value (RFC 6265), so such a token fails to parse later.
        (["tessera_session=\"tss_a\""], "\"tss_a\""),
        (["tessera_session="], ""),
    ])
    func theSessionCookieIsFound(cookies: [String], token: String) {
        #expect(SessionCookie().token(in: self.request(cookies)) == token)
        // Hummingbird's full parser agrees.
        #expect(self.request(cookies).cookies["tessera_session"]?.value ?? "" == token)
    }

    @Test(arguments: [[], ["theme=dark"], ["tessera_sessio=tss_a"], ["__Host-tessera_session=tss_a"]])
    func noSessionCookieIsNil(cookies: [String]) {
        #expect(SessionCookie().token(in: self.request(cookies)) == nil)
    }

    @Test func theSecureCookieHasItsOwnName() {
        let request = self.request(["tessera_session=tss_plain; __Host-tessera_session=tss_secure"])
        #expect(SessionCookie(secure: true).token(in: request) == "tss_secure")
        #expect(SessionCookie(secure: false).token(in: request) == "tss_plain")
    }
}
