public import Foundation
import Synchronization

/// The source of "now" for every deadline Tessera computes.
///
/// Session deadlines are stored and compared as wall-clock times, so they survive restarts and
/// mean the same on every node. Everything time-based takes a `WallClock`, so tests move time
/// forward instantly with ``ManualClock`` instead of sleeping.
public protocol WallClock: Sendable {
    /// The current time.
    var now: Date { get }
}

/// The system's wall clock.
public struct SystemClock: WallClock {
    public init() {}

    public var now: Date { Date() }
}

/// A clock that only moves when told to. For tests and simulations.
public final class ManualClock: WallClock {
    private let current: Mutex<Date>

    /// Creates a clock standing at `start` (by default a fixed, whole-second instant).
    public init(start: Date = Date(timeIntervalSince1970: 1_800_000_000)) {
        self.current = Mutex(start)
    }

    public var now: Date { self.current.withLock { $0 } }

    /// Moves the clock forward.
    public func advance(by duration: Duration) {
        self.current.withLock { $0 = $0.addingTimeInterval(duration.timeInterval) }
    }

    /// Sets the clock to `date`.
    public func set(_ date: Date) {
        self.current.withLock { $0 = date }
    }
}

extension Duration {
    /// The duration in whole milliseconds, rounded down: the precision stores keep.
    public var millisecondCount: Int64 {
        let (seconds, attoseconds) = self.components
        return seconds * 1000 + attoseconds / 1_000_000_000_000_000
    }

    /// The duration in seconds, as Foundation measures intervals.
    public var timeInterval: TimeInterval {
        let (seconds, attoseconds) = self.components
        return TimeInterval(seconds) + TimeInterval(attoseconds) / 1e18
    }
}

extension Date {
    /// The date rounded down to whole milliseconds: the precision stores keep.
    public var truncatedToMilliseconds: Date {
        Date(millisecondsSince1970: self.millisecondsSince1970)
    }

    /// Milliseconds since 1970-01-01T00:00:00Z, rounded down.
    public var millisecondsSince1970: Int64 {
        Int64((self.timeIntervalSince1970 * 1000).rounded(.down))
    }

    /// Creates a date from milliseconds since 1970-01-01T00:00:00Z.
    public init(millisecondsSince1970 milliseconds: Int64) {
        self.init(timeIntervalSince1970: TimeInterval(milliseconds) / 1000)
    }
}
