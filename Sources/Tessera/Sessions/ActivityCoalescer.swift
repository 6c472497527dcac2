package import Foundation
import Synchronization

/// Decides which request records a session's activity, so that concurrent requests in one
/// granularity window cause one store write between them, not one each.
package final class ActivityCoalescer: Sendable {
    private let claims: Mutex<[String: Date]>
    private let granularity: TimeInterval
    private let pruneThreshold: Int

    package init(granularity: Duration, pruneThreshold: Int = 10_000) {
        self.claims = Mutex([:])
        self.granularity = granularity.timeInterval
        self.pruneThreshold = pruneThreshold
    }

    /// Claims the write of activity at `now` for a session whose stored activity is
    /// `storedLastSeen`.
    ///
    /// - Returns: `nil` when no write is due; otherwise the activity time to write. Only one
    ///   caller per window gets it.
    package func claim(sessionID: String, storedLastSeen: Date, now: Date) -> Date? {
        guard now.timeIntervalSince(storedLastSeen) >= self.granularity else { return nil }
        return self.claims.withLock { claims in
            if let claimed = claims[sessionID], now.timeIntervalSince(claimed) < self.granularity {
                return nil
            }
            if claims.count >= self.pruneThreshold {
                let horizon = now.addingTimeInterval(-self.granularity)
                claims = claims.filter { $0.value > horizon }
            }
            claims[sessionID] = now
            return now
        }
    }

    /// The activity time claimed for a session within the current window, if any: the value a
    /// concurrent request can report, since it is being written.
    package func pendingActivity(sessionID: String, now: Date) -> Date? {
        self.claims.withLock { claims in
            guard let claimed = claims[sessionID], now.timeIntervalSince(claimed) < self.granularity else { return nil }
            return claimed
        }
    }

    /// Gives up a claim whose write failed, so the next request tries again.
    package func release(sessionID: String, claimed: Date) {
        self.claims.withLock { claims in
            if claims[sessionID] == claimed { claims[sessionID] = nil }
        }
    }

    /// Forgets a session (after revocation).
    package func forget(sessionID: String) {
        _ = self.claims.withLock { $0.removeValue(forKey: sessionID) }
    }
}
