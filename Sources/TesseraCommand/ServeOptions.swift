import ArgumentParser
import Foundation
import Tessera
import TesseraHummingbird

/// `tessera serve`'s session timeouts.
struct SessionOptions: ParsableArguments {
    @Option(help: "End sessions after this much inactivity, e.g. 15m (env TESSERA_IDLE_TIMEOUT; default 15m).")
    var idleTimeout: String?

    @Option(help: "End sessions this long after login whatever happens, e.g. 160m (env TESSERA_ABSOLUTE_TIMEOUT; default 160m).")
    var absoluteTimeout: String?

    @Option(
        help:
            "Write a session's activity at most once per this window (env TESSERA_ACTIVITY_GRANULARITY; default the smaller of 60s and a quarter of the idle timeout)."
    )
    var activityGranularity: String?

    /// The policy these options describe. Without an activity granularity of its own, the
    /// granularity follows the idle timeout, so that any idle timeout works alone.
    /// - Throws: `ValidationError` naming the options (and their values) that conflict.
    func policy() throws -> SessionPolicy {
        let idle = try Setting.duration(self.idleTimeout, env: "TESSERA_IDLE_TIMEOUT", option: "--idle-timeout", default: .seconds(15 * 60))
        let absolute = try Setting.duration(
            self.absoluteTimeout,
            env: "TESSERA_ABSOLUTE_TIMEOUT",
            option: "--absolute-timeout",
            default: .seconds(160 * 60)
        )
        let granularity = try Setting.duration(
            self.activityGranularity,
            env: "TESSERA_ACTIVITY_GRANULARITY",
            option: "--activity-granularity",
            default: SessionPolicy.defaultActivityGranularity(idleTimeout: idle)
        )
        let policy = SessionPolicy(idleTimeout: idle, absoluteTimeout: absolute, activityGranularity: granularity)
        if granularity >= idle {
            throw ValidationError(
                "\(Self.source("--activity-granularity", "TESSERA_ACTIVITY_GRANULARITY")) (\(granularity.humanReadable)) must be shorter than "
                    + "\(Self.source("--idle-timeout", "TESSERA_IDLE_TIMEOUT")) (\(idle.humanReadable)); leave it out to derive it."
            )
        }
        if let problem = policy.problems.first { throw ValidationError(problem) }
        return policy
    }

    /// How a setting was given: by its flag, or by its environment variable.
    static func source(_ option: String, _ env: String) -> String {
        CommandLine.arguments.contains(where: { $0 == option || $0.hasPrefix(option + "=") }) || Setting.environment[env] == nil
            ? option : env
    }
}

/// `tessera serve`'s limits on connections and the origins browsers may act from.
struct ConnectionOptions: ParsableArguments {
    @Option(help: "How long a request's header may take to arrive (env TESSERA_HEADER_TIMEOUT; default 10s).")
    var headerTimeout: String?

    @Option(help: "How long a request's body may take to arrive (env TESSERA_BODY_TIMEOUT; default 30s).")
    var bodyTimeout: String?

    @Option(help: "How long an idle connection is kept open for its next request (env TESSERA_KEEP_ALIVE_TIMEOUT; default 60s).")
    var keepAliveTimeout: String?

    @Option(
        help: """
            The most connections open at once; past it the longest-open idle connections are closed to make room \
            (env TESSERA_MAX_CONNECTIONS; default half the open-file limit, less 256).
            """
    )
    var maxConnections: Int?

    @Option(
        help: """
            The most connections open at once from one client address (IPv6: its /64), 0 for no limit; past it a \
            request is answered 429 REQ_1011. Set it when clients connect directly, not through a proxy (env \
            TESSERA_MAX_CONNECTIONS_PER_CLIENT; default no limit).
            """
    )
    var maxConnectionsPerClient: Int?

    @Option(
        help: """
            Web origins besides the service's own from which browsers may log in and act with the session cookie, \
            comma-separated, e.g. https://app.example.com (env TESSERA_ALLOWED_ORIGINS; default none).
            """
    )
    var allowedOrigins: String?

    @Option(
        help: """
            A folder whose files are served at the paths the API does not use, such as a web app's pages on the \
            service's origin (env TESSERA_STATIC_DIR; default none).
            """
    )
    var staticDir: String?

    /// The folder of static files, checked to be one.
    func staticDirectory() throws -> String? {
        let path = Setting.string(self.staticDir, env: "TESSERA_STATIC_DIR", default: "")
        guard !path.isEmpty else { return nil }
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory), isDirectory.boolValue else {
            throw ValidationError("--static-dir (or TESSERA_STATIC_DIR) must name a folder; \(terminalSafe(path)) is not one.")
        }
        return URL(fileURLWithPath: path).standardizedFileURL.path
    }

    /// The connection limits, with the largest body a route takes.
    func limits(maxBodyBytes: Int) throws -> HTTPLimits {
        let defaults = HTTPLimits()
        let maxConnections = try Setting.integer(
            self.maxConnections,
            env: "TESSERA_MAX_CONNECTIONS",
            option: "--max-connections",
            range: 1...10_000_000,
            default: defaults.maxConnections
        )
        let perClient = try Setting.integer(
            self.maxConnectionsPerClient,
            env: "TESSERA_MAX_CONNECTIONS_PER_CLIENT",
            option: "--max-connections-per-client",
            range: 0...10_000_000,
            default: 0
        )
        return HTTPLimits(
            idleTimeout: try Setting.duration(
                self.keepAliveTimeout,
                env: "TESSERA_KEEP_ALIVE_TIMEOUT",
                option: "--keep-alive-timeout",
                default: defaults.idleTimeout
            ),
            headerTimeout: try Setting.duration(
                self.headerTimeout,
                env: "TESSERA_HEADER_TIMEOUT",
                option: "--header-timeout",
                default: defaults.headerTimeout
            ),
            bodyTimeout: try Setting.duration(self.bodyTimeout, env: "TESSERA_BODY_TIMEOUT", option: "--body-timeout", default: defaults.bodyTimeout),
            maxBodyBytes: max(defaults.maxBodyBytes, maxBodyBytes),
            maxConnections: maxConnections,
            maxConnectionsPerClient: perClient == 0 ? Int.max : perClient
        )
    }

    /// The origins browsers may act from.
    func origins() throws -> OriginPolicy {
        let list = Setting.string(self.allowedOrigins, env: "TESSERA_ALLOWED_ORIGINS", default: "")
        let origins = list.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
        do {
            return try OriginPolicy(allowedOrigins: origins)
        } catch {
            throw ValidationError("--allowed-origins (or TESSERA_ALLOWED_ORIGINS): \(error)")
        }
    }
}
