import Testing

@testable import TesseraUpstream

/// The proxied path builder on its own: what stays below the base path, and what is refused.
@Suite struct UpstreamPathTests {
    func build(_ raw: String, base: String = "/app") throws -> String {
        let (path, query) = raw.firstIndex(of: "?").map { (String(raw[..<$0]), raw[raw.index(after: $0)...]) } ?? (raw, nil)
        return try UpstreamPath(basePath: base, segments: path.split(separator: "/", omittingEmptySubsequences: false), query: query).pathAndQuery
    }

    @Test(arguments: [
        ("bookings/42", "/app/bookings/42"), ("bookings/42?q=1&r=%20", "/app/bookings/42?q=1&r=%20"), ("", "/app/"),
        ("trailing/", "/app/trailing/"), ("a%2Bb/c+d", "/app/a%2Bb/c+d"), ("caf%c3%a9", "/app/caf%c3%a9"),
        ("sp ace/qu\"ote", "/app/sp%20ace/qu%22ote"), ("café", "/app/caf%C3%A9"), ("x?a=%ff", "/app/x?a=%ff"),
        ("x?frag#ment", "/app/x?frag%23ment"), ("...", "/app/..."), ("a..b/.hidden", "/app/a..b/.hidden"),
    ])
    func ordinaryPathsStayBelowTheBase(raw: String, expected: String) throws {
        #expect(try self.build(raw) == expected)
    }

    @Test(arguments: [
        "..", "../v1/session", "a/../../b", ".", "a/./b", "%2e%2e", "%2E%2e/x", ".%2e", "%2e.", "%2e", "..%2fv1", "a%2Fb", "a%5cb",
        "%", "%4", "%zz", "a%00b", "a%1fb", "a%7fb", "bookings/%ff", "%c3", "a\u{1}b", "x?q=%", "x?q=%0a",
    ])
    func pathsThatCouldEscapeOrMislead(raw: String) {
        #expect(throws: UpstreamPathError.self, "\(raw.debugDescription)") { try self.build(raw) }
    }

    @Test func aRootBaseAndTheRequestPathsSegments() throws {
        #expect(try self.build("a/b", base: "") == "/a/b")
        #expect(try self.build("a/b", base: "/") == "/a/b")
        #expect(try self.build("a", base: "/app/") == "/app/a")
        #expect(UpstreamPath.segments(of: "/v1/upstreams/portal/proxy/a/b%2F/c", after: 4) == ["a", "b%2F", "c"])
        #expect(UpstreamPath.segments(of: "/v1/upstreams/portal/proxy/", after: 4) == [""])
        #expect(UpstreamPath.segments(of: "/v1/upstreams", after: 4) == nil)
    }
}
