/// The path and query a proxied request is sent to, checked so that it stays below the
/// upstream's base path.
///
/// It works on the raw request target, never on a decoded one, and refuses, rather than
/// repairs, what could climb out of the base path or mean two things to two servers:
///
/// - a dot segment, spelled raw or percent-encoded in any case (`..`, `%2e%2e`, `.%2E`, `.`);
/// - an encoded separator (`%2F`, `%5C`), which some servers decode before resolving `..`, and a
///   raw `\` (or `/`) inside a segment, which would be sent encoded as one;
/// - a malformed escape (`%`, `%zz`), and control characters raw or encoded (`%00`–`%1F`, `%7F`);
/// - a path segment whose bytes (percent-decoded) are not UTF-8, such as `%FF`: the HTTP client
///   would send such a path as `/`, the site's root.
///
/// Everything else is sent as the client wrote it (`%2B` stays `%2B`; a query may carry any
/// percent-encoded byte), with raw characters that may not appear in a request target
/// percent-encoded.
public struct UpstreamPath: Sendable, Hashable, CustomStringConvertible {
    /// The path and query to send: the base path, the checked segments, then the query.
    public let pathAndQuery: String

    /// - Parameters:
    ///   - basePath: the path of the upstream's base URL, such as `/app` (empty or `/` for the root)
    ///   - segments: the raw, still percent-encoded, segments of the path below the base
    ///   - query: the raw query, without its `?`
    /// - Throws: ``UpstreamPathError``.
    public init(basePath: String, segments: some Sequence<Substring>, query: Substring?) throws {
        var path = basePath
        while path.hasSuffix("/") { path.removeLast() }
        var wroteSegment = false
        for segment in segments {
            path += "/"
            path += try Self.checkedSegment(segment)
            wroteSegment = true
        }
        if !wroteSegment { path += "/" }
        if !path.hasPrefix("/") { path = "/" + path }
        if let query, !query.isEmpty {
            path += "?"
            path += try Self.checkedQuery(query)
        }
        self.pathAndQuery = path
    }

    /// The raw segments of `rawPath` after its first `count` segments: for
    /// `/v1/upstreams/portal/proxy/a/b`, after 4 segments, `a` and `b`.
    /// - Returns: `nil` when the path has fewer segments than that.
    public static func segments(of rawPath: String, after count: Int) -> [Substring]? {
        var segments = rawPath.split(separator: "/", omittingEmptySubsequences: false)
        // A path starts with "/": its first piece is empty.
        if segments.first == "" { segments.removeFirst() }
        guard segments.count >= count else { return nil }
        return Array(segments.dropFirst(count))
    }

    public var description: String { self.pathAndQuery }

    // MARK: Checks

    static func checkedSegment(_ segment: Substring) throws -> String {
        var output: [UInt8] = []
        output.reserveCapacity(segment.utf8.count)
        var decoded: [UInt8] = []
        try Self.walk(segment.utf8, allowed: Self.isPathCharacter, output: &output) { byte, encoded in
            switch byte {
            case UInt8(ascii: "/"), UInt8(ascii: "\\"):
                // Raw, `walk` would percent-encode it: `..\..` would go out as `..%5C..`.
                throw UpstreamPathError(
                    encoded ? "an encoded '/' or '\\' in the path is not forwarded" : "a '\\' or a '/' inside a segment is not forwarded"
                )
            default:
                decoded.append(byte)
            }
        }
        if decoded == [UInt8(ascii: ".")] || decoded == [UInt8(ascii: "."), UInt8(ascii: ".")] {
            throw UpstreamPathError("a '.' or '..' segment in the path is not forwarded")
        }
        guard String(validating: decoded, as: UTF8.self) != nil else {
            throw UpstreamPathError("a path segment whose bytes are not UTF-8 is not forwarded")
        }
        return String(decoding: output, as: UTF8.self)
    }

    static func checkedQuery(_ query: Substring) throws -> String {
        var output: [UInt8] = []
        output.reserveCapacity(query.utf8.count)
        try Self.walk(query.utf8, allowed: Self.isQueryCharacter, output: &output) { _, _ in }
        return String(decoding: output, as: UTF8.self)
    }

    /// Copies `bytes` to `output`, percent-encoding the raw bytes `allowed` refuses, and calls
    /// `visit` with every decoded byte and whether it was percent-encoded.
    private static func walk(
        _ bytes: Substring.UTF8View,
        allowed: (UInt8) -> Bool,
        output: inout [UInt8],
        visit: (UInt8, Bool) throws -> Void
    ) throws {
        var index = bytes.startIndex
        while index < bytes.endIndex {
            let byte = bytes[index]
            index = bytes.index(after: index)
            if byte == UInt8(ascii: "%") {
                guard index < bytes.endIndex, let high = Self.hexValue(bytes[index]) else { throw Self.badEscape }
                let second = bytes.index(after: index)
                guard second < bytes.endIndex, let low = Self.hexValue(bytes[second]) else { throw Self.badEscape }
                let decoded = high << 4 | low
                guard !Self.isControl(decoded) else { throw UpstreamPathError("a control character in the path is not forwarded") }
                try visit(decoded, true)
                // The escape as the client wrote it, in its case.
                output.append(contentsOf: [UInt8(ascii: "%"), bytes[index], bytes[second]])
                index = bytes.index(after: second)
            } else {
                guard !Self.isControl(byte) else { throw UpstreamPathError("a control character in the path is not forwarded") }
                try visit(byte, false)
                if allowed(byte) {
                    output.append(byte)
                } else {
                    output.append(contentsOf: [UInt8(ascii: "%"), Self.hexDigits[Int(byte >> 4)], Self.hexDigits[Int(byte & 0x0F)]])
                }
            }
        }
    }

    static let badEscape = UpstreamPathError("a '%' in the path is not followed by two hex digits")
    private static let hexDigits: [UInt8] = Array("0123456789ABCDEF".utf8)

    static func hexValue(_ byte: UInt8) -> UInt8? {
        switch byte {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): return byte - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): return byte - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): return byte - UInt8(ascii: "A") + 10
        default: return nil
        }
    }

    static func isControl(_ byte: UInt8) -> Bool { byte < 0x20 || byte == 0x7F }

    /// RFC 3986 `pchar` without `%`: unreserved, sub-delims, `:` and `@`.
    static func isPathCharacter(_ byte: UInt8) -> Bool {
        switch byte {
        case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "0")...UInt8(ascii: "9"):
            return true
        case UInt8(ascii: "-"), UInt8(ascii: "."), UInt8(ascii: "_"), UInt8(ascii: "~"), UInt8(ascii: "!"), UInt8(ascii: "$"),
            UInt8(ascii: "&"), UInt8(ascii: "'"), UInt8(ascii: "("), UInt8(ascii: ")"), UInt8(ascii: "*"), UInt8(ascii: "+"),
            UInt8(ascii: ","), UInt8(ascii: ";"), UInt8(ascii: "="), UInt8(ascii: ":"), UInt8(ascii: "@"):
            return true
        default:
            return false
        }
    }

    /// RFC 3986 `query` characters without `%`: `pchar`, `/` and `?`.
    static func isQueryCharacter(_ byte: UInt8) -> Bool {
        Self.isPathCharacter(byte) || byte == UInt8(ascii: "/") || byte == UInt8(ascii: "?")
    }
}

/// A proxied path that is refused: ``UpstreamPath`` says why.
public struct UpstreamPathError: Error, Sendable, Hashable, CustomStringConvertible {
    /// Why, in words safe to show.
    public var reason: String

    init(_ reason: String) {
        self.reason = reason
    }

    public var description: String { "The proxied path is refused: \(self.reason)." }
}
