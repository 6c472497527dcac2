import AsyncHTTPClient
import Foundation
import Logging
import Tessera
import TesseraTestSupport
import TesseraUpstream
import TesseraWebDriver
import Testing

/// Whether the browser-kind tests run: Chromium and chromedriver are installed, or
/// `TESSERA_REQUIRE_BROWSER=1` (as `.ci/run` sets) makes their absence a failure.
let browsersAvailable =
    ProcessInfo.processInfo.environment["TESSERA_REQUIRE_BROWSER"] == "1"
    || UpstreamConfiguration.BrowserSettings().missingExecutables == nil

/// The browser-kind upstream the tests use against ``FakeBrowserSite``: a login by steps (the
/// site's form exists only once its script ran), and a keep-alive that waits for the page's
/// script to show the user.
func browserConfiguration(
    baseURL: String,
    pool: UpstreamConfiguration.PoolSize = .init(min: 1, max: 2),
    keepAliveInterval: Double = 20,
    maxAge: Double = 120,
    borrowTimeout: Double = 30
) -> UpstreamConfiguration {
    UpstreamConfiguration(
        name: "portal",
        baseURL: baseURL,
        kind: .browser,
        login: .init(
            path: "/login",
            fields: ["username": .init(env: "FAKE_USER"), "password": .init(env: "FAKE_PASSWORD")],
            success: .init(selector: "#user"),
            steps: [
                .goto("/login"),
                .waitFor(.init(selector: "#username"), timeout: 10),
                .fill(selector: "#username", value: .field("username")),
                .fill(selector: "#password", value: .field("password")),
                .click("#sign-in"),
            ]
        ),
        pool: pool,
        keepAlive: .init(path: "/home", interval: keepAliveInterval, waitFor: .init(selector: "#user", timeout: 10)),
        maxAge: maxAge,
        lifetimeJitter: 0.1,
        borrowTimeout: borrowTimeout,
        browser: .init(commandTimeout: 30, loginTimeout: 60)
    )
}

/// The fake site and a browser pool with it, on one manual clock.
struct BrowserPoolFixture: Sendable {
    static let environment = ["FAKE_USER": "alice", "FAKE_PASSWORD": "wonderland"]

    let clock: ManualClock
    let site: FakeBrowserSite
    let pool: UpstreamPool
    let factory: BrowserUpstreamSessionFactory
    let client: HTTPClient

    static func with<Value: Sendable>(
        configure: @Sendable (String) -> UpstreamConfiguration = { browserConfiguration(baseURL: $0) },
        _ body: @Sendable (BrowserPoolFixture) async throws -> Value
    ) async throws -> Value {
        // Browsers take both cores: one fixture at a time.
        try await oneAtATime {
            let clock = ManualClock()
            let site = try await FakeBrowserSite.start(now: { clock.now })
            let client = HTTPUpstreamSessionFactory.makeHTTPClient()
            let configuration = configure(site.baseURL)
            try configuration.validate()
            var logger = Logger(label: "tessera.browser-upstream-tests")
            logger.logLevel = .error
            let factory = try BrowserUpstreamSessionFactory(configuration: configuration, client: client, clock: clock, environment: Self.environment)
            let pool = UpstreamPool(configuration: configuration, factory: factory, clock: clock, random: { 0.5 }, logger: logger)
            let fixture = BrowserPoolFixture(clock: clock, site: site, pool: pool, factory: factory, client: client)
            return try await running({ try await body(fixture) }) { await fixture.stop() }
        }
    }

    func stop() async {
        await self.pool.shutdown()
        await self.factory.closeAll()
        await self.site.stop()
        try? await self.client.shutdown()
    }

    /// One round of the keeper, and the logins it started.
    func maintain() async {
        await self.pool.maintain()
        await self.pool.settle()
    }

    /// The steps that read item `n`'s page.
    static func readItem(_ n: Int) -> [BrowserStep] {
        [.goto("/items/\(n)"), .waitFor(.init(selector: "#price"), timeout: 10), .read(.text(selector: "#price"), label: "price")]
    }
}
