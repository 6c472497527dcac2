public import HTTPTypes

/// Which web origins may log a browser in and act with its session cookie: the service's own,
/// and those an operator allows (`--allowed-origins`).
///
/// A foreign page can make a browser send a form `POST` with its cookies (and, with
/// `enctype=text/plain`, a body that parses as JSON); the browser tells where it came from in
/// `Origin` (and `Sec-Fetch-Site`). A request is allowed when:
///
/// - its `Origin` names the host (and port) the request was sent to (`Host`), or is in
///   ``allowedOrigins``; or
/// - it has no `Origin` and its `Sec-Fetch-Site` is not `cross-site`: not a browser, or a
///   browser that sends no `Origin` for a same-origin request.
///
/// `Origin: null` (a sandboxed frame, a file, some redirects) is refused.
public struct OriginPolicy: Sendable, Hashable {
    /// Origins besides the service's own, normalized (`https://app.example.com`, lower case, no
    /// default port).
    public let allowedOrigins: Set<String>

    /// - Parameter allowedOrigins: origins such as `https://app.example.com:8443`.
    /// - Throws: ``InvalidOriginError`` for a value that is not `http(s)://host[:port]`.
    public init(allowedOrigins: some Sequence<String> = []) throws {
        var normalized: Set<String> = []
        for origin in allowedOrigins {
            guard let parsed = Origin(origin) else { throw InvalidOriginError(origin: origin) }
            normalized.insert(parsed.serialized)
        }
        self.allowedOrigins = normalized
    }

    /// The policy that allows the service's own origin alone.
    public static let sameOrigin = OriginPolicy(normalized: [])

    private init(normalized: Set<String>) {
        self.allowedOrigins = normalized
    }

    /// Whether a request may log in or act with the session cookie.
    public func allows(_ request: HTTPRequest) -> Bool {
        let headers = request.headerFields
        guard let value = headers[.origin] else {
            return headers[Self.secFetchSite]?.lowercased() != "cross-site"
        }
        guard let origin = Origin(value) else { return false }
        if self.allowedOrigins.contains(origin.serialized) { return true }
        // The host the request was sent to (HTTP/1.1's `Host`).
        guard let host = request.authority.flatMap({ Authority($0, scheme: origin.scheme) }) else { return false }
        return host.host == origin.host && host.port == origin.port
    }

    static let secFetchSite = HTTPField.Name("Sec-Fetch-Site")!
}

/// A value of `--allowed-origins` that is not an origin.
public struct InvalidOriginError: Error, Sendable, CustomStringConvertible {
    public var origin: String
    public var description: String {
        "'\(self.origin)' is not an origin; write it as scheme://host or scheme://host:port, such as https://app.example.com."
    }
}

/// A web origin: `http` or `https`, a host, a port.
struct Origin: Hashable {
    var scheme: String
    var host: String
    var port: Int

    /// Parses `scheme://host[:port]` (a trailing `/` tolerated); `nil` for anything else,
    /// `null` included.
    init?(_ text: String) {
        let lowered = text.lowercased()
        let scheme: String
        let rest: Substring
        if lowered.hasPrefix("https://") {
            scheme = "https"
            rest = lowered.dropFirst(8)
        } else if lowered.hasPrefix("http://") {
            scheme = "http"
            rest = lowered.dropFirst(7)
        } else {
            return nil
        }
        var authorityText = rest
        if authorityText.hasSuffix("/") { authorityText.removeLast() }
        guard let authority = Authority(String(authorityText), scheme: scheme) else { return nil }
        self.scheme = scheme
        self.host = authority.host
        self.port = authority.port
    }

    /// As browsers write it: the port only when it is not the scheme's default.
    var serialized: String {
        self.port == Authority.defaultPort(self.scheme) ? "\(self.scheme)://\(self.host)" : "\(self.scheme)://\(self.host):\(self.port)"
    }
}

/// `host[:port]`, as `Host` or an origin carries it; the port defaults to the scheme's.
struct Authority: Hashable {
    var host: String
    var port: Int

    init?(_ text: String, scheme: String) {
        let lowered = text.lowercased()
        var host = Substring(lowered)
        var port = Self.defaultPort(scheme)
        // An IPv6 literal is bracketed; a port follows the last ':' outside the brackets.
        if let colon = host.lastIndex(of: ":"), !host[colon...].contains("]") {
            guard let parsed = Int(host[host.index(after: colon)...]), (1...65535).contains(parsed) else { return nil }
            port = parsed
            host = host[..<colon]
        }
        guard !host.isEmpty,
            host.allSatisfy({ $0.isLetter || $0.isNumber || $0 == "." || $0 == "-" || $0 == "[" || $0 == "]" || $0 == ":" || $0 == "_" })
        else { return nil }
        self.host = String(host)
        self.port = port
    }

    static func defaultPort(_ scheme: String) -> Int { scheme == "https" ? 443 : 80 }
}
