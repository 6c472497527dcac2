/// Any JSON value. Session data is a JSON object the application owns.
public enum JSONValue: Sendable, Hashable, Codable {
    case null
    case bool(Bool)
    case number(Double)
    case string(String)
    case array([JSONValue])
    case object([String: JSONValue])

    public init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        if container.decodeNil() {
            self = .null
        } else if let value = try? container.decode(Bool.self) {
            self = .bool(value)
        } else if let value = try? container.decode(Double.self) {
            self = .number(value)
        } else if let value = try? container.decode(String.self) {
            self = .string(value)
        } else if let value = try? container.decode([JSONValue].self) {
            self = .array(value)
        } else {
            self = .object(try container.decode([String: JSONValue].self))
        }
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        switch self {
        case .null: try container.encodeNil()
        case .bool(let value): try container.encode(value)
        case .number(let value):
            // Whole numbers are written without a fraction, as clients sent them.
            if value.rounded() == value, abs(value) < 1e15 {
                try container.encode(Int64(value))
            } else {
                try container.encode(value)
            }
        case .string(let value): try container.encode(value)
        case .array(let value): try container.encode(value)
        case .object(let value): try container.encode(value)
        }
    }
}

extension Dictionary where Key == String, Value == JSONValue {
    /// Applies a JSON merge patch (RFC 7396): `null` removes a key, objects merge recursively,
    /// anything else replaces.
    public func merging(patch: [String: JSONValue]) -> [String: JSONValue] {
        var result = self
        for (key, value) in patch {
            switch value {
            case .null:
                result.removeValue(forKey: key)
            case .object(let nested):
                if case .object(let existing) = result[key] {
                    result[key] = .object(existing.merging(patch: nested))
                } else {
                    result[key] = .object([String: JSONValue]().merging(patch: nested))
                }
            default:
                result[key] = value
            }
        }
        return result
    }
}
