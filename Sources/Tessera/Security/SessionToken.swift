import Crypto

/// A session credential: `tss_` followed by 32 random bytes in unpadded base64url.
///
/// The prefix lets secret scanners find leaked tokens. Only ``hash`` (SHA-256) is ever stored,
/// so a copy of the database yields no usable token. The description never shows the secret.
public struct SessionToken: Sendable, Hashable, CustomStringConvertible {
    /// The prefix every session token starts with.
    public static let prefix = "tss_"
    static let byteCount = TokenSyntax.randomByteCount
    static let encodedLength = prefix.utf8.count + TokenSyntax.encodedRandomCount

    /// The token as the client sends it.
    public let rawValue: String

    /// A new token from the system's cryptographically secure generator.
    public static func generate() -> SessionToken {
        SessionToken(uncheckedRawValue: prefix + Base64URL.encode(secureRandomBytes(count: byteCount)))
    }

    /// Parses a token a client sent; `nil` when it is not shaped like one.
    public init?(_ text: some StringProtocol) {
        // On the bytes: every request presents one.
        guard text.utf8.count == Self.encodedLength else { return nil }
        var rawValue = String(text)
        guard rawValue.withUTF8({ TokenSyntax.isWellFormed($0, prefix: Self.prefix.utf8) }) else { return nil }
        self.rawValue = rawValue
    }

    private init(uncheckedRawValue: String) {
        self.rawValue = uncheckedRawValue
    }

    /// The SHA-256 of the token, the only form a store keeps.
    public var hash: TokenHash {
        TokenHash(hashing: self.rawValue)
    }

    public var description: String { "tss_…" }
}

/// The SHA-256 digest of a credential.
///
/// Kept as four words inline rather than an array: the session cache looks sessions up by it on
/// every request, and inline words hash, compare and copy without touching the heap.
public struct TokenHash: Sendable, Hashable, CustomStringConvertible {
    private var w0: UInt64 = 0
    private var w1: UInt64 = 0
    private var w2: UInt64 = 0
    private var w3: UInt64 = 0
    /// How many bytes the hash has: 32, unless a store held something else.
    private let count: Int

    /// The digest bytes.
    public var bytes: [UInt8] {
        withUnsafeBytes(of: (self.w0, self.w1, self.w2, self.w3)) { Array($0.prefix(self.count)) }
    }

    /// A hash as a store keeps it. Bytes past the 32nd are not kept, but the length is, so such a
    /// hash equals no digest.
    public init(bytes: some Collection<UInt8>) {
        self.init(count: bytes.count) { words in
            for (index, byte) in bytes.prefix(32).enumerated() { words[index] = byte }
        }
    }

    /// A hash as a store keeps it, from the bytes a store's row points at: as the generic
    /// `init(bytes:)`, without going through a generic collection (stores decode a hash with
    /// every session they read).
    public init(bytes: UnsafeRawBufferPointer) {
        self.init(count: bytes.count) { words in
            words.copyMemory(from: UnsafeRawBufferPointer(rebasing: bytes.prefix(32)))
        }
    }

    /// The SHA-256 of the UTF-8 bytes of `text`.
    public init(hashing text: String) {
        var text = text
        let digest = text.withUTF8 { SHA256.hash(data: UnsafeRawBufferPointer($0)) }
        self.init(count: SHA256.byteCount) { words in
            digest.withUnsafeBytes { words.copyMemory(from: $0) }
        }
    }

    /// A hash of `count` bytes, whose first 32 (at most) `fill` writes into the four words.
    private init(count: Int, fill: (UnsafeMutableRawBufferPointer) -> Void) {
        self.count = count
        var words: (UInt64, UInt64, UInt64, UInt64) = (0, 0, 0, 0)
        withUnsafeMutableBytes(of: &words, fill)
        (self.w0, self.w1, self.w2, self.w3) = words
    }

    /// A value that spreads hashes evenly, for choosing among shards.
    package var spread: UInt64 { self.w0 }

    /// The digest is uniformly random already: two words of it are enough for a hash table.
    public func hash(into hasher: inout Hasher) {
        hasher.combine(self.w0)
        hasher.combine(self.w1)
    }

    public static func == (lhs: TokenHash, rhs: TokenHash) -> Bool {
        lhs.w0 == rhs.w0 && lhs.w1 == rhs.w1 && lhs.w2 == rhs.w2 && lhs.w3 == rhs.w3 && lhs.count == rhs.count
    }

    /// Compares in constant time, for checks against a credential a client presented.
    public func constantTimeEquals(_ other: TokenHash) -> Bool {
        let difference = (self.w0 ^ other.w0) | (self.w1 ^ other.w1) | (self.w2 ^ other.w2) | (self.w3 ^ other.w3)
        return difference == 0 && self.count == other.count
    }

    public var description: String { "sha256:…" }
}

/// An opaque random identifier with a type prefix, such as `ses_…` or `usr_…`.
///
/// Ids are public names (for listing and revoking), never credentials.
package func makeIdentifier(prefix: String, byteCount: Int = 16) -> String {
    prefix + Base64URL.encode(secureRandomBytes(count: byteCount))
}
