/// A strict JSON parser (RFC 8259) that checks ``JSONLimits`` as it reads.
///
/// It reads in one pass, in time linear in the input, and keeps its nesting on the heap (a work
/// list, not recursion), so neither a long nor a deep document can exhaust the stack or the
/// clock. It refuses what `JSONSerialization` would guess at: invalid UTF-8, lone surrogate
/// escapes, control characters in strings, duplicate keys, numbers out of range, a byte-order
/// mark, anything after the value.
public enum JSONParser {
    /// Parses one JSON document.
    /// - Throws: ``JSONParseError``.
    public static func parse(_ bytes: some Sequence<UInt8>, limits: JSONLimits) throws -> JSONValue {
        if let value = try bytes.withContiguousStorageIfAvailable({ try Self.parse(buffer: $0, limits: limits) }) {
            return value
        }
        let array = Array(bytes)
        return try array.withUnsafeBufferPointer { try Self.parse(buffer: $0, limits: limits) }
    }

    /// Parses a JSON document that must be an object.
    /// - Throws: ``JSONParseError``, also when the document is another kind of value.
    public static func parseObject(_ bytes: some Sequence<UInt8>, limits: JSONLimits) throws -> [String: JSONValue] {
        guard case .object(let members) = try Self.parse(bytes, limits: limits) else {
            throw JSONParseError(.syntax, at: 0, "the JSON value is not an object")
        }
        return members
    }

    static func parse(buffer: UnsafeBufferPointer<UInt8>, limits: JSONLimits) throws -> JSONValue {
        guard buffer.count <= limits.maxBytes else {
            throw JSONParseError(.tooLarge, at: limits.maxBytes, limit: limits.maxBytes, "the JSON is longer than \(limits.maxBytes) bytes")
        }
        var reader = Reader(bytes: buffer, limits: limits)
        return try reader.document()
    }
}

/// The parser's state: a position in the bytes and the containers open around it.
private struct Reader {
    enum Container {
        case array
        case object
    }

    let bytes: UnsafeBufferPointer<UInt8>
    let limits: JSONLimits
    var index = 0
    /// The containers open, innermost last; their contents are on `arrays` and `objects`, where
    /// each value is appended in place (a container popped, appended to and pushed back would
    /// copy its elements at every value: quadratic in a container's length).
    var open: [Container] = []
    var arrays: [[JSONValue]] = []
    var objects: [(members: [String: JSONValue], key: String)] = []

    init(bytes: UnsafeBufferPointer<UInt8>, limits: JSONLimits) {
        self.bytes = bytes
        self.limits = limits
    }

    mutating func document() throws -> JSONValue {
        self.skipWhitespace()
        let value = try self.value()
        self.skipWhitespace()
        guard self.index == self.bytes.count else { throw self.syntax("unexpected data after the JSON value") }
        return value
    }

    /// Reads a value, with everything nested in it.
    mutating func value() throws -> JSONValue {
        nextValue: while true {
            var completed: JSONValue
            switch try self.peek() {
            case UInt8(ascii: "{"):
                try self.enter()
                self.skipWhitespace()
                guard try self.peek() == UInt8(ascii: "}") else {
                    self.objects.append(([:], key: try self.memberKey()))
                    self.open.append(.object)
                    continue nextValue
                }
                self.index += 1
                completed = .object([:])
            case UInt8(ascii: "["):
                try self.enter()
                self.skipWhitespace()
                guard try self.peek() == UInt8(ascii: "]") else {
                    self.arrays.append([])
                    self.open.append(.array)
                    continue nextValue
                }
                self.index += 1
                completed = .array([])
            default:
                completed = try self.scalar()
            }
            // Hand the value to the containers it completes, innermost first, until one of them
            // goes on with another value.
            while let container = self.open.last {
                self.skipWhitespace()
                switch container {
                case .array:
                    let innermost = self.arrays.count - 1
                    self.arrays[innermost].append(completed)
                    guard self.arrays[innermost].count <= self.limits.maxElements else {
                        throw JSONParseError(
                            .tooManyElements,
                            at: self.index,
                            limit: self.limits.maxElements,
                            "an array has more than \(self.limits.maxElements) elements"
                        )
                    }
                    switch try self.next() {
                    case UInt8(ascii: ","):
                        self.skipWhitespace()
                        continue nextValue
                    case UInt8(ascii: "]"):
                        self.open.removeLast()
                        completed = .array(self.arrays.removeLast())
                    default:
                        throw self.syntax("expected ',' or ']' in an array", back: 1)
                    }
                case .object:
                    let innermost = self.objects.count - 1
                    let key = self.objects[innermost].key
                    guard self.objects[innermost].members.updateValue(completed, forKey: key) == nil else {
                        throw JSONParseError(.duplicateKey, at: self.index, "an object names the same key twice")
                    }
                    guard self.objects[innermost].members.count <= self.limits.maxMembers else {
                        throw JSONParseError(
                            .tooManyMembers,
                            at: self.index,
                            limit: self.limits.maxMembers,
                            "an object has more than \(self.limits.maxMembers) members"
                        )
                    }
                    switch try self.next() {
                    case UInt8(ascii: ","):
                        self.skipWhitespace()
                        self.objects[innermost].key = try self.memberKey()
                        continue nextValue
                    case UInt8(ascii: "}"):
                        self.open.removeLast()
                        completed = .object(self.objects.removeLast().members)
                    default:
                        throw self.syntax("expected ',' or '}' in an object", back: 1)
                    }
                }
            }
            return completed
        }
    }

    /// Opens an array or object: checks the depth and consumes the bracket.
    mutating func enter() throws {
        guard self.open.count < self.limits.maxDepth else {
            var error = JSONLimits.tooDeep(self.limits.maxDepth)
            error.offset = self.index
            throw error
        }
        self.index += 1
    }

    /// Reads `"key"` and the `:` after it, and the whitespace after that.
    mutating func memberKey() throws -> String {
        guard try self.peek() == UInt8(ascii: "\"") else { throw self.syntax("expected a string key in an object") }
        let key = try self.string()
        self.skipWhitespace()
        guard try self.next() == UInt8(ascii: ":") else { throw self.syntax("expected ':' after an object key", back: 1) }
        self.skipWhitespace()
        return key
    }

    mutating func scalar() throws -> JSONValue {
        switch try self.peek() {
        case UInt8(ascii: "\""): return .string(try self.string())
        case UInt8(ascii: "t"):
            try self.literal("true")
            return .bool(true)
        case UInt8(ascii: "f"):
            try self.literal("false")
            return .bool(false)
        case UInt8(ascii: "n"):
            try self.literal("null")
            return .null
        case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"):
            return .number(try self.number())
        default:
            throw self.syntax("expected a JSON value")
        }
    }

    mutating func literal(_ word: StaticString) throws {
        let count = word.utf8CodeUnitCount
        guard self.bytes.count - self.index >= count,
            word.withUTF8Buffer({ $0.elementsEqual(self.bytes[self.index..<self.index + count]) })
        else { throw self.syntax("expected a JSON value") }
        self.index += count
    }

    /// `-? (0 | [1-9][0-9]*) (. [0-9]+)? ([eE] [+-]? [0-9]+)?`, as a finite `Double`.
    mutating func number() throws -> Double {
        let start = self.index
        if self.current == UInt8(ascii: "-") { self.index += 1 }
        if self.current == UInt8(ascii: "0") {
            self.index += 1
        } else {
            guard self.skipDigits() > 0 else { throw self.syntax("a number needs digits") }
        }
        if self.current == UInt8(ascii: ".") {
            self.index += 1
            guard self.skipDigits() > 0 else { throw self.syntax("a number needs digits after '.'") }
        }
        if self.current == UInt8(ascii: "e") || self.current == UInt8(ascii: "E") {
            self.index += 1
            if self.current == UInt8(ascii: "+") || self.current == UInt8(ascii: "-") { self.index += 1 }
            guard self.skipDigits() > 0 else { throw self.syntax("a number needs digits in its exponent") }
        }
        let text = String(decoding: UnsafeBufferPointer(rebasing: self.bytes[start..<self.index]), as: UTF8.self)
        guard let value = Double(text), value.isFinite else {
            throw JSONParseError(.numberOutOfRange, at: start, "a number is out of range")
        }
        return value
    }

    mutating func skipDigits() -> Int {
        let start = self.index
        while let byte = self.current, byte >= UInt8(ascii: "0"), byte <= UInt8(ascii: "9") { self.index += 1 }
        return self.index - start
    }

    /// A string, from its opening quote to after its closing one.
    mutating func string() throws -> String {
        let start = self.index
        self.index += 1
        // Most strings have no escapes: find the closing quote, then validate the bytes at once.
        var end = self.index
        while end < self.bytes.count {
            let byte = self.bytes[end]
            if byte == UInt8(ascii: "\"") || byte == UInt8(ascii: "\\") || byte < 0x20 { break }
            end += 1
        }
        if end < self.bytes.count, self.bytes[end] == UInt8(ascii: "\"") {
            guard let text = String(validating: UnsafeBufferPointer(rebasing: self.bytes[self.index..<end]), as: UTF8.self) else {
                throw JSONParseError(.syntax, at: start, "a string is not valid UTF-8")
            }
            self.index = end + 1
            return text
        }
        var decoded = Array(self.bytes[self.index..<end])
        self.index = end
        while true {
            guard let byte = self.current else { throw self.syntax("a string is not closed") }
            switch byte {
            case UInt8(ascii: "\""):
                self.index += 1
                guard let text = String(validating: decoded, as: UTF8.self) else {
                    throw JSONParseError(.syntax, at: start, "a string is not valid UTF-8")
                }
                return text
            case UInt8(ascii: "\\"):
                self.index += 1
                try self.escape(into: &decoded)
            case ..<0x20:
                throw self.syntax("a string holds a control character; escape it")
            default:
                decoded.append(byte)
                self.index += 1
            }
        }
    }

    /// The escape after a backslash, appended as UTF-8.
    mutating func escape(into decoded: inout [UInt8]) throws {
        guard let byte = self.current else { throw self.syntax("a string is not closed") }
        self.index += 1
        switch byte {
        case UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "/"): decoded.append(byte)
        case UInt8(ascii: "b"): decoded.append(0x08)
        case UInt8(ascii: "f"): decoded.append(0x0C)
        case UInt8(ascii: "n"): decoded.append(0x0A)
        case UInt8(ascii: "r"): decoded.append(0x0D)
        case UInt8(ascii: "t"): decoded.append(0x09)
        case UInt8(ascii: "u"):
            var scalar = try self.hexQuad()
            if (0xD800...0xDBFF).contains(scalar) {
                // A high surrogate must be followed by an escaped low one.
                guard self.bytes.count - self.index >= 2, self.bytes[self.index] == UInt8(ascii: "\\"),
                    self.bytes[self.index + 1] == UInt8(ascii: "u")
                else { throw self.syntax("a \\u escape is a lone surrogate") }
                self.index += 2
                let low = try self.hexQuad()
                guard (0xDC00...0xDFFF).contains(low) else { throw self.syntax("a \\u escape is a lone surrogate") }
                scalar = 0x10000 + ((scalar - 0xD800) << 10) + (low - 0xDC00)
            } else if (0xDC00...0xDFFF).contains(scalar) {
                throw self.syntax("a \\u escape is a lone surrogate")
            }
            guard let unicode = Unicode.Scalar(scalar) else { throw self.syntax("a \\u escape is not a character") }
            UTF8.encode(unicode) { decoded.append($0) }
        default:
            throw self.syntax("a string has an unknown escape", back: 1)
        }
    }

    mutating func hexQuad() throws -> UInt32 {
        guard self.bytes.count - self.index >= 4 else { throw self.syntax("a \\u escape needs four hex digits") }
        var value: UInt32 = 0
        for _ in 0..<4 {
            let byte = self.bytes[self.index]
            let digit: UInt8
            switch byte {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): digit = byte - UInt8(ascii: "0")
            case UInt8(ascii: "a")...UInt8(ascii: "f"): digit = byte - UInt8(ascii: "a") + 10
            case UInt8(ascii: "A")...UInt8(ascii: "F"): digit = byte - UInt8(ascii: "A") + 10
            default: throw self.syntax("a \\u escape needs four hex digits")
            }
            value = value << 4 | UInt32(digit)
            self.index += 1
        }
        return value
    }

    // MARK: Bytes

    var current: UInt8? { self.index < self.bytes.count ? self.bytes[self.index] : nil }

    func peek() throws -> UInt8 {
        guard let byte = self.current else { throw self.syntax("the JSON ends too early") }
        return byte
    }

    mutating func next() throws -> UInt8 {
        let byte = try self.peek()
        self.index += 1
        return byte
    }

    mutating func skipWhitespace() {
        while let byte = self.current, byte == 0x20 || byte == 0x0A || byte == 0x0D || byte == 0x09 { self.index += 1 }
    }

    func syntax(_ detail: String, back: Int = 0) -> JSONParseError {
        JSONParseError(.syntax, at: max(0, self.index - back), "not valid JSON: \(detail)")
    }
}
