import Foundation

/// Reads a form's one-time token out of an HTML page: the `value` of `<input name="NAME" …>` or
/// the `content` of `<meta name="NAME" …>`. A small tag-and-attribute scanner, not an HTML
/// parser: enough for the login pages of the frameworks that use such tokens (Laravel, Rails,
/// Django), which write these tags plainly.
package enum FormTokenReader {
    package static func value(named name: String, in html: String) -> String? {
        var rest = html[...]
        while let open = rest.firstIndex(of: "<") {
            rest = rest[rest.index(after: open)...]
            guard let close = rest.firstIndex(of: ">") else { return nil }
            let tag = rest[..<close]
            rest = rest[rest.index(after: close)...]
            let tagName = tag.prefix { !$0.isWhitespace && $0 != "/" }.lowercased()
            guard tagName == "input" || tagName == "meta" else { continue }
            let attributes = Self.attributes(of: tag.dropFirst(tagName.count))
            guard attributes["name"] == name else { continue }
            if let value = attributes[tagName == "input" ? "value" : "content"] { return value }
        }
        return nil
    }

    /// The attributes of a tag's text after its name: `key="v"`, `key='v'` or `key=v`, keys
    /// lowercased, the common character references decoded.
    static func attributes(of text: Substring) -> [String: String] {
        var attributes: [String: String] = [:]
        var rest = text
        while true {
            rest = rest.drop { $0.isWhitespace || $0 == "/" }
            let key = rest.prefix { !$0.isWhitespace && $0 != "=" && $0 != "/" }
            guard !key.isEmpty else { return attributes }
            rest = rest.dropFirst(key.count).drop { $0.isWhitespace }
            guard rest.first == "=" else {
                attributes[key.lowercased()] = ""
                continue
            }
            rest = rest.dropFirst().drop { $0.isWhitespace }
            let value: Substring
            if let quote = rest.first, quote == "\"" || quote == "'" {
                let body = rest.dropFirst()
                value = body.prefix { $0 != quote }
                rest = body.dropFirst(value.count).dropFirst()
            } else {
                value = rest.prefix { !$0.isWhitespace }
                rest = rest.dropFirst(value.count)
            }
            attributes[key.lowercased()] = Self.decodeReferences(value)
        }
    }

    static func decodeReferences(_ text: Substring) -> String {
        guard text.contains("&") else { return String(text) }
        return text.replacingOccurrences(of: "&quot;", with: "\"").replacingOccurrences(of: "&#39;", with: "'")
            .replacingOccurrences(of: "&#x27;", with: "'").replacingOccurrences(of: "&lt;", with: "<")
            .replacingOccurrences(of: "&gt;", with: ">").replacingOccurrences(of: "&amp;", with: "&")
    }
}
