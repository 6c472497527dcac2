import AsyncHTTPClient
import Foundation
import Hummingbird
import HummingbirdTesting
import Logging
import NIOCore
import Tessera
import TesseraTestSupport
import TesseraUpstream
import Testing

/// The upstream configuration the tests use against ``FakeUpstream``.
func fakeConfiguration(
    baseURL: String,
    name: String = "fake",
    accounts: [UpstreamConfiguration.Account] = [],
    pool: UpstreamConfiguration.PoolSize = .init(min: 1, max: 4),
    keepAliveInterval: Double = 20,
    maxAge: Double = 120,
    maxUses: Int? = nil,
    borrowTimeout: Double = 5,
    leaseTimeout: Double = 60,
    backoff: UpstreamConfiguration.LoginBackoff = .init()
) -> UpstreamConfiguration {
    UpstreamConfiguration(
        name: name,
        baseURL: baseURL,
        login: .init(
            path: "/login",
            fields: ["username": .init(env: "FAKE_USER"), "password": .init(env: "FAKE_PASSWORD")],
            success: .init(cookie: "SESSID")
        ),
        accounts: accounts,
        pool: pool,
        keepAlive: .init(path: "/ping", interval: keepAliveInterval),
        maxAge: maxAge,
        lifetimeJitter: 0.1,
        maxUses: maxUses,
        borrowTimeout: borrowTimeout,
        leaseTimeout: leaseTimeout,
        backoff: backoff
    )
}

/// A fake upstream and a pool of sessions with it, on one manual clock, with a shared HTTP client.
struct PoolFixture: Sendable {
    static let environment = ["FAKE_USER": "alice", "FAKE_PASSWORD": "wonderland", "FAKE_USER_2": "bob", "FAKE_PASSWORD_2": "builder"]

    let clock: ManualClock
    let fake: FakeUpstream
    let pool: UpstreamPool
    let client: HTTPClient

    /// Starts the fake, makes the pool (`configure` adjusts the configuration), runs `body`, and
    /// stops everything.
    static func with<Value: Sendable>(
        seed: UInt64 = 42,
        random: @escaping @Sendable () -> Double = { 0.5 },
        configure: @Sendable (String) -> UpstreamConfiguration = { fakeConfiguration(baseURL: $0) },
        _ body: @Sendable (PoolFixture) async throws -> Value
    ) async throws -> Value {
        // Each fixture runs servers on both cores: one at a time (see `oneAtATime`).
        try await oneAtATime {
            let clock = ManualClock()
            let fake = try await FakeUpstream.start(now: { clock.now }, accounts: ["alice": "wonderland", "bob": "builder"], seed: seed)
            let client = HTTPUpstreamSessionFactory.makeHTTPClient()
            let configuration = configure(fake.baseURL)
            var logger = Logger(label: "tessera.upstream-tests")
            logger.logLevel = .error
            let pool = UpstreamPool(
                configuration: configuration,
                factory: try HTTPUpstreamSessionFactory(configuration: configuration, clock: clock, environment: Self.environment),
                clock: clock,
                random: random,
                logger: logger
            )
            let fixture = PoolFixture(clock: clock, fake: fake, pool: pool, client: client)
            return try await running({ try await body(fixture) }) { await fixture.stop() }
        }
    }

    func stop() async {
        await self.pool.shutdown()
        await self.fake.stop()
        try? await self.client.shutdown()
    }

    /// One round of the keeper, and the logins it started.
    func maintain() async {
        await self.pool.maintain()
        await self.pool.settle()
    }

    /// `GET path` through the pool.
    func get(_ path: String) async throws -> UpstreamResponse {
        try await self.pool.send(UpstreamRequest(method: "GET", pathAndQuery: path))
    }
}

extension UpstreamResponse {
    var text: String { String(buffer: self.body) }
}

/// Whether `error` is the Tessera error with `code`.
func isTesseraError(_ error: any Error, _ code: String) -> Bool {
    (error as? TesseraError)?.code == code
}
