public import Foundation

/// The parts of an upstream's configuration: the login recipe, its fields and accounts, the
/// expiry and blocked markers, the pool's size, the keep-alive, the back-off.
extension UpstreamConfiguration {
    /// How the pool logs in: one request and a check of its answer (the HTTP kind), or steps
    /// taken in a browser and a check of the page (the browser kind).
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
