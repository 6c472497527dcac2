import Foundation
public import Hummingbird
public import Logging
public import Tessera
public import TesseraTokens
public import TesseraUpstream

/// Tessera's HTTP API: log in, who am I, log out, list and revoke sessions, session data, and
/// service-created sessions. ``buildRouter()`` makes a Hummingbird router of it.
public struct TesseraHTTPService: Sendable {
    /// Settings of the HTTP API.
    public struct Configuration: Sendable {
        /// The session cookie's settings (`secure` when served over HTTPS).
        public var cookie: SessionCookie
        /// Whether to take the client address from `X-Forwarded-For` (only behind a reverse proxy
        /// that sets it).
        public var trustForwardedFor: Bool
        /// The level at which every request is logged (method and path), or `nil` to log none:
        /// a service whose log level is above it saves a middleware per request.
        public var requestLogLevel: Logger.Level?
        /// How the correlation id reaches each request's log lines: `.metadataProvider` saves a
        /// logger copy per request, for loggers that carry ``CorrelationID/metadataProvider``.
        public var correlationIDLogging: CorrelationIDLogging

        public init(
            cookie: SessionCookie = .init(),
            trustForwardedFor: Bool = false,
            requestLogLevel: Logger.Level? = .debug,
            correlationIDLogging: CorrelationIDLogging = .loggerMetadata
        ) {
            self.cookie = cookie
            self.trustForwardedFor = trustForwardedFor
            self.requestLogLevel = requestLogLevel
            self.correlationIDLogging = correlationIDLogging
        }
    }

    /// An operation of the API, as the router serves it and `openapi.yaml` documents it.
    public struct Operation: Sendable, Hashable, CustomStringConvertible {
        public var method: String
        public var path: String
        public var description: String { "\(self.method) \(self.path)" }
    }

    public let sessions: SessionManager
    public let login: PasswordLogin
    public let serviceKey: ServiceAPIKey?
    /// Token mode (access and refresh tokens); `nil` refuses `"mode": "token"` and serves no
    /// refresh, key set or introspection.
    public let tokens: TokenService?
    /// The upstream session pools served under `/v1/upstreams`.
    public let upstreams: UpstreamPools
    public let configuration: Configuration
    let usernames = UsernameCache()

    /// - Parameters:
    ///   - login: checks passwords and creates sessions (its ``PasswordLogin/sessions`` serve the rest)
    ///   - serviceKey: the key for `POST /v1/sessions` and `POST /v1/introspect`; with `nil`,
    ///     those operations are refused
    ///   - tokens: token mode; its ``TokenService/sessions`` must be the login's
    ///   - upstreams: the upstream session pools (none by default)
    ///   - configuration: cookie and proxy settings
    public init(
        login: PasswordLogin,
        serviceKey: ServiceAPIKey?,
        tokens: TokenService? = nil,
        upstreams: UpstreamPools = UpstreamPools(pools: []),
        configuration: Configuration = .init()
    ) {
        self.sessions = login.sessions
        self.login = login
        self.serviceKey = serviceKey
        self.tokens = tokens
        self.upstreams = upstreams
        self.configuration = configuration
    }

    /// Every operation the router serves, in the order they are registered.
    public static let operations: [Operation] =
        [
            .init(method: "GET", path: "/healthz"),
            .init(method: "GET", path: "/readyz"),
            .init(method: "GET", path: "/openapi.yaml"),
            .init(method: "POST", path: "/v1/login"),
            .init(method: "POST", path: "/v1/sessions"),
            .init(method: "GET", path: "/v1/session"),
            .init(method: "PATCH", path: "/v1/session/data"),
            .init(method: "POST", path: "/v1/logout"),
            .init(method: "GET", path: "/v1/sessions"),
            .init(method: "DELETE", path: "/v1/sessions"),
            .init(method: "DELETE", path: "/v1/sessions/{id}"),
            .init(method: "POST", path: "/v1/token/refresh"),
            .init(method: "GET", path: "/.well-known/jwks.json"),
            .init(method: "POST", path: "/v1/introspect"),
            .init(method: "GET", path: "/v1/upstreams"),
            .init(method: "POST", path: "/v1/upstreams/{name}/session"),
            .init(method: "DELETE", path: "/v1/upstreams/{name}/session/{lease}"),
        ] + Self.proxiedMethods.map { .init(method: $0.rawValue, path: "/v1/upstreams/{name}/proxy/{path}") }

    /// The router of the whole API.
    public func buildRouter() -> Router<TesseraRequestContext> {
        let router = Router(context: TesseraRequestContext.self)
        // The correlation middleware also turns errors into the one JSON shape, as
        // ErrorMiddleware would (applications that mount the authenticator use that one).
        router.add(middleware: CorrelationIDMiddleware(logging: self.configuration.correlationIDLogging))
        if let level = self.configuration.requestLogLevel {
            router.add(middleware: LogRequestsMiddleware(level))
        }

        router.get("/healthz") { _, _ in Response.json(StatusResponse(status: "ok")) }
        router.get("/readyz") { _, _ in
            try await self.sessions.store.ping()
            return Response.json(StatusResponse(status: "ready"))
        }
        router.get("/openapi.yaml") { _, _ in
            Response(
                status: .ok,
                headers: [.contentType: "application/yaml; charset=utf-8"],
                body: .init(byteBuffer: ByteBuffer(string: OpenAPIDocument.text))
            )
        }
        router.post("/v1/login", use: self.logIn)

        router.group("/v1/sessions")
            .add(middleware: ServiceKeyMiddleware(key: self.serviceKey))
            .post(use: self.createSession)

        let authenticated = router.group("/v1")
            // Handlers name the session on the lines they write, so that a request that writes none
            // (nearly all: who-am-I) does not pay for a logger copy.
            .add(
                middleware: TesseraAuthenticator(
                    sessions: self.sessions,
                    cookie: self.configuration.cookie,
                    tokens: self.tokens,
                    logsSessionID: false
                )
            )
        authenticated.get("/session", use: self.whoAmI)
        authenticated.patch("/session/data", use: self.updateData)
        authenticated.post("/logout", use: self.logOut)
        authenticated.get("/sessions", use: self.listSessions)
        authenticated.delete("/sessions", use: self.revokeSessions)
        authenticated.delete("/sessions/{id}", use: self.revokeSession)

        router.post("/v1/token/refresh", use: self.refreshTokens)
        router.get("/.well-known/jwks.json", use: self.jwks)
        router.group("/v1/introspect")
            .add(middleware: ServiceKeyMiddleware(key: self.serviceKey))
            .post(use: self.introspect)
        self.addUpstreamRoutes(to: router)
        return router
    }

    // MARK: Login and logout

    struct LoginRequest: Decodable {
        var username: String
        var password: String
        var label: String?
        var mode: String?
    }

    /// The token service, for the operations that exist only in token mode.
    func requireTokens() throws -> TokenService {
        guard let tokens = self.tokens else { throw TesseraError.notFound("Token mode is not enabled on this service.") }
        return tokens
    }

    /// The token service for a request's `mode`, or `nil` for cookie mode.
    func tokenService(mode: String?) throws -> TokenService? {
        switch mode {
        case nil, "cookie": return nil
        case "token":
            guard let tokens = self.tokens else { throw TesseraError.invalidField("Token mode is not enabled on this service.") }
            return tokens
        default: throw TesseraError.invalidField("The mode must be 'cookie' or 'token'.")
        }
    }

    @Sendable func logIn(_ request: Request, context: TesseraRequestContext) async throws -> Response {
        let body = try await JSONCoding.decode(LoginRequest.self, from: request, limit: 8 * 1024)
        guard (1...256).contains(body.username.count) else { throw TesseraError.invalidField("The username must be 1 to 256 characters.") }
        guard (1...1024).contains(body.password.utf8.count) else {
            throw TesseraError.invalidField("The password must be 1 to 1024 bytes.")
        }
        let label = try Self.label(body.label)
        let tokens = try self.tokenService(mode: body.mode)
        let address = self.clientAddress(request, context: context)
        let result = try await self.login.login(
            username: body.username,
            password: body.password,
            clientAddress: address,
            metadata: self.metadata(request, address: address, label: label),
            credential: tokens == nil ? .sessionToken : .tokenMode
        )
        context.logger.info("Logged in", metadata: ["session_id": .string(result.session.id), "user_id": .string(result.user.id)])
        if let tokens {
            let issued = try await tokens.issueTokens(for: result.session)
            return Response.json(TokenResponse(issued, user: UserBody(id: result.user.id, username: result.user.username)))
        }
        var response = Response.json(
            LoginResponse(
                session: SessionBody(result.session),
                user: UserBody(id: result.user.id, username: result.user.username),
                csrfToken: result.session.csrfToken
            )
        )
        response.setCookie(self.configuration.cookie.cookie(token: result.token, session: result.session, now: self.sessions.clock.now))
        return response
    }

    @Sendable func logOut(_ request: Request, context: TesseraRequestContext) async throws -> Response {
        let current = try context.requireSession().session
        try await self.sessions.revoke(sessionID: current.id, reason: "logout")
        context.logger.info("Logged out", metadata: ["session_id": .string(current.id)])
        var response = Response(status: .noContent)
        response.setCookie(self.configuration.cookie.clearing())
        return response
    }

    // MARK: The current session

    @Sendable func whoAmI(_ request: Request, context: TesseraRequestContext) async throws -> Response {
        let authenticated = try context.requireSession()
        let username = try await self.usernames.username(of: authenticated.session.userID, in: self.sessions.store)
        // The hot path: written directly, as JSONEncoder would write `WhoAmIResponse`.
        var writer = JSONWriter()
        writer.beginObject()
        if authenticated.credential == .cookie {
            writer.key("csrfToken")
            writer.string(authenticated.session.csrfToken)
        }
        writer.key("session")
        writer.session(authenticated.session)
        writer.key("user")
        writer.beginObject()
        writer.key("id")
        writer.string(authenticated.session.userID)
        if let username {
            writer.key("username")
            writer.string(username)
        }
        writer.endObject()
        writer.endObject()
        return Response(
            status: .ok,
            // Cache-Control: no-store comes from the authenticator, as on every authenticated answer.
            headers: [.contentType: "application/json; charset=utf-8", .eTag: Self.eTag(authenticated.session.dataVersion)],
            body: .init(byteBuffer: writer.buffer)
        )
    }

    @Sendable func updateData(_ request: Request, context: TesseraRequestContext) async throws -> Response {
        let session = try context.requireSession().session
        guard let ifMatch = request.headers[.ifMatch] else { throw TesseraError.preconditionRequired }
        guard let version = Self.version(ifMatch: ifMatch) else {
            throw TesseraError.invalidField("If-Match must be the data version you read, such as \"3\".")
        }
        let patch = try await JSONCoding.decode([String: JSONValue].self, from: request, limit: 32 * 1024)
        let updated = try await self.sessions.updateData(of: session, expectedVersion: version, patch: patch)
        return Response.json(SessionResponse(session: SessionBody(updated)), headers: [.eTag: Self.eTag(updated.dataVersion)])
    }

    // MARK: The caller's sessions

    @Sendable func listSessions(_ request: Request, context: TesseraRequestContext) async throws -> Response {
        let current = try context.requireSession().session
        let sessions = try await self.sessions.activeSessions(userID: current.userID)
        return Response.json(SessionListResponse(sessions: sessions.map { SessionBody($0, current: $0.id == current.id) }))
    }

    @Sendable func revokeSession(_ request: Request, context: TesseraRequestContext) async throws -> Response {
        let current = try context.requireSession().session
        let id = try context.parameters.require("id")
        guard try await self.sessions.revoke(sessionID: id, ofUser: current.userID, reason: "user") else {
            throw TesseraError.notFound("No active session with that id.")
        }
        context.logger.info("Revoked session", metadata: ["session_id": .string(current.id), "revoked_session_id": .string(id)])
        var response = Response(status: .noContent)
        if id == current.id {
            response.setCookie(self.configuration.cookie.clearing())
        }
        return response
    }

    @Sendable func revokeSessions(_ request: Request, context: TesseraRequestContext) async throws -> Response {
        let current = try context.requireSession().session
        let scope = request.uri.queryParameters["scope"].map(String.init)
        let revoked: Int
        switch scope {
        case "others":
            revoked = try await self.sessions.revokeAll(userID: current.userID, keeping: current.id, reason: "user")
        case "all":
            revoked = try await self.sessions.revokeAll(userID: current.userID, reason: "user")
        default:
            throw TesseraError.invalidField("The scope parameter must be 'others' or 'all'.")
        }
        context.logger.info(
            "Revoked sessions",
            metadata: ["session_id": .string(current.id), "scope": .string(scope ?? ""), "count": "\(revoked)"]
        )
        var response = Response.json(RevokedCountResponse(revoked: revoked))
        if scope == "all" {
            response.setCookie(self.configuration.cookie.clearing())
        }
        return response
    }

    // MARK: Service-created sessions

    struct CreateSessionRequest: Decodable {
        var subject: String
        var data: [String: JSONValue]?
        var label: String?
        var mode: String?
    }

    @Sendable func createSession(_ request: Request, context: TesseraRequestContext) async throws -> Response {
        let body = try await JSONCoding.decode(CreateSessionRequest.self, from: request, limit: 32 * 1024)
        guard (1...256).contains(body.subject.count) else { throw TesseraError.invalidField("The subject must be 1 to 256 characters.") }
        let label = try Self.label(body.label)
        let address = self.clientAddress(request, context: context)
        if let tokens = try self.tokenService(mode: body.mode) {
            let issued = try await tokens.createSession(
                userID: body.subject,
                data: body.data ?? [:],
                metadata: self.metadata(request, address: address, label: label)
            )
            context.logger.info("Created token-mode session for a subject", metadata: ["session_id": .string(issued.session.id)])
            return Response.json(
                TokenResponse(issued, user: UserBody(id: body.subject, username: nil)),
                status: .created,
                headers: [.eTag: Self.eTag(issued.session.dataVersion)]
            )
        }
        let created = try await self.sessions.createSession(
            userID: body.subject,
            data: body.data ?? [:],
            metadata: self.metadata(request, address: address, label: label)
        )
        context.logger.info("Created session for a subject", metadata: ["session_id": .string(created.session.id)])
        return Response.json(
            CreatedSessionResponse(session: SessionBody(created.session), token: created.token.rawValue, csrfToken: created.session.csrfToken),
            status: .created,
            headers: [.eTag: Self.eTag(created.session.dataVersion)]
        )
    }

    // MARK: Token mode

    struct RefreshRequest: Decodable {
        var refreshToken: String
    }

    @Sendable func refreshTokens(_ request: Request, context: TesseraRequestContext) async throws -> Response {
        let tokens = try self.requireTokens()
        let body = try await JSONCoding.decode(RefreshRequest.self, from: request, limit: 4 * 1024)
        let issued: TokenService.Tokens
        do {
            issued = try await tokens.refresh(body.refreshToken)
        } catch let error as TesseraError where error == .refreshTokenReused {
            context.logger.warning("Refresh token reused after rotation; revoked its session")
            throw error
        }
        context.logger.debug("Refreshed tokens", metadata: ["session_id": .string(issued.session.id)])
        return Response.json(TokenResponse(issued, user: nil))
    }

    @Sendable func jwks(_ request: Request, context: TesseraRequestContext) async throws -> Response {
        let tokens = try self.requireTokens()
        // Verifiers may cache the set briefly; a key is published before the tokens it signs
        // can reach them only within this time, so they should refetch on an unknown `kid`.
        return Response(
            status: .ok,
            headers: [.contentType: "application/jwk-set+json", .cacheControl: "public, max-age=60"],
            body: .init(byteBuffer: JSONCoding.encode(tokens.jwks()))
        )
    }

    @Sendable func introspect(_ request: Request, context: TesseraRequestContext) async throws -> Response {
        let tokens = try self.requireTokens()
        let token = try await IntrospectionRequest.token(from: request)
        let result = try await tokens.introspect(token)
        return Response.json(IntrospectionResponse(result))
    }

    // MARK: Helpers

    func clientAddress(_ request: Request, context: TesseraRequestContext) -> String? {
        if self.configuration.trustForwardedFor, let forwarded = request.headers[.forwardedFor] {
            let first = forwarded.split(separator: ",").first.map { $0.trimmingCharacters(in: .whitespaces) }
            if let first, !first.isEmpty, first.count <= 64 { return first }
        }
        return context.remoteAddress?.ipAddress
    }

    func metadata(_ request: Request, address: String?, label: String?) -> SessionMetadata {
        SessionMetadata(ipAddress: address, userAgent: request.headers[.userAgent].map { String($0.prefix(256)) }, label: label)
    }

    static func label(_ label: String?) throws -> String? {
        guard let label else { return nil }
        guard label.count <= 100 else { throw TesseraError.invalidField("The label may be at most 100 characters.") }
        return label
    }

    static func eTag(_ version: Int) -> String { "\"\(version)\"" }

    /// Reads `"3"`, `W/"3"` or `3`.
    static func version(ifMatch: String) -> Int? {
        var text = Substring(ifMatch.trimmingCharacters(in: .whitespaces))
        if text.hasPrefix("W/") { text = text.dropFirst(2) }
        if text.hasPrefix("\""), text.hasSuffix("\""), text.count >= 2 { text = text.dropFirst().dropLast() }
        guard let version = Int(text), version >= 0 else { return nil }
        return version
    }
}
