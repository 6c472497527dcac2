import Logging
import ServiceLifecycle
import Tessera
import TesseraUpstream
import Testing
import TesseraTestSupport

@Suite(.heavy) struct UpstreamKeeperTests {
    @Test func theKeeperRunsAsAServiceAndShutsThePoolsDownGracefully() async throws {
        try await PoolFixture.with { f in
            var logger = Logger(label: "tessera.upstream-tests")
            logger.logLevel = .error
            let group = ServiceGroup(
                configuration: .init(services: [UpstreamKeeper(pools: [f.pool], tick: .milliseconds(20))], logger: logger)
            )
            let running = Task { try await group.run() }
            // Its first round logs in up to the pool's minimum.
            for _ in 0..<500 where await f.pool.snapshot().sessions.map(\.state) != ["idle"] {
                try await Task.sleep(for: .milliseconds(10))
            }
            #expect(await f.pool.snapshot().sessions.map(\.state) == ["idle"])

            await group.triggerGracefulShutdown()
            try await running.value
            #expect(await f.pool.snapshot().sessions.isEmpty)
            await #expect {
                try await f.get("/api/items/1")
            } throws: { error in
                isTesseraError(error, "UPSTREAM_UNAVAILABLE")
            }
            #expect(f.fake.stats.logins == 1)
        }
    }
}
