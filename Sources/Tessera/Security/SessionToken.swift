import Crypto

/// A session credential: `tss_` followed by 32 random bytes in unpadded base64url.
///
/// The prefix lets secret scanners find leaked tokens. Only ``hash`` (SHA-256) is ever stored,
/// so a copy of the database yields no usable token. The description never shows the secret.
public struct SessionToken: Sendable, Hashable, CustomStringConvertible {
    /// The prefix every session token starts with.
    public static let prefix = "tss_"
    static let byteCount = 32
    static let encodedLength = prefix.utf8.count + 43

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
        let valid = rawValue.withUTF8 { bytes in
            bytes.starts(with: Self.prefix.utf8)
                && Base64URL.decodedCount(bytes: bytes[Self.prefix.utf8.count...]) == Self.byteCount
        }
        guard valid else { return nil }
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
public struct TokenHash: Sendable, Hashable, CustomStringConvertible {
    /// The 32 digest bytes.
    public let bytes: [UInt8]

    public init(bytes: [UInt8]) {
        self.bytes = bytes
    }

    /// The SHA-256 of the UTF-8 bytes of `text`.
    public init(hashing text: String) {
        var text = text
        self.bytes = text.withUTF8 { Array(SHA256.hash(data: UnsafeRawBufferPointer($0))) }
    }

    /// Hashes the digest's bytes in one go (the synthesized hashing would feed them one at a
    /// time); cache lookups by token hash run on every request.
    public func hash(into hasher: inout Hasher) {
        self.bytes.withUnsafeBytes { hasher.combine(bytes: $0) }
    }

    public static func == (lhs: TokenHash, rhs: TokenHash) -> Bool {
        lhs.bytes == rhs.bytes
    }

    /// Compares in constant time, for checks against a credential a client presented.
    public func constantTimeEquals(_ other: TokenHash) -> Bool {
        Tessera.constantTimeEquals(self.bytes, other.bytes)
    }

    public var description: String { "sha256:…" }
}

/// An opaque random identifier with a type prefix, such as `ses_…` or `usr_…`.
///
/// Ids are public names (for listing and revoking), never credentials.
package func makeIdentifier(prefix: String, byteCount: Int = 16) -> String {
    prefix + Base64URL.encode(secureRandomBytes(count: byteCount))
}
