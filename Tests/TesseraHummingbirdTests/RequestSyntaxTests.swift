import HTTPTypes
import Testing

@testable import TesseraHummingbird

/// The byte-level readers of credentials, and the origin rule.
@Suite struct RequestSyntaxTests {
    func bearer(_ value: String) -> String? {
        var value = value
        return value.withUTF8 { CredentialSyntax.bearerToken(in: $0) }
    }

    func cookie(_ name: String, in value: String) -> String? {
        var value = value
        return value.withUTF8 { CredentialSyntax.cookie(named: name.utf8, in: $0) }
    }

    func version(_ value: String) -> Int? {
        var value = value
        return value.withUTF8 { CredentialSyntax.dataVersion(ifMatch: $0) }
    }

    @Test func theBearerTokenIsReadInAnyCaseOfTheScheme() {
        #expect(self.bearer("Bearer tss_abc") == "tss_abc")
        #expect(self.bearer("bEaReR   tss_abc \t") == "tss_abc")
        #expect(self.bearer("Bearer\ttss_abc") == nil)
        #expect(self.bearer("Bearer ") == nil)
        #expect(self.bearer("Basic dXNlcg==") == nil)
        #expect(self.bearer("Bearertss_abc") == nil)
        #expect(self.bearer("") == nil)
    }

    @Test func oneCookieIsFoundAmongOthers() {
        #expect(self.cookie("tessera_session", in: "a=1; tessera_session=tss_x; b=2") == "tss_x")
        #expect(self.cookie("tessera_session", in: "tessera_session=tss_x") == "tss_x")
        #expect(self.cookie("tessera_session", in: "xtessera_session=no; tessera_session= tss_y ") == "tss_y")
        #expect(self.cookie("tessera_session", in: "tessera_sessionx=no") == nil)
        #expect(self.cookie("tessera_session", in: "tessera_session") == nil)
        #expect(self.cookie("tessera_session", in: ";;;") == nil)
        #expect(self.cookie("tessera_session", in: "tessera_session=") == "")
    }

    @Test func theDataVersionOfIfMatch() {
        #expect(self.version(#""3""#) == 3)
        #expect(self.version(#"W/"3""#) == 3)
        #expect(self.version(" 12 ") == 12)
        #expect(self.version("0") == 0)
        for refused in ["*", #""1", "2""#, "+3", "-1", #""""#, "", "W/", String(repeating: "9", count: 19), "3a", #""3"#] {
            #expect(self.version(refused) == nil, "\(refused)")
        }
    }

    func request(origin: String?, host: String? = "tessera.example:8080", fetchSite: String? = nil) -> HTTPRequest {
        var fields = HTTPFields()
        if let origin { fields[.origin] = origin }
        if let fetchSite { fields[HTTPField.Name("Sec-Fetch-Site")!] = fetchSite }
        return HTTPRequest(method: .post, scheme: "http", authority: host, path: "/v1/login", headerFields: fields)
    }

    @Test func theServicesOwnOriginAndAllowedOnesMayActOthersMayNot() throws {
        let policy = try OriginPolicy(allowedOrigins: ["https://App.Example.com/", "http://localhost:3000"])
        #expect(policy.allowedOrigins == ["https://app.example.com", "http://localhost:3000"])
        #expect(policy.allows(self.request(origin: "http://tessera.example:8080")))
        #expect(policy.allows(self.request(origin: "https://app.example.com")))
        #expect(policy.allows(self.request(origin: "https://app.example.com:443")))
        #expect(policy.allows(self.request(origin: "http://localhost:3000")))
        #expect(policy.allows(self.request(origin: nil)))
        #expect(policy.allows(self.request(origin: nil, fetchSite: "same-origin")))
        #expect(policy.allows(self.request(origin: "http://tessera.example", host: "tessera.example:80")))
        #expect(!policy.allows(self.request(origin: "https://evil.example")))
        #expect(!policy.allows(self.request(origin: "http://tessera.example:8081")))
        // The scheme is not compared: TLS may end at a proxy in front of the service.
        #expect(policy.allows(self.request(origin: "https://tessera.example:8080", host: "tessera.example:8080")))
        #expect(!policy.allows(self.request(origin: "null")))
        #expect(!policy.allows(self.request(origin: "http://localhost:3001")))
        #expect(!policy.allows(self.request(origin: nil, fetchSite: "cross-site")))
        #expect(!policy.allows(self.request(origin: "http://tessera.example:8080", host: nil)))
        #expect(throws: InvalidOriginError.self) { try OriginPolicy(allowedOrigins: ["app.example.com"]) }
        #expect(throws: InvalidOriginError.self) { try OriginPolicy(allowedOrigins: ["https://app.example.com/path"]) }
    }
}
