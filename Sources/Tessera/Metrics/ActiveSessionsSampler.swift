public import CoreMetrics
public import Foundation
public import Logging
public import ServiceLifecycle
import Synchronization

/// Counts the active sessions in the store every ``interval`` (one indexed count, on any node:
/// the figure is the whole cluster's), sets `tessera_sessions_active`, and keeps the counts of
/// the last day for the admin console's chart.
public final class ActiveSessionsSampler: Service, Sendable {
    /// One count.
    public struct Sample: Sendable, Hashable {
        public var at: Date
        public var count: Int
    }

    public let store: any SessionStore
    public let clock: any WallClock
    public let interval: Duration
    /// How many samples are kept: a day's at the default interval.
    public let capacity: Int
    let gauge: Gauge
    let logger: Logger
    private let samples = Mutex<[Sample]>([])

    public init(
        store: any SessionStore,
        clock: any WallClock = SystemClock(),
        interval: Duration = .seconds(15),
        capacity: Int = 5760,
        factory: any MetricsFactory = MetricsSystem.factory,
        logger: Logger
    ) {
        self.store = store
        self.clock = clock
        self.interval = interval
        self.capacity = max(1, capacity)
        self.gauge = Gauge(label: "tessera_sessions_active", factory: factory)
        self.logger = logger
    }

    /// Counts once.
    /// - Returns: the count.
    @discardableResult
    public func sample() async throws -> Int {
        let now = self.clock.now.truncatedToMilliseconds
        let count = try await self.store.countActiveSessions(at: now)
        self.gauge.record(count)
        self.samples.withLock { samples in
            samples.append(Sample(at: now, count: count))
            if samples.count > self.capacity { samples.removeFirst(samples.count - self.capacity) }
        }
        return count
    }

    /// The newest count, if any was made.
    public var latest: Sample? { self.samples.withLock { $0.last } }

    /// The counts kept, oldest first, thinned evenly to at most `points`.
    public func history(points: Int = 360) -> [Sample] {
        let samples = self.samples.withLock { $0 }
        guard points > 0, samples.count > points else { return samples }
        let step = Double(samples.count - 1) / Double(points - 1)
        return (0..<points).map { samples[Int((Double($0) * step).rounded())] }
    }

    public func run() async throws {
        do {
            try await cancelWhenGracefulShutdown {
                while !Task.isCancelled {
                    do {
                        try await self.sample()
                    } catch is CancellationError {
                        return
                    } catch {
                        self.logger.debug("Counting the active sessions failed", metadata: ["error": "\(error)"])
                    }
                    try await Task.sleep(for: self.interval)
                }
            }
        } catch is CancellationError {
            // Shutting down is the expected end of this service.
        }
    }
}

/// The health of the session core when metrics are scraped: the cache and its change feed,
/// the store's breaker, and the event streams open.
public struct SessionCoreMetrics: MetricsSource {
    let cache: SessionCache?
    let store: ResilientStore?
    let events: SessionEventHub?
    let streams: Gauge
    let entries: Gauge
    let capacity: Gauge
    let current: Gauge
    let feedLag: Gauge
    let stalenessBound: Gauge
    let lookups: MirroredCounterFamily
    let invalidations: MirroredCounter
    let breaker: GaugeFamily

    public init(
        cache: SessionCache?,
        store: ResilientStore?,
        events: SessionEventHub? = nil,
        factory: any MetricsFactory = MetricsSystem.factory
    ) {
        self.cache = cache
        self.store = store
        self.events = events
        self.streams = Gauge(label: "tessera_event_streams_open", factory: factory)
        self.entries = Gauge(label: "tessera_cache_entries", factory: factory)
        self.capacity = Gauge(label: "tessera_cache_capacity", factory: factory)
        self.current = Gauge(label: "tessera_cache_current", factory: factory)
        self.feedLag = Gauge(label: "tessera_change_feed_lag_seconds", factory: factory)
        self.stalenessBound = Gauge(label: "tessera_change_feed_staleness_bound_seconds", factory: factory)
        self.lookups = MirroredCounterFamily("tessera_cache_lookups_total", labels: ["result"], factory: factory)
        self.invalidations = MirroredCounter(label: "tessera_cache_invalidations_total", factory: factory)
        self.breaker = GaugeFamily("tessera_store_breaker_state", labels: ["state"], factory: factory)
    }

    public func collect() async {
        if let events { self.streams.record(events.openStreams) }
        if let cache {
            let statistics = cache.statistics
            self.entries.record(statistics.count)
            self.capacity.record(cache.configuration.capacity)
            self.current.record(cache.isCurrent ? 1 : 0)
            self.stalenessBound.record(cache.configuration.stalenessBound.timeInterval)
            // Seconds since the last successful read of the feed began; when it exceeds the
            // bound, the cache is bypassed.
            let lag = cache.lastFeedReadAt.map { max(0, cache.clock.now.timeIntervalSince($0)) } ?? 0
            self.feedLag.record(lag)
            self.lookups.update(["hit"], to: statistics.hits)
            self.lookups.update(["miss"], to: statistics.misses)
            self.invalidations.update(to: statistics.invalidations)
        }
        if let store {
            let state = store.breakerState.name
            for name in ["closed", "open", "half_open"] {
                self.breaker.set([name], to: name == state ? 1 : 0)
            }
        }
    }
}
