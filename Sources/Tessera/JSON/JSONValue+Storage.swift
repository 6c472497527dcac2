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
