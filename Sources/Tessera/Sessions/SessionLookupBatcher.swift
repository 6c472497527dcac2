import Synchronization

/// Reads sessions by token hash for validations that missed the cache, several in one store
/// call: misses that arrive while a read is in flight wait and go into the next read together
/// (``SessionStore/sessions(tokenHashes:)``: one statement on PostgreSQL, one reader hop on
/// SQLite), as ``SessionInsertBatcher`` does for writes.
///
/// No task is started and nothing is delayed to make batches. The caller that finds no read in
/// flight reads at once in its own task, with whatever misses are already waiting; when its read
/// returns, it hands the next read to the first caller that waited meanwhile, which reads in its
/// own task. A lone miss therefore costs what an unbatched one does.
///
/// A batch's failure is every waiter's failure, except cancellation: when the reading caller
/// was cancelled, the others in its batch go back to the front of the queue and are read again.
public final class SessionLookupBatcher: Sendable {
    private enum Outcome: Sendable {
        case found(Session?)
        /// Read the next batch: the caller that read before handed over.
        case read
    }

    private struct Waiter {
        var hash: TokenHash
        var continuation: CheckedContinuation<Outcome, any Error>
    }

    private struct State {
        var waiting: [Waiter] = []
        var reading = false
    }

    public let store: any SessionStore
    /// The most token hashes read in one store call.
    public let maximumBatchSize: Int
    private let state = Mutex(State())

    public init(store: any SessionStore, maximumBatchSize: Int = 128) {
        self.store = store
        self.maximumBatchSize = max(1, maximumBatchSize)
    }

    /// Misses waiting for the next read.
    public var waitingCount: Int { self.state.withLock { $0.waiting.count } }

    /// The session whose token hashes to `hash`, whatever its state, as
    /// ``SessionStore/session(tokenHash:)`` answers.
    public func session(tokenHash hash: TokenHash) async throws -> Session? {
        let readNow = self.state.withLock { state in
            if state.reading { return false }
            state.reading = true
            return true
        }
        if readNow { return try await self.read(hash) }
        let outcome = try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Outcome, any Error>) in
            let readNow = self.state.withLock { state in
                if state.reading {
                    state.waiting.append(Waiter(hash: hash, continuation: continuation))
                    return false
                }
                state.reading = true
                return true
            }
            if readNow { continuation.resume(returning: .read) }
        }
        switch outcome {
        case .found(let session): return session
        case .read: return try await self.read(hash)
        }
    }

    /// Reads `own` with the misses waiting now, answers them, and hands the next read on.
    private func read(_ own: TokenHash) async throws -> Session? {
        let batch = self.state.withLock { state -> [Waiter] in
            let count = min(state.waiting.count, self.maximumBatchSize - 1)
            defer { state.waiting.removeFirst(count) }
            return Array(state.waiting.prefix(count))
        }
        let result: Result<[TokenHash: Session], any Error>
        do {
            if batch.isEmpty {
                let session = try await self.store.session(tokenHash: own)
                result = .success(session.map { [own: $0] } ?? [:])
            } else {
                // One user's many tabs after a restart: the same hash is read once.
                var hashes = [own]
                var seen: Set<TokenHash> = [own]
                for waiter in batch where seen.insert(waiter.hash).inserted { hashes.append(waiter.hash) }
                let sessions = try await self.store.sessions(tokenHashes: hashes)
                result = .success(Dictionary(sessions.map { ($0.tokenHash, $0) }, uniquingKeysWith: { first, _ in first }))
            }
        } catch {
            result = .failure(error)
        }
        switch result {
        case .success(let found):
            self.handOver()
            for waiter in batch { waiter.continuation.resume(returning: .found(found[waiter.hash])) }
            return found[own]
        case .failure(let error) where Task.isCancelled:
            // This caller's cancellation is not the others' failure: they wait for the next read.
            self.handOver(requeueing: batch)
            throw error
        case .failure(let error):
            self.handOver()
            for waiter in batch { waiter.continuation.resume(throwing: error) }
            throw error
        }
    }

    /// Lets the first waiting caller (`requeued` first) read next, or ends reading when none
    /// waits.
    private func handOver(requeueing requeued: [Waiter] = []) {
        let next = self.state.withLock { state -> Waiter? in
            state.waiting.insert(contentsOf: requeued, at: 0)
            guard !state.waiting.isEmpty else {
                state.reading = false
                return nil
            }
            return state.waiting.removeFirst()
        }
        next?.continuation.resume(returning: .read)
    }
}
