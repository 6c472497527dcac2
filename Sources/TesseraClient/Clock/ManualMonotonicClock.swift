public import Foundation

/// A ``MonotonicClock`` that only moves when told to, for tests: ``advance(by:)`` wakes every
/// sleeper whose deadline has passed, so a test moves a client past an expiry instantly.
public final class ManualMonotonicClock: MonotonicClock, @unchecked Sendable {
    // Sendable: every stored property below is `let`, or read and written only while `lock` is
    // held (`state`); continuations are resumed after the lock is released.
    private let lock = NSLock()
    private var state: State

    private struct State {
        var now = MonotonicInstant(offset: .zero)
        var date: Date
        var nextSleeperID: UInt64 = 0
        var sleepers: [UInt64: Sleeper] = [:]
    }

    private struct Sleeper {
        var deadline: MonotonicInstant
        var continuation: CheckedContinuation<Void, any Error>
    }

    /// Creates a clock at offset zero whose wall clock reads `date`.
    ///
    /// - Parameter date: the wall-clock time; set it far from the server's to show that skew does
    ///   not matter
    public init(date: Date = Date(timeIntervalSince1970: 1_800_000_000)) {
        self.state = State(date: date)
    }

    public var now: MonotonicInstant { self.lock.withLock { self.state.now } }

    public var date: Date { self.lock.withLock { self.state.date } }

    /// How many tasks are sleeping on this clock.
    public var sleeperCount: Int { self.lock.withLock { self.state.sleepers.count } }

    /// Moves both the monotonic and the wall clock forward and wakes the sleepers that are due.
    public func advance(by duration: Duration) {
        let due = self.lock.withLock { () -> [Sleeper] in
            self.state.now = self.state.now.advanced(by: duration)
            self.state.date = self.state.date.addingTimeInterval(Self.seconds(duration))
            let now = self.state.now
            let due = self.state.sleepers.filter { $0.value.deadline <= now }
            for id in due.keys { self.state.sleepers[id] = nil }
            return due.sorted { $0.key < $1.key }.map(\.value)
        }
        for sleeper in due { sleeper.continuation.resume() }
    }

    /// Sets the wall clock alone, as a user changing the device's time would.
    public func setDate(_ date: Date) {
        self.lock.withLock { self.state.date = date }
    }

    public func sleep(until deadline: MonotonicInstant) async throws {
        let id = self.lock.withLock { () -> UInt64 in
            self.state.nextSleeperID += 1
            return self.state.nextSleeperID
        }
        try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
                let immediate = self.lock.withLock { () -> Result<Void, any Error>? in
                    // Checked under the lock: `onCancel` may already have run and found nothing to remove.
                    if Task.isCancelled { return .failure(CancellationError()) }
                    if deadline <= self.state.now { return .success(()) }
                    self.state.sleepers[id] = Sleeper(deadline: deadline, continuation: continuation)
                    return nil
                }
                if let immediate { continuation.resume(with: immediate) }
            }
        } onCancel: {
            let sleeper = self.lock.withLock { self.state.sleepers.removeValue(forKey: id) }
            sleeper?.continuation.resume(throwing: CancellationError())
        }
    }

    static func seconds(_ duration: Duration) -> TimeInterval {
        let (seconds, attoseconds) = duration.components
        return TimeInterval(seconds) + TimeInterval(attoseconds) / 1e18
    }
}
