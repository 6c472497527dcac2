public import Foundation
import Crypto
import JWTKit
import Synchronization
public import Tessera

/// The Ed25519 keys that sign access tokens: one signs, retired ones still verify.
///
/// Keys live in a JSON file (`signing-keys.json` in the data directory, mode 0600), created
/// with a first key when missing. ``rotate(file:now:)`` (the `tessera keys rotate` command)
/// adds a key that signs from then on and retires the previous one: its private half is dropped
/// at once, its public half is kept so that the tokens it signed still verify until they expire.
/// A running service picks up a rotation with ``reloadIfChanged()`` (``SigningKeysReloader``).
public final class SigningKeys: Sendable {
    /// One key as published and verified.
    public struct Key: Sendable, Hashable {
        /// The key id, the `kid` of the JWT header and of the JWK.
        public var id: String
        public var createdAt: Date
        /// When a newer key took over signing, if one did.
        public var retiredAt: Date?
        /// The raw 32-byte Ed25519 public key.
        public var publicKey: [UInt8]
    }

    /// How long a retired key stays in the file: far longer than any access token lives.
    public static let retiredKeyRetention: Duration = .seconds(86_400)

    struct Ring: Sendable {
        var keys: [Key]
        var signingKeyID: String
        var collection: JWTKeyCollection
        var fileStamp: FileStamp?
    }

    struct FileStamp: Sendable, Hashable {
        var modified: Date
        var size: Int
    }

    /// The file the keys live in, or `nil` for keys kept in memory only.
    public let file: URL?
    private let ring: Mutex<Ring>

    private init(file: URL?, ring: Ring) {
        self.file = file
        self.ring = Mutex(ring)
    }

    /// One fresh key, kept in memory only: for tests and for trying things out.
    public static func ephemeral(clock: some WallClock = SystemClock()) async -> SigningKeys {
        let document = KeyDocument(keys: [.generate(now: clock.now)])
        return SigningKeys(file: nil, ring: await Self.ring(from: document, stamp: nil))
    }

    /// Opens the keys in `file`, creating it with a first key when it does not exist.
    public static func open(file: URL, now: Date = Date()) async throws -> SigningKeys {
        if !FileManager.default.fileExists(atPath: file.path) {
            try KeyDocument(keys: [.generate(now: now)]).write(to: file)
        }
        let (document, stamp) = try KeyDocument.read(from: file)
        return SigningKeys(file: file, ring: await Self.ring(from: document, stamp: stamp))
    }

    /// Adds a new signing key to `file` and retires the current one (for `tessera keys rotate`).
    ///
    /// Retired keys keep only their public half, and are deleted from the file a day after their
    /// retirement.
    /// - Returns: the new key.
    @discardableResult
    public static func rotate(file: URL, now: Date = Date()) throws -> Key {
        var document = try KeyDocument.read(from: file).0
        let cutoff = now.addingTimeInterval(-Self.retiredKeyRetention.timeInterval).millisecondsSince1970
        document.keys.removeAll { ($0.retiredAt ?? .max) < cutoff }
        for index in document.keys.indices where document.keys[index].retiredAt == nil {
            document.keys[index].retiredAt = now.millisecondsSince1970
            document.keys[index].d = nil
        }
        let new = StoredKey.generate(now: now)
        document.keys.append(new)
        try document.write(to: file)
        return new.key
    }

    /// Rereads the file when it changed since it was last read.
    /// - Returns: whether the keys changed.
    @discardableResult
    public func reloadIfChanged() async throws -> Bool {
        guard let file = self.file else { return false }
        let stamp = try KeyDocument.stamp(of: file)
        guard stamp != self.ring.withLock({ $0.fileStamp }) else { return false }
        let (document, readStamp) = try KeyDocument.read(from: file)
        let ring = await Self.ring(from: document, stamp: readStamp)
        self.ring.withLock { $0 = ring }
        return true
    }

    /// Every key, oldest first.
    public var keys: [Key] { self.ring.withLock { $0.keys } }

    /// The id of the key that signs.
    public var signingKeyID: String { self.ring.withLock { $0.signingKeyID } }

    /// Signs `claims` with the current signing key.
    func sign(_ claims: AccessTokenClaims) async throws -> String {
        let (collection, kid) = self.ring.withLock { ($0.collection, $0.signingKeyID) }
        return try await collection.sign(claims, kid: JWKIdentifier(string: kid))
    }

    /// Verifies the signature of `token` with the key its header names, and decodes its claims.
    /// Claims (expiry, issuer) are the caller's to check.
    func verify(_ token: String) async throws -> AccessTokenClaims {
        let collection = self.ring.withLock { $0.collection }
        return try await collection.verify(token, as: AccessTokenClaims.self)
    }

    /// The JWK set to publish at `now`: the signing key and every retired key that may still have
    /// unexpired tokens, that is, retired less than `tokenLifetime` plus a minute ago.
    public func jwks(now: Date, tokenLifetime: Duration) -> JWKSet {
        let horizon = now.addingTimeInterval(-(tokenLifetime.timeInterval + 60))
        let keys = self.keys.filter { ($0.retiredAt ?? .distantFuture) > horizon }
        return JWKSet(
            keys: keys.map { JWKSet.Key(kid: $0.id, x: Base64URL.encode($0.publicKey)) }
        )
    }

    private static func ring(from document: KeyDocument, stamp: FileStamp?) async -> Ring {
        let collection = JWTKeyCollection()
        var signingKeyID = document.keys.last?.key.id ?? ""
        for stored in document.keys {
            let kid = JWKIdentifier(string: stored.kid)
            if stored.retiredAt == nil, let privateKey = stored.privateKey {
                signingKeyID = stored.kid
                await collection.add(eddsa: EdDSA.PrivateKey(backing: privateKey), kid: kid)
            } else if let publicKey = try? Curve25519.Signing.PublicKey(rawRepresentation: stored.publicKeyBytes) {
                await collection.add(eddsa: EdDSA.PublicKey(backing: publicKey), kid: kid)
            }
        }
        return Ring(keys: document.keys.map(\.key), signingKeyID: signingKeyID, collection: collection, fileStamp: stamp)
    }
}

/// A JWK set (RFC 7517) of Ed25519 public keys, as `GET /.well-known/jwks.json` serves it.
public struct JWKSet: Sendable, Hashable, Codable {
    public struct Key: Sendable, Hashable, Codable {
        public var kty = "OKP"
        public var crv = "Ed25519"
        public var alg = "EdDSA"
        public var use = "sig"
        public var kid: String
        /// The public key, base64url.
        public var x: String
    }

    public var keys: [Key]
}

/// The file's shape.
struct KeyDocument: Codable {
    var keys: [StoredKey]

    static func stamp(of file: URL) throws -> SigningKeys.FileStamp {
        let attributes = try FileManager.default.attributesOfItem(atPath: file.path)
        return SigningKeys.FileStamp(
            modified: attributes[.modificationDate] as? Date ?? .distantPast,
            size: (attributes[.size] as? NSNumber)?.intValue ?? 0
        )
    }

    static func read(from file: URL) throws -> (KeyDocument, SigningKeys.FileStamp) {
        let stamp = try Self.stamp(of: file)
        let document = try JSONDecoder().decode(KeyDocument.self, from: Data(contentsOf: file))
        guard document.keys.contains(where: { $0.retiredAt == nil && $0.privateKey != nil }) else {
            throw SigningKeysError("\(file.path) has no signing key (a key without retiredAt and with its private half).")
        }
        return (document, stamp)
    }

    /// Writes the file whole, with mode 0600, and renames it into place, so that a reader never
    /// sees half a file.
    func write(to file: URL) throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        let data = try encoder.encode(self)
        let temporary = file.deletingLastPathComponent().appendingPathComponent(".\(file.lastPathComponent).\(UUID().uuidString)")
        guard FileManager.default.createFile(atPath: temporary.path, contents: data, attributes: [.posixPermissions: 0o600]) else {
            throw SigningKeysError("Cannot write \(temporary.path).")
        }
        guard rename(temporary.path, file.path) == 0 else {
            try? FileManager.default.removeItem(at: temporary)
            throw SigningKeysError("Cannot rename \(temporary.path) to \(file.path): errno \(errno).")
        }
    }
}

/// A key as the file keeps it: times in milliseconds since 1970, keys base64url.
struct StoredKey: Codable {
    var kid: String
    var alg = "EdDSA"
    var crv = "Ed25519"
    var createdAt: Int64
    var retiredAt: Int64?
    /// The public key.
    var x: String
    /// The private key, only while the key signs.
    var d: String?

    static func generate(now: Date) -> StoredKey {
        let privateKey = Curve25519.Signing.PrivateKey()
        return StoredKey(
            kid: makeIdentifier(prefix: "key_", byteCount: 12),
            createdAt: now.millisecondsSince1970,
            x: Base64URL.encode(Array(privateKey.publicKey.rawRepresentation)),
            d: Base64URL.encode(Array(privateKey.rawRepresentation))
        )
    }

    var publicKeyBytes: [UInt8] { Base64URL.decode(self.x) ?? [] }

    var privateKey: Curve25519.Signing.PrivateKey? {
        guard let d, let bytes = Base64URL.decode(d) else { return nil }
        return try? Curve25519.Signing.PrivateKey(rawRepresentation: bytes)
    }

    var key: SigningKeys.Key {
        SigningKeys.Key(
            id: self.kid,
            createdAt: Date(millisecondsSince1970: self.createdAt),
            retiredAt: self.retiredAt.map(Date.init(millisecondsSince1970:)),
            publicKey: self.publicKeyBytes
        )
    }
}

/// The signing-keys file cannot be read or written.
public struct SigningKeysError: Error, CustomStringConvertible {
    public var description: String
    init(_ description: String) { self.description = description }
}
