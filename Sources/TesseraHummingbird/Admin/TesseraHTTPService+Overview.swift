import Foundation
import Hummingbird
import Tessera
import TesseraUpstream

/// The console's figures: the overview of this node and the store, and the metrics text.
extension TesseraHTTPService {
    @Sendable func adminOverview(_ request: Request, context: TesseraRequestContext) async throws -> Response {
        let sampler = self.admin.activeSessions
        let resilient = self.sessions.store as? ResilientStore
        let breaker = resilient?.breakerState.name ?? "closed"
        // A failed ping is the answer, not an error: the console shows the outage.
        let reachable = (try? await self.sessions.store.ping()) != nil
        let cache = self.sessions.cache.map { cache in
            let statistics = cache.statistics
            return AdminOverview.Cache(
                entries: statistics.count,
                capacity: cache.configuration.capacity,
                current: cache.isCurrent,
                feedLagSeconds: cache.lastFeedReadAt.map { max(0, self.sessions.clock.now.timeIntervalSince($0)) },
                stalenessBoundSeconds: cache.configuration.stalenessBound.timeInterval,
                hits: statistics.hits,
                misses: statistics.misses
            )
        }
        var upstreams: [UpstreamPoolSnapshot] = []
        for pool in self.upstreams.ordered {
            upstreams.append(await pool.snapshot())
        }
        // Counted now (one indexed count), so that the console shows what just happened; the
        // chart's history is the sampler's.
        let now = self.sessions.now
        let active = reachable ? try? await self.sessions.store.countActiveSessions(at: now) : nil
        let overview = AdminOverview(
            node: self.admin.node,
            activeSessions: active.map { .init(at: now, count: $0) },
            activeSessionsHistory: sampler?.history().map { .init(at: $0.at, count: $0.count) } ?? [],
            store: .init(reachable: reachable, breaker: breaker),
            cache: cache,
            eventStreams: self.events?.openStreams,
            upstreams: upstreams
        )
        return try Response.json(overview)
    }

    @Sendable func adminMetrics(_ request: Request, context: TesseraRequestContext) async throws -> Response {
        guard let metrics = self.admin.metrics else { throw TesseraError.notFound("This service records no metrics.") }
        return await metrics.response()
    }
}
