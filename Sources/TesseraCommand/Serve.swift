import ArgumentParser
import Foundation
import Hummingbird
import Logging
import CoreMetrics
import Prometheus
import ServiceLifecycle
import Tessera
import TesseraEvents
import TesseraHummingbird
import TesseraSQLite
import TesseraTokens
import TesseraUpstream

/// `tessera serve`: runs the HTTP service on the embedded SQLite store.
struct Serve: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run the session service.",
        discussion: "Every option can also be set by its TESSERA_… environment variable; the flag wins."
    )

    @OptionGroup var data: StoreOptions

    @Option(help: "The address to listen on (env TESSERA_HOST; default 127.0.0.1).")
    var host: String?

    @Option(help: "The port to listen on; 0 picks a free one (env TESSERA_PORT; default 8080).")
    var port: Int?

    @OptionGroup var session: SessionOptions

    @OptionGroup var connections: ConnectionOptions

    @OptionGroup var events: EventOptions

    @OptionGroup var cockpit: CockpitOptions

    @Flag(help: "Serve over HTTPS: the cookie gets Secure and the __Host- name (env TESSERA_SECURE_COOKIES).")
    var secureCookies = false

    @Flag(help: "Take client addresses from X-Forwarded-For; only behind a proxy that sets it (env TESSERA_TRUST_FORWARDED_FOR).")
    var trustForwardedFor = false

    @Flag(
        help: """
            Serve every request through the router: no express paths for who-am-I and the proxy (env TESSERA_EXPRESS=off). \
            The answers are the same; to measure the router's path, or to rule the express paths out.
            """
    )
    var noExpress = false

    @Option(help: "The bcrypt cost for password hashes, 4 to 31 (env TESSERA_BCRYPT_COST; default 12).")
    var bcryptCost: Int?

    @Option(help: "Failed logins per account per window before throttling (env TESSERA_MAX_FAILED_LOGINS; default 5).")
    var maxFailedLogins: Int?

    @Option(
        help: "Failed logins per client address per window before throttling (env TESSERA_MAX_FAILED_LOGINS_PER_CLIENT; default 50)."
    )
    var maxFailedLoginsPerClient: Int?

    @Option(help: "Attempts per store call when the store fails transiently, 1 to 10 (env TESSERA_STORE_ATTEMPTS; default 3).")
    var storeAttempts: Int?

    @Option(help: "The backoff before the first store retry, doubling after (env TESSERA_STORE_BACKOFF; default 100ms).")
    var storeBackoff: String?

    @Option(help: "Sessions cached in memory per node; 0 reads the store on every request (env TESSERA_CACHE_SIZE; default 100000).")
    var cacheSize: Int?

    @Option(
        help:
            "The longest a write made elsewhere (another node, the tessera command) goes unseen by this node's cache (env TESSERA_CACHE_STALENESS; default 1s)."
    )
    var cacheStaleness: String?

    @Option(help: "Time between sweeps of ended sessions, in batches of 500 (env TESSERA_SWEEP_INTERVAL; default 60s).")
    var sweepInterval: String?

    @Option(help: "How long an access token of token mode is valid, at most 1h (env TESSERA_ACCESS_TOKEN_LIFETIME; default 5m).")
    var accessTokenLifetime: String?

    @Option(
        help:
            "How long after its first use a refresh token still answers the same successor, for racing requests (env TESSERA_REFRESH_GRACE; default 10s)."
    )
    var refreshGrace: String?

    @Option(help: "The iss claim of access tokens (env TESSERA_ISSUER; default tessera).")
    var issuer: String?

    @Option(
        help: "A YAML or JSON file of upstream sites whose sessions the pool keeps, served under /v1/upstreams (env TESSERA_UPSTREAMS)."
    )
    var upstreams: String?

    @Option(help: "trace, debug, info, notice, warning, error or critical (env TESSERA_LOG_LEVEL; default info).")
    var logLevel: String?

    func run() async throws {
        // Before the connection limit's default is worked out from it.
        OpenFileLimit.raise()
        let levelText = Setting.string(self.logLevel, env: "TESSERA_LOG_LEVEL", default: "info")
        guard let level = Logger.Level(rawValue: levelText) else {
            throw ValidationError("--log-level must be one of trace, debug, info, notice, warning, error, critical.")
        }
        let policy = try self.session.policy()
        let origins = try self.connections.origins()
        let staticDirectory = try self.connections.staticDirectory()
        let host = Setting.string(self.host, env: "TESSERA_HOST", default: "127.0.0.1")
        let port = try Setting.integer(self.port, env: "TESSERA_PORT", option: "--port", range: 0...65535, default: 8080)
        let cost = try Setting.integer(self.bcryptCost, env: "TESSERA_BCRYPT_COST", option: "--bcrypt-cost", range: 4...31, default: 12)
        let maxFailures = try Setting.integer(
            self.maxFailedLogins,
            env: "TESSERA_MAX_FAILED_LOGINS",
            option: "--max-failed-logins",
            range: 1...1_000_000,
            default: 5
        )
        let maxFailuresPerClient = try Setting.integer(
            self.maxFailedLoginsPerClient,
            env: "TESSERA_MAX_FAILED_LOGINS_PER_CLIENT",
            option: "--max-failed-logins-per-client",
            range: 1...1_000_000,
            default: 50
        )
        let resilience = ResilientStore.Configuration(
            attempts: try Setting.integer(self.storeAttempts, env: "TESSERA_STORE_ATTEMPTS", option: "--store-attempts", range: 1...10, default: 3),
            initialBackoff: try Setting.duration(
                self.storeBackoff,
                env: "TESSERA_STORE_BACKOFF",
                option: "--store-backoff",
                default: .milliseconds(100)
            )
        )
        let cacheSize = try Setting.integer(
            self.cacheSize,
            env: "TESSERA_CACHE_SIZE",
            option: "--cache-size",
            range: 0...10_000_000,
            default: 100_000
        )
        let staleness = try Setting.duration(
            self.cacheStaleness,
            env: "TESSERA_CACHE_STALENESS",
            option: "--cache-staleness",
            default: .seconds(1)
        )
        let sweepInterval = try Setting.duration(
            self.sweepInterval,
            env: "TESSERA_SWEEP_INTERVAL",
            option: "--sweep-interval",
            default: .seconds(60)
        )
        let accessLifetime = try Setting.duration(
            self.accessTokenLifetime,
            env: "TESSERA_ACCESS_TOKEN_LIFETIME",
            option: "--access-token-lifetime",
            default: .seconds(300)
        )
        guard accessLifetime >= .seconds(10), accessLifetime <= .seconds(3600) else {
            throw ValidationError("--access-token-lifetime must be between 10s and 1h.")
        }
        let refreshGrace = try Setting.duration(self.refreshGrace, env: "TESSERA_REFRESH_GRACE", option: "--refresh-grace", default: .seconds(10))
        guard refreshGrace <= .seconds(300) else { throw ValidationError("--refresh-grace must be at most 5m.") }
        let issuer = Setting.string(self.issuer, env: "TESSERA_ISSUER", default: "tessera")
        guard staleness >= .milliseconds(100) else { throw ValidationError("--cache-staleness must be at least 100ms.") }
        let secure = Setting.flag(self.secureCookies, env: "TESSERA_SECURE_COOKIES")
        let trustForwardedFor = Setting.flag(self.trustForwardedFor, env: "TESSERA_TRUST_FORWARDED_FOR")
        let eventRetention = try self.events.retention()
        let webhooks = try self.events.endpoints(retention: eventRetention)
        let node = self.events.nodeName
        let recordsEvents = self.events.recordsEvents
        let metricsListener = try self.cockpit.metricsListener()
        let adminKey = try self.cockpit.adminKey()
        // Before anything that counts is made: each part takes the factory when it is created.
        let registry = PrometheusCollectorRegistry()
        MetricsSystem.bootstrap(MetricsEndpoint.factory(registry: registry))

        // The correlation id of the request being served reaches log lines through the
        // provider, so that a request that writes none pays nothing for it.
        LoggingSystem.bootstrap(
            { label, provider in StandardErrorLogHandler(label: label, level: level, metadataProvider: provider) },
            metadataProvider: CorrelationID.metadataProvider
        )
        let logger = Logger(label: "tessera")

        do {
            let directory = self.data.directory
            try directory.prepare()
            let storeDescription = try self.data.describeStore()
            let serviceKey = try Self.serviceKey(directory: directory)
            let keys: SigningKeys
            do {
                keys = try await SigningKeys.open(file: directory.signingKeysURL)
            } catch {
                throw CommandError("Cannot open the signing keys \(directory.signingKeysURL.path): \(error).")
            }
            let upstreamsFile: UpstreamsFile?
            if let path = self.upstreams ?? Setting.environment["TESSERA_UPSTREAMS"], !path.isEmpty {
                do {
                    upstreamsFile = try UpstreamsFile.load(path: path)
                } catch {
                    throw CommandError("The upstreams file is not usable: \(error)")
                }
            } else {
                upstreamsFile = nil
            }
            let cookie = SessionCookie(secure: secure)
            let throttle = LoginThrottlePolicy(maxFailuresPerAccount: maxFailures, maxFailuresPerClient: maxFailuresPerClient)
            let hasher = BcryptPasswordHasher(cost: UInt8(cost))
            try await self.data.withStore(logger: logger, node: node, recordsEvents: recordsEvents) { base in
                let store = ResilientStore(base, configuration: resilience)
                // Activity is written in batches, once a second, by the flusher below.
                let activity = ActivityBuffer()
                // The cache is read-through; the feed below keeps it current, and it is bypassed
                // whenever the feed cannot be read within the staleness bound.
                let cache =
                    cacheSize > 0
                    ? SessionCache(configuration: .init(capacity: cacheSize, stalenessBound: staleness, pollInterval: staleness / 4))
                    : nil
                let sessions = SessionManager(store: store, policy: policy, activityBuffer: activity, cache: cache, groupCommit: true)
                let login = try await PasswordLogin(sessions: sessions, hasher: hasher, throttle: throttle)
                let tokens = TokenService(
                    sessions: sessions,
                    keys: keys,
                    configuration: .init(accessTokenLifetime: accessLifetime, refreshGracePeriod: refreshGrace, issuer: issuer)
                )
                // One reader of the outbox for every event stream of this node.
                let eventHub = SessionEventHub(store: store, cache: cache, logger: logger)
                let upstreams = try upstreamsFile.map { try UpstreamPools(file: $0, logger: logger) } ?? UpstreamPools(pools: [])
                let activeSessions = ActiveSessionsSampler(store: store, logger: logger)
                let dispatcher = try Self.dispatcher(webhooks, base: base, logger: logger)
                var sources: [any MetricsSource] = [
                    SessionCoreMetrics(cache: cache, store: store, events: recordsEvents ? eventHub : nil),
                    UpstreamMetrics(pools: upstreams),
                ]
                if let dispatcher { sources.append(WebhookMetrics(dispatcher: dispatcher)) }
                let metrics = MetricsEndpoint(registry: registry, sources: sources)
                let service = TesseraHTTPService(
                    login: login,
                    serviceKey: ServiceAPIKey(key: serviceKey.key),
                    tokens: tokens,
                    upstreams: upstreams,
                    events: recordsEvents ? eventHub : nil,
                    configuration: .init(
                        cookie: cookie,
                        trustForwardedFor: trustForwardedFor,
                        requestLogLevel: level <= .debug ? .debug : nil,
                        // Every logger carries the provider (bootstrapped above).
                        correlationIDLogging: .metadataProvider,
                        origins: origins,
                        staticDirectory: staticDirectory
                    ),
                    admin: AdminSettings(
                        key: adminKey,
                        activeSessions: activeSessions,
                        metrics: metrics,
                        requestMetrics: MetricsSystem.factory,
                        node: node
                    )
                )

                say("Tessera data directory: \(directory.url.path)")
                say("Store: \(storeDescription)")
                if serviceKey.generated {
                    // Standard output is the log: the key itself is never written there.
                    say(
                        "Generated the service API key in \(directory.serviceKeyPath) (mode 0600); "
                            + "`tessera keys show-service-key` prints it."
                    )
                }
                say(
                    "Sessions: idle timeout \(policy.idleTimeout.humanReadable), absolute timeout \(policy.absoluteTimeout.humanReadable), "
                        + "activity written at most every \(policy.activityGranularity.humanReadable), "
                        + "cookie \(cookie.name)"
                )
                say(
                    "Tokens: access tokens live \(accessLifetime.humanReadable), signed by key \(keys.signingKeyID) "
                        + "(\(directory.signingKeysURL.path)); refresh grace \(refreshGrace.humanReadable)"
                )
                let notifier = base as? any SessionChangeNotifier
                if cache != nil {
                    say(
                        "Session cache: up to \(cacheSize) sessions; writes made elsewhere are seen within \(staleness.humanReadable)"
                            + (notifier != nil ? " (announced at once by the store)" : "")
                    )
                }
                var services: [any Service] = [
                    ActivityFlusher(buffer: activity, store: store, interval: .seconds(1), logger: logger),
                    SessionSweeper(sessions: sessions, throttle: throttle, interval: sweepInterval, eventRetention: eventRetention, logger: logger),
                    SigningKeysReloader(keys: keys, logger: logger),
                ]
                if recordsEvents {
                    services.append(eventHub)
                    say(
                        "Session events: node \(node), kept \(eventRetention.humanReadable); streams at /v1/events and /v1/session/events"
                    )
                } else {
                    say("Session events: off (--no-session-events); no webhooks or streams")
                }
                services.append(activeSessions)
                if let metricsListener {
                    services.append(Self.metricsServer(metrics, listener: metricsListener, logger: logger))
                } else {
                    say("Metrics: off (--metrics-address off); operators still read them at /v1/admin/metrics")
                }
                if adminKey == nil {
                    say("Admin API: administrators' sessions only (no admin API key configured)")
                }
                if let dispatcher {
                    services.append(dispatcher)
                    for webhook in webhooks {
                        say(
                            "Webhook \(webhook.name): \(EventOptions.redacted(webhook.url)) "
                                + "(\(webhook.kinds.map { $0.map(\.rawValue).sorted().joined(separator: ", ") } ?? "all events")), "
                                + "\(webhook.secrets.count) signing secret(s), retried for \(webhook.retry.retryFor.humanReadable)"
                        )
                    }
                }
                if let upstreamsFile {
                    services.append(UpstreamKeeper(pools: upstreams.ordered))
                    for upstream in upstreamsFile.upstreams {
                        say(
                            "Upstream \(upstream.name): \(upstream.baseURL), \(upstream.pool.min) to \(upstream.pool.max) "
                                + (upstream.kind == .browser ? "browser sessions, " : "sessions, ")
                                + "\(upstream.effectiveAccounts.count) account(s), keep-alive every \(Int(upstream.keepAlive.interval)) s"
                        )
                        if upstream.kind == .browser, let missing = upstream.browser.missingExecutables {
                            say("Upstream \(upstream.name) cannot log in: \(missing).")
                        }
                    }
                }
                if let cache {
                    services.append(SessionChangeFeed(cache: cache, store: store, notifier: notifier, logger: logger))
                }

                let express = !(self.noExpress || Setting.environment["TESSERA_EXPRESS"]?.lowercased() == "off")
                // The largest body a route takes: a proxied request's, when an upstream allows more.
                let limits = try self.connections.limits(maxBodyBytes: upstreamsFile?.upstreams.map(\.maxBodyBytes).max() ?? 0)
                logger.info(
                    "Connections limited",
                    metadata: [
                        "max_connections": "\(limits.maxConnections)",
                        "max_per_client": "\(limits.maxConnectionsPerClient == .max ? "none" : String(limits.maxConnectionsPerClient))",
                    ]
                )
                let app = Application(
                    router: service.buildRouter(),
                    server: .tessera(
                        limits: limits,
                        express: express ? service.upstreamExpressLane(serverName: "Tessera", logger: logger) : nil,
                        sessions: express ? service.sessionExpressLane(serverName: "Tessera", logger: logger) : nil
                    ),
                    configuration: .init(address: .hostname(host, port: port), serverName: "Tessera"),
                    // Shut down in reverse order: the server first, then the flusher's last flush.
                    services: services,
                    onServerRunning: { channel in
                        let port = channel.localAddress?.port ?? port
                        say("Tessera listening on http://\(host):\(port)")
                    },
                    logger: logger
                )
                try await app.runService()
                await upstreams.shutdownClient()
            }
        } catch let error as CommandError {
            complain("\(error)")
            throw ExitCode.failure
        }
    }

    /// The service API key: `TESSERA_SERVICE_API_KEY` (every node of a cluster needs the same
    /// one), else the data directory's key, generated on first start.
    static func serviceKey(directory: DataDirectory) throws -> (key: String, generated: Bool) {
        if let key = Setting.environment["TESSERA_SERVICE_API_KEY"], !key.isEmpty {
            guard key.hasPrefix(ServiceAPIKey.prefix), key.count >= 24 else {
                throw CommandError("TESSERA_SERVICE_API_KEY must start with \(ServiceAPIKey.prefix) and be at least 24 characters.")
            }
            return (key, false)
        }
        return try directory.serviceKey()
    }
}
