public import AsyncHTTPClient
public import Foundation
import Synchronization
public import Tessera
import TesseraWebDriver

/// The browser kind of upstream session: each session is a headless Chromium, with a
/// chromedriver of its own, that logs in by the recipe's steps (`login.steps`) and is checked
/// by the page it shows.
///
/// One chromedriver per browser rather than one for the pool: a chromedriver costs about 16 MB
/// next to a browser's 350–400 MB, and a crash or a hang then takes one session down, not
/// every session of the pool; killing a session is killing one process group.
///
/// The session's cookies are copied out of the browser after every use, so that the pool lends
/// them and proxies plain HTTP requests with them (``BrowserUpstreamSession/send(_:)``).
public final class BrowserUpstreamSessionFactory: UpstreamSessionFactory {
    let configuration: UpstreamConfiguration
    let http: HTTPUpstreamSessionFactory
    /// The client of WebDriver commands.
    let client: HTTPClient
    let environment: [String: String]
    let reader: UpstreamVerdictReader
    /// The marker every process of this factory's browsers carries (``MarkedProcess``), followed by a number.
    public let markerPrefix: String
    let state = Mutex(State())

    struct State {
        var statistics = BrowserStatistics()
        var nextBrowser = 1
        var open: [Int: BrowserUpstreamSession] = [:]
        /// The process group of every browser started (chromedriver's pid), to find what is left.
        var groups: [Int32] = []
    }

    /// - Parameters:
    ///   - configuration: the upstream (validated, of the browser kind)
    ///   - client: the `HTTPClient` of WebDriver commands (see
    ///     ``HTTPUpstreamSessionFactory/makeHTTPClient()``)
    ///   - clock: the clock cookie expiry is read on
    ///   - environment: where `env` login fields are read
    public init(
        configuration: UpstreamConfiguration,
        client: HTTPClient,
        clock: any WallClock = SystemClock(),
        environment: [String: String] = ProcessInfo.processInfo.environment
    ) throws {
        self.configuration = configuration
        self.http = try HTTPUpstreamSessionFactory(configuration: configuration, clock: clock, environment: environment)
        self.client = client
        self.environment = environment
        self.reader = UpstreamVerdictReader(configuration: configuration)
        self.markerPrefix = "tessera-\(getpid())-\(configuration.name)-\(UUID().uuidString.prefix(8).lowercased())-"
    }

    /// The browsers' figures now.
    public var statistics: BrowserStatistics {
        self.state.withLock { state in
            var statistics = state.statistics
            statistics.running = state.open.count
            return statistics
        }
    }

    /// The pids of every browser process this factory started that still runs (chromedriver,
    /// Chromium and Chromium's helpers): the marked ones and those of the browsers' groups.
    public var runningProcesses: [Int32] {
        MarkedProcess.processes(inGroupsOf: Set(self.state.withLock { $0.groups }), markedWithPrefix: self.markerPrefix)
    }

    func count(_ update: (inout BrowserStatistics) -> Void) {
        self.state.withLock { update(&$0.statistics) }
    }

    func closed(_ browser: Int) {
        self.state.withLock { _ = $0.open.removeValue(forKey: browser) }
    }

    public func logIn(account: UpstreamConfiguration.Account) async throws -> any UpstreamSessionConnection {
        let settings = self.configuration.browser
        guard let chromium = settings.chromiumPath, let chromedriver = settings.chromedriverPath else {
            throw UpstreamLoginError(.unreachable, reason: settings.missingExecutables ?? "no browser")
        }
        var values: [String: String] = [:]
        do {
            for (field, source) in self.configuration.login.fields.merging(account.fields, uniquingKeysWith: { $1 }) {
                values[field] = try source.resolve(field: field, upstream: self.configuration.name, environment: self.environment)
            }
        } catch let error as UpstreamConfigurationError {
            throw UpstreamLoginError(.refused, reason: error.message)
        }
        let number = self.state.withLock { state in
            defer { state.nextBrowser += 1 }
            return state.nextBrowser
        }
        let browser: BrowserUpstreamSession
        do {
            browser = try await BrowserUpstreamSession.start(
                factory: self,
                number: number,
                chromium: chromium,
                chromedriver: chromedriver,
                marker: self.markerPrefix + String(number)
            )
        } catch {
            self.count { $0.startFailures += 1 }
            throw UpstreamLoginError(.unreachable, reason: "the browser did not start: \(Self.describe(error))")
        }
        self.state.withLock {
            $0.statistics.starts += 1
            $0.open[number] = browser
            $0.groups.append(browser.pid)
        }
        let fields = values
        do {
            try await browser.withDeadline(settings.loginTimeout, what: "the login") {
                try await browser.logIn(values: fields)
            }
            return browser
        } catch {
            await browser.close()
            if let error = error as? UpstreamLoginError { throw error }
            throw UpstreamLoginError(.unreachable, reason: "the login failed in the browser: \(Self.describe(error))")
        }
    }

    /// Closes the connections of plain requests to the site.
    public func shutdown() async {
        await self.http.shutdown()
    }

    /// Closes every browser still open (at shutdown, after the pool has closed its sessions,
    /// this finds none) and kills whatever process of theirs is left.
    public func closeAll() async {
        let open = self.state.withLock { Array($0.open.values) }
        for browser in open { await browser.close() }
        let groups = self.state.withLock { $0.groups }
        for group in groups { kill(-group, SIGKILL) }
        for pid in self.runningProcesses { kill(pid, SIGKILL) }
    }

    /// Kills the browsers a Tessera process left behind when it was killed (`kill -9` leaves no
    /// time to close them): processes whose marker names a server pid that no longer runs.
    /// Returns how many it killed. Browsers of servers that still run are left alone.
    @discardableResult
    public static func killOrphanedBrowsers() -> Int {
        var killed = 0
        for pid in MarkedProcess.processes(markedWithPrefix: "tessera-") {
            guard let owner = MarkedProcess.marker(of: pid).flatMap(Self.owner(ofMarker:)), owner != getpid() else { continue }
            // Signal 0 checks that the owner exists; EPERM means it exists as another user's.
            if kill(owner, 0) == 0 || errno == EPERM { continue }
            kill(pid, SIGKILL)
            killed += 1
        }
        return killed
    }

    /// The server pid in a marker `tessera-<pid>-<upstream>-<id>-<n>`.
    static func owner(ofMarker marker: String) -> Int32? {
        let parts = marker.split(separator: "-", maxSplits: 2)
        guard parts.count == 3, parts[0] == "tessera" else { return nil }
        return Int32(parts[1])
    }

    static func describe(_ error: any Error) -> String {
        if let error = error as? WebDriverError { return "\(error.error): \(error.message.prefix(300))" }
        return "\(error)"
    }
}

/// What a browser pool's browsers have done.
public struct BrowserStatistics: Sendable, Codable, Equatable {
    /// Browsers started.
    public var starts = 0
    /// Browsers that failed to start.
    public var startFailures = 0
    /// Browsers found crashed, hung (a command past its timeout) or closed, and killed.
    public var crashes = 0
    /// Browsers replaced because their memory went past `browser.maxMemoryMB`.
    public var overMemory = 0
    /// Browsers open now.
    public var running = 0

    public init() {}
}
