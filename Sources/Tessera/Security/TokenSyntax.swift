/// The shape of the random credentials Tessera issues (`tss_…`, `tsr_…`): a prefix, then 32
/// random bytes in unpadded base64url, 43 characters.
///
/// It imports nothing and reads bytes, so that the fuzzers exercise exactly the check the
/// service runs on every presented token (`Fuzz/`).
package enum TokenSyntax {
    /// How many random bytes a token carries.
    package static let randomByteCount = 32
    /// How many base64url characters those bytes take.
    package static let encodedRandomCount = 43

    /// Whether `bytes` is `prefix` followed by exactly ``randomByteCount`` bytes in unpadded
    /// base64url, in its one canonical spelling.
    package static func isWellFormed(_ bytes: UnsafeBufferPointer<UInt8>, prefix: some Collection<UInt8>) -> Bool {
        bytes.count == prefix.count + Self.encodedRandomCount
            && bytes.starts(with: prefix)
            && Base64URL.decodedCount(bytes: UnsafeBufferPointer(rebasing: bytes[prefix.count...])) == Self.randomByteCount
    }
}
