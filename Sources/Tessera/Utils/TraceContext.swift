/// A W3C Trace Context (`traceparent`, https://www.w3.org/TR/trace-context/): the trace a
/// request belongs to and the caller's span in it.
///
/// Tessera records no spans of its own: it reads the caller's `traceparent`, puts `trace_id`
/// and `parent_span_id` on the request's log lines, and passes the trace on to upstream sites as
/// a child (a new span id, the same trace and flags). `docs/operations.md` says how to add
/// swift-distributed-tracing and an OpenTelemetry exporter to an application that mounts
/// Tessera's middleware.
public struct TraceContext: Sendable, Hashable {
    /// 32 lowercase hexadecimal digits, not all zero.
    public let traceID: String
    /// The caller's span: 16 lowercase hexadecimal digits, not all zero.
    public let parentID: String
    /// The trace flags (bit 0: sampled).
    public let flags: UInt8

    /// The context of the request being served, if it sent a valid `traceparent`.
    @TaskLocal public static var current: TraceContext?

    /// Reads a `traceparent` value; `nil` for anything the specification says to ignore.
    public init?(traceparent: some StringProtocol) {
        let utf8 = Array(traceparent.utf8)
        // version "-" trace-id "-" parent-id "-" flags; a later version may append "-" and more.
        guard utf8.count >= 55, utf8[2] == UInt8(ascii: "-"), utf8[35] == UInt8(ascii: "-"), utf8[52] == UInt8(ascii: "-"),
            let version = Self.hexValue(utf8[0..<2]), version != 0xFF,
            utf8.count == 55 || (version > 0 && utf8[55] == UInt8(ascii: "-")),
            Self.isHex(utf8[3..<35]), Self.isHex(utf8[36..<52]),
            let flags = Self.hexValue(utf8[53..<55])
        else { return nil }
        // Version 00 has exactly this length.
        if version == 0 && utf8.count != 55 { return nil }
        let trace = String(decoding: utf8[3..<35], as: UTF8.self)
        let parent = String(decoding: utf8[36..<52], as: UTF8.self)
        guard trace != String(repeating: "0", count: 32), parent != String(repeating: "0", count: 16) else { return nil }
        self.traceID = trace
        self.parentID = parent
        self.flags = UInt8(flags)
    }

    /// The `traceparent` of a call made on this request's behalf: the same trace and flags, and
    /// `spanID` (a new random span id unless given) as the parent of what the callee does.
    public func child(spanID: String? = nil) -> String {
        let span = spanID ?? Self.randomSpanID()
        let flags = String(self.flags, radix: 16)
        return "00-\(self.traceID)-\(span)-\(self.flags < 16 ? "0" : "")\(flags)"
    }

    static func randomSpanID() -> String {
        var id: UInt64 = 0
        while id == 0 { id = UInt64.random(in: 1...UInt64.max) }
        let hex = String(id, radix: 16)
        return String(repeating: "0", count: 16 - hex.count) + hex
    }

    static func isHex(_ bytes: ArraySlice<UInt8>) -> Bool {
        bytes.allSatisfy { (UInt8(ascii: "0")...UInt8(ascii: "9")).contains($0) || (UInt8(ascii: "a")...UInt8(ascii: "f")).contains($0) }
    }

    static func hexValue(_ bytes: ArraySlice<UInt8>) -> Int? {
        guard Self.isHex(bytes) else { return nil }
        return Int(String(decoding: bytes, as: UTF8.self), radix: 16)
    }
}
