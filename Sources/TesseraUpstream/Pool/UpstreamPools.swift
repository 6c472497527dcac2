public import AsyncHTTPClient
public import Foundation
public import Logging
public import Tessera

/// The pools of a `--upstreams` file, by name, over one shared `HTTPClient` (of plain requests,
/// and of WebDriver commands for the browser kind).
public struct UpstreamPools: Sendable {
    public let pools: [String: UpstreamPool]
    let client: HTTPClient?

    /// Pools made by hand (tests).
    public init(pools: [UpstreamPool]) {
        self.pools = Dictionary(uniqueKeysWithValues: pools.map { ($0.name, $0) })
        self.client = nil
    }

    /// A pool for every upstream of `file`, of its kind.
    public init(
        file: UpstreamsFile,
        clock: any WallClock = SystemClock(),
        environment: [String: String] = ProcessInfo.processInfo.environment,
        logger: Logger = Logger(label: "tessera.upstream")
    ) throws {
        if file.upstreams.contains(where: { $0.kind == .browser }) {
            let killed = BrowserUpstreamSessionFactory.killOrphanedBrowsers()
            if killed > 0 {
                logger.warning("Killed browser processes a stopped Tessera left behind", metadata: ["processes": .stringConvertible(killed)])
            }
        }
        let client = HTTPUpstreamSessionFactory.makeHTTPClient(readTimeout: file.upstreams.map(\.requestTimeout).max() ?? 30)
        var pools: [String: UpstreamPool] = [:]
        do {
            for configuration in file.upstreams {
                let factory = try Self.factory(for: configuration, client: client, clock: clock, environment: environment)
                pools[configuration.name] = UpstreamPool(configuration: configuration, factory: factory, clock: clock, logger: logger)
            }
        } catch {
            try? client.syncShutdown()
            throw error
        }
        self.pools = pools
        self.client = client
    }

    /// The session factory of `configuration`'s kind.
    public static func factory(
        for configuration: UpstreamConfiguration,
        client: HTTPClient,
        clock: any WallClock = SystemClock(),
        environment: [String: String] = ProcessInfo.processInfo.environment
    ) throws -> any UpstreamSessionFactory {
        switch configuration.kind {
        case .http:
            try HTTPUpstreamSessionFactory(configuration: configuration, clock: clock, environment: environment)
        case .browser:
            try BrowserUpstreamSessionFactory(configuration: configuration, client: client, clock: clock, environment: environment)
        }
    }

    /// The pools, ordered by name.
    public var ordered: [UpstreamPool] {
        self.pools.keys.sorted().compactMap { self.pools[$0] }
    }

    /// The pool named `name`.
    public func pool(named name: String) -> UpstreamPool? {
        self.pools[name]
    }

    /// Closes what is left of the browsers (the keeper's shutdown of the pools closed their
    /// sessions; a session retired just before may still be closing), then shuts down the
    /// shared HTTP client.
    public func shutdownClient() async {
        for pool in self.ordered {
            if let factory = pool.factory as? BrowserUpstreamSessionFactory { await factory.closeAll() }
        }
        try? await self.client?.shutdown()
    }
}
