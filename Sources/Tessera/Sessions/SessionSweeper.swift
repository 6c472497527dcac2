import Foundation
public import Logging
public import ServiceLifecycle

/// Records the expiry of sessions whose deadlines passed (`session.expired` events), deletes
/// sessions that ended (revoked or expired) longer ago than the policy's retention, events past
/// theirs, and stale throttling counters, in small batches so it never holds the store for long.
///
/// Runs as a `Service` alongside the server and stops on graceful shutdown.
public struct SessionSweeper: Service {
    public let sessions: SessionManager
    public let throttle: LoginThrottlePolicy
    /// Time between sweeps.
    public let interval: Duration
    /// Time between passes that record expiries: a `session.expired` event is at most this plus
    /// ``idleGrace`` late.
    public let expiryInterval: Duration
    /// How long after an idle deadline its expiry is recorded: activity a node has buffered but
    /// not written yet may still move the deadline (absolute deadlines never move and are
    /// recorded at once).
    public let idleGrace: Duration
    /// How long events are kept: how far back `GET /v1/events` resumes and dead webhook
    /// deliveries can be retried.
    public let eventRetention: Duration
    /// Rows deleted per statement.
    public let batchSize: Int
    let logger: Logger

    public init(
        sessions: SessionManager,
        throttle: LoginThrottlePolicy = .init(),
        interval: Duration = .seconds(60),
        expiryInterval: Duration = .seconds(5),
        idleGrace: Duration = .seconds(10),
        eventRetention: Duration = .seconds(7 * 86_400),
        batchSize: Int = 500,
        logger: Logger
    ) {
        self.sessions = sessions
        self.throttle = throttle
        self.interval = interval
        self.expiryInterval = min(expiryInterval, interval)
        self.idleGrace = idleGrace
        self.eventRetention = eventRetention
        self.batchSize = batchSize
        self.logger = logger
    }

    /// How long the change feed keeps a change: far longer than any cache may lag behind it.
    public static let changeRetention = Duration.seconds(3600)

    /// Sweeps every ``interval`` until graceful shutdown or cancellation, then returns.
    public func run() async throws {
        do {
            try await cancelWhenGracefulShutdown {
                let clock = ContinuousClock()
                var nextSweep = clock.now
                while !Task.isCancelled {
                    do {
                        if clock.now >= nextSweep {
                            nextSweep = clock.now.advanced(by: self.interval)
                            try await self.sweep()
                        } else {
                            try await self.recordExpiries()
                        }
                    } catch is CancellationError {
                        return
                    } catch {
                        self.logger.warning("Sweep failed; will try again", metadata: ["error": "\(error)"])
                    }
                    try await Task.sleep(for: self.expiryInterval)
                }
            }
        } catch is CancellationError {
            // Shutting down is the expected end of this service, not a failure.
        }
    }

    /// Sweeps once, batch after batch until nothing is left to delete.
    /// - Returns: how many sessions were deleted.
    @discardableResult
    public func sweep() async throws -> Int {
        try await self.recordExpiries()
        let now = self.sessions.now
        let cutoff = now.addingTimeInterval(-self.sessions.policy.retention.timeInterval)
        let total = try await self.inBatches { try await self.sessions.store.deleteSessions(endedBefore: cutoff, limit: $0) }
        let eventCutoff = now.addingTimeInterval(-self.eventRetention.timeInterval)
        _ = try await self.inBatches { try await self.sessions.store.deleteSessionEvents(before: eventCutoff, limit: $0) }
        // Readers of the change feed are at most a staleness bound behind, or start over.
        _ = try await self.sessions.store.deleteSessionChanges(before: now.addingTimeInterval(-Self.changeRetention.timeInterval))
        let throttleCutoff = now.addingTimeInterval(-self.throttle.window.timeInterval)
        let counters = try await self.sessions.store.deleteThrottleCounters(startedBefore: throttleCutoff)
        if total > 0 || counters > 0 {
            self.logger.info("Swept ended sessions", metadata: ["sessions": "\(total)", "throttle_counters": "\(counters)"])
        }
        return total
    }

    /// Records the expiry of every session whose deadline has passed, batch after batch.
    /// - Returns: how many expiries were recorded.
    @discardableResult
    public func recordExpiries() async throws -> Int {
        let now = self.sessions.now
        return try await self.inBatches {
            let recorded = try await self.sessions.store.recordExpiries(at: now, idleGrace: self.idleGrace, limit: $0)
            self.sessions.metrics.expired(recorded)
            return recorded.count
        }
    }

    /// Runs `batch` with ``batchSize`` until it does less than a full batch, letting requests in
    /// between batches.
    /// - Returns: the sum of what the batches did.
    func inBatches(_ batch: (Int) async throws -> Int) async throws -> Int {
        var total = 0
        while true {
            try Task.checkCancellation()
            let done = try await batch(self.batchSize)
            total += done
            if done < self.batchSize { return total }
            await Task.yield()
        }
    }
}
