extension [String: JSONValue] {
    /// Session data as a store writes it: compact JSON, keys sorted.
    package var storedJSON: String {
        var writer = JSONWriter(capacity: 64)
        writer.object(self)
        return String(decoding: writer.bytes, as: UTF8.self)
    }

    /// Session data as a store reads it back, with ``JSONLimits/stored``: whatever this or an
    /// older build wrote, in time linear in its size.
    /// - Throws: ``StoredDataError`` when the stored text is not a JSON object within those limits.
    package init(storedJSON text: String) throws {
        var text = text
        do {
            self = try text.withUTF8 { try JSONParser.parseObject($0, limits: .stored) }
        } catch let error as JSONParseError {
            throw StoredDataError(what: "session data", reason: error.message)
        }
    }
}

/// A stored value that cannot be read back. It says nothing about the store's availability: the
/// store answered, and the same row will fail the same way, so it is that request's error alone.
public struct StoredDataError: Error, Sendable, CustomStringConvertible {
    /// What could not be read, such as `session data`.
    public var what: String
    /// Why, never the stored value itself.
    public var reason: String

    public init(what: String, reason: String) {
        self.what = what
        self.reason = reason
    }

    public var description: String { "The stored \(self.what) cannot be read: \(self.reason)" }
}
