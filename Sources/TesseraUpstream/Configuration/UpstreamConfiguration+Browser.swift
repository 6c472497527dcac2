import Foundation

extension UpstreamConfiguration {
    /// How the pool's sessions are made.
    public enum Kind: String, Sendable, Codable, Equatable {
        /// One login request and a cookie jar per session.
        case http
        /// A headless Chromium per session, driven over WebDriver.
        case browser
    }

    /// The browsers of a `browser` upstream: where Chromium and chromedriver are, and the
    /// limits that keep one browser from harming the others.
    public struct BrowserSettings: Sendable, Codable, Equatable {
        /// Chromium; by default the first of ``defaultChromiumPaths`` that exists.
        public var chromium: String?
        /// chromedriver; by default the first of ``defaultChromedriverPaths`` that exists.
        public var chromedriver: String?
        /// The longest one WebDriver command may take, in seconds (default 30): a browser that
        /// takes longer is taken for hung, killed and replaced.
        public var commandTimeout: Double
        /// The longest a whole login may take, browser start included (seconds, default 60).
        public var loginTimeout: Double
        /// A browser whose processes hold more memory than this (proportional set size, MiB,
        /// default 1024) is replaced.
        public var maxMemoryMB: Int
        /// The most a `read` step returns, and the most of a page the expiry check reads
        /// (bytes, default 262144).
        public var maxReadBytes: Int
        /// More Chromium command-line arguments.
        public var arguments: [String]

        public static let defaultChromiumPaths = ["/usr/bin/chromium", "/usr/bin/chromium-browser", "/usr/bin/google-chrome"]
        public static let defaultChromedriverPaths = ["/usr/bin/chromedriver", "/usr/lib/chromium/chromedriver", "/usr/local/bin/chromedriver"]

        public init(
            chromium: String? = nil,
            chromedriver: String? = nil,
            commandTimeout: Double = 30,
            loginTimeout: Double = 60,
            maxMemoryMB: Int = 1024,
            maxReadBytes: Int = 256 * 1024,
            arguments: [String] = []
        ) {
            self.chromium = chromium
            self.chromedriver = chromedriver
            self.commandTimeout = commandTimeout
            self.loginTimeout = loginTimeout
            self.maxMemoryMB = maxMemoryMB
            self.maxReadBytes = maxReadBytes
            self.arguments = arguments
        }

        enum CodingKeys: String, CodingKey { case chromium, chromedriver, commandTimeout, loginTimeout, maxMemoryMB, maxReadBytes, arguments }

        public init(from decoder: any Decoder) throws {
            let container = try decoder.container(keyedBy: CodingKeys.self)
            let defaults = Self()
            self.chromium = try container.decodeIfPresent(String.self, forKey: .chromium)
            self.chromedriver = try container.decodeIfPresent(String.self, forKey: .chromedriver)
            self.commandTimeout = try container.decodeIfPresent(Double.self, forKey: .commandTimeout) ?? defaults.commandTimeout
            self.loginTimeout = try container.decodeIfPresent(Double.self, forKey: .loginTimeout) ?? defaults.loginTimeout
            self.maxMemoryMB = try container.decodeIfPresent(Int.self, forKey: .maxMemoryMB) ?? defaults.maxMemoryMB
            self.maxReadBytes = try container.decodeIfPresent(Int.self, forKey: .maxReadBytes) ?? defaults.maxReadBytes
            self.arguments = try container.decodeIfPresent([String].self, forKey: .arguments) ?? []
        }

        /// The Chromium executable, or `nil` when none is installed.
        public var chromiumPath: String? {
            Self.executable(self.chromium, Self.defaultChromiumPaths)
        }

        /// The chromedriver executable, or `nil` when none is installed.
        public var chromedriverPath: String? {
            Self.executable(self.chromedriver, Self.defaultChromedriverPaths)
        }

        static func executable(_ configured: String?, _ defaults: [String]) -> String? {
            if let configured { return FileManager.default.isExecutableFile(atPath: configured) ? configured : nil }
            return defaults.first { FileManager.default.isExecutableFile(atPath: $0) }
        }

        /// What is missing to run browsers, in one sentence; `nil` when both are installed.
        public var missingExecutables: String? {
            var missing: [String] = []
            if self.chromiumPath == nil { missing.append("Chromium (\(self.chromium ?? Self.defaultChromiumPaths.joined(separator: ", ")))") }
            if self.chromedriverPath == nil {
                missing.append("chromedriver (\(self.chromedriver ?? Self.defaultChromedriverPaths.joined(separator: ", ")))")
            }
            guard !missing.isEmpty else { return nil }
            return "\(missing.joined(separator: " and ")) not found; install Debian's chromium and chromium-driver packages"
        }
    }

    /// The browser kind's checks: a login made of steps, a success condition on the page, and
    /// limits within reason.
    func validateBrowser() throws {
        func fail(_ message: String) -> UpstreamConfigurationError { .init(upstream: self.name, message: message) }
        guard !self.login.steps.isEmpty else { throw fail("a browser upstream logs in by login.steps; there are none") }
        guard !self.login.success.condition.isEmpty else {
            throw fail("a browser upstream needs login.success with a selector, url or text that holds once logged in")
        }
        guard self.pool.max <= 32 else { throw fail("a browser upstream holds at most 32 browsers (pool.max)") }
        let fields = Set(self.login.fields.keys)
        for (index, step) in self.login.steps.enumerated() {
            try Self.validate(step, at: "login.steps[\(index)]", upstream: self.name)
            if case .fill(_, .field(let field)) = step {
                for account in self.effectiveAccounts where !fields.contains(field) && account.fields[field] == nil {
                    throw fail("login.steps[\(index)] fills the field '\(field)', which account '\(account.name)' does not have")
                }
            }
            if case .fill(_, .source(let source)) = step {
                try source.validate(field: "login.steps[\(index)]", upstream: self.name)
            }
        }
        if let wait = self.keepAlive.waitFor {
            guard !wait.condition.isEmpty else { throw fail("keepAlive.waitFor needs a selector, url or text") }
            guard wait.timeout.isFinite, wait.timeout > 0, wait.timeout <= 120 else {
                throw fail("keepAlive.waitFor.timeout must be more than 0 and at most 120 seconds")
            }
        }
        let settings = self.browser
        guard settings.commandTimeout.isFinite, (1...600).contains(settings.commandTimeout) else {
            throw fail("browser.commandTimeout must be 1 to 600 seconds")
        }
        guard settings.loginTimeout.isFinite, (1...600).contains(settings.loginTimeout) else {
            throw fail("browser.loginTimeout must be 1 to 600 seconds")
        }
        guard settings.maxMemoryMB >= 64 else { throw fail("browser.maxMemoryMB must be at least 64") }
        guard (1024...(16 * 1024 * 1024)).contains(settings.maxReadBytes) else {
            throw fail("browser.maxReadBytes must be 1024 to 16777216")
        }
    }

    /// Checks one step's own values: paths below the base URL, selectors and conditions given,
    /// waits within a minute… (a client's action steps are checked the same way).
    public static func validate(_ step: BrowserStep, at place: String, upstream: String) throws {
        func fail(_ message: String) -> UpstreamConfigurationError { .init(upstream: upstream, message: "\(place): \(message)") }
        switch step {
        case .goto(let path):
            guard path.hasPrefix("/"), !path.hasPrefix("//") else { throw fail("goto takes a path below the base URL, starting with '/'") }
        case .fill(let selector, _), .click(let selector), .submit(let selector):
            guard !selector.isEmpty else { throw fail("\(step.name) needs a selector") }
        case .press(let selector, let key):
            guard !selector.isEmpty else { throw fail("press needs a selector") }
            guard BrowserKeys.code(for: key) != nil else {
                throw fail("press takes one character or one of \(BrowserKeys.named.keys.sorted().joined(separator: ", "))")
            }
        case .waitFor(let condition, let timeout):
            guard !condition.isEmpty else { throw fail("waitFor needs a selector, url or text") }
            guard timeout.isFinite, timeout > 0, timeout <= 120 else { throw fail("waitFor.timeout must be more than 0 and at most 120 seconds") }
        case .read(let read, _):
            switch read {
            case .text(let selector), .attribute(let selector, _):
                guard !selector.isEmpty else { throw fail("read needs a selector") }
            case .page, .source, .url:
                break
            }
        }
    }
}

/// The keys a `press` step may send, as WebDriver's key codes.
enum BrowserKeys {
    static let named: [String: String] = [
        "Enter": "\u{E007}", "Tab": "\u{E004}", "Escape": "\u{E00C}", "Backspace": "\u{E003}", "Space": " ",
        "ArrowDown": "\u{E015}", "ArrowUp": "\u{E013}", "ArrowLeft": "\u{E012}", "ArrowRight": "\u{E014}",
    ]

    static func code(for key: String) -> String? {
        if let code = Self.named[key] { return code }
        return key.count == 1 ? key : nil
    }
}
