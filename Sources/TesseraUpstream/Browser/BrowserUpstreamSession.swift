import Foundation
import NIOCore
import Synchronization
import Tessera
import TesseraWebDriver

/// One browser session with an upstream site: a headless Chromium (and its chromedriver) that
/// logged in, and a cookie jar that holds a copy of the browser's cookies for plain HTTP
/// requests (cookies-out).
///
/// The browser is the truth: its cookies are copied into the jar after each login, probe and
/// list of actions; cookies the site sets on plain requests are copied into the browser before
/// its next use. A browser that crashes, hangs past the command timeout or loses its window is
/// killed at once, with every process it started, and the session reports itself ended.
final class BrowserUpstreamSession: UpstreamBrowserConnection {
    let factory: BrowserUpstreamSessionFactory
    let number: Int
    let chromedriver: ChromeDriver
    let browser: WebDriverSession
    let profile: URL
    /// Plain requests with the browser's cookies.
    let http: HTTPUpstreamSession
    let state = Mutex(State())

    struct State {
        var ended = false
        var closed = false
        var cookiesChangedOverHTTP = false
        var overMemory = false
        /// The memory measured last (by ``checkMemory()``).
        var memoryBytes: Int?
    }

    var configuration: UpstreamConfiguration { self.factory.configuration }

    private init(factory: BrowserUpstreamSessionFactory, number: Int, chromedriver: ChromeDriver, browser: WebDriverSession, profile: URL) {
        self.factory = factory
        self.number = number
        self.chromedriver = chromedriver
        self.browser = browser
        self.profile = profile
        self.http = HTTPUpstreamSession(factory: factory.http)
    }

    /// Starts chromedriver and a browser in a fresh profile.
    static func start(
        factory: BrowserUpstreamSessionFactory,
        number: Int,
        chromium: String,
        chromedriver path: String,
        marker: String
    ) async throws -> BrowserUpstreamSession {
        let profile = FileManager.default.temporaryDirectory.appendingPathComponent(marker)
        try FileManager.default.createDirectory(at: profile, withIntermediateDirectories: true)
        let chromedriver: ChromeDriver
        do {
            chromedriver = try await ChromeDriver(path: path, marker: marker, timeout: .seconds(20))
        } catch {
            try? FileManager.default.removeItem(at: profile)
            throw error
        }
        let settings = factory.configuration.browser
        let driver = WebDriver(
            url: chromedriver.url,
            httpClient: factory.client,
            commandTimeout: .milliseconds(Int64(settings.commandTimeout * 1000))
        )
        do {
            let browser = try await driver.newSession(.headlessChromium(binary: chromium, arguments: Self.arguments(profile: profile) + settings.arguments))
            // A slow page or script ends its command with a WebDriver timeout well before the
            // command itself times out, which is what marks a hung browser.
            let limit = Duration.milliseconds(Int64(settings.commandTimeout * 800))
            try await browser.setTimeouts(script: limit, pageLoad: limit, implicit: .milliseconds(Int64(min(5, settings.commandTimeout / 4) * 1000)))
            return BrowserUpstreamSession(factory: factory, number: number, chromedriver: chromedriver, browser: browser, profile: profile)
        } catch {
            chromedriver.process.kill()
            try? FileManager.default.removeItem(at: profile)
            throw error
        }
    }

    /// Chromium's arguments besides the headless ones: a profile of the session's own, and no
    /// background work a pooled browser does not need.
    static func arguments(profile: URL) -> [String] {
        [
            "--user-data-dir=\(profile.path)", "--no-first-run", "--no-default-browser-check", "--disable-extensions",
            "--disable-background-networking", "--disable-component-update", "--disable-default-apps", "--disable-sync",
            "--disable-crash-reporter", "--disable-breakpad", "--password-store=basic", "--mute-audio",
            "--disable-features=Translate,MediaRouter,OptimizationHints",
        ]
    }

    /// The browser's pid (chromedriver's, whose process group holds the browser).
    var pid: Int32 { self.chromedriver.process.pid }

    /// The memory the browser's processes held when last measured (after its login and each
    /// keep-alive probe), in bytes.
    var memoryBytes: Int? { self.state.withLock { $0.memoryBytes } }

    // MARK: UpstreamSessionConnection

    func send(_ request: UpstreamRequest) async throws -> UpstreamResponse {
        let response = try await self.http.send(request)
        if !response.headers("set-cookie").isEmpty {
            self.state.withLock { $0.cookiesChangedOverHTTP = true }
        }
        return response
    }

    func cookies() -> [UpstreamCookie] {
        self.http.cookies()
    }

    var wantsReplacement: Bool {
        self.state.withLock { $0.overMemory }
    }

    func probe(_ request: UpstreamRequest, reader: UpstreamVerdictReader) async -> (UpstreamVerdict, String?) {
        do {
            try self.checkNotEnded()
            try await self.pushCookies()
            if self.configuration.keepAlive.reload {
                try await self.browser.refresh()
            } else {
                try await self.browser.navigate(to: self.url(for: request.pathAndQuery))
            }
            let verdict = try await self.settledVerdict(reader: reader)
            try await self.pullCookies()
            self.checkMemory()
            return (verdict, nil)
        } catch {
            return self.judge(error)
        }
    }

    func close() async {
        let (alreadyClosed, ended) = self.state.withLock { state in
            defer { state.closed = true }
            return (state.closed, state.ended)
        }
        guard !alreadyClosed else { return }
        if !ended {
            // Ending the WebDriver session closes the browser; a browser that does not answer
            // within 5 s is killed with the rest.
            let quick = WebDriver(url: self.chromedriver.url, httpClient: self.factory.client, commandTimeout: .seconds(5))
            try? await WebDriverSession(driver: quick, id: self.browser.id).delete()
        }
        await self.chromedriver.stop()
        try? FileManager.default.removeItem(at: self.profile)
        await self.http.close()
        self.factory.closed(self.number)
    }

    // MARK: Faults

    /// Throws when the browser has ended already.
    func checkNotEnded() throws {
        if self.state.withLock({ $0.ended }) {
            throw WebDriverError(error: "invalid session id", message: "the browser was killed", command: "")
        }
    }

    /// Whether `error` means the browser is gone or hung: no answer from chromedriver (a
    /// command past its timeout included), or chromedriver saying the browser is gone.
    static func isLost(_ error: any Error) -> Bool {
        guard let error = error as? WebDriverError else { return false }
        switch error.error {
        case "transport", "invalid answer", "invalid session id", "session not created", "no such window", "disconnected", "chrome not reachable":
            return true
        case "unknown error":
            let message = error.message.lowercased()
            return ["crash", "disconnected", "not reachable", "devtools", "session deleted"].contains { message.contains($0) }
        default:
            return false
        }
    }

    /// Kills the browser for good after a crash or a hang (once).
    func lose() {
        let first = self.state.withLock { state in
            defer { state.ended = true }
            return !state.ended
        }
        guard first else { return }
        self.chromedriver.process.kill()
        self.factory.count { $0.crashes += 1 }
    }

    /// A probe's verdict on a failure: an ended session when the browser is lost, else transient.
    func judge(_ error: any Error) -> (UpstreamVerdict, String?) {
        if Self.isLost(error) {
            self.lose()
            return (.expired(.browserEnded), "the browser ended: \(BrowserUpstreamSessionFactory.describe(error))")
        }
        return (.transient, BrowserUpstreamSessionFactory.describe(error))
    }

    /// Measures the browser's memory (a walk of `/proc`: done after the login and by the
    /// keeper's probe, not on a client's request); with `enforce`, marks the session for
    /// replacement when it holds more than `maxMemoryMB`. The measure right after the login only
    /// records: a limit below what a fresh browser holds would otherwise replace browsers without
    /// end, instead of once per keep-alive interval.
    func checkMemory(enforce: Bool = true) {
        let measured = self.chromedriver.process.memoryBytes
        self.state.withLock { $0.memoryBytes = measured }
        guard enforce, let bytes = measured, bytes > self.configuration.browser.maxMemoryMB * 1024 * 1024 else { return }
        let first = self.state.withLock { state in
            defer { state.overMemory = true }
            return !state.overMemory
        }
        if first { self.factory.count { $0.overMemory += 1 } }
    }

    /// Runs `body`, killing the browser if it takes longer than `seconds` (its commands then
    /// fail at once).
    func withDeadline<Value: Sendable>(_ seconds: Double, what: String, _ body: @Sendable () async throws -> Value) async throws -> Value {
        let watchdog = Task { [weak self] in
            try await Task.sleep(for: .milliseconds(Int64(seconds * 1000)))
            self?.lose()
        }
        do {
            let value = try await body()
            watchdog.cancel()
            return value
        } catch {
            watchdog.cancel()
            if case .success = await watchdog.result {
                throw UpstreamLoginError(.unreachable, reason: "\(what) took longer than \(Int(seconds)) s; the browser was killed")
            }
            throw error
        }
    }

    // MARK: Cookies

    /// Copies the browser's cookies into the jar (the browser's are the truth).
    func pullCookies() async throws {
        let now = self.factory.http.clock.now
        let wall = Date()
        let cookies = try await self.browser.cookies().map { cookie in
            let domain = (cookie.domain ?? self.factory.http.origin.host).lowercased()
            return UpstreamCookie(
                name: cookie.name,
                value: cookie.value,
                domain: domain.hasPrefix(".") ? String(domain.dropFirst()) : domain,
                hostOnly: !domain.hasPrefix("."),
                path: cookie.path ?? "/",
                // The browser counts on the wall clock; the jar on the pool's.
                expires: cookie.expiry.map { now.addingTimeInterval($0 - wall.timeIntervalSince1970) },
                secure: cookie.secure,
                httpOnly: cookie.httpOnly
            )
        }
        self.http.jar.withLock { $0 = CookieJar(cookies: cookies) }
        self.state.withLock { $0.cookiesChangedOverHTTP = false }
    }

    /// Copies the jar's cookies into the browser when plain requests changed them.
    func pushCookies() async throws {
        guard self.state.withLock({ $0.cookiesChangedOverHTTP }) else { return }
        let now = self.factory.http.clock.now
        let wall = Date()
        for cookie in self.http.cookies() {
            try await self.browser.addCookie(
                WebDriverCookie(
                    name: cookie.name,
                    value: cookie.value,
                    path: cookie.path,
                    domain: cookie.hostOnly ? nil : "." + cookie.domain,
                    httpOnly: cookie.httpOnly,
                    secure: cookie.secure,
                    expiry: cookie.expires.map { wall.timeIntervalSince1970 + $0.timeIntervalSince(now) }
                )
            )
        }
        self.state.withLock { $0.cookiesChangedOverHTTP = false }
    }
}
