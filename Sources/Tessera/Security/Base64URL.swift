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
        var count = 0
        var bits = 0
        var characters = 0
        var last: UInt8 = 0
        for byte in bytes {
            let value = Self.decodedValue(byte)
            guard value != 0xFF else { return nil }
            characters += 1
            last = value
            bits += 6
            if bits >= 8 {
                bits -= 8
                count += 1
            }
        }
        guard characters % 4 != 1, last & UInt8((1 << bits) - 1) == 0 else { return nil }
        return count
    }

    /// The 6-bit value of one base64url character, or `0xFF`; computed, so that the check of
    /// a presented token reads no table.
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
