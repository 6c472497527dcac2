import Synchronization

/// Group commit for new sessions: creates that arrive while a write is in flight wait and go
/// into the next write together, so that many creates share one durable transaction (one
/// fsync with SQLite) instead of queueing for one each.
///
/// Nothing is delayed to make batches: a create on an idle store is written at once. Every
/// caller returns only after the transaction holding its session committed (or failed, with the
/// batch's error), so a `201` still means "durable".
public final class SessionInsertBatcher: Sendable {
    private struct Waiter {
        var session: Session
        var continuation: CheckedContinuation<Void, any Error>
    }

    private struct State {
        var waiting: [Waiter] = []
        var writing = false
    }

    public let store: any SessionStore
    /// The most sessions written in one transaction.
    public let maximumBatchSize: Int
    private let state = Mutex(State())

    public init(store: any SessionStore, maximumBatchSize: Int = 256) {
        self.store = store
        self.maximumBatchSize = max(1, maximumBatchSize)
    }

    /// Sessions waiting for the next write.
    public var waitingCount: Int { self.state.withLock { $0.waiting.count } }

    /// Inserts `session`, returning once the write that holds it committed.
    public func insert(_ session: Session) async throws {
        try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
            let startWriter = self.state.withLock { state in
                state.waiting.append(Waiter(session: session, continuation: continuation))
                if state.writing { return false }
                state.writing = true
                return true
            }
            if startWriter {
                // The writer runs on its own: a caller that goes away must not stop the others'
                // write (its own session may be committed anyway, which is harmless).
                Task { await self.writeUntilDrained() }
            }
        }
    }

    private func writeUntilDrained() async {
        while true {
            let batch = self.state.withLock { state -> [Waiter] in
                guard !state.waiting.isEmpty else {
                    state.writing = false
                    return []
                }
                let count = min(state.waiting.count, self.maximumBatchSize)
                defer { state.waiting.removeFirst(count) }
                return Array(state.waiting.prefix(count))
            }
            guard !batch.isEmpty else { return }
            do {
                try await self.store.insertSessions(batch.map(\.session))
                for waiter in batch { waiter.continuation.resume() }
            } catch {
                for waiter in batch { waiter.continuation.resume(throwing: error) }
            }
        }
    }
}
