import Foundation
import TesseraTestSupport
import TesseraWebDriver

/// A real `tessera serve` serving the test pages (`Pages/`) on its own origin, with every
/// request in its log so that tests count what reached it; and a user to sign in as.
final class PageServer: @unchecked Sendable {
    static let password = "correct horse battery staple"
    static let pages = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Pages").path

    let directory = TemporaryDirectory()
    let dataDirectory: String
    let arguments: [String]
    private(set) var process: ServerProcess
    private(set) var logs: [String] = []

    init(staticDirectory: String = PageServer.pages, arguments: [String] = []) async throws {
        self.dataDirectory = self.directory.url.appendingPathComponent("data").path
        self.arguments = ["--static-dir", staticDirectory] + arguments
        let added = try ServerProcess.run(
            ["users", "add", "alice", "--data-dir", self.dataDirectory],
            input: Self.password + "\n",
            environment: Self.environment
        )
        guard added.status == 0 else { throw HarnessError("users add alice: \(added.output)") }
        self.process = try await ServerProcess(
            dataDirectory: self.dataDirectory,
            logDirectory: self.directory.url,
            environment: Self.environment,
            arguments: self.arguments,
            name: "pages"
        )
    }

    static let environment = ["TESSERA_BCRYPT_COST": "4", "TESSERA_LOG_LEVEL": "debug"]

    var baseURL: String { self.process.baseURL }

    /// How many requests for `path` (method `method`) reached the service so far, restarts included.
    func requests(_ method: String, _ path: String) -> Int {
        (self.logs + [self.process.standardError]).joined(separator: "\n").split(separator: "\n").count { line in
            line.contains("hb.request.method=\(method)") && line.contains("hb.request.path=\(path)") && line.hasSuffix("Request")
        }
    }

    /// Every API request (`/v1/…`) that reached the service so far (the service logs each one,
    /// at debug level, on standard error).
    func requestCount() -> Int {
        (self.logs + [self.process.standardError]).joined(separator: "\n").split(separator: "\n").count {
            $0.hasSuffix("Request") && $0.contains("hb.request.path=/v1/")
        }
    }

    /// `kill -9`: nothing of the service's shutdown runs.
    func kill() {
        self.process.kill()
        self.logs.append(self.process.standardError)
    }

    /// Starts the service again on the same data directory and port.
    func restart() async throws {
        let port = self.process.port
        self.process = try await ServerProcess(
            dataDirectory: self.dataDirectory,
            logDirectory: self.directory.url,
            environment: Self.environment,
            arguments: self.arguments + ["--port", String(port)],
            name: "pages-\(self.logs.count)"
        )
    }

    /// `tessera …` against this service's data directory.
    func command(_ arguments: [String]) throws -> String {
        let result = try ServerProcess.run(arguments + ["--data-dir", self.dataDirectory], environment: Self.environment)
        guard result.status == 0 else { throw HarnessError("tessera \(arguments.joined(separator: " ")): \(result.output)") }
        return result.output
    }
}

/// Headless Chromium over WebDriver, with its tabs.
final class Browser: @unchecked Sendable {
    /// Whether the browser tests run: chromedriver is installed, or `TESSERA_REQUIRE_BROWSER=1`
    /// (as `.ci/run` sets) makes its absence a failure rather than a skip.
    static var available: Bool {
        ProcessInfo.processInfo.environment["TESSERA_REQUIRE_BROWSER"] == "1"
            || ChromeDriver.defaultPaths.contains { FileManager.default.isExecutableFile(atPath: $0) }
    }

    let chromedriver: ChromeDriver
    let session: WebDriverSession

    init() async throws {
        self.chromedriver = try await ChromeDriver()
        do {
            self.session = try await self.chromedriver.driver.newSession(.headlessChromium())
            try await self.session.setTimeouts(script: .seconds(60), pageLoad: .seconds(30))
        } catch {
            await self.chromedriver.stop()
            throw error
        }
    }

    /// Loads `url` in the current tab and waits for the page's `window.ready`.
    @discardableResult
    func open(_ url: String) async throws -> WebDriverJSON {
        try await self.session.navigate(to: url)
        return try await self.waitReady()
    }

    /// Waits for the current page's `window.ready` (after a navigation the page made itself).
    @discardableResult
    func waitReady() async throws -> WebDriverJSON {
        for _ in 0..<200 {
            let ready = try await self.session.execute("return typeof window.ready === 'undefined' ? null : window.ready")
            if !ready.isNull { return ready }
            try await Task.sleep(for: .milliseconds(25))
        }
        throw HarnessError("the page never set window.ready")
    }

    /// Opens a new tab with `url` and makes it current; returns its handle.
    @discardableResult
    func openTab(_ url: String) async throws -> String {
        let handle = try await self.session.newWindow()
        try await self.session.switchToWindow(handle)
        try await self.open(url)
        return handle
    }

    /// Runs `script` in the tab `handle`.
    @discardableResult
    func run(in handle: String, _ script: String, _ arguments: [WebDriverJSON] = []) async throws -> WebDriverJSON {
        try await self.session.switchToWindow(handle)
        return try await self.session.execute(script, arguments)
    }

    /// The events the tab `handle` recorded (they survive its navigations).
    func events(in handle: String) async throws -> [WebDriverJSON] {
        try await self.run(in: handle, "return window.events ? window.events() : []").array ?? []
    }

    /// The events of kind `kind` the tab recorded.
    func events(_ kind: String, in handle: String) async throws -> [WebDriverJSON] {
        try await self.events(in: handle).filter { $0["kind"]?.string == kind }
    }

    func close() async {
        try? await self.session.delete()
        await self.chromedriver.stop()
    }
}
