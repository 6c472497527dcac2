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
        /// The web origins that may log browsers in and act with their session cookies (the
        /// service's own, by default).
        public var origins: OriginPolicy
        /// A folder whose files are served (GET and HEAD) at the paths no operation has, such
        /// as a web app's pages on the service's own origin; `nil` serves none.
        public var staticDirectory: String?
        /// The most event streams (`GET /v1/events`, `GET /v1/session/events`) open at once on
        /// this node; past it, `503 EVENTS_STREAM_LIMIT`.
        public var eventStreamLimit: Int
        /// The most `GET /v1/session/events` streams one session holds open at once (its tabs);
        /// past it, `503 EVENTS_STREAM_LIMIT`.
        public var eventStreamsPerSession: Int
        /// How long an event stream stays silent before it sends a comment, so that proxies and
        /// clients see it alive.
        public var eventKeepAlive: Duration

        public init(
            cookie: SessionCookie = .init(),
            trustForwardedFor: Bool = false,
            requestLogLevel: Logger.Level? = .debug,
            correlationIDLogging: CorrelationIDLogging = .loggerMetadata,
            origins: OriginPolicy = .sameOrigin,
            staticDirectory: String? = nil,
            eventStreamLimit: Int = 1000,
            eventStreamsPerSession: Int = 16,
            eventKeepAlive: Duration = .seconds(15)
        ) {
            self.eventStreamsPerSession = eventStreamsPerSession
            self.staticDirectory = staticDirectory
            self.eventStreamLimit = eventStreamLimit
            self.eventKeepAlive = eventKeepAlive
            self.cookie = cookie
            self.trustForwardedFor = trustForwardedFor
            self.requestLogLevel = requestLogLevel
            self.correlationIDLogging = correlationIDLogging
            self.origins = origins
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
    /// The node's reader of session events for `GET /v1/events` and `GET /v1/session/events`;
    /// `nil` serves no event streams (`404`).
    public let events: SessionEventHub?
    public let configuration: Configuration
    /// The admin API and console: who may use them and the figures they show.
    public let admin: AdminSettings
    let usernames = UsernameCache()
    /// Requests counted by route (when ``AdminSettings/requestMetrics`` is set): one set of series
    /// for the router and the express paths (who-am-I's and the proxy's).
    let requestMetricSeries: HTTPMetricSeries?

    /// - Parameters:
    ///   - login: checks passwords and creates sessions (its ``PasswordLogin/sessions`` serve the rest)
    ///   - serviceKey: the key for `POST /v1/sessions` and `POST /v1/introspect`; with `nil`,
    ///     those operations are refused
    ///   - tokens: token mode; its ``TokenService/sessions`` must be the login's
    ///   - upstreams: the upstream session pools (none by default)
    ///   - events: the reader of session events that streams use (run it as a service)
    ///   - configuration: cookie and proxy settings
    ///   - admin: the admin API's key and figures (by default: operators' sessions only, no figures)
    public init(
        login: PasswordLogin,
        serviceKey: ServiceAPIKey?,
        tokens: TokenService? = nil,
        upstreams: UpstreamPools = UpstreamPools(pools: []),
        events: SessionEventHub? = nil,
        configuration: Configuration = .init(),
        admin: AdminSettings = .init()
    ) {
        self.admin = admin
        self.requestMetricSeries = admin.requestMetrics.map(HTTPMetricSeries.init(factory:))
        self.events = events
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
            .init(method: "GET", path: "/sdk/tessera.js"),
            .init(method: "GET", path: "/sdk/tessera.d.ts"),
            .init(method: "POST", path: "/v1/introspect"),
            .init(method: "GET", path: "/v1/events"),
            .init(method: "GET", path: "/v1/session/events"),
            .init(method: "GET", path: "/v1/upstreams"),
            .init(method: "POST", path: "/v1/upstreams/{name}/session"),
            .init(method: "DELETE", path: "/v1/upstreams/{name}/session/{lease}"),
            .init(method: "POST", path: "/v1/upstreams/{name}/actions"),
            .init(method: "GET", path: "/v1/admin/sessions"),
            .init(method: "DELETE", path: "/v1/admin/sessions/{id}"),
            .init(method: "GET", path: "/v1/admin/users"),
            .init(method: "POST", path: "/v1/admin/users"),
            .init(method: "GET", path: "/v1/admin/users/{id}"),
            .init(method: "PATCH", path: "/v1/admin/users/{id}"),
            .init(method: "PUT", path: "/v1/admin/users/{id}/password"),
            .init(method: "DELETE", path: "/v1/admin/users/{id}/sessions"),
            .init(method: "GET", path: "/v1/admin/overview"),
            .init(method: "GET", path: "/v1/admin/metrics"),
            .init(method: "GET", path: "/admin"),
            .init(method: "GET", path: "/admin/console.js"),
            .init(method: "GET", path: "/admin/console.css"),
        ] + Self.proxiedMethods.map { .init(method: $0.rawValue, path: "/v1/upstreams/{name}/proxy/{path}") }

    /// The router of the whole API.
    public func buildRouter() -> Router<TesseraRequestContext> {
        // HEAD is served wherever GET is (RFC 9110), with GET's headers and no body.
        let router = Router(context: TesseraRequestContext.self, options: .autoGenerateHeadEndpoints)
        // The correlation middleware also turns errors into the one JSON shape, as
        // ErrorMiddleware would (applications that mount the authenticator use that one), and
        // counts requests by route (HTTPMetricsMiddleware's figures, without a layer of its own).
        router.add(
            middleware: CorrelationIDMiddleware(
                logging: self.configuration.correlationIDLogging,
                allowedMethods: Self.allowedMethods,
                requestMetrics: self.requestMetricSeries
            )
        )
        if let level = self.configuration.requestLogLevel {
            router.add(middleware: LogRequestsMiddleware(level))
        }

        router.get("/healthz") { _, _ in try Response.json(StatusResponse(status: "ok")) }
        router.get("/readyz") { _, _ in
            try await self.sessions.store.ping()
            return try Response.json(StatusResponse(status: "ready"))
        }
        router.get("/openapi.yaml") { _, _ in
            Response(
                status: .ok,
                headers: [.contentType: "application/yaml; charset=utf-8"],
                body: .init(byteBuffer: ByteBuffer(string: OpenAPIDocument.text))
            )
        }
        router.get("/sdk/tessera.js") { request, _ in BrowserSDK.response(for: BrowserSDK.shared.module, request: request) }
        router.get("/sdk/tessera.d.ts") { request, _ in BrowserSDK.response(for: BrowserSDK.shared.types, request: request) }
        router.get("/admin") { request, _ in AdminConsole.response(for: AdminConsole.shared.page, request: request) }
        router.get("/admin/console.js") { request, _ in AdminConsole.response(for: AdminConsole.shared.script, request: request) }
        router.get("/admin/console.css") { request, _ in AdminConsole.response(for: AdminConsole.shared.styles, request: request) }
        if let folder = self.configuration.staticDirectory {
            // After the API's routes: a file is served only where no operation is.
            router.add(middleware: FileMiddleware<TesseraRequestContext, LocalFileSystem>(folder, searchForIndexHtml: true))
        }
        router.post("/v1/login", use: self.logIn)

        router.group("/v1/sessions")
            .add(middleware: ServiceKeyMiddleware(key: self.serviceKey))
            .post(use: self.createSession)

        let authenticated = router.group("/v1").add(middleware: self.authenticator())
        authenticated.get("/session", use: self.whoAmI)
        authenticated.get("/session/events", use: self.streamSessionEvents)
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
        router.group("/v1/events")
            .add(middleware: ServiceKeyMiddleware(key: self.serviceKey))
            .get(use: self.streamEvents)
        self.addUpstreamRoutes(to: router)
        self.addAdminRoutes(to: router)
        self.addMethodNotAllowedRoutes(to: router)
        return router
    }

    // MARK: Helpers

    /// The service's authenticator. Handlers name the session on the lines they write, so that a
    /// request that writes none (nearly all: who-am-I) does not pay for a logger copy.
    func authenticator() -> TesseraAuthenticator<TesseraRequestContext> {
        TesseraAuthenticator(
            sessions: self.sessions,
            cookie: self.configuration.cookie,
            tokens: self.tokens,
            origins: self.configuration.origins,
            logsSessionID: false
        )
    }

    func clientAddress(_ request: Request, context: TesseraRequestContext) -> String? {
        if self.configuration.trustForwardedFor, let forwarded = request.headers[.forwardedFor] {
            let first = forwarded.split(separator: ",").first.map { $0.trimmingCharacters(in: .whitespaces) }
            if let first, !first.isEmpty, first.unicodeScalars.count <= 64 { return first }
        }
        return context.remoteAddress?.ipAddress
    }

    func metadata(_ request: Request, address: String?, label: String?) -> SessionMetadata {
        // Lengths in Unicode scalars, as JSON Schema's maxLength counts them (a character can
        // hold many: "e" and a combining accent are one).
        let userAgent = request.headers[.userAgent].map { String(String.UnicodeScalarView($0.unicodeScalars.prefix(256))) }
        return SessionMetadata(ipAddress: address, userAgent: userAgent, label: label)
    }

    static func label(_ label: String?) throws -> String? {
        guard let label else { return nil }
        guard label.unicodeScalars.count <= 100 else { throw TesseraError.invalidField("The label may be at most 100 characters.") }
        return label
    }

    static func eTag(_ version: Int) -> String { "\"\(version)\"" }

    /// Reads `"3"`, `W/"3"` or `3`.
    static func version(ifMatch: String) -> Int? {
        var text = ifMatch
        return text.withUTF8 { CredentialSyntax.dataVersion(ifMatch: $0) }
    }
}
