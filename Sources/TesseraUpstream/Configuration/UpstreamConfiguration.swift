import Foundation

/// How the pool reaches, logs in to and keeps one upstream site. Decoded from the
/// `--upstreams` file (YAML or JSON); every field but `name`, `baseURL` and `login` has a
/// default.
///
/// Credentials are never written in the file: login fields name an environment variable or a
/// file (see ``FieldSource``).
public struct UpstreamConfiguration: Sendable, Codable, Equatable {
    /// The pool's name, used in `/v1/upstreams/{name}/…`: 1 to 64 of `a-z`, `0-9`, `-`, `_`.
    public var name: String
    /// The site's base URL (`http` or `https`); request paths are appended to it.
    public var baseURL: String
    /// `http` (the default): sessions log in with one request and keep a cookie jar.
    /// `browser`: each session is a headless Chromium that logs in by `login.steps`.
    public var kind: Kind
    /// How to log in.
    public var login: LoginRecipe
    /// The accounts the pool logs in as. Empty: one account whose fields are the recipe's own.
    public var accounts: [Account]
    /// How an answer says the session has ended.
    public var expiry: ExpiryMarkers
    /// Answers that say the site blocked the session (a lock-out or challenge page). Empty by
    /// default: nothing is read as blocked unless configured.
    public var blocked: BlockedMarkers
    /// How many sessions the pool holds.
    public var pool: PoolSize
    /// The background probe that keeps idle sessions alive and finds dead ones.
    public var keepAlive: KeepAlive
    /// A session's lifetime before the pool logs in again, in seconds (default 120). Each
    /// session's lifetime is shortened by a random part of `lifetimeJitter`, so sessions do not
    /// all end at once.
    public var maxAge: Double
    /// The fraction of `maxAge` taken off at random per session (default 0.1, at most 0.5).
    public var lifetimeJitter: Double
    /// Requests a session serves before it is replaced; `nil` for no limit.
    public var maxUses: Int?
    /// Sessions one account holds at most (`nil`: no limit). Set 1 for sites where a new login
    /// ends the account's other sessions; only a replacement then overlaps its predecessor.
    public var maxSessionsPerAccount: Int?
    /// A session checked longer ago than this (seconds, default 5) is probed before it is lent.
    public var healthFreshness: Double
    /// How long a borrower waits for a free session (seconds, default 5) before
    /// `503 UPSTREAM_EXHAUSTED`.
    public var borrowTimeout: Double
    /// A lent session not given back within this time (seconds, default 60) is reclaimed.
    public var leaseTimeout: Double
    /// Timeout of one request to the site (seconds, default 30).
    public var requestTimeout: Double
    /// The largest body the pool reads whole (bytes, default 8 MiB): a proxied request's body,
    /// and the answers to logins and probes. Proxied answers stream, whatever their size.
    public var maxBodyBytes: Int
    /// How much of a proxied text answer is read for the expiry and blocked phrases before it
    /// is passed on (bytes, default 64 KiB); a phrase further in is not seen. Binary answers
    /// are never read for phrases.
    public var scanBytes: Int
    /// Login back-off and the per-account circuit breaker.
    public var backoff: LoginBackoff
    /// The browsers of a `browser` upstream.
    public var browser: BrowserSettings

    public init(
        name: String,
        baseURL: String,
        kind: Kind = .http,
        login: LoginRecipe,
        accounts: [Account] = [],
        expiry: ExpiryMarkers = .init(),
        blocked: BlockedMarkers = .init(),
        pool: PoolSize = .init(),
        keepAlive: KeepAlive = .init(),
        maxAge: Double = 120,
        lifetimeJitter: Double = 0.1,
        maxUses: Int? = nil,
        maxSessionsPerAccount: Int? = nil,
        healthFreshness: Double = 5,
        borrowTimeout: Double = 5,
        leaseTimeout: Double = 60,
        requestTimeout: Double = 30,
        maxBodyBytes: Int = 8 * 1024 * 1024,
        scanBytes: Int = 64 * 1024,
        backoff: LoginBackoff = .init(),
        browser: BrowserSettings = .init()
    ) {
        self.name = name
        self.baseURL = baseURL
        self.kind = kind
        self.browser = browser
        self.login = login
        self.accounts = accounts
        self.expiry = expiry
        self.blocked = blocked
        self.pool = pool
        self.keepAlive = keepAlive
        self.maxAge = maxAge
        self.lifetimeJitter = lifetimeJitter
        self.maxUses = maxUses
        self.maxSessionsPerAccount = maxSessionsPerAccount
        self.healthFreshness = healthFreshness
        self.borrowTimeout = borrowTimeout
        self.leaseTimeout = leaseTimeout
        self.requestTimeout = requestTimeout
        self.maxBodyBytes = maxBodyBytes
        self.scanBytes = scanBytes
        self.backoff = backoff
    }

    enum CodingKeys: String, CodingKey {
        case name, baseURL, kind, browser, login, accounts, expiry, blocked, pool, keepAlive, maxAge, lifetimeJitter, maxUses, maxSessionsPerAccount, healthFreshness
        case borrowTimeout, leaseTimeout, requestTimeout, maxBodyBytes, scanBytes, backoff
    }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        let defaults = Self(name: "", baseURL: "", login: .init(path: "/"))
        self.name = try container.decode(String.self, forKey: .name)
        self.baseURL = try container.decode(String.self, forKey: .baseURL)
        self.kind = try container.decodeIfPresent(Kind.self, forKey: .kind) ?? .http
        self.browser = try container.decodeIfPresent(BrowserSettings.self, forKey: .browser) ?? .init()
        self.login = try container.decode(LoginRecipe.self, forKey: .login)
        self.accounts = try container.decodeIfPresent([Account].self, forKey: .accounts) ?? defaults.accounts
        self.expiry = try container.decodeIfPresent(ExpiryMarkers.self, forKey: .expiry) ?? defaults.expiry
        self.blocked = try container.decodeIfPresent(BlockedMarkers.self, forKey: .blocked) ?? defaults.blocked
        self.pool = try container.decodeIfPresent(PoolSize.self, forKey: .pool) ?? defaults.pool
        self.keepAlive = try container.decodeIfPresent(KeepAlive.self, forKey: .keepAlive) ?? defaults.keepAlive
        self.maxAge = try container.decodeIfPresent(Double.self, forKey: .maxAge) ?? defaults.maxAge
        self.lifetimeJitter = try container.decodeIfPresent(Double.self, forKey: .lifetimeJitter) ?? defaults.lifetimeJitter
        self.maxUses = try container.decodeIfPresent(Int.self, forKey: .maxUses)
        self.maxSessionsPerAccount = try container.decodeIfPresent(Int.self, forKey: .maxSessionsPerAccount)
        self.healthFreshness = try container.decodeIfPresent(Double.self, forKey: .healthFreshness) ?? defaults.healthFreshness
        self.borrowTimeout = try container.decodeIfPresent(Double.self, forKey: .borrowTimeout) ?? defaults.borrowTimeout
        self.leaseTimeout = try container.decodeIfPresent(Double.self, forKey: .leaseTimeout) ?? defaults.leaseTimeout
        self.requestTimeout = try container.decodeIfPresent(Double.self, forKey: .requestTimeout) ?? defaults.requestTimeout
        self.maxBodyBytes = try container.decodeIfPresent(Int.self, forKey: .maxBodyBytes) ?? defaults.maxBodyBytes
        self.scanBytes = try container.decodeIfPresent(Int.self, forKey: .scanBytes) ?? defaults.scanBytes
        self.backoff = try container.decodeIfPresent(LoginBackoff.self, forKey: .backoff) ?? defaults.backoff
    }

    /// The accounts the pool logs in as: the configured ones, or one made of the recipe's fields.
    public var effectiveAccounts: [Account] {
        self.accounts.isEmpty ? [Account(name: "default", fields: [:])] : self.accounts
    }

    /// The longest duration a field may name: a year, in seconds.
    static let longestDuration: Double = 365 * 86400

    /// Checks what decoding cannot: names, URLs, ranges. Throws ``UpstreamConfigurationError``.
    public func validate() throws {
        func fail(_ message: String) -> UpstreamConfigurationError { .init(upstream: self.name, message: message) }
        let allowed = Set("abcdefghijklmnopqrstuvwxyz0123456789-_")
        guard (1...64).contains(self.name.count), self.name.allSatisfy({ allowed.contains($0) }) else {
            throw fail("the name must be 1 to 64 of a-z, 0-9, '-' and '_'")
        }
        guard let url = URL(string: self.baseURL), let scheme = url.scheme?.lowercased(), ["http", "https"].contains(scheme),
            url.host?.isEmpty == false
        else { throw fail("baseURL must be an absolute http or https URL") }
        guard self.login.path.hasPrefix("/") else { throw fail("login.path must start with '/'") }
        guard self.keepAlive.path.hasPrefix("/") else { throw fail("keepAlive.path must start with '/'") }
        if let token = self.login.formToken {
            guard token.path?.hasPrefix("/") ?? true else { throw fail("login.formToken.path must start with '/'") }
            guard !token.field.isEmpty else { throw fail("login.formToken.field must not be empty") }
        }
        if self.kind == .browser { try self.validateBrowser() }
        guard ["GET", "POST", "PUT"].contains(self.login.method.uppercased()) else { throw fail("login.method must be GET, POST or PUT") }
        guard ["form", "json"].contains(self.login.encoding) else { throw fail("login.encoding must be 'form' or 'json'") }
        guard self.pool.min >= 0, self.pool.max >= 1, self.pool.min <= self.pool.max, self.pool.max <= 256 else {
            throw fail("pool sizes must satisfy 0 <= min <= max, 1 <= max <= 256")
        }
        // Every duration is finite and at most a year: the pool turns them into whole
        // milliseconds and seconds, which infinity or 1e300 would overflow.
        let durations: [(String, Double)] = [
            ("keepAlive.interval", self.keepAlive.interval), ("maxAge", self.maxAge), ("healthFreshness", self.healthFreshness),
            ("borrowTimeout", self.borrowTimeout), ("leaseTimeout", self.leaseTimeout), ("requestTimeout", self.requestTimeout),
            ("backoff.initial", self.backoff.initial), ("backoff.maximum", self.backoff.maximum), ("backoff.breakerOpen", self.backoff.breakerOpen),
        ]
        for (field, seconds) in durations where !(seconds.isFinite && seconds <= Self.longestDuration) {
            throw fail("\(field) must be a number of seconds no larger than \(Int(Self.longestDuration)) (a year)")
        }
        guard self.keepAlive.interval >= 1 else { throw fail("keepAlive.interval must be at least 1 second") }
        guard self.maxAge >= 5 else { throw fail("maxAge must be at least 5 seconds") }
        guard (0...0.5).contains(self.lifetimeJitter) else { throw fail("lifetimeJitter must be between 0 and 0.5") }
        guard self.maxUses.map({ $0 >= 1 }) ?? true else { throw fail("maxUses must be at least 1") }
        guard self.maxSessionsPerAccount.map({ $0 >= 1 }) ?? true else { throw fail("maxSessionsPerAccount must be at least 1") }
        guard self.healthFreshness >= 0, self.borrowTimeout > 0, self.leaseTimeout > 0, self.requestTimeout > 0 else {
            throw fail("healthFreshness, borrowTimeout, leaseTimeout and requestTimeout must be positive")
        }
        guard self.maxBodyBytes >= 1024 else { throw fail("maxBodyBytes must be at least 1024") }
        guard (256...(16 << 20)).contains(self.scanBytes) else { throw fail("scanBytes must be between 256 and 16777216") }
        guard self.backoff.initial > 0, self.backoff.maximum >= self.backoff.initial, self.backoff.breakerThreshold >= 1,
            self.backoff.breakerOpen > 0, self.backoff.maxConcurrentLogins >= 1
        else { throw fail("backoff values must be positive, with maximum >= initial") }
        let names = self.effectiveAccounts.map(\.name)
        guard Set(names).count == names.count else { throw fail("account names must be unique") }
        for account in self.effectiveAccounts {
            for (field, source) in self.login.fields.merging(account.fields, uniquingKeysWith: { $1 }) {
                try source.validate(field: field, upstream: self.name)
            }
        }
    }
}

/// A problem in the upstreams file, named by upstream and field; its text is safe to print
/// (it never contains a credential).
public struct UpstreamConfigurationError: Error, Sendable, CustomStringConvertible {
    public var upstream: String
    public var message: String

    public init(upstream: String, message: String) {
        self.upstream = upstream
        self.message = message
    }

    public var description: String { self.upstream.isEmpty ? self.message : "upstream '\(self.upstream)': \(self.message)" }
}
