public import Foundation
import Yams

/// The `--upstreams` file: a list of upstreams under the key `upstreams`, in YAML or JSON
/// (JSON when the name ends in `.json`; YAML, through Yams, otherwise).
///
/// ```yaml
/// upstreams:
///   - name: portal
///     baseURL: https://portal.example.com
///     login:
///       path: /login
///       fields:
///         username: { env: PORTAL_USER }
///         password: { file: /run/secrets/portal-password }
///       success: { cookie: SESSID }
///     keepAlive: { path: /home, interval: 20 }
/// ```
public struct UpstreamsFile: Sendable, Codable, Equatable {
    public var upstreams: [UpstreamConfiguration]

    public init(upstreams: [UpstreamConfiguration]) {
        self.upstreams = upstreams
    }

    /// Reads, decodes and validates the file. Errors name the file and the problem, never a
    /// credential (credentials are not in the file).
    public static func load(path: String) throws -> UpstreamsFile {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw UpstreamConfigurationError(upstream: "", message: "cannot read the upstreams file \(path)")
        }
        return try Self.decode(data, json: path.lowercased().hasSuffix(".json"), source: path)
    }

    /// Decodes and validates a file's content.
    public static func decode(_ data: Data, json: Bool, source: String = "the upstreams file") throws -> UpstreamsFile {
        let file: UpstreamsFile
        do {
            if json {
                file = try JSONDecoder().decode(UpstreamsFile.self, from: data)
            } else {
                guard let text = String(data: data, encoding: .utf8) else {
                    throw UpstreamConfigurationError(upstream: "", message: "\(source) is not UTF-8")
                }
                file = try YAMLDecoder().decode(UpstreamsFile.self, from: text)
            }
        } catch let error as UpstreamConfigurationError {
            throw error
        } catch let error as DecodingError {
            throw UpstreamConfigurationError(upstream: "", message: "\(source): \(Self.describe(error))")
        } catch {
            throw UpstreamConfigurationError(upstream: "", message: "\(source) is not valid \(json ? "JSON" : "YAML"): \(error)")
        }
        if let problem = Self.unknownKey(in: data, json: json) {
            throw UpstreamConfigurationError(upstream: "", message: "\(source): \(problem)")
        }
        let names = file.upstreams.map(\.name)
        guard Set(names).count == names.count else {
            throw UpstreamConfigurationError(upstream: "", message: "\(source): upstream names must be unique")
        }
        for upstream in file.upstreams { try upstream.validate() }
        return file
    }

    /// The keys each part of the file may have. A misspelt key would otherwise be ignored and
    /// its default used without a word.
    static let schema: [String: Set<String>] = [
        "": ["upstreams"],
        "upstream": [
            "name", "baseURL", "kind", "browser", "login", "accounts", "expiry", "blocked", "pool", "keepAlive", "maxAge", "lifetimeJitter", "maxUses",
            "maxSessionsPerAccount",
            "healthFreshness", "borrowTimeout", "leaseTimeout", "requestTimeout", "maxBodyBytes", "scanBytes", "backoff",
        ],
        "login": ["method", "path", "encoding", "fields", "success", "formToken", "steps"],
        "formToken": ["path", "field"],
        "success": ["status", "cookie", "bodyContains", "selector", "url", "text"],
        "browser": ["chromium", "chromedriver", "commandTimeout", "loginTimeout", "maxMemoryMB", "maxReadBytes", "arguments"],
        "field": ["env", "file", "value"],
        "account": ["name", "fields"],
        "expiry": ["statuses", "phrases", "loginRedirect", "redirectPaths"],
        "blocked": ["statuses", "phrases"],
        "pool": ["min", "max"],
        "keepAlive": ["path", "interval", "reload", "waitFor"],
        "waitFor": ["selector", "url", "text", "timeout"],
        "backoff": ["initial", "maximum", "breakerThreshold", "breakerOpen", "maxConcurrentLogins"],
    ]

    /// The first key of the file that the schema does not know, as `path: message`.
    ///
    /// It walks only the parts the schema names, on YAML's node tree (`Yams.compose`), never on a
    /// tree with aliases expanded: a few hundred bytes of nested aliases expand to gigabytes.
    static func unknownKey(in data: Data, json: Bool) -> String? {
        let root: ConfigurationTree?
        if json {
            root = (try? JSONSerialization.jsonObject(with: data)).map(ConfigurationTree.json)
        } else {
            root = String(data: data, encoding: .utf8).flatMap { try? Yams.compose(yaml: $0) }.map(ConfigurationTree.yaml)
        }
        func check(_ value: ConfigurationTree?, as part: String, at path: String) -> String? {
            guard let value, let keys = value.keys, let allowed = Self.schema[part] else { return nil }
            let place = path.isEmpty ? "the top level" : path
            guard let keys = keys else { return "\(place): a key that is not a string" }
            if let key = keys.sorted().first(where: { !allowed.contains($0) }) {
                return "\(place): unknown key '\(key)' (known: \(allowed.sorted().joined(separator: ", ")))"
            }
            let children: [(String, String)] = [
                ("login", "login"), ("expiry", "expiry"), ("blocked", "blocked"), ("pool", "pool"), ("keepAlive", "keepAlive"),
                ("backoff", "backoff"), ("success", "success"), ("formToken", "formToken"), ("browser", "browser"),
                ("waitFor", "waitFor"),
            ]
            for (key, childPart) in children {
                if let problem = check(value[key], as: childPart, at: path.isEmpty ? key : "\(path).\(key)") { return problem }
            }
            if let fields = value["fields"], let names = fields.keys, let names {
                for name in names.sorted() {
                    if let problem = check(fields[name], as: "field", at: "\(path).fields.\(name)") { return problem }
                }
            }
            for (key, itemPart) in [("upstreams", "upstream"), ("accounts", "account")] {
                for (index, item) in (value[key]?.items ?? []).enumerated() {
                    let itemPath = path.isEmpty ? "\(key)[\(index)]" : "\(path).\(key)[\(index)]"
                    if let problem = check(item, as: itemPart, at: itemPath) { return problem }
                }
            }
            return nil
        }
        return check(root, as: "", at: "")
    }

    static func describe(_ error: DecodingError) -> String {
        func path(_ context: DecodingError.Context) -> String {
            let keys = context.codingPath.map { $0.intValue.map { "[\($0)]" } ?? $0.stringValue }
            return keys.isEmpty ? "the top level" : keys.joined(separator: ".")
        }
        switch error {
        case .keyNotFound(let key, let context): return "\(path(context)): the field '\(key.stringValue)' is missing"
        case .typeMismatch(_, let context): return "\(path(context)): \(context.debugDescription)"
        case .valueNotFound(_, let context): return "\(path(context)): a value is missing"
        case .dataCorrupted(let context): return "\(path(context)): \(context.debugDescription)"
        @unknown default: return "\(error)"
        }
    }
}

/// A parsed upstreams file, YAML or JSON, as the unknown-key check reads it: mappings and
/// sequences, visited only where it looks.
enum ConfigurationTree {
    case yaml(Node)
    case json(Any)

    /// The keys of a mapping: `nil` when this is no mapping, `.some(nil)` when a key is not a
    /// string.
    var keys: [String]?? {
        switch self {
        case .yaml(let node):
            guard let mapping = node.mapping else { return nil }
            var keys: [String] = []
            for key in mapping.keys {
                guard let scalar = key.scalar else { return .some(nil) }
                keys.append(scalar.string)
            }
            return .some(keys)
        case .json(let value):
            guard let object = value as? [String: Any] else { return nil }
            return .some(Array(object.keys))
        }
    }

    subscript(key: String) -> ConfigurationTree? {
        switch self {
        case .yaml(let node): return node.mapping?[key].map(ConfigurationTree.yaml)
        case .json(let value): return (value as? [String: Any])?[key].map(ConfigurationTree.json)
        }
    }

    /// The items of a sequence, or `nil` when this is no sequence.
    var items: [ConfigurationTree]? {
        switch self {
        case .yaml(let node): return node.sequence.map { $0.map(ConfigurationTree.yaml) }
        case .json(let value): return (value as? [Any])?.map(ConfigurationTree.json)
        }
    }
}
