import AsyncHTTPClient
public import Foundation
public import Logging
public import Tessera

/// The pools of a `--upstreams` file, by name, over one shared `HTTPClient`.
public struct UpstreamPools: Sendable {
    public let pools: [String: UpstreamPool]
    let client: HTTPClient?

    /// Pools made by hand (tests, or a browser-driven factory).
    public init(pools: [UpstreamPool]) {
        self.pools = Dictionary(uniqueKeysWithValues: pools.map { ($0.name, $0) })
        self.client = nil
    }

    /// HTTP pools for every upstream of `file`.
    public init(
        file: UpstreamsFile,
        clock: any WallClock = SystemClock(),
        environment: [String: String] = ProcessInfo.processInfo.environment,
        logger: Logger = Logger(label: "tessera.upstream")
    ) throws {
        let client = HTTPUpstreamSessionFactory.makeHTTPClient()
        var pools: [String: UpstreamPool] = [:]
        do {
            for configuration in file.upstreams {
                let factory = try HTTPUpstreamSessionFactory(configuration: configuration, client: client, clock: clock, environment: environment)
                pools[configuration.name] = UpstreamPool(configuration: configuration, factory: factory, clock: clock, logger: logger)
            }
        } catch {
            try? client.syncShutdown()
            throw error
        }
        self.pools = pools
        self.client = client
    }

    /// The pools, ordered by name.
    public var ordered: [UpstreamPool] {
        self.pools.keys.sorted().compactMap { self.pools[$0] }
    }

    /// The pool named `name`.
    public func pool(named name: String) -> UpstreamPool? {
        self.pools[name]
    }

    /// Shuts down the shared HTTP client, after the keeper has shut the pools down.
    public func shutdownClient() async {
        try? await self.client?.shutdown()
    }
}
