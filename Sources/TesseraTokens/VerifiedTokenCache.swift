import Synchronization

/// Access tokens whose signature was verified, with their claims, so that a token used again
/// costs a dictionary lookup rather than a signature verification.
///
/// Only the signature is remembered: expiry and the session are checked on every use. An entry
/// is the exact token string that verified, so nothing unverified can match it. Bounded: when
/// full, expired entries are dropped, and if none were, everything is.
final class VerifiedTokenCache: Sendable {
    private let capacity: Int
    private let entries = Mutex<[String: AccessTokenClaims]>([:])

    init(capacity: Int) {
        self.capacity = max(0, capacity)
    }

    func claims(of token: String) -> AccessTokenClaims? {
        guard self.capacity > 0 else { return nil }
        return self.entries.withLock { $0[token] }
    }

    func insert(_ token: String, claims: AccessTokenClaims, now: Int64) {
        guard self.capacity > 0 else { return }
        self.entries.withLock { entries in
            if entries.count >= self.capacity {
                entries = entries.filter { $0.value.exp > now }
                if entries.count >= self.capacity { entries.removeAll(keepingCapacity: true) }
            }
            entries[token] = claims
        }
    }

    var count: Int { self.entries.withLock { $0.count } }
}
