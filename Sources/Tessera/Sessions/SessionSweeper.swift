import Foundation
public import Logging
public import ServiceLifecycle

/// Deletes sessions that ended (revoked or expired) longer ago than the policy's retention,
/// and stale throttling counters, in small batches so it never holds the store for long.
///
/// Runs as a `Service` alongside the server and stops on graceful shutdown.
public struct SessionSweeper: Service {
    public let sessions: SessionManager
    public let throttle: LoginThrottlePolicy
    /// Time between sweeps.
    public let interval: Duration
    /// Rows deleted per statement.
    public let batchSize: Int
    let logger: Logger

    public init(
        sessions: SessionManager,
        throttle: LoginThrottlePolicy = .init(),
        interval: Duration = .seconds(60),
        batchSize: Int = 500,
        logger: Logger
    ) {
        self.sessions = sessions
        self.throttle = throttle
        self.interval = interval
        self.batchSize = batchSize
        self.logger = logger
    }

    /// How long the change feed keeps a change: far longer than any cache may lag behind it.
    public static let changeRetention = Duration.seconds(3600)

    /// Sweeps every ``interval`` until graceful shutdown or cancellation, then returns.
    public func run() async throws {
        do {
            try await cancelWhenGracefulShutdown {
                while !Task.isCancelled {
                    do {
                        try await self.sweep()
                    } catch is CancellationError {
                        return
                    } catch {
                        self.logger.warning("Sweep failed; will try again", metadata: ["error": "\(error)"])
                    }
                    try await Task.sleep(for: self.interval)
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
        let now = self.sessions.now
        let cutoff = now.addingTimeInterval(-self.sessions.policy.retention.timeInterval)
        var total = 0
        while true {
            try Task.checkCancellation()
            let deleted = try await self.sessions.store.deleteSessions(endedBefore: cutoff, limit: self.batchSize)
            total += deleted
            if deleted < self.batchSize { break }
            // Let requests in between batches.
            await Task.yield()
        }
        // Readers of the change feed are at most a staleness bound behind, or start over.
        _ = try await self.sessions.store.deleteSessionChanges(before: now.addingTimeInterval(-Self.changeRetention.timeInterval))
        let throttleCutoff = now.addingTimeInterval(-self.throttle.window.timeInterval)
        let counters = try await self.sessions.store.deleteThrottleCounters(startedBefore: throttleCutoff)
        if total > 0 || counters > 0 {
            self.logger.info("Swept ended sessions", metadata: ["sessions": "\(total)", "throttle_counters": "\(counters)"])
        }
        return total
    }
}
