public import Logging
public import ServiceLifecycle
import Synchronization

/// Activity waiting to be written: one entry per session, the latest wins. ``ActivityFlusher``
/// writes it in batches.
///
/// Buffering trades a bounded staleness for fewer, larger writes: the store (and so other nodes)
/// learns of activity up to one flush interval late, and a crash loses at most that much
/// activity, which can only make a session end earlier than reported, never later.
public final class ActivityBuffer: Sendable {
    private let pending = Mutex<[String: ActivityUpdate]>([:])

    public init() {}

    /// Adds activity, keeping the latest per session.
    public func record(_ update: ActivityUpdate) {
        self.pending.withLock { pending in
            if let existing = pending[update.sessionID] {
                pending[update.sessionID] = ActivityUpdate(
                    sessionID: update.sessionID,
                    lastSeenAt: max(existing.lastSeenAt, update.lastSeenAt),
                    idleExpiresAt: max(existing.idleExpiresAt, update.idleExpiresAt)
                )
            } else {
                pending[update.sessionID] = update
            }
        }
    }

    /// How many sessions have activity waiting.
    public var count: Int { self.pending.withLock { $0.count } }

    /// Writes everything waiting in one batch. On failure the batch goes back into the buffer,
    /// to be written by the next flush.
    /// - Returns: how many sessions the store changed.
    @discardableResult
    public func flush(to store: any SessionStore) async throws -> Int {
        let batch = self.pending.withLock { pending -> [ActivityUpdate] in
            defer { pending.removeAll(keepingCapacity: true) }
            return Array(pending.values)
        }
        guard !batch.isEmpty else { return 0 }
        do {
            return try await store.touchSessions(batch)
        } catch {
            for update in batch { self.record(update) }
            throw error
        }
    }
}

/// Writes an ``ActivityBuffer`` to the store every ``interval``, and once more on graceful
/// shutdown, so that a clean stop loses no activity.
public struct ActivityFlusher: Service {
    public let buffer: ActivityBuffer
    public let store: any SessionStore
    /// Time between flushes: the bound on how stale other nodes' view of activity is.
    public let interval: Duration
    let logger: Logger

    public init(buffer: ActivityBuffer, store: any SessionStore, interval: Duration = .seconds(1), logger: Logger) {
        self.buffer = buffer
        self.store = store
        self.interval = interval
        self.logger = logger
    }

    public func run() async throws {
        do {
            try await cancelWhenGracefulShutdown {
                while !Task.isCancelled {
                    try await Task.sleep(for: self.interval)
                    await self.flushLoggingFailures()
                }
            }
        } catch is CancellationError {
            // Stopping is expected; the final flush follows.
        }
        await self.flushLoggingFailures()
    }

    func flushLoggingFailures() async {
        do {
            try await self.buffer.flush(to: self.store)
        } catch {
            self.logger.warning("Writing activity failed; will try again", metadata: ["error": "\(error)", "pending": "\(self.buffer.count)"])
        }
    }
}
