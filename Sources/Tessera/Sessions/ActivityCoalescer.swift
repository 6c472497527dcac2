package import Foundation
import Synchronization

/// Decides which request records a session's activity, so that concurrent requests in one
/// granularity window cause one store write between them, not one each.
package final class ActivityCoalescer: Sendable {
    private struct Claims {
        var times: [String: Date] = [:]
        /// The size at which expired claims are next dropped. It doubles past what a pruning
        /// left, so that many sessions active in one window cost amortized O(1) per claim (a
        /// fixed threshold made every claim scan them all).
        var pruneAt: Int
    }

    private let claims: Mutex<Claims>
    private let granularity: TimeInterval
    private let pruneThreshold: Int

    package init(granularity: Duration, pruneThreshold: Int = 10_000) {
        self.claims = Mutex(Claims(pruneAt: pruneThreshold))
        self.granularity = granularity.timeInterval
        self.pruneThreshold = pruneThreshold
    }

    /// How many claims are held, for tests.
    package var count: Int { self.claims.withLock { $0.times.count } }

    /// Claims the write of activity at `now` for a session whose stored activity is
    /// `storedLastSeen`.
    ///
    /// - Returns: `nil` when no write is due; otherwise the activity time to write. Only one
    ///   caller per window gets it.
    package func claim(sessionID: String, storedLastSeen: Date, now: Date) -> Date? {
        guard now.timeIntervalSince(storedLastSeen) >= self.granularity else { return nil }
        return self.claims.withLock { claims in
            if let claimed = claims.times[sessionID], now.timeIntervalSince(claimed) < self.granularity {
                return nil
            }
            if claims.times.count >= claims.pruneAt {
                let horizon = now.addingTimeInterval(-self.granularity)
                claims.times = claims.times.filter { $0.value > horizon }
                claims.pruneAt = max(self.pruneThreshold, 2 * claims.times.count)
            }
            claims.times[sessionID] = now
            return now
        }
    }

    /// The activity time claimed for a session within the current window, if any: the value a
    /// concurrent request can report, since it is being written.
    package func pendingActivity(sessionID: String, now: Date) -> Date? {
        self.claims.withLock { claims in
            guard let claimed = claims.times[sessionID], now.timeIntervalSince(claimed) < self.granularity else { return nil }
            return claimed
        }
    }

    /// Gives up a claim whose write failed, so the next request tries again.
    package func release(sessionID: String, claimed: Date) {
        self.claims.withLock { claims in
            if claims.times[sessionID] == claimed { claims.times[sessionID] = nil }
        }
    }

    /// Forgets a session (after revocation).
    package func forget(sessionID: String) {
        _ = self.claims.withLock { $0.times.removeValue(forKey: sessionID) }
    }
}
