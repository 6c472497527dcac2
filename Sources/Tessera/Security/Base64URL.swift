/// Unpadded base64url (RFC 4648 §5), the alphabet of tokens and ids.
package enum Base64URL {
    private static let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_".utf8)

    private static let decodeTable: [UInt8] = {
        var table = [UInt8](repeating: 0xFF, count: 256)
        for (index, byte) in alphabet.enumerated() {
            table[Int(byte)] = UInt8(index)
        }
        return table
    }()

    /// The character of a 6-bit value (0…63).
    package static func character(of value: UInt8) -> UInt8 {
        alphabet[Int(value & 63)]
    }

    package static func encode(_ bytes: some Collection<UInt8>) -> String {
        var output = [UInt8]()
        output.reserveCapacity((bytes.count * 4 + 2) / 3)
        var iterator = bytes.makeIterator()
        while let b0 = iterator.next() {
            let b1 = iterator.next()
            let b2 = iterator.next()
            output.append(alphabet[Int(b0 >> 2)])
            output.append(alphabet[Int((b0 & 0x03) << 4 | (b1 ?? 0) >> 4)])
            if let b1 {
                output.append(alphabet[Int((b1 & 0x0F) << 2 | (b2 ?? 0) >> 6)])
            }
            if let b2 {
                output.append(alphabet[Int(b2 & 0x3F)])
            }
        }
        return String(decoding: output, as: UTF8.self)
    }

    /// How many bytes `text` decodes to, checked as ``decode(_:)`` checks it but without
    /// decoding (no allocation: token parsing runs on every request); `nil` when it does not decode.
    package static func decodedCount(_ text: some StringProtocol) -> Int? {
        if let count = text.utf8.withContiguousStorageIfAvailable({ Self.decodedCount(bytes: $0) }) { return count }
        return Array(text.utf8).withUnsafeBufferPointer { Self.decodedCount(bytes: $0) }
    }

    /// ``decodedCount(_:)`` of UTF-8 bytes.
    package static func decodedCount(bytes: UnsafeBufferPointer<UInt8>) -> Int? {
        // Every character is checked, without a branch on its value and without reading a table:
        // the loop compiles to compares and conditional moves, which random tokens cannot make
        // mispredict, and its time depends on the token's length alone.
        var valid: UInt8 = 1
        for byte in bytes {
            valid &= Self.isInAlphabet(byte)
        }
        guard valid == 1 else { return nil }
        // Each character carries 6 bits; the bits past the last whole byte must be zero, as an
        // encoder writes them, so that every byte string has exactly one encoding.
        let characters = bytes.count
        let spareBits = characters * 6 % 8
        guard characters % 4 != 1 else { return nil }
        if let last = bytes.last, Self.decodedValue(last) & UInt8((1 << spareBits) - 1) != 0 { return nil }
        return characters * 6 / 8
    }

    /// 1 when `byte` is a base64url character, else 0; no branch.
    @inline(__always)
    private static func isInAlphabet(_ byte: UInt8) -> UInt8 {
        Self.bit(byte &- UInt8(ascii: "A") < 26) | Self.bit(byte &- UInt8(ascii: "a") < 26)
            | Self.bit(byte &- UInt8(ascii: "0") < 10) | Self.bit(byte == UInt8(ascii: "-")) | Self.bit(byte == UInt8(ascii: "_"))
    }

    @inline(__always)
    private static func bit(_ condition: Bool) -> UInt8 {
        condition ? 1 : 0
    }

    /// The 6-bit value of one base64url character, or `0xFF`; computed rather than read from a
    /// table, as the check of a presented token is.
    @inline(__always)
    private static func decodedValue(_ byte: UInt8) -> UInt8 {
        switch byte {
        case UInt8(ascii: "A")...UInt8(ascii: "Z"): byte - UInt8(ascii: "A")
        case UInt8(ascii: "a")...UInt8(ascii: "z"): byte - UInt8(ascii: "a") + 26
        case UInt8(ascii: "0")...UInt8(ascii: "9"): byte - UInt8(ascii: "0") + 52
        case UInt8(ascii: "-"): 62
        case UInt8(ascii: "_"): 63
        default: 0xFF
        }
    }

    /// Decodes unpadded base64url; `nil` for any other character or an impossible length.
    package static func decode(_ text: some StringProtocol) -> [UInt8]? {
        let input = Array(text.utf8)
        guard input.count % 4 != 1 else { return nil }
        var output = [UInt8]()
        output.reserveCapacity(input.count * 3 / 4)
        var buffer: UInt32 = 0
        var bits = 0
        for byte in input {
            let value = decodeTable[Int(byte)]
            guard value != 0xFF else { return nil }
            buffer = buffer << 6 | UInt32(value)
            bits += 6
            if bits >= 8 {
                bits -= 8
                output.append(UInt8(truncatingIfNeeded: buffer >> UInt32(bits)))
            }
        }
        // Leftover bits must be zero, so every token has exactly one spelling.
        guard buffer & ((1 << UInt32(bits)) - 1) == 0 else { return nil }
        return output
    }
}
