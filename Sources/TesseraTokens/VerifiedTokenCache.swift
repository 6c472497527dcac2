import Synchronization
import Tessera

/// An access token whose signature verified: its claims, and the token hash its session is kept
/// under (derived once, not on every use).
final class VerifiedAccessToken: Sendable {
    let claims: AccessTokenClaims
    let sessionHash: TokenHash

    init(claims: AccessTokenClaims) {
        self.claims = claims
        self.sessionHash = TokenHash(tokenModeSessionID: claims.sid)
    }
}

/// Access tokens whose signature was verified, with their claims, so that a token used again
/// costs a dictionary lookup rather than a signature verification.
///
/// Only the signature is remembered: expiry and the session are checked on every use. An entry
/// is the exact token string that verified, so nothing unverified can match it. Entries are
/// spread over a few locks by the token's last characters (its signature's), so that requests
/// on many threads rarely meet on one. Bounded: when a part is full, its expired entries are
/// dropped, and if none were, all of it is.
final class VerifiedTokenCache: Sendable {
    /// A token as a key: hashed by the tail of its signature, compared whole.
    ///
    /// Only tokens this service signed are inserted, and their signatures (Ed25519, 64 bytes)
    /// look random, so the last 16 characters hash as well as all ~300 and cost a twentieth.
    /// Equality still compares every byte: a token that shares a signature tail with a
    /// remembered one, but differs anywhere else, is a different key.
    struct Key: Hashable {
        let token: String

        func hash(into hasher: inout Hasher) {
            var token = self.token
            token.withUTF8 { bytes in
                hasher.combine(bytes: UnsafeRawBufferPointer(UnsafeBufferPointer(rebasing: bytes.suffix(16))))
            }
        }

        static func == (lhs: Key, rhs: Key) -> Bool { lhs.token == rhs.token }
    }

    private final class Part: Sendable {
        let entries = Mutex<[Key: VerifiedAccessToken]>([:])
    }

    private let partCapacity: Int
    private let parts: [Part]

    /// - Parameter capacity: at most this many tokens are remembered (in 8 parts from 1,024 on,
    ///   in one below)
    init(capacity: Int) {
        let capacity = max(0, capacity)
        let partCount = capacity >= 1024 ? 8 : 1
        self.partCapacity = capacity / partCount
        self.parts = (0..<partCount).map { _ in Part() }
    }

    /// The part a token belongs in, by its last-but-one character: the last character of an
    /// Ed25519 signature holds only 2 of its bits.
    private func part(of token: String) -> Part {
        let utf8 = token.utf8
        guard self.parts.count > 1, utf8.count >= 2 else { return self.parts[0] }
        return self.parts[Int(utf8[utf8.index(utf8.endIndex, offsetBy: -2)]) % self.parts.count]
    }

    /// The verified token `token` is, when it is remembered.
    func token(_ token: String) -> VerifiedAccessToken? {
        guard self.partCapacity > 0 else { return nil }
        return self.part(of: token).entries.withLock { $0[Key(token: token)] }
    }

    func insert(_ token: String, _ verified: VerifiedAccessToken, now: Int64) {
        guard self.partCapacity > 0 else { return }
        self.part(of: token).entries.withLock { entries in
            if entries.count >= self.partCapacity {
                entries = entries.filter { $0.value.claims.exp > now }
                if entries.count >= self.partCapacity { entries.removeAll(keepingCapacity: true) }
            }
            entries[Key(token: token)] = verified
        }
    }

    var count: Int { self.parts.reduce(0) { count, part in count + part.entries.withLock { $0.count } } }
}
