public import ServiceLifecycle

/// The background care of upstream pools, as a `Service`: runs ``UpstreamPool/maintain()`` on
/// every pool every `tick` (1 s by default; each pool's own `keepAlive.interval` decides which
/// sessions a round probes), and shuts the pools down on graceful shutdown.
public struct UpstreamKeeper: Service {
    public let pools: [UpstreamPool]
    public let tick: Duration

    public init(pools: [UpstreamPool], tick: Duration = .seconds(1)) {
        self.pools = pools
        self.tick = tick
    }

    public func run() async throws {
        await cancelWhenGracefulShutdown {
            while !Task.isCancelled {
                await withTaskGroup(of: Void.self) { group in
                    for pool in self.pools {
                        group.addTask { await pool.maintain() }
                    }
                }
                try? await Task.sleep(for: self.tick)
            }
        }
        for pool in self.pools {
            await pool.shutdown()
        }
    }
}
