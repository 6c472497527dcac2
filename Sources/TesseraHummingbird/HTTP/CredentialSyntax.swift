/// The byte-level readers of the credentials a request carries: the `Authorization: Bearer`
/// token, one cookie of a `Cookie` field, and the data version of `If-Match`.
///
/// They import nothing and take raw bytes, so that the fuzzers exercise exactly the code the
/// service runs (`Fuzz/`).
enum CredentialSyntax {
    /// The token of an `Authorization` value `Bearer <token>` (the scheme in any case, spaces or
    /// tabs around the token), or `nil` for another scheme or an empty token.
    static func bearerToken(in bytes: UnsafeBufferPointer<UInt8>) -> String? {
        var start = 0
        for expected in "bearer".utf8 {
            guard start < bytes.count, bytes[start] | 0x20 == expected else { return nil }
            start += 1
        }
        guard start < bytes.count, bytes[start] == UInt8(ascii: " ") else { return nil }
        while start < bytes.count, Self.isSpace(bytes[start]) { start += 1 }
        var end = bytes.count
        while end > start, Self.isSpace(bytes[end - 1]) { end -= 1 }
        guard start < end else { return nil }
        return String(decoding: UnsafeBufferPointer(rebasing: bytes[start..<end]), as: UTF8.self)
    }

    /// The value of the cookie called `name` in one `Cookie` field value (`a=1; b=2`), without
    /// the spaces around it; `nil` when the field has no such cookie.
    static func cookie(named name: some Collection<UInt8>, in bytes: UnsafeBufferPointer<UInt8>) -> String? {
        var start = 0
        while start < bytes.count {
            var end = start
            while end < bytes.count, bytes[end] != UInt8(ascii: ";") { end += 1 }
            var pairStart = start
            while pairStart < end, Self.isSpace(bytes[pairStart]) { pairStart += 1 }
            let pair = UnsafeBufferPointer(rebasing: bytes[pairStart..<end])
            if pair.starts(with: name), pair.count > name.count, pair[name.count] == UInt8(ascii: "=") {
                var valueStart = name.count + 1
                var valueEnd = pair.count
                while valueStart < valueEnd, Self.isSpace(pair[valueStart]) { valueStart += 1 }
                while valueEnd > valueStart, Self.isSpace(pair[valueEnd - 1]) { valueEnd -= 1 }
                return String(decoding: UnsafeBufferPointer(rebasing: pair[valueStart..<valueEnd]), as: UTF8.self)
            }
            start = end + 1
        }
        return nil
    }

    /// The data version an `If-Match` value names: `"3"`, `W/"3"` or `3`, with optional spaces
    /// around it. `nil` for anything else: a list, `*`, a sign, a number past 18 digits.
    static func dataVersion(ifMatch bytes: UnsafeBufferPointer<UInt8>) -> Int? {
        var start = 0
        var end = bytes.count
        while start < end, Self.isSpace(bytes[start]) { start += 1 }
        while end > start, Self.isSpace(bytes[end - 1]) { end -= 1 }
        if end - start >= 2, bytes[start] == UInt8(ascii: "W"), bytes[start + 1] == UInt8(ascii: "/") { start += 2 }
        if end - start >= 2, bytes[start] == UInt8(ascii: "\""), bytes[end - 1] == UInt8(ascii: "\"") {
            start += 1
            end -= 1
        }
        guard (1...18).contains(end - start) else { return nil }
        var version = 0
        for index in start..<end {
            let byte = bytes[index]
            guard byte >= UInt8(ascii: "0"), byte <= UInt8(ascii: "9") else { return nil }
            version = version * 10 + Int(byte - UInt8(ascii: "0"))
        }
        return version
    }

    static func isSpace(_ byte: UInt8) -> Bool { byte == UInt8(ascii: " ") || byte == UInt8(ascii: "\t") }
}
