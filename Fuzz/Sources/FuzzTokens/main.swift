// Tokens: TokenSyntax.isWellFormed (prefixes tss_ and tsr_) and Base64URL.
//
// Properties, on the input as a presented token:
// - well-formed ⇔ the prefix, then 43 characters that Base64URL.decode reads as 32 bytes and
//   Base64URL.encode writes back as the same 43 characters;
// - Base64URL.decodedCount (bytes and string forms) is the count of Base64URL.decode, `nil`
//   when decode refuses;
// - decode ∘ encode is the identity, on the input taken as raw bytes.
// And on a token built from the input's bytes (32 random bytes, encoded, then one character
// replaced at a position and by a byte the input chooses): the built token is well-formed, and
// the changed one is well-formed exactly when it decodes to 32 bytes that re-encode to it.
import FuzzSupport

let prefixes = ["tss_", "tsr_"]
let alphabet = Set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_".utf8)

/// The reference: the definition in the brief, through the decoder rather than the counter.
func referenceWellFormed(_ bytes: [UInt8], prefix: String) -> Bool {
    let prefixBytes = Array(prefix.utf8)
    guard bytes.starts(with: prefixBytes) else { return false }
    let rest = Array(bytes[prefixBytes.count...])
    guard rest.count == 43, let text = String(validating: rest, as: UTF8.self), let decoded = Base64URL.decode(text) else { return false }
    return decoded.count == 32 && Array(Base64URL.encode(decoded).utf8) == rest
}

func checkToken(_ bytes: [UInt8]) {
    for prefix in prefixes {
        let wellFormed = bytes.withUnsafeBufferPointer { TokenSyntax.isWellFormed($0, prefix: prefix.utf8) }
        let expected = referenceWellFormed(bytes, prefix: prefix)
        require(wellFormed == expected, "isWellFormed(\(show(bytes)), prefix: \(prefix)) is \(wellFormed), the decoder says \(expected)")
        if wellFormed {
            // The other prefix never matches the same token.
            let other = prefixes.first { $0 != prefix }!
            require(!bytes.withUnsafeBufferPointer { TokenSyntax.isWellFormed($0, prefix: other.utf8) }, "a token is well-formed for both prefixes")
        }
    }
}

func checkBase64(_ bytes: [UInt8]) {
    let counted = bytes.withUnsafeBufferPointer { Base64URL.decodedCount(bytes: $0) }
    let text = String(decoding: bytes, as: UTF8.self)
    let decoded = Base64URL.decode(text)
    require(counted == decoded?.count, "decodedCount(\(show(bytes))) is \(counted.map(String.init) ?? "nil"), decode gives \(decoded.map { "\($0.count) bytes" } ?? "nil")")
    require(Base64URL.decodedCount(text) == counted, "decodedCount of the String and of its bytes differ")
    require(Base64URL.decodedCount(text.dropFirst(0)) == counted, "decodedCount of a Substring differs")
    if let decoded {
        // A canonical spelling: what decodes re-encodes to the same characters.
        require(Array(Base64URL.encode(decoded).utf8) == bytes, "\(show(bytes)) decodes but re-encodes differently")
    }
    // Encoding any bytes decodes back to them.
    let encoded = Base64URL.encode(bytes)
    require(encoded.utf8.count == (bytes.count * 8 + 5) / 6, "encode wrote \(encoded.utf8.count) characters for \(bytes.count) bytes")
    require(encoded.utf8.allSatisfy { alphabet.contains($0) }, "encode wrote a character outside the alphabet: \(encoded)")
    require(Base64URL.decode(encoded) == bytes, "decode(encode(\(show(bytes)))) is not the input")
    require(Base64URL.decodedCount(encoded) == bytes.count, "decodedCount(encode(x)) is not x.count")
}

runFuzzer { input in
    let bytes = Array(input)
    checkToken(bytes)
    checkBase64(bytes)

    // A token built from the input: 32 bytes (padded with zeros), encoded.
    var random = Array(bytes.prefix(32))
    random += [UInt8](repeating: 0, count: 32 - random.count)
    let prefix = prefixes[Int(bytes.first ?? 0) & 1]
    var token = Array(prefix.utf8) + Array(Base64URL.encode(random).utf8)
    require(token.count == 47, "an encoded token is not 47 bytes")
    require(token.withUnsafeBufferPointer { TokenSyntax.isWellFormed($0, prefix: prefix.utf8) }, "a freshly encoded token \(show(token)) is not well-formed")
    checkToken(token)
    // One character changed: the position and the byte come from the input's end.
    if bytes.count >= 34 {
        let position = Int(bytes[32]) % token.count
        token[position] = bytes[33]
        checkToken(token)
        if bytes.count >= 35 {
            // A length change: a byte removed or added at the end.
            checkToken(Array(token.dropLast()))
            checkToken(token + [bytes[34]])
        }
    }
}
