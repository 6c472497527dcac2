import Synchronization

/// At most `limit` requests at once through one HTTP client; the others wait their turn, in
/// order, until their deadline. It keeps AsyncHTTPClient's own queue empty: a request waiting
/// there is held to the connect timeout, so a burst would fail requests that were only waiting.
final class RequestGate: Sendable {
    /// A request waited past its deadline for its turn.
    struct TimedOut: Error, CustomStringConvertible {
        var description: String { "the request waited for a connection until its deadline" }
    }

    private struct Waiter {
        var id: UInt64
        var continuation: CheckedContinuation<Void, any Error>
    }

    private struct State {
        var available: Int
        var waiters: [Waiter] = []
        var lastID: UInt64 = 0
        /// Waiters whose wait ended before they queued: whether by their deadline.
        var abandoned: [UInt64: Bool] = [:]
    }

    private let state: Mutex<State>

    init(limit: Int) {
        self.state = Mutex(State(available: limit))
    }

    /// Waits for a turn until `deadline`; throws ``TimedOut`` after it, `CancellationError` when
    /// the task is cancelled. Every successful call must be followed by one ``leave()``.
    func enter(until deadline: ContinuousClock.Instant) async throws {
        let id: UInt64? = self.state.withLock { state in
            if state.available > 0 {
                state.available -= 1
                return nil
            }
            state.lastID += 1
            return state.lastID
        }
        guard let id else { return }
        let timer = Task {
            try? await Task.sleep(until: deadline, clock: .continuous)
            if !Task.isCancelled { self.abandon(id, timedOut: true) }
        }
        defer { timer.cancel() }
        try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
                let abandoned = self.state.withLock { state -> Bool? in
                    if let timedOut = state.abandoned.removeValue(forKey: id) { return timedOut }
                    if state.available > 0 {
                        // A turn came free between the first look and now.
                        state.available -= 1
                        continuation.resume()
                        return nil
                    }
                    state.waiters.append(Waiter(id: id, continuation: continuation))
                    return nil
                }
                if let timedOut = abandoned { continuation.resume(throwing: timedOut ? TimedOut() as any Error : CancellationError()) }
            }
        } onCancel: {
            self.abandon(id, timedOut: false)
        }
    }

    /// How many wait their turn now.
    var queued: Int { self.state.withLock { $0.waiters.count } }

    /// Gives the turn back: to the oldest waiter, or to the next to come.
    func leave() {
        let next = self.state.withLock { state -> Waiter? in
            if state.waiters.isEmpty {
                state.available += 1
                return nil
            }
            return state.waiters.removeFirst()
        }
        next?.continuation.resume()
    }

    /// Ends the wait of `id`: now if it is queued, or as it comes to queue.
    private func abandon(_ id: UInt64, timedOut: Bool) {
        let waiter = self.state.withLock { state -> Waiter? in
            if let index = state.waiters.firstIndex(where: { $0.id == id }) { return state.waiters.remove(at: index) }
            // Not queued: about to queue, or already let through (then this is never read).
            if id == state.lastID || state.abandoned.count < 1024 { state.abandoned[id] = timedOut }
            return nil
        }
        waiter?.continuation.resume(throwing: timedOut ? TimedOut() as any Error : CancellationError())
    }
}
