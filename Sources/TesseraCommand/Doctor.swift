import ArgumentParser
import Foundation
import Logging
import Tessera
import TesseraPostgres
import TesseraSQLite
import TesseraTokens
import TesseraUpstream

/// `tessera doctor`: checks the configuration, the store and the clock, and says plainly what is
/// wrong. Changes nothing: it applies no migration.
struct Doctor: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Check the configuration, the store, its migrations and the clock.",
        discussion: "Prints which settings and secrets are set, never their values. Exits non-zero when something is wrong."
    )

    @OptionGroup var data: StoreOptions

    @Option(help: "The upstreams file `tessera serve --upstreams` uses, checked too (env TESSERA_UPSTREAMS).")
    var upstreams: String?

    /// Every environment variable Tessera reads; the secret ones are only said to be set.
    static let settings: [(name: String, secret: Bool)] = [
        ("TESSERA_DATA_DIR", false), ("TESSERA_STORE", true), ("TESSERA_HOST", false), ("TESSERA_PORT", false),
        ("TESSERA_IDLE_TIMEOUT", false), ("TESSERA_ABSOLUTE_TIMEOUT", false), ("TESSERA_ACTIVITY_GRANULARITY", false),
        ("TESSERA_SECURE_COOKIES", false), ("TESSERA_TRUST_FORWARDED_FOR", false), ("TESSERA_BCRYPT_COST", false),
        ("TESSERA_MAX_FAILED_LOGINS", false), ("TESSERA_MAX_FAILED_LOGINS_PER_CLIENT", false), ("TESSERA_LOG_LEVEL", false), ("TESSERA_STORE_ATTEMPTS", false),
        ("TESSERA_STORE_BACKOFF", false), ("TESSERA_SERVICE_API_KEY", true), ("TESSERA_ACCESS_TOKEN_LIFETIME", false),
        ("TESSERA_REFRESH_GRACE", false), ("TESSERA_ISSUER", false), ("TESSERA_CACHE_SIZE", false), ("TESSERA_CACHE_STALENESS", false),
        ("TESSERA_SWEEP_INTERVAL", false), ("TESSERA_UPSTREAMS", false), ("TESSERA_HEADER_TIMEOUT", false), ("TESSERA_BODY_TIMEOUT", false),
        ("TESSERA_KEEP_ALIVE_TIMEOUT", false), ("TESSERA_MAX_CONNECTIONS", false), ("TESSERA_MAX_CONNECTIONS_PER_CLIENT", false),
        ("TESSERA_ALLOWED_ORIGINS", false), ("TESSERA_STATIC_DIR", false), ("TESSERA_EXPRESS", false),
        ("TESSERA_NODE", false), ("TESSERA_EVENT_RETENTION", false), ("TESSERA_SESSION_EVENTS", false), ("TESSERA_WEBHOOK_URL", true),
        ("TESSERA_WEBHOOKS", false), ("TESSERA_WEBHOOK_SECRET", true), ("TESSERA_WEBHOOK_EVENTS", false), ("TESSERA_METRICS_ADDRESS", false),
        ("TESSERA_WEBHOOK_TIMEOUT", false), ("TESSERA_WEBHOOK_RETRY_DELAY", false), ("TESSERA_WEBHOOK_RETRY_FOR", false),
        ("TESSERA_ADMIN_API_KEY", true),
    ]

    func run() async throws {
        var problems: [String] = []
        say("Settings:")
        for (name, secret) in Self.settings {
            guard let value = Setting.environment[name], !value.isEmpty else {
                say("  \(name): not set")
                continue
            }
            say("  \(name): \(secret ? "set (secret, not shown)" : value)")
        }

        let directory = self.data.directory
        let postgres: PostgresSessionStore.Configuration?
        do {
            postgres = try self.data.postgresConfiguration()
        } catch {
            problems.append("\(error)")
            postgres = nil
        }

        var isDirectory: ObjCBool = false
        if FileManager.default.fileExists(atPath: directory.url.path, isDirectory: &isDirectory) {
            if !isDirectory.boolValue {
                problems.append("The data directory \(directory.url.path) is a file, not a directory.")
            } else if !FileManager.default.isWritableFile(atPath: directory.url.path) {
                problems.append("The data directory \(directory.url.path) is not writable.")
            } else {
                say("Data directory: \(directory.url.path) (writable)")
            }
        } else {
            say("Data directory: \(directory.url.path) (not created yet; `tessera serve` creates it)")
        }
        if Setting.environment["TESSERA_SERVICE_API_KEY"].map({ !$0.isEmpty }) != true {
            let hasKey = FileManager.default.fileExists(atPath: directory.serviceKeyPath)
            say("Service API key: \(hasKey ? "in \(directory.serviceKeyPath)" : "not generated yet")")
        }

        problems += await Self.checkSigningKeys(directory.signingKeysURL)

        if let postgres {
            problems += await self.checkPostgres(postgres)
        } else if FileManager.default.fileExists(atPath: directory.databasePath) {
            problems += await self.checkSQLite(path: directory.databasePath)
        } else {
            say("Store: SQLite \(directory.databasePath) (not created yet)")
        }

        problems += self.checkUpstreams()

        let year = Calendar(identifier: .gregorian).component(.year, from: Date())
        if year < 2024 {
            problems.append("The system clock says \(Date().formatted(.iso8601)); session deadlines would be wrong.")
        }

        if problems.isEmpty {
            say("No problems found.")
            return
        }
        say("Problems:")
        for problem in problems { say("  - \(problem)") }
        throw ExitCode.failure
    }

    /// The upstreams file, when there is one: valid, and for browser upstreams, Chromium and
    /// chromedriver installed.
    func checkUpstreams() -> [String] {
        guard let path = self.upstreams ?? Setting.environment["TESSERA_UPSTREAMS"], !path.isEmpty else { return [] }
        let file: UpstreamsFile
        do {
            file = try UpstreamsFile.load(path: path)
        } catch {
            return ["The upstreams file is not usable: \(error)"]
        }
        say("Upstreams: \(file.upstreams.count) in \(path), valid")
        var problems: [String] = []
        for upstream in file.upstreams where upstream.kind == .browser {
            if let missing = upstream.browser.missingExecutables {
                problems.append("The browser upstream '\(upstream.name)' cannot log in: \(missing).")
            } else {
                say("  \(upstream.name): browsers \(upstream.browser.chromiumPath ?? "") with \(upstream.browser.chromedriverPath ?? "")")
            }
        }
        return problems
    }

    /// The signing keys: readable by the owner only, with a key that signs.
    static func checkSigningKeys(_ file: URL) async -> [String] {
        guard FileManager.default.fileExists(atPath: file.path) else {
            say("Signing keys: not generated yet (`tessera serve` creates \(file.path))")
            return []
        }
        var problems: [String] = []
        let mode = (try? FileManager.default.attributesOfItem(atPath: file.path)[.posixPermissions] as? Int) ?? 0
        if mode & 0o077 != 0 {
            problems.append("The signing keys \(file.path) can be read by others (mode \(String(mode, radix: 8))); run chmod 600 on it.")
        }
        do {
            let keys = try await SigningKeys.open(file: file)
            say("Signing keys: \(keys.keys.count) in \(file.path), signing with \(keys.signingKeyID)")
        } catch {
            problems.append("The signing keys \(file.path) cannot be read: \(error)")
        }
        return problems
    }

    func checkSQLite(path: String) async -> [String] {
        do {
            let store = try SQLiteSessionStore(path: path, runMigrations: false)
            let latency = try await Self.latency { try await store.ping() }
            say("Store: SQLite \(path), reachable (median round trip \(Self.milliseconds(latency)))")
            return Self.migrationProblems(applied: try await store.appliedMigrations(), known: SQLiteSessionStore.knownMigrations)
                + (await Self.clockProblems(store)) + (await Self.webhookProblems(store))
        } catch {
            return ["The SQLite store \(path) cannot be read: \(error)."]
        }
    }

    func checkPostgres(_ configuration: PostgresSessionStore.Configuration) async -> [String] {
        var logger = Logger(label: "tessera.doctor")
        logger.logLevel = .critical
        let store: PostgresSessionStore
        do {
            store = try PostgresSessionStore(configuration: configuration, logger: logger)
            try await withDeadline(.seconds(10)) { try await store.checkConnection() }
        } catch {
            return ["The PostgreSQL store \(configuration.redactedDescription) cannot be reached: \(StoreOptions.reason(error))."]
        }
        return await withTaskGroup(of: Void.self) { group -> [String] in
            group.addTask { await store.run() }
            defer { group.cancelAll() }
            do {
                let latency = try await Self.latency { try await store.ping() }
                say("Store: PostgreSQL \(configuration.redactedDescription), reachable (median round trip \(Self.milliseconds(latency)))")
                let applied = (try? await store.appliedMigrations()) ?? []
                var problems = Self.migrationProblems(applied: applied, known: PostgresSessionStore.knownMigrations)
                let skew = try await store.serverTime().timeIntervalSince(Date())
                say("Clock: \(String(format: "%+.3f", skew)) s against the database server")
                if abs(skew) > 2 {
                    problems.append(
                        "This machine's clock is \(String(format: "%.1f", abs(skew))) s \(skew > 0 ? "behind" : "ahead of") the database server's; deadlines differ between nodes. Synchronise the clocks (NTP)."
                    )
                }
                return problems + (await Self.clockProblems(store)) + (await Self.webhookProblems(store))
            } catch {
                return ["The PostgreSQL store \(configuration.redactedDescription) fails: \(StoreOptions.reason(error))."]
            }
        }
    }

    /// The median of five pings.
    static func latency(_ ping: () async throws -> Void) async throws -> Duration {
        var samples: [Duration] = []
        for _ in 0..<5 {
            let started = ContinuousClock.now
            try await ping()
            samples.append(ContinuousClock.now - started)
        }
        return samples.sorted()[samples.count / 2]
    }

    static func milliseconds(_ duration: Duration) -> String {
        String(format: "%.2f ms", duration.timeInterval * 1000)
    }

    static func migrationProblems(applied: [String], known: [String]) -> [String] {
        say("Migrations: \(applied.count) of \(known.count) applied\(applied.last.map { " (latest: \($0))" } ?? "")")
        let unknown = applied.filter { !known.contains($0) }
        if !unknown.isEmpty {
            return [
                "The store has migrations this version of Tessera does not know (\(unknown.joined(separator: ", "))); it was used by a newer Tessera."
            ]
        }
        let pending = known.filter { !applied.contains($0) }
        if !pending.isEmpty {
            say("  pending: \(pending.joined(separator: ", ")) (`tessera serve` applies them on start)")
        }
        return []
    }

    /// The clock must not be behind the newest session the store holds.
    static func clockProblems(_ store: any SessionStore) async -> [String] {
        guard let newest = try? await store.activeSessions(userID: nil, at: Date.distantPast, limit: 1).first else { return [] }
        let behind = newest.createdAt.timeIntervalSince(Date())
        if behind > 5 {
            return ["The system clock is \(Int(behind)) s behind the newest session's creation time; it went backwards."]
        }
        return []
    }

    /// Webhook endpoints: disabled ones and dead deliveries are problems; a backlog is reported.
    static func webhookProblems(_ store: any WebhookDeliveryStore) async -> [String] {
        // A store from before session events has no delivery state to report.
        guard let endpoints = try? await store.webhookEndpoints(at: Date()), !endpoints.isEmpty else { return [] }
        var problems: [String] = []
        for endpoint in endpoints {
            let backlog = endpoint.oldestPendingAt.map { " (oldest from \($0.formatted(.iso8601)))" } ?? ""
            say("Webhooks: \(endpoint.name): \(endpoint.disabledAt == nil ? "enabled" : "disabled"), \(endpoint.pending) pending\(backlog), \(endpoint.dead) dead")
            if let disabled = endpoint.disabledAt {
                problems.append(
                    "The webhook endpoint '\(endpoint.name)' is disabled since \(disabled.formatted(.iso8601)) (\(endpoint.disabledReason ?? "")); `tessera events enable \(endpoint.name)` resumes it."
                )
            }
            if endpoint.dead > 0 {
                problems.append(
                    "\(endpoint.dead) webhook deliver\(endpoint.dead == 1 ? "y" : "ies") to '\(endpoint.name)' gave up; `tessera events list` shows them, `tessera events retry` tries again."
                )
            }
        }
        return problems
    }
}
