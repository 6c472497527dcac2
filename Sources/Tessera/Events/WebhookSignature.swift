import Crypto
public import Foundation

/// A webhook signing secret in the Standard Webhooks form: `whsec_` and the base64 of 24 to 64
/// random bytes.
public struct WebhookSecret: Sendable, Hashable, CustomStringConvertible {
    public static let prefix = "whsec_"
    let key: SymmetricKey
    let fingerprint: [UInt8]

    /// Reads `whsec_…`.
    /// - Throws: ``WebhookSecretError`` (never repeating the secret).
    public init(_ text: String) throws {
        let trimmed = text.trimmingCharacters(in: .whitespacesAndNewlines)
        guard trimmed.hasPrefix(Self.prefix), let bytes = Data(base64Encoded: String(trimmed.dropFirst(Self.prefix.count))) else {
            throw WebhookSecretError(reason: "a webhook secret is whsec_ followed by base64; `tessera events new-secret` makes one")
        }
        guard (24...64).contains(bytes.count) else {
            throw WebhookSecretError(reason: "a webhook secret holds 24 to 64 bytes; this one holds \(bytes.count)")
        }
        self.key = SymmetricKey(data: bytes)
        self.fingerprint = Array(SHA256.hash(data: bytes).prefix(8))
    }

    /// The secrets of a text of several, separated by white space (during a rotation); none for
    /// a text of none.
    /// - Throws: ``WebhookSecretError`` for the first that is no secret.
    public static func list(_ text: some StringProtocol) throws -> [WebhookSecret] {
        try text.split(whereSeparator: \.isWhitespace).map { try WebhookSecret(String($0)) }
    }

    /// A new random secret, as text.
    public static func generate() -> String {
        Self.prefix + Data(secureRandomBytes(count: 32)).base64EncodedString()
    }

    public static func == (lhs: Self, rhs: Self) -> Bool { lhs.fingerprint == rhs.fingerprint }
    public func hash(into hasher: inout Hasher) { hasher.combine(self.fingerprint) }

    /// Never the secret: `whsec_…` and a short fingerprint.
    public var description: String { "whsec_…" + self.fingerprint.prefix(4).map { String($0, radix: 16) }.joined() }
}

/// A webhook secret that cannot be used.
public struct WebhookSecretError: Error, Sendable, CustomStringConvertible {
    public var reason: String
    public var description: String { self.reason }
}

/// Signatures of webhooks, as Standard Webhooks 1.0 defines them: `v1,` and the base64 of
/// HMAC-SHA256 over `{webhook-id}.{webhook-timestamp}.{body}`. During a rotation a request
/// carries one signature per secret, separated by spaces; a receiver accepts it when any matches.
public enum WebhookSignature {
    /// The `webhook-signature` header for `body`, one signature per secret.
    public static func header(id: String, timestamp: Int64, body: some Collection<UInt8>, secrets: [WebhookSecret]) -> String {
        let content = Self.signedContent(id: id, timestamp: "\(timestamp)", body: body)
        return secrets.map { secret in
            "v1," + Data(HMAC<SHA256>.authenticationCode(for: content, using: secret.key)).base64EncodedString()
        }.joined(separator: " ")
    }

    /// Checks a webhook as a receiver should: the timestamp within `tolerance` of `now` (against
    /// replays), and one of the `v1` signatures made with `secret` over exactly these bytes.
    ///
    /// - Parameters:
    ///   - body: the request body as received, before any parsing
    ///   - id: the `webhook-id` header
    ///   - timestamp: the `webhook-timestamp` header (seconds since 1970)
    ///   - signatures: the `webhook-signature` header
    /// - Throws: ``WebhookVerificationError``.
    public static func verify(
        body: some Collection<UInt8>,
        id: String,
        timestamp: String,
        signatures: String,
        secret: WebhookSecret,
        now: Date = Date(),
        tolerance: Duration = .seconds(300)
    ) throws(WebhookVerificationError) {
        guard let seconds = Int64(timestamp) else { throw .malformedTimestamp }
        let skew = abs(now.timeIntervalSince1970 - Double(seconds))
        guard skew <= Double(tolerance.components.seconds) else { throw .timestampOutOfTolerance }
        let content = Self.signedContent(id: id, timestamp: timestamp, body: body)
        for signature in signatures.split(separator: " ") {
            guard signature.hasPrefix("v1,"), let mac = Data(base64Encoded: String(signature.dropFirst(3))) else { continue }
            if HMAC<SHA256>.isValidAuthenticationCode(mac, authenticating: content, using: secret.key) { return }
        }
        throw .noMatchingSignature
    }

    static func signedContent(id: String, timestamp: String, body: some Collection<UInt8>) -> [UInt8] {
        var content: [UInt8] = []
        content.reserveCapacity(id.utf8.count + timestamp.utf8.count + body.count + 2)
        content.append(contentsOf: id.utf8)
        content.append(UInt8(ascii: "."))
        content.append(contentsOf: timestamp.utf8)
        content.append(UInt8(ascii: "."))
        content.append(contentsOf: body)
        return content
    }
}

/// Why a webhook did not verify.
public enum WebhookVerificationError: Error, Sendable, Hashable, CustomStringConvertible {
    case malformedTimestamp
    case timestampOutOfTolerance
    case noMatchingSignature

    public var description: String {
        switch self {
        case .malformedTimestamp: "The webhook-timestamp header is not a number of seconds."
        case .timestampOutOfTolerance: "The webhook-timestamp is too far from now (a replay, or a wrong clock)."
        case .noMatchingSignature: "No v1 signature in webhook-signature matches the body and this secret."
        }
    }
}
