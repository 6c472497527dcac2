public import AsyncHTTPClient
public import Foundation
import NIOCore
import NIOHTTP1
import Synchronization
public import Tessera

/// The HTTP kind of upstream session: a login request with the recipe's fields, then a cookie
/// jar per session. Every session shares one `HTTPClient` (connections are reused; cookies are
/// not shared). Redirects are never followed, so a redirect to the login page is seen.
public struct HTTPUpstreamSessionFactory: UpstreamSessionFactory {
    let configuration: UpstreamConfiguration
    let baseURL: URL
    let client: HTTPClient
    let clock: any WallClock
    let environment: [String: String]
    let reader: UpstreamVerdictReader

    /// - Parameters:
    ///   - configuration: the upstream (validated)
    ///   - client: an `HTTPClient` that does not follow redirects (see ``makeHTTPClient()``)
    ///   - clock: the clock cookie expiry is read on
    ///   - environment: where `env` login fields are read
    public init(
        configuration: UpstreamConfiguration,
        client: HTTPClient,
        clock: any WallClock = SystemClock(),
        environment: [String: String] = ProcessInfo.processInfo.environment
    ) throws {
        guard let baseURL = URL(string: configuration.baseURL) else {
            throw UpstreamConfigurationError(upstream: configuration.name, message: "baseURL is not a URL")
        }
        self.configuration = configuration
        self.baseURL = baseURL
        self.client = client
        self.clock = clock
        self.environment = environment
        self.reader = UpstreamVerdictReader(configuration: configuration)
    }

    /// An `HTTPClient` as the pool needs it: no redirects followed, bounded connect time, and
    /// up to 256 connections per site (a pool's largest size), so that sessions do not queue
    /// behind each other for a connection.
    ///
    /// `readTimeout` ends an answer whose site sends no byte for that long (the pools' longest
    /// `requestTimeout`): the deadline of a request covers its answer's head, this its body.
    public static func makeHTTPClient(readTimeout: Double = 30) -> HTTPClient {
        var configuration = HTTPClient.Configuration(
            redirectConfiguration: .disallow,
            timeout: .init(connect: .seconds(5), read: .milliseconds(Int64(readTimeout * 1000)))
        )
        configuration.httpVersion = .http1Only
        configuration.connectionPool = .init(idleTimeout: .seconds(60), concurrentHTTP1ConnectionsPerHostSoftLimit: 256)
        return HTTPClient(eventLoopGroupProvider: .singleton, configuration: configuration)
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

/// One HTTP session: the shared client and its own cookie jar.
final class HTTPUpstreamSession: UpstreamSessionConnection {
    let factory: HTTPUpstreamSessionFactory
    let jar = Mutex(CookieJar())

    init(factory: HTTPUpstreamSessionFactory) {
        self.factory = factory
    }

    func send(_ request: UpstreamRequest) async throws -> UpstreamResponse {
        let limit = self.factory.configuration.maxBodyBytes
        // The whole body is read (for the verdict, a login's phrases), up to the limit.
        let answer = try await self.stream(request) { _ in limit + 1 }
        return try await answer.collected(upTo: limit)
    }

    func stream(_ request: UpstreamRequest, scanBytes: @Sendable (UpstreamResponse) -> Int) async throws -> UpstreamStreamedResponse {
        let base =
            self.factory.configuration.baseURL.hasSuffix("/")
            ? String(self.factory.configuration.baseURL.dropLast()) : self.factory.configuration.baseURL
        guard let url = URL(string: base + request.pathAndQuery) else {
            throw UpstreamTransportError(reason: "the request path is not a valid URL", requestSent: false)
        }
        var outgoing = HTTPClientRequest(url: url.absoluteString)
        outgoing.method = HTTPMethod(rawValue: request.method)
        for (name, value) in request.headers where !asciiCaseInsensitiveEquals(name, "cookie") && !asciiCaseInsensitiveEquals(name, "traceparent") {
            outgoing.headers.add(name: name, value: value)
        }
        // The request served now belongs to a caller's trace: this call is a child in it.
        if let trace = TraceContext.current {
            outgoing.headers.add(name: "traceparent", value: trace.child())
        }
        if let cookie = self.jar.withLock({ $0.header(for: url, now: self.factory.clock.now) }) {
            outgoing.headers.add(name: "cookie", value: cookie)
        }
        if let stream = request.bodyStream {
            outgoing.body = .stream(stream.chunks, length: stream.length.map { .known(Int64($0)) } ?? .unknown)
        } else if let body = request.body {
            outgoing.body = .bytes(body)
        }
        // The deadline covers the answer's head; the body's chunks are bounded by the client's
        // read timeout (no byte for that long ends it).
        let timeout = TimeAmount.milliseconds(Int64(self.factory.configuration.requestTimeout * 1000))
        let response: HTTPClientResponse
        do {
            response = try await self.factory.client.execute(outgoing, timeout: timeout)
        } catch let error as TesseraError {
            // The client's streamed body failed (past its limit): its error, as it is.
            throw error
        } catch let error as HTTPClientError {
            throw UpstreamTransportError(reason: "\(error)", requestSent: Self.maySend(error))
        } catch {
            // Connection refused and name resolution fail before any byte is sent.
            throw UpstreamTransportError(reason: "\(error)", requestSent: false)
        }
        let headers = response.headers.map { (name: $0.name, value: $0.value) }
        let setCookie = response.headers["set-cookie"]
        if !setCookie.isEmpty {
            self.jar.withLock { $0.store(setCookie: setCookie, from: url, now: self.factory.clock.now) }
        }
        let status = Int(response.status.code)
        // One iterator for the first bytes and the rest: the body, read by one task at a time.
        var iterator = response.body.makeAsyncIterator()
        let body = UpstreamBodyRest { try await iterator.next() }
        let wanted = scanBytes(UpstreamResponse(status: status, headers: headers))
        var head = ByteBuffer()
        var ended = false
        while head.readableBytes < wanted {
            guard var chunk = try await body.next() else {
                ended = true
                break
            }
            head.writeBuffer(&chunk)
        }
        return UpstreamStreamedResponse(status: status, headers: headers, head: head, rest: ended ? nil : body, scannedBytes: wanted)
    }

    /// Whether the site may have received the request when `error` ended it.
    static func maySend(_ error: HTTPClientError) -> Bool {
        switch error {
        case .connectTimeout, .invalidURL, .emptyHost, .emptyScheme: return false
        default: return true
        }
    }

    func cookies() -> [UpstreamCookie] {
        self.jar.withLock { $0.all(now: self.factory.clock.now) }
    }

    func close() async {
        self.jar.withLock { $0 = CookieJar() }
    }
}
