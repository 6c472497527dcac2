/// A refresh token of token mode: `tsr_` followed by 32 random bytes in unpadded base64url.
///
/// Opaque to clients, used once: every refresh answers a successor. Only ``hash`` is stored.
/// The description never shows the secret.
public struct RefreshToken: Sendable, Hashable, CustomStringConvertible {
    /// The prefix every refresh token starts with, for secret scanners.
    public static let prefix = "tsr_"
    static let byteCount = TokenSyntax.randomByteCount
    static let encodedLength = prefix.utf8.count + TokenSyntax.encodedRandomCount

    /// The token as the client sends it.
    public let rawValue: String

    /// A new token from the system's cryptographically secure generator.
    public static func generate() -> RefreshToken {
        RefreshToken(uncheckedRawValue: prefix + Base64URL.encode(secureRandomBytes(count: byteCount)))
    }

    /// Parses a token a client sent; `nil` when it is not shaped like one.
    public init?(_ text: some StringProtocol) {
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

    public var description: String { "tsr_…" }
}

extension TokenHash {
    /// The token hash of a token-mode session, derived from its public id.
    ///
    /// Token-mode sessions are reached through their refresh and access tokens, never through a
    /// session token, yet every session has a unique token hash. This one is the SHA-256 of a
    /// domain-separated string: nobody holds a `tss_` token that hashes to it (that would take
    /// a SHA-256 preimage), and an access token, which names its session, finds the session in
    /// the validated-session cache under it.
    public init(tokenModeSessionID id: String) {
        self.init(hashing: "tessera token-mode session " + id)
    }
}
