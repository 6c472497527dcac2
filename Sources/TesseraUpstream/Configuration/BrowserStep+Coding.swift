import Foundation

/// The written form of steps: an object with one key naming the step (see ``BrowserStep``).
/// Decoding is strict: an unknown key, or a step with two names, is an error that says which.
extension BrowserStep: Codable {
    static let names: Set<String> = ["goto", "fill", "click", "press", "waitFor", "submit", "read"]

    struct Key: CodingKey {
        var stringValue: String
        var intValue: Int? { nil }
        init(_ string: String) { self.stringValue = string }
        init?(stringValue: String) { self.stringValue = stringValue }
        init?(intValue: Int) { nil }
    }

    static func refuse(_ message: String, _ container: KeyedDecodingContainer<Key>) -> DecodingError {
        .dataCorrupted(.init(codingPath: container.codingPath, debugDescription: message))
    }

    /// The nested object of a step, with its keys checked against `allowed`.
    static func object(
        _ container: KeyedDecodingContainer<Key>,
        step: String,
        allowed: Set<String>
    ) throws -> KeyedDecodingContainer<Key> {
        let nested = try container.nestedContainer(keyedBy: Key.self, forKey: Key(step))
        if let unknown = nested.allKeys.map(\.stringValue).sorted().first(where: { !allowed.contains($0) }) {
            throw Self.refuse("a \(step) step has no key '\(unknown)' (known: \(allowed.sorted().joined(separator: ", ")))", nested)
        }
        return nested
    }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: Key.self)
        let keys = Set(container.allKeys.map(\.stringValue))
        let named = keys.intersection(Self.names)
        guard named.count == 1, let name = named.first else {
            throw Self.refuse("a step is an object with one of \(Self.names.sorted().joined(separator: ", "))", container)
        }
        if let extra = keys.subtracting([name, name == "read" ? "as" : name]).sorted().first {
            throw Self.refuse("a \(name) step has no key '\(extra)'", container)
        }
        let key = Key(name)
        switch name {
        case "goto":
            self = .goto(try container.decode(String.self, forKey: key))
        case "click":
            self = .click(try container.decode(String.self, forKey: key))
        case "submit":
            self = .submit(try container.decode(String.self, forKey: key))
        case "fill":
            let fill = try Self.object(container, step: name, allowed: ["selector", "field", "env", "file", "value"])
            let selector = try fill.decode(String.self, forKey: Key("selector"))
            if let field = try fill.decodeIfPresent(String.self, forKey: Key("field")) {
                guard !fill.contains(Key("env")), !fill.contains(Key("file")), !fill.contains(Key("value")) else {
                    throw Self.refuse("a fill step takes one of field, env, file or value", fill)
                }
                self = .fill(selector: selector, value: .field(field))
            } else {
                let source = UpstreamConfiguration.FieldSource(
                    env: try fill.decodeIfPresent(String.self, forKey: Key("env")),
                    file: try fill.decodeIfPresent(String.self, forKey: Key("file")),
                    value: try fill.decodeIfPresent(String.self, forKey: Key("value"))
                )
                self = .fill(selector: selector, value: .source(source))
            }
        case "press":
            let press = try Self.object(container, step: name, allowed: ["selector", "key"])
            self = .press(selector: try press.decode(String.self, forKey: Key("selector")), key: try press.decode(String.self, forKey: Key("key")))
        case "waitFor":
            let wait = try Self.object(container, step: name, allowed: ["selector", "url", "text", "timeout"])
            let condition = BrowserCondition(
                selector: try wait.decodeIfPresent(String.self, forKey: Key("selector")),
                url: try wait.decodeIfPresent(String.self, forKey: Key("url")),
                text: try wait.decodeIfPresent(String.self, forKey: Key("text"))
            )
            self = .waitFor(condition, timeout: try wait.decodeIfPresent(Double.self, forKey: Key("timeout")) ?? 10)
        default:
            let label = try container.decodeIfPresent(String.self, forKey: Key("as"))
            if let whole = try? container.decode(String.self, forKey: key) {
                switch whole {
                case "page": self = .read(.page, label: label)
                case "source": self = .read(.source, label: label)
                case "url": self = .read(.url, label: label)
                default: throw Self.refuse("read is page, source, url, { text: selector } or { attribute: name, selector: selector }", container)
                }
                return
            }
            let read = try Self.object(container, step: name, allowed: ["text", "attribute", "selector"])
            if let selector = try read.decodeIfPresent(String.self, forKey: Key("text")) {
                self = .read(.text(selector: selector), label: label)
            } else if let attribute = try read.decodeIfPresent(String.self, forKey: Key("attribute")) {
                self = .read(.attribute(selector: try read.decode(String.self, forKey: Key("selector")), name: attribute), label: label)
            } else {
                throw Self.refuse("a read step reads { text: selector } or { attribute: name, selector: selector }", read)
            }
        }
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: Key.self)
        let key = Key(self.name)
        switch self {
        case .goto(let path), .click(let path), .submit(let path):
            try container.encode(path, forKey: key)
        case .fill(let selector, let value):
            var fill = container.nestedContainer(keyedBy: Key.self, forKey: key)
            try fill.encode(selector, forKey: Key("selector"))
            switch value {
            case .field(let field):
                try fill.encode(field, forKey: Key("field"))
            case .source(let source):
                try fill.encodeIfPresent(source.env, forKey: Key("env"))
                try fill.encodeIfPresent(source.file, forKey: Key("file"))
                try fill.encodeIfPresent(source.value, forKey: Key("value"))
            }
        case .press(let selector, let keyName):
            var press = container.nestedContainer(keyedBy: Key.self, forKey: key)
            try press.encode(selector, forKey: Key("selector"))
            try press.encode(keyName, forKey: Key("key"))
        case .waitFor(let condition, let timeout):
            var wait = container.nestedContainer(keyedBy: Key.self, forKey: key)
            try wait.encodeIfPresent(condition.selector, forKey: Key("selector"))
            try wait.encodeIfPresent(condition.url, forKey: Key("url"))
            try wait.encodeIfPresent(condition.text, forKey: Key("text"))
            try wait.encode(timeout, forKey: Key("timeout"))
        case .read(let read, let label):
            try container.encodeIfPresent(label, forKey: Key("as"))
            switch read {
            case .page: try container.encode("page", forKey: key)
            case .source: try container.encode("source", forKey: key)
            case .url: try container.encode("url", forKey: key)
            case .text(let selector):
                var nested = container.nestedContainer(keyedBy: Key.self, forKey: key)
                try nested.encode(selector, forKey: Key("text"))
            case .attribute(let selector, let name):
                var nested = container.nestedContainer(keyedBy: Key.self, forKey: key)
                try nested.encode(name, forKey: Key("attribute"))
                try nested.encode(selector, forKey: Key("selector"))
            }
        }
    }
}
