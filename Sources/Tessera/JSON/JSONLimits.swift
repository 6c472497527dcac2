/// Bounds a JSON document must keep to be accepted, checked while it is parsed: no document
/// costs more to read than its size allows, whatever its shape.
public struct JSONLimits: Sendable, Hashable {
    /// The longest document, in bytes.
    public var maxBytes: Int
    /// The deepest nesting of arrays and objects: `1` is a scalar-only object or array such as
    /// `{"a":1}`, a scalar alone is `0`.
    public var maxDepth: Int
    /// The most members one object may have.
    public var maxMembers: Int
    /// The most elements one array may have.
    public var maxElements: Int

    public init(maxBytes: Int, maxDepth: Int, maxMembers: Int, maxElements: Int) {
        self.maxBytes = max(0, maxBytes)
        self.maxDepth = max(0, maxDepth)
        self.maxMembers = max(0, maxMembers)
        self.maxElements = max(0, maxElements)
    }

    /// What a session's data may be: 16 KiB of JSON, nested 32 deep, 256 members per object and
    /// 1,000 elements per array.
    public static let sessionData = JSONLimits(maxBytes: 16 * 1024, maxDepth: 32, maxMembers: 256, maxElements: 1000)

    /// What a request body of at most `maxBytes` may be: session data inside one more level.
    public static func requestBody(maxBytes: Int) -> JSONLimits {
        let data = Self.sessionData
        return JSONLimits(maxBytes: maxBytes, maxDepth: data.maxDepth + 1, maxMembers: data.maxMembers, maxElements: data.maxElements)
    }

    /// What a store reads back: anything this or an older build may have written, including
    /// data stored before the session-data limits existed (older builds took up to 511 levels),
    /// so that such a session is still served. Reading stays linear in the stored size.
    public static let stored = JSONLimits(maxBytes: 16 * 1024 * 1024, maxDepth: 1024, maxMembers: 1 << 20, maxElements: 1 << 20)
}

/// Why a JSON document was refused. The description says what and where (a byte offset), never
/// what the document held.
public struct JSONParseError: Error, Sendable, Hashable, CustomStringConvertible {
    /// What was wrong.
    public enum Kind: Sendable, Hashable {
        /// Not JSON: a syntax error, invalid UTF-8, a bad escape.
        case syntax
        /// Longer than ``JSONLimits/maxBytes``.
        case tooLarge
        /// Nested deeper than ``JSONLimits/maxDepth``.
        case tooDeep
        /// An object with more than ``JSONLimits/maxMembers`` members.
        case tooManyMembers
        /// An array with more than ``JSONLimits/maxElements`` elements.
        case tooManyElements
        /// An object that names one key twice.
        case duplicateKey
        /// A number outside what a 64-bit float can hold.
        case numberOutOfRange
    }

    public var kind: Kind
    /// The byte offset at which the problem was found, when a document was read (rather than a
    /// value checked).
    public var offset: Int?
    /// The limit that was passed, for the ``Kind`` that have one.
    public var limit: Int?
    let detail: String

    init(_ kind: Kind, at offset: Int?, limit: Int? = nil, _ detail: String) {
        self.kind = kind
        self.offset = offset
        self.limit = limit
        self.detail = detail
    }

    /// Whether the document was refused for one of ``JSONLimits`` (size, depth, members,
    /// elements) rather than as JSON the parser does not accept (its syntax, a duplicate key, a
    /// number out of range). The parser stops at the first problem and reads no further, so the
    /// document is valid JSON up to ``offset`` only: `[[[…` cut short past `maxDepth` is refused
    /// as too deep, not as not JSON.
    public var isLimit: Bool {
        switch self.kind {
        case .tooLarge, .tooDeep, .tooManyMembers, .tooManyElements: return true
        case .syntax, .duplicateKey, .numberOutOfRange: return false
        }
    }

    /// A sentence to show: what was wrong, never what the document held.
    public var message: String {
        let sentence = self.detail.prefix(1).uppercased() + self.detail.dropFirst()
        return sentence + (self.offset.map { " (at byte \($0))." } ?? ".")
    }

    public var description: String { self.message }
}

extension JSONLimits {
    /// Checks a value built in memory against the limits, as ``JSONParser`` checks a document:
    /// its nesting, its objects and arrays, and the size of its JSON as ``JSONWriter`` writes it.
    /// - Returns: the value's JSON bytes.
    /// - Throws: ``JSONParseError`` with the first limit passed.
    @discardableResult
    public func check(_ value: JSONValue) throws(JSONParseError) -> [UInt8] {
        // Depth first on a work list: a value nested past any limit costs heap, not stack.
        var pending: [(value: JSONValue, depth: Int)] = [(value, 0)]
        while let (value, depth) = pending.popLast() {
            switch value {
            case .array(let elements):
                guard depth < self.maxDepth else { throw Self.tooDeep(self.maxDepth) }
                guard elements.count <= self.maxElements else {
                    throw JSONParseError(.tooManyElements, at: nil, limit: self.maxElements, "an array has more than \(self.maxElements) elements")
                }
                for element in elements { pending.append((element, depth + 1)) }
            case .object(let members):
                guard depth < self.maxDepth else { throw Self.tooDeep(self.maxDepth) }
                guard members.count <= self.maxMembers else {
                    throw JSONParseError(.tooManyMembers, at: nil, limit: self.maxMembers, "an object has more than \(self.maxMembers) members")
                }
                for member in members.values { pending.append((member, depth + 1)) }
            case .null, .bool, .number, .string:
                break
            }
        }
        var writer = JSONWriter()
        writer.value(value)
        guard writer.bytes.count <= self.maxBytes else {
            throw JSONParseError(.tooLarge, at: nil, limit: self.maxBytes, "the JSON is longer than \(self.maxBytes) bytes")
        }
        return writer.bytes
    }

    static func tooDeep(_ limit: Int) -> JSONParseError {
        JSONParseError(.tooDeep, at: nil, limit: limit, "the JSON is nested deeper than \(limit) levels")
    }
}
