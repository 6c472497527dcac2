import Synchronization
import Tessera

/// Usernames by user id, so that "who am I" does not read the user on every request. Users are
/// never renamed or removed, so an entry never goes stale; subjects that are no Tessera user
/// are remembered as such. Bounded: when full, it starts over.
final class UsernameCache: Sendable {
    private let entries = Mutex<[String: String?]>([:])
    private let capacity: Int

    init(capacity: Int = 100_000) {
        self.capacity = capacity
    }

    /// The username of `userID` (`nil` for a subject that is no Tessera user).
    func username(of userID: String, in store: any SessionStore) async throws -> String? {
        if let cached = self.cached(userID) { return cached }
        let username = try await store.user(id: userID)?.username
        self.entries.withLock { entries in
            if entries.count >= self.capacity { entries.removeAll(keepingCapacity: true) }
            entries[userID] = .some(username)
        }
        return username
    }

    /// The username of `userID` when it is known here: `.some(nil)` for a subject that is no
    /// Tessera user, `nil` when the store has not been asked yet.
    func cached(_ userID: String) -> String?? {
        self.entries.withLock { $0[userID] }
    }
}
