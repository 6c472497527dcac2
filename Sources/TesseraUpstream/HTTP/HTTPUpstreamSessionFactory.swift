public import AsyncHTTPClient
public import Foundation
import NIOCore
import Synchronization
public import NIOSSL
public import Tessera

/// The HTTP kind of upstream session: a login request with the recipe's fields, then a cookie
/// jar per session. Every session of the upstream shares its connections
/// (``UpstreamConnectionPool``: kept open between requests; cookies are not shared). Redirects
/// are never followed, so a redirect to the login page is seen.
public struct HTTPUpstreamSessionFactory: UpstreamSessionFactory {
    let configuration: UpstreamConfiguration
    let origin: UpstreamOrigin
    /// The base URL's path without its trailing `/`: the prefix of every request's path.
    let basePath: String
    let connections: UpstreamConnectionPool
    let clock: any WallClock
    let environment: [String: String]
    let reader: UpstreamVerdictReader

    /// - Parameters:
    ///   - configuration: the upstream (validated)
    ///   - tlsConfiguration: how an `https` site is trusted; by default the system's trust roots
    ///     and the site's name checked
    ///   - clock: the clock cookie expiry is read on
    ///   - environment: where `env` login fields are read
    public init(
        configuration: UpstreamConfiguration,
        tlsConfiguration: TLSConfiguration? = nil,
        clock: any WallClock = SystemClock(),
        environment: [String: String] = ProcessInfo.processInfo.environment
    ) throws {
        guard let baseURL = URL(string: configuration.baseURL), let scheme = baseURL.scheme?.lowercased(), scheme == "http" || scheme == "https",
            let host = baseURL.host?.lowercased(), !host.isEmpty
        else {
            throw UpstreamConfigurationError(upstream: configuration.name, message: "baseURL is not an http or https URL")
        }
        let tls = scheme == "https"
        // An IPv6 host may come bracketed: the brackets go (the Host field puts them back).
        let bare = host.hasPrefix("[") && host.hasSuffix("]") ? String(host.dropFirst().dropLast()) : host
        self.origin = UpstreamOrigin(host: bare, port: baseURL.port ?? (tls ? 443 : 80), tls: tls)
        // The path as written (still percent-encoded): requests go below it byte for byte.
        let path = URLComponents(string: configuration.baseURL)?.percentEncodedPath ?? ""
        self.basePath = path.hasSuffix("/") ? String(path.dropLast()) : path
        self.connections = try UpstreamConnectionPool(origin: self.origin, tlsConfiguration: tlsConfiguration)
        self.configuration = configuration
        self.clock = clock
        self.environment = environment
        self.reader = UpstreamVerdictReader(configuration: configuration)
    }

    /// An `HTTPClient` for what is not a request to the site in a session (WebDriver commands
    /// of the browser kind): no redirects followed, bounded connect time.
    ///
    /// `readTimeout` ends an answer that sends no byte for that long.
    public static func makeHTTPClient(readTimeout: Double = 30) -> HTTPClient {
        var configuration = HTTPClient.Configuration(
            redirectConfiguration: .disallow,
            timeout: .init(connect: .seconds(5), read: .milliseconds(Int64(readTimeout * 1000)))
        )
        configuration.httpVersion = .http1Only
        configuration.connectionPool = .init(idleTimeout: .seconds(60), concurrentHTTP1ConnectionsPerHostSoftLimit: 256)
        return HTTPClient(eventLoopGroupProvider: .singleton, configuration: configuration)
    }

    /// Closes the connections to the site.
    public func shutdown() async {
        await self.connections.shutdown()
    }

    public func logIn(account: UpstreamConfiguration.Account) async throws -> any UpstreamSessionConnection {
        let recipe = self.configuration.login
        var values: [(String, String)] = []
        do {
            for (field, source) in recipe.fields.merging(account.fields, uniquingKeysWith: { $1 }).sorted(by: { $0.key < $1.key }) {
                values.append((field, try source.resolve(field: field, upstream: self.configuration.name, environment: self.environment)))
            }
        } catch let error as UpstreamConfigurationError {
            throw UpstreamLoginError(.refused, reason: error.message)
        }
        let session = HTTPUpstreamSession(factory: self)
        if let formToken = recipe.formToken {
            values.append((formToken.field, try await self.fetchFormToken(formToken, session: session)))
        }
        let body: ByteBuffer
        let contentType: String
        if recipe.encoding == "json" {
            let object = Dictionary(values, uniquingKeysWith: { $1 })
            body = ByteBuffer(bytes: try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys]))
            contentType = "application/json"
        } else {
            body = ByteBuffer(string: values.map { "\(Self.formEncode($0.0))=\(Self.formEncode($0.1))" }.joined(separator: "&"))
            contentType = "application/x-www-form-urlencoded"
        }
        let request = UpstreamRequest(
            method: recipe.method,
            pathAndQuery: recipe.path,
            headers: [("content-type", contentType), ("accept", "text/html,application/json;q=0.9,*/*;q=0.8")],
            body: recipe.method == "GET" ? nil : body
        )
        let response: UpstreamResponse
        do {
            response = try await session.send(request)
        } catch let error as UpstreamTransportError {
            throw UpstreamLoginError(.unreachable, reason: "the login request got no answer: \(error.reason)")
        }
        try self.check(loginResponse: response, session: session)
        return session
    }

    /// Fetches the page that carries the login form's one-time token (keeping the cookies it
    /// sets, which the token belongs to) and reads the token.
    func fetchFormToken(_ formToken: UpstreamConfiguration.FormToken, session: HTTPUpstreamSession) async throws -> String {
        let path = formToken.path ?? self.configuration.login.path
        let page: UpstreamResponse
        do {
            page = try await session.send(UpstreamRequest(method: "GET", pathAndQuery: path, headers: [("accept", "text/html")]))
        } catch let error as UpstreamTransportError {
            throw UpstreamLoginError(.unreachable, reason: "the login page got no answer: \(error.reason)")
        }
        try Self.refuseUnavailable(self.reader.verdict(on: page), status: page.status, what: "the login page \(path)")
        guard (200...299).contains(page.status) else {
            throw UpstreamLoginError(.refused, reason: "the login page \(path) answered \(page.status)")
        }
        guard let token = FormTokenReader.value(named: formToken.field, in: String(buffer: page.body)) else {
            throw UpstreamLoginError(.refused, reason: "the login page \(path) carried no form token '\(formToken.field)'")
        }
        return token
    }

    /// Throws when an answer's verdict is rate-limited or transient: the site did not refuse the
    /// account, it could not serve the login now.
    static func refuseUnavailable(_ verdict: UpstreamVerdict, status: Int, what: String) throws {
        switch verdict {
        case .rateLimited(let retryAfter):
            throw UpstreamLoginError(.rateLimited(retryAfter: retryAfter), reason: "\(what) was 429")
        case .transient:
            throw UpstreamLoginError(.unreachable, reason: "\(what) was \(status)")
        case .ok, .expired, .blocked:
            return
        }
    }

    func check(loginResponse response: UpstreamResponse, session: HTTPUpstreamSession) throws {
        let success = self.configuration.login.success
        let verdict = self.reader.verdict(on: response)
        try Self.refuseUnavailable(verdict, status: response.status, what: "the login answer")
        guard success.status.contains(response.status) else {
            throw UpstreamLoginError(.refused, reason: "the login answer was \(response.status), not one of \(success.status)")
        }
        let setCookies = response.headers("set-cookie")
        if let name = success.cookie {
            guard session.jar.withLock({ $0.contains(name: name, now: self.clock.now) }) else {
                throw UpstreamLoginError(.refused, reason: "the login answer did not set the cookie \(name)")
            }
        } else if setCookies.isEmpty {
            throw UpstreamLoginError(.refused, reason: "the login answer set no cookie")
        }
        if let phrase = success.bodyContains {
            let body = String(buffer: response.body).lowercased()
            guard body.contains(phrase.lowercased()) else {
                throw UpstreamLoginError(.refused, reason: "the login answer did not contain the success phrase")
            }
        }
        if self.reader.bodyHasExpiryPhrase(response) || verdict == .blocked {
            throw UpstreamLoginError(.refused, reason: "the login answer is a 'not logged in' or blocked page")
        }
    }

    /// `application/x-www-form-urlencoded` encoding of one name or value.
    static func formEncode(_ string: String) -> String {
        var allowed = CharacterSet.alphanumerics
        allowed.insert(charactersIn: "-._*")
        let encoded = string.addingPercentEncoding(withAllowedCharacters: allowed) ?? ""
        return encoded.replacingOccurrences(of: "%20", with: "+")
    }
}
