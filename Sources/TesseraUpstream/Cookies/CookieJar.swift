import AsyncHTTPClient
public import Foundation

/// A cookie a jar holds, as RFC 6265 §5.3 stores it.
public struct UpstreamCookie: Sendable, Hashable, Codable {
    public var name: String
    public var value: String
    /// The domain, lowercased, without a leading dot.
    public var domain: String
    /// Whether the cookie goes to `domain` alone (no `Domain` attribute was given) rather than
    /// to its subdomains too.
    public var hostOnly: Bool
    public var path: String
    /// When the cookie expires; `nil` for a session cookie.
    public var expires: Date?
    public var secure: Bool
    public var httpOnly: Bool
}

/// The cookies of one upstream session, kept by RFC 6265's rules: domain and path matching,
/// host-only cookies, expiry (`Max-Age` over `Expires`, a past date deletes), `Secure` only
/// over HTTPS, and replacement of a cookie by a later one of the same name, domain and path.
///
/// `Set-Cookie` lines are parsed by AsyncHTTPClient's `HTTPClient.Cookie` (RFC 6265 §5.2);
/// the jar adds the storage and matching model of §5.3 and §5.4, which AsyncHTTPClient does not
/// have. A value type: the session that owns it guards it.
public struct CookieJar: Sendable {
    private var cookies: [UpstreamCookie] = []
    /// Cookies per jar at most; the oldest go first.
    static let capacity = 100

    public init() {}

    /// A jar holding exactly `cookies` (a browser's, say).
    public init(cookies: [UpstreamCookie]) {
        self.cookies = cookies
    }

    /// Stores the cookies of an answer's `Set-Cookie` lines, received for `url` at `now`.
    public mutating func store(setCookie lines: [String], from url: URL, now: Date) {
        guard let host = url.host?.lowercased(), !host.isEmpty else { return }
        self.store(setCookie: lines, host: host, path: url.path, secure: url.scheme?.lowercased() == "https", now: now)
    }

    /// Stores the cookies of an answer's `Set-Cookie` lines, received at `now` for a request to
    /// `path` on `host` (lowercased), over HTTPS when `secure`.
    mutating func store(setCookie lines: [String], host: String, path requestPath: String, secure secureChannel: Bool, now: Date) {
        guard !host.isEmpty else { return }
        for line in lines {
            guard let parsed = HTTPClient.Cookie(header: line, defaultDomain: host) else { continue }
            let attributes = Self.attributeNames(of: line)
            var domain = parsed.domain ?? host
            let hostOnly = !attributes.contains("domain")
            if hostOnly {
                domain = host
            } else {
                // §5.3 step 6: a Domain attribute must domain-match the request host; a public
                // suffix check is out of scope (the pool only talks to configured sites).
                guard Self.domainMatches(host: host, domain: domain) else { continue }
            }
            // §5.3 step 12 (as browsers do it): a Secure cookie is only accepted over HTTPS.
            if parsed.secure && !secureChannel { continue }
            let path = attributes.contains("path") ? parsed.path : Self.defaultPath(of: requestPath)
            var expires: Date?
            if let maxAge = parsed.maxAge {
                expires = now.addingTimeInterval(TimeInterval(maxAge))
            } else if let date = parsed.expires {
                expires = date
            }
            let cookie = UpstreamCookie(
                name: parsed.name,
                value: parsed.value,
                domain: domain,
                hostOnly: hostOnly,
                path: path,
                expires: expires,
                secure: parsed.secure,
                httpOnly: parsed.httpOnly
            )
            self.cookies.removeAll { $0.name == cookie.name && $0.domain == cookie.domain && $0.path == cookie.path }
            if let expires, expires <= now { continue }
            self.cookies.append(cookie)
            if self.cookies.count > Self.capacity { self.cookies.removeFirst(self.cookies.count - Self.capacity) }
        }
    }

    /// The `Cookie` header for a request to `url` at `now` (RFC 6265 §5.4), or `nil` when no
    /// cookie applies. Longer paths come first.
    public func header(for url: URL, now: Date) -> String? {
        guard let host = url.host?.lowercased() else { return nil }
        return self.header(host: host, path: url.path, secure: url.scheme?.lowercased() == "https", now: now)
    }

    /// The `Cookie` header for a request to `path` on `host` (lowercased) at `now`, over HTTPS
    /// when `secure`, or `nil` when no cookie applies.
    func header(host: String, path: String, secure: Bool, now: Date) -> String? {
        let matching = self.matching(host: host, path: path, secure: secure, now: now)
        guard !matching.isEmpty else { return nil }
        return matching.map { "\($0.name)=\($0.value)" }.joined(separator: "; ")
    }

    /// The cookies that would go with a request to `url` at `now`.
    public func matching(_ url: URL, now: Date) -> [UpstreamCookie] {
        guard let host = url.host?.lowercased() else { return [] }
        return self.matching(host: host, path: url.path, secure: url.scheme?.lowercased() == "https", now: now)
    }

    /// The cookies that would go with a request to `path` on `host` at `now`: longer paths
    /// first, then those stored first.
    func matching(host: String, path: String, secure secureChannel: Bool, now: Date) -> [UpstreamCookie] {
        let path = path.isEmpty ? "/" : path
        var matching: [UpstreamCookie] = []
        for cookie in self.cookies {
            if let expires = cookie.expires, expires <= now { continue }
            if cookie.secure && !secureChannel { continue }
            let domainOK = cookie.hostOnly ? host == cookie.domain : Self.domainMatches(host: host, domain: cookie.domain)
            if domainOK && Self.pathMatches(requestPath: path, cookiePath: cookie.path) { matching.append(cookie) }
        }
        if matching.count > 1 {
            // Stable: of equal paths, the one stored first stays first.
            matching = matching.enumerated().sorted { ($0.element.path.utf8.count, -$0.offset) > ($1.element.path.utf8.count, -$1.offset) }.map(\.element)
        }
        return matching
    }

    /// Every unexpired cookie.
    public func all(now: Date) -> [UpstreamCookie] {
        self.cookies.filter { cookie in cookie.expires.map { $0 > now } ?? true }
    }

    /// Whether the jar holds an unexpired cookie named `name`.
    public func contains(name: String, now: Date) -> Bool {
        self.all(now: now).contains { $0.name == name }
    }

    /// The lowercased attribute names of a `Set-Cookie` line (after its first `name=value`).
    static func attributeNames(of line: String) -> Set<String> {
        var names = Set<String>()
        for part in line.split(separator: ";").dropFirst() {
            let name = part.split(separator: "=", maxSplits: 1).first.map(String.init) ?? ""
            names.insert(name.trimmingCharacters(in: .whitespaces).lowercased())
        }
        return names
    }

    /// RFC 6265 §5.1.3.
    static func domainMatches(host: String, domain: String) -> Bool {
        if host == domain { return true }
        // An IP address only matches itself.
        if host.allSatisfy({ $0.isNumber || $0 == "." || $0 == ":" }) { return false }
        return host.hasSuffix("." + domain)
    }

    /// RFC 6265 §5.1.4.
    static func pathMatches(requestPath: String, cookiePath: String) -> Bool {
        if requestPath == cookiePath { return true }
        guard requestPath.hasPrefix(cookiePath) else { return false }
        return cookiePath.hasSuffix("/") || requestPath.dropFirst(cookiePath.count).first == "/"
    }

    /// RFC 6265 §5.1.4's default path: the request path up to its last `/`.
    static func defaultPath(of path: String) -> String {
        guard path.hasPrefix("/"), let slash = path.lastIndex(of: "/"), slash != path.startIndex else { return "/" }
        return String(path[..<slash])
    }
}
