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
    /// The largest answer body the pool reads (bytes, default 8 MiB).
    public var maxBodyBytes: Int
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
        self.backoff = backoff
    }

    enum CodingKeys: String, CodingKey {
        case name, baseURL, kind, browser, login, accounts, expiry, blocked, pool, keepAlive, maxAge, lifetimeJitter, maxUses, maxSessionsPerAccount, healthFreshness
        case borrowTimeout, leaseTimeout, requestTimeout, maxBodyBytes, backoff
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

extension UpstreamConfiguration {
    /// How the pool logs in: one request, and a check of its answer.
    public struct LoginRecipe: Sendable, Codable, Equatable {
        /// `POST` by default.
        public var method: String
        /// The login path, such as `/login`. A redirect to it also marks an ended session.
        public var path: String
        /// `form` (`application/x-www-form-urlencoded`, the default) or `json`.
        public var encoding: String
        /// The fields every account sends; an account's own fields override them.
        public var fields: [String: FieldSource]
        /// What a successful login answer looks like.
        public var success: SuccessCheck
        /// A one-time token the login form carries (Laravel's `_token`, Rails'
        /// `authenticity_token`): fetched from a page before each login and sent as a field.
        public var formToken: FormToken?
        /// The browser kind's login: steps taken in the browser, then `success` checked on the
        /// page. `fill` steps name the fields above (or a source of their own).
        public var steps: [BrowserStep]

        public init(
            method: String = "POST",
            path: String,
            encoding: String = "form",
            fields: [String: FieldSource] = [:],
            success: SuccessCheck = .init(),
            formToken: FormToken? = nil,
            steps: [BrowserStep] = []
        ) {
            self.method = method
            self.path = path
            self.encoding = encoding
            self.fields = fields
            self.success = success
            self.formToken = formToken
            self.steps = steps
        }

        enum CodingKeys: String, CodingKey { case method, path, encoding, fields, success, formToken, steps }

        public init(from decoder: any Decoder) throws {
            let container = try decoder.container(keyedBy: CodingKeys.self)
            self.method = try container.decodeIfPresent(String.self, forKey: .method)?.uppercased() ?? "POST"
            self.path = try container.decode(String.self, forKey: .path)
            self.encoding = try container.decodeIfPresent(String.self, forKey: .encoding) ?? "form"
            self.fields = try container.decodeIfPresent([String: FieldSource].self, forKey: .fields) ?? [:]
            self.success = try container.decodeIfPresent(SuccessCheck.self, forKey: .success) ?? .init()
            self.formToken = try container.decodeIfPresent(FormToken.self, forKey: .formToken)
            self.steps = try container.decodeIfPresent([BrowserStep].self, forKey: .steps) ?? []
        }
    }

    /// Where a login form's one-time token is read: the `value` of the page's
    /// `<input name="field">`, or the `content` of its `<meta name="field">`.
    public struct FormToken: Sendable, Codable, Equatable {
        /// The page to fetch (with the session's cookies); by default the login path.
        public var path: String?
        /// The input's (or meta tag's) name, which is also the field the login sends.
        public var field: String

        public init(path: String? = nil, field: String) {
            self.path = path
            self.field = field
        }
    }

    /// The check of a login answer. All given conditions must hold; the login also fails when
    /// the answer carries an expiry marker (a login page that says "not logged in").
    public struct SuccessCheck: Sendable, Codable, Equatable {
        /// Accepted status codes (default 200, 201, 204, 302, 303).
        public var status: [Int]
        /// A cookie the answer must set; `nil`: any cookie at all.
        public var cookie: String?
        /// A phrase the answer's body must contain (case-insensitive).
        public var bodyContains: String?
        /// The browser kind: an element matching this CSS selector is on the page.
        public var selector: String?
        /// The browser kind: the page's URL matches this pattern (see ``BrowserCondition``).
        public var url: String?
        /// The browser kind: the page's text contains this (case-insensitive).
        public var text: String?

        public init(
            status: [Int] = [200, 201, 204, 302, 303],
            cookie: String? = nil,
            bodyContains: String? = nil,
            selector: String? = nil,
            url: String? = nil,
            text: String? = nil
        ) {
            self.status = status
            self.cookie = cookie
            self.bodyContains = bodyContains
            self.selector = selector
            self.url = url
            self.text = text
        }

        /// The page condition of a browser login.
        public var condition: BrowserCondition { BrowserCondition(selector: self.selector, url: self.url, text: self.text ?? self.bodyContains) }

        enum CodingKeys: String, CodingKey { case status, cookie, bodyContains, selector, url, text }

        public init(from decoder: any Decoder) throws {
            let container = try decoder.container(keyedBy: CodingKeys.self)
            self.status = try container.decodeIfPresent([Int].self, forKey: .status) ?? Self().status
            self.cookie = try container.decodeIfPresent(String.self, forKey: .cookie)
            self.bodyContains = try container.decodeIfPresent(String.self, forKey: .bodyContains)
            self.selector = try container.decodeIfPresent(String.self, forKey: .selector)
            self.url = try container.decodeIfPresent(String.self, forKey: .url)
            self.text = try container.decodeIfPresent(String.self, forKey: .text)
        }
    }

    /// Where a login field's value comes from. Secrets come from the environment or a file;
    /// `value` is for constants that are not secret (a form's `action=login`).
    public struct FieldSource: Sendable, Codable, Equatable {
        /// An environment variable's name.
        public var env: String?
        /// A file's path; its content without a trailing newline is the value.
        public var file: String?
        /// A literal value, for fields that are not secret.
        public var value: String?

        public init(env: String? = nil, file: String? = nil, value: String? = nil) {
            self.env = env
            self.file = file
            self.value = value
        }

        func validate(field: String, upstream: String) throws {
            let given = [self.env, self.file, self.value].compactMap { $0 }.count
            guard given == 1 else {
                throw UpstreamConfigurationError(upstream: upstream, message: "login field '\(field)' needs exactly one of env, file or value")
            }
        }

        /// The value, read now (so a rotated secret file is picked up at the next login).
        public func resolve(field: String, upstream: String, environment: [String: String]) throws -> String {
            if let value = self.value { return value }
            if let name = self.env {
                guard let value = environment[name] else {
                    throw UpstreamConfigurationError(
                        upstream: upstream,
                        message: "login field '\(field)': the environment variable \(name) is not set"
                    )
                }
                return value
            }
            if let path = self.file {
                guard let data = FileManager.default.contents(atPath: path), var text = String(data: data, encoding: .utf8) else {
                    throw UpstreamConfigurationError(upstream: upstream, message: "login field '\(field)': cannot read the file \(path)")
                }
                while text.hasSuffix("\n") || text.hasSuffix("\r") { text.removeLast() }
                return text
            }
            throw UpstreamConfigurationError(upstream: upstream, message: "login field '\(field)' has no source")
        }
    }

    /// One account of a pool: a name for reports, and its login fields.
    public struct Account: Sendable, Codable, Equatable {
        public var name: String
        public var fields: [String: FieldSource]

        public init(name: String, fields: [String: FieldSource]) {
            self.name = name
            self.fields = fields
        }
    }

    /// How an answer says the session has ended.
    public struct ExpiryMarkers: Sendable, Codable, Equatable {
        /// Status codes (default 401, 419, 440).
        public var statuses: [Int]
        /// Phrases looked for in text bodies, case-insensitively.
        public var phrases: [String]
        /// Whether a redirect to the login path (or one of `redirectPaths`) marks an ended session.
        public var loginRedirect: Bool
        /// More paths a redirect to which marks an ended session.
        public var redirectPaths: [String]

        public static let defaultPhrases = ["you are either not logged in", "your session has expired", "please use your back button"]

        public init(
            statuses: [Int] = [401, 419, 440],
            phrases: [String] = Self.defaultPhrases,
            loginRedirect: Bool = true,
            redirectPaths: [String] = []
        ) {
            self.statuses = statuses
            self.phrases = phrases
            self.loginRedirect = loginRedirect
            self.redirectPaths = redirectPaths
        }

        enum CodingKeys: String, CodingKey { case statuses, phrases, loginRedirect, redirectPaths }

        public init(from decoder: any Decoder) throws {
            let container = try decoder.container(keyedBy: CodingKeys.self)
            let defaults = Self()
            self.statuses = try container.decodeIfPresent([Int].self, forKey: .statuses) ?? defaults.statuses
            self.phrases = try container.decodeIfPresent([String].self, forKey: .phrases) ?? defaults.phrases
            self.loginRedirect = try container.decodeIfPresent(Bool.self, forKey: .loginRedirect) ?? defaults.loginRedirect
            self.redirectPaths = try container.decodeIfPresent([String].self, forKey: .redirectPaths) ?? defaults.redirectPaths
        }
    }

    /// Answers that mean the site blocked the session.
    public struct BlockedMarkers: Sendable, Codable, Equatable {
        public var statuses: [Int]
        public var phrases: [String]

        public init(statuses: [Int] = [], phrases: [String] = []) {
            self.statuses = statuses
            self.phrases = phrases
        }

        enum CodingKeys: String, CodingKey { case statuses, phrases }

        public init(from decoder: any Decoder) throws {
            let container = try decoder.container(keyedBy: CodingKeys.self)
            self.statuses = try container.decodeIfPresent([Int].self, forKey: .statuses) ?? []
            self.phrases = try container.decodeIfPresent([String].self, forKey: .phrases) ?? []
        }
    }

    /// How many sessions the pool holds: at least `min` (kept logged in in the background),
    /// at most `max`.
    public struct PoolSize: Sendable, Codable, Equatable {
        public var min: Int
        public var max: Int

        public init(min: Int = 1, max: Int = 4) {
            self.min = min
            self.max = max
        }

        enum CodingKeys: String, CodingKey { case min, max }

        public init(from decoder: any Decoder) throws {
            let container = try decoder.container(keyedBy: CodingKeys.self)
            self.min = try container.decodeIfPresent(Int.self, forKey: .min) ?? 1
            self.max = try container.decodeIfPresent(Int.self, forKey: .max) ?? 4
        }
    }

    /// The keep-alive probe: a cheap page that needs the session.
    public struct KeepAlive: Sendable, Codable, Equatable {
        /// The probe's path (default `/`).
        public var path: String
        /// Seconds between probes of an idle session (default 20).
        public var interval: Double
        /// The browser kind: reload the session's current page instead of visiting `path`.
        public var reload: Bool
        /// The browser kind: what the page shows when logged in. The probe waits for it (or an
        /// expiry marker) before it judges the page, for pages that check the session with a
        /// script; a page that shows neither within the timeout counts as logged out.
        public var waitFor: BrowserWait?

        public init(path: String = "/", interval: Double = 20, reload: Bool = false, waitFor: BrowserWait? = nil) {
            self.path = path
            self.interval = interval
            self.reload = reload
            self.waitFor = waitFor
        }

        enum CodingKeys: String, CodingKey { case path, interval, reload, waitFor }

        public init(from decoder: any Decoder) throws {
            let container = try decoder.container(keyedBy: CodingKeys.self)
            self.path = try container.decodeIfPresent(String.self, forKey: .path) ?? "/"
            self.interval = try container.decodeIfPresent(Double.self, forKey: .interval) ?? 20
            self.reload = try container.decodeIfPresent(Bool.self, forKey: .reload) ?? false
            self.waitFor = try container.decodeIfPresent(BrowserWait.self, forKey: .waitFor)
        }
    }

    /// Login back-off and the per-account circuit breaker.
    public struct LoginBackoff: Sendable, Codable, Equatable {
        /// The first back-off after a failed login, in seconds (default 1); it doubles per
        /// failure in a row, up to `maximum` (default 60), with ±20 % jitter.
        public var initial: Double
        public var maximum: Double
        /// Failed logins in a row after which the account's circuit opens (default 5).
        public var breakerThreshold: Int
        /// How long an open circuit refuses logins for the account, in seconds (default 300).
        /// Sites lock accounts out after repeated failures; this stops the pool from causing it.
        public var breakerOpen: Double
        /// Logins of this pool running at once (default 2).
        public var maxConcurrentLogins: Int

        public init(initial: Double = 1, maximum: Double = 60, breakerThreshold: Int = 5, breakerOpen: Double = 300, maxConcurrentLogins: Int = 2) {
            self.initial = initial
            self.maximum = maximum
            self.breakerThreshold = breakerThreshold
            self.breakerOpen = breakerOpen
            self.maxConcurrentLogins = maxConcurrentLogins
        }

        enum CodingKeys: String, CodingKey { case initial, maximum, breakerThreshold, breakerOpen, maxConcurrentLogins }

        public init(from decoder: any Decoder) throws {
            let container = try decoder.container(keyedBy: CodingKeys.self)
            let defaults = Self()
            self.initial = try container.decodeIfPresent(Double.self, forKey: .initial) ?? defaults.initial
            self.maximum = try container.decodeIfPresent(Double.self, forKey: .maximum) ?? defaults.maximum
            self.breakerThreshold = try container.decodeIfPresent(Int.self, forKey: .breakerThreshold) ?? defaults.breakerThreshold
            self.breakerOpen = try container.decodeIfPresent(Double.self, forKey: .breakerOpen) ?? defaults.breakerOpen
            self.maxConcurrentLogins =
                try container.decodeIfPresent(Int.self, forKey: .maxConcurrentLogins) ?? defaults.maxConcurrentLogins
        }
    }
}
