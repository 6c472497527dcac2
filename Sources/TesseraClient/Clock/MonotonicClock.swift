public import Foundation

/// A point on a ``MonotonicClock``: the time elapsed since the clock's own origin.
///
/// Instants of different clocks cannot be compared; the client only compares instants of the
/// clock it was given.
public struct MonotonicInstant: Comparable, Hashable, Sendable {
    /// The time elapsed since the clock's origin.
    public var offset: Duration

    /// Creates the instant `offset` after the clock's origin.
    public init(offset: Duration) {
        self.offset = offset
    }

    /// The instant `duration` later (or earlier, if negative).
    public func advanced(by duration: Duration) -> MonotonicInstant {
        MonotonicInstant(offset: self.offset + duration)
    }

    /// The time from this instant to `other` (negative if `other` is earlier).
    public func duration(to other: MonotonicInstant) -> Duration {
        other.offset - self.offset
    }

    public static func < (lhs: MonotonicInstant, rhs: MonotonicInstant) -> Bool {
        lhs.offset < rhs.offset
    }
}

/// The time source of ``TesseraClient``.
///
/// Token expiry is computed from the server's `expiresIn` and the local time of receipt on this
/// clock, which never jumps when the user (or the network) changes the device's wall clock. The
/// wall clock (`date`) is only used to store an expiry in persisted credentials, and to re-base it
/// on this clock when they are loaded again.
public protocol MonotonicClock: Sendable {
    /// The current instant. Never decreases.
    var now: MonotonicInstant { get }

    /// The current wall-clock time, used only to persist and re-base expiries.
    var date: Date { get }

    /// Suspends until `deadline`, or throws `CancellationError` when the task is cancelled.
    func sleep(until deadline: MonotonicInstant) async throws
}

/// The system's monotonic clock: `ContinuousClock`, which keeps counting while the device
/// sleeps (as the server's clock does), so an access token is known to have expired after a
/// night in a drawer.
public struct SystemMonotonicClock: MonotonicClock {
    private let origin: ContinuousClock.Instant

    /// Creates a clock whose origin is the current instant.
    public init() {
        self.origin = ContinuousClock.now
    }

    public var now: MonotonicInstant {
        MonotonicInstant(offset: self.origin.duration(to: ContinuousClock.now))
    }

    public var date: Date { Date() }

    public func sleep(until deadline: MonotonicInstant) async throws {
        try await ContinuousClock().sleep(until: self.origin.advanced(by: deadline.offset), tolerance: nil)
    }
}
