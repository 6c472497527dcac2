// The proxy path builder: UpstreamPath.segments(of:after:) and UpstreamPath(basePath:segments:query:).
//
// The input is one selector byte (which base path, how many leading segments the route takes)
// and then a raw request target, `path?query`. Properties:
// - segments(of:after:) returns the pieces after the first `count`, which joined with the
//   dropped ones give back the path, or `nil` exactly when the path has fewer pieces;
// - a built path starts with the base path followed by `/`, then as many segments as given;
// - no segment below the base percent-decodes to `.` or `..`; the path below the base holds no
//   `%2F`, `%5C` (any case), no raw or encoded control byte, and only `pchar` characters and
//   escapes; every `%` of the output is followed by two hex digits; the query holds only query
//   characters and escapes, none of a control byte;
// - building again from the output's own segments and query gives the same output;
// - every segment below the base percent-decodes to UTF-8 (a client would send another as `/`);
// - it refuses exactly what an independent check of the documented rules refuses.
import FuzzSupport

let basePaths = ["", "/", "/app", "/app/", "/a/b", "/api/v1//", "/caf%C3%A9"]
let pchar = Set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-._~!$&'()*+,;=:@".utf8)
let queryCharacters = pchar.union("/?".utf8)

func hex(_ byte: UInt8) -> UInt8? {
    switch byte {
    case UInt8(ascii: "0")...UInt8(ascii: "9"): byte - UInt8(ascii: "0")
    case UInt8(ascii: "a")...UInt8(ascii: "f"): byte - UInt8(ascii: "a") + 10
    case UInt8(ascii: "A")...UInt8(ascii: "F"): byte - UInt8(ascii: "A") + 10
    default: nil
    }
}

func isControl(_ byte: UInt8) -> Bool { byte < 0x20 || byte == 0x7F }

/// Percent-decodes `bytes`: each byte with whether it was escaped, or `nil` for a malformed escape.
func decode(_ bytes: some Collection<UInt8>) -> [(byte: UInt8, escaped: Bool)]? {
    let bytes = Array(bytes)
    var output: [(UInt8, Bool)] = []
    var index = 0
    while index < bytes.count {
        if bytes[index] == UInt8(ascii: "%") {
            guard index + 2 < bytes.count, let high = hex(bytes[index + 1]), let low = hex(bytes[index + 2]) else { return nil }
            output.append((high << 4 | low, true))
            index += 3
        } else {
            output.append((bytes[index], false))
            index += 1
        }
    }
    return output
}

/// Why the documented rules refuse the segments and query, or `nil`.
func referenceRefusal(segments: [Substring], query: Substring?) -> String? {
    for segment in segments {
        guard let decoded = decode(segment.utf8) else { return "a malformed escape in a segment" }
        if decoded.contains(where: { isControl($0.byte) }) { return "a control byte in a segment" }
        if decoded.contains(where: { $0.escaped && ($0.byte == UInt8(ascii: "/") || $0.byte == UInt8(ascii: "\\")) }) {
            return "an encoded separator"
        }
        if decoded.contains(where: { !$0.escaped && ($0.byte == UInt8(ascii: "/") || $0.byte == UInt8(ascii: "\\")) }) {
            return "a raw separator inside a segment"
        }
        let plain = decoded.map(\.byte)
        if plain == [UInt8(ascii: ".")] || plain == [UInt8(ascii: "."), UInt8(ascii: ".")] { return "a dot segment" }
        if String(validating: plain, as: UTF8.self) == nil { return "a segment whose bytes are not UTF-8" }
    }
    if let query {
        guard let decoded = decode(query.utf8) else { return "a malformed escape in the query" }
        if decoded.contains(where: { isControl($0.byte) }) { return "a control byte in the query" }
    }
    return nil
}

func build(_ base: String, _ segments: [Substring], _ query: Substring?) -> Result<String, UpstreamPathError> {
    do {
        return .success(try UpstreamPath(basePath: base, segments: segments, query: query).pathAndQuery)
    } catch let error as UpstreamPathError {
        return .failure(error)
    } catch {
        fail("UpstreamPath threw \(error)")
    }
}

runFuzzer { input in
    guard let selector = input.first else { return }
    let base = basePaths[Int(selector) % basePaths.count]
    let skip = Int(selector >> 4) % 5
    let target = String(decoding: input.dropFirst(), as: UTF8.self)
    let rawPath: Substring
    let query: Substring?
    if let mark = target.firstIndex(of: "?") {
        rawPath = target[..<mark]
        query = target[target.index(after: mark)...]
    } else {
        rawPath = target[...]
        query = nil
    }

    // segments(of:after:)
    var pieces = rawPath.split(separator: "/", omittingEmptySubsequences: false)
    if pieces.first == "" { pieces.removeFirst() }
    guard let segments = UpstreamPath.segments(of: String(rawPath), after: skip) else {
        require(pieces.count < skip, "segments(of: \(show(rawPath.utf8)), after: \(skip)) is nil, with \(pieces.count) pieces")
        return
    }
    require(pieces.count >= skip && Array(pieces.dropFirst(skip)) == segments, "segments(of: \(show(rawPath.utf8)), after: \(skip)) is \(segments)")

    let refusal = referenceRefusal(segments: segments, query: query)
    let outcome = build(base, segments, query)
    let described = "UpstreamPath(basePath: \(show(base.utf8)), segments: [\(segments.map { show($0.utf8) }.joined(separator: ", "))], query: \(query.map { show($0.utf8) } ?? "nil"))"
    let output: String
    switch outcome {
    case .failure(let error):
        require(refusal != nil, "\(described) refused: \(error.reason), which the rules allow")
        return
    case .success(let built):
        output = built
        require(refusal == nil, "\(described) is \(show(output.utf8)), but the rules refuse it: \(refusal!)")
    }

    // The base, then `/`.
    var trimmedBase = Substring(base)
    while trimmedBase.hasSuffix("/") { trimmedBase = trimmedBase.dropLast() }
    let prefix = trimmedBase.isEmpty ? "/" : (trimmedBase.hasPrefix("/") ? "" : "/") + trimmedBase + "/"
    require(output.hasPrefix(prefix), "\(described) is \(show(output.utf8)), which does not start with \(show(prefix.utf8))")

    let bytes = Array(output.utf8)
    require(bytes.allSatisfy { $0 > 0x20 && $0 < 0x7F }, "\(described) is \(show(bytes)): a byte that may not be in a request target")
    require(decode(bytes) != nil, "\(described) is \(show(bytes)): a '%' without two hex digits")

    let below = output.utf8.dropFirst(prefix.utf8.count)
    let pathEnd = below.firstIndex(of: UInt8(ascii: "?")) ?? below.endIndex
    let pathPart = below[..<pathEnd]
    let outSegments = pathPart.split(separator: UInt8(ascii: "/"), omittingEmptySubsequences: false)
    require(outSegments.count == max(1, segments.count), "\(described) is \(show(bytes)): \(outSegments.count) segments below the base")
    for segment in outSegments {
        let decoded = decode(segment)!
        let plain = decoded.map(\.byte)
        require(plain != [0x2E] && plain != [0x2E, 0x2E], "\(described) is \(show(bytes)): a dot segment")
        require(!decoded.contains { isControl($0.byte) }, "\(described) is \(show(bytes)): a control byte")
        require(String(validating: plain, as: UTF8.self) != nil, "\(described) is \(show(bytes)): a segment that is not UTF-8")
        require(
            !decoded.contains { $0.escaped && ($0.byte == UInt8(ascii: "/") || $0.byte == UInt8(ascii: "\\")) },
            "\(described) is \(show(bytes)): an encoded '/' or '\\' in the path"
        )
        require(segment.allSatisfy { pchar.contains($0) || $0 == UInt8(ascii: "%") }, "\(described) is \(show(bytes)): a raw byte outside pchar")
    }
    let outQuery: Substring?
    if pathEnd < below.endIndex {
        let queryBytes = below[below.index(after: pathEnd)...]
        require(query != nil && !query!.isEmpty, "\(described) is \(show(bytes)): a query that was not given")
        require(queryBytes.allSatisfy { queryCharacters.contains($0) || $0 == UInt8(ascii: "%") }, "\(described) is \(show(bytes)): a raw byte outside the query characters")
        require(!decode(queryBytes)!.contains { isControl($0.byte) }, "\(described) is \(show(bytes)): a control byte in the query")
        outQuery = Substring(decoding: queryBytes, as: UTF8.self)
    } else {
        require(query?.isEmpty ?? true, "\(described) is \(show(bytes)): the query is lost")
        outQuery = nil
    }

    // Idempotent: the output's own segments, after the base's, build the same output.
    let pathOnly = String(decoding: output.utf8[..<pathEnd], as: UTF8.self)
    let baseSegmentCount = prefix.dropLast().split(separator: "/", omittingEmptySubsequences: false).count - 1
    guard let again = UpstreamPath.segments(of: pathOnly, after: baseSegmentCount) else {
        fail("\(described) is \(show(bytes)), whose segments after \(baseSegmentCount) are nil")
    }
    switch build(base, again, outQuery) {
    case .success(let rebuilt):
        require(rebuilt == output, "\(described) is \(show(bytes)), rebuilt from its own segments \(show(rebuilt.utf8))")
    case .failure(let error):
        fail("\(described) is \(show(bytes)), rebuilt from its own segments it is refused: \(error.reason)")
    }
}
