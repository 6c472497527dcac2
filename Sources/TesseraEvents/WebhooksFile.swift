public import Foundation
public import Tessera

/// The `--webhooks` file: the endpoints events are delivered to, in JSON.
///
/// ```json
/// {"webhooks": [
///   {"name": "app", "url": "https://app.example.com/hooks/tessera", "secret": {"env": "APP_WEBHOOK_SECRET"},
///    "events": ["session.revoked", "session.expired"], "timeout": "10s", "retryDelay": "5s", "retryFor": "24h"}
/// ]}
/// ```
///
/// Secrets come from the environment (`env`) or a file (`file`), never the file itself. Unknown
/// keys are refused, naming their place, so that a misspelt one is not silently ignored.
public struct WebhooksFile: Sendable {
    public var endpoints: [WebhookEndpoint]

    /// Reads and checks the file.
    /// - Parameters:
    ///   - environment: where `env` secrets are read
    ///   - retention: how long events are kept; each `retryFor` must be shorter
    /// - Throws: ``WebhooksFileError`` naming the file and the place, never a secret.
    public static func load(path: String, environment: [String: String], retention: Duration) throws -> WebhooksFile {
        guard let data = FileManager.default.contents(atPath: path) else { throw WebhooksFileError("cannot read the webhooks file \(path)") }
        return try Self.decode(data, source: path, environment: environment, retention: retention) { file in
            FileManager.default.contents(atPath: file).flatMap { String(data: $0, encoding: .utf8) }
        }
    }

    /// Decodes and checks a file's content; `readFile` reads `file` secrets.
    public static func decode(
        _ data: Data,
        source: String = "the webhooks file",
        environment: [String: String],
        retention: Duration,
        readFile: (String) -> String?
    ) throws -> WebhooksFile {
        let root: Any
        do {
            root = try JSONSerialization.jsonObject(with: data)
        } catch {
            throw WebhooksFileError("\(source) is not valid JSON")
        }
        guard let top = root as? [String: Any] else { throw WebhooksFileError("\(source): the top level must be an object") }
        try Self.onlyKeys(["webhooks"], in: top, at: "\(source): the top level")
        guard let list = top["webhooks"] as? [Any] else { throw WebhooksFileError("\(source): 'webhooks' must be a list") }
        var endpoints: [WebhookEndpoint] = []
        for (index, item) in list.enumerated() {
            let place = "\(source): webhooks[\(index)]"
            guard let entry = item as? [String: Any] else { throw WebhooksFileError("\(place) must be an object") }
            endpoints.append(try Self.endpoint(entry, at: place, environment: environment, retention: retention, readFile: readFile))
        }
        let names = endpoints.map(\.name)
        guard Set(names).count == names.count else { throw WebhooksFileError("\(source): webhook names must be unique") }
        return WebhooksFile(endpoints: endpoints)
    }

    static let keys: Set<String> = ["name", "url", "secret", "events", "timeout", "retryDelay", "retryFor"]

    static func endpoint(
        _ entry: [String: Any],
        at place: String,
        environment: [String: String],
        retention: Duration,
        readFile: (String) -> String?
    ) throws -> WebhookEndpoint {
        try Self.onlyKeys(Self.keys, in: entry, at: place)
        guard let name = entry["name"] as? String, Self.isValidName(name) else {
            throw WebhooksFileError("\(place): 'name' must be 1 to 64 letters, digits, '-' or '_'")
        }
        let at = "\(place) (\(name))"
        guard let text = entry["url"] as? String, let url = WebhookEndpoint.url(text) else {
            throw WebhooksFileError("\(at): 'url' must be an http or https URL without credentials")
        }
        guard let secret = entry["secret"] as? [String: Any], secret.count == 1, let (kind, value) = secret.first, let value = value as? String,
            ["env", "file"].contains(kind)
        else {
            throw WebhooksFileError("\(at): 'secret' must be {\"env\": NAME} or {\"file\": PATH}")
        }
        let secrets: [WebhookSecret]
        do {
            secrets = try WebhookSecret.list((kind == "env" ? environment[value] : readFile(value)) ?? "")
        } catch {
            throw WebhooksFileError("\(at): the secret in \(value): \(error)")
        }
        guard !secrets.isEmpty else {
            throw WebhooksFileError("\(at): the secret's \(kind == "env" ? "environment variable" : "file") \(value) holds no secret")
        }
        var kinds: Set<SessionEvent.Kind>?
        if let events = entry["events"] {
            guard let names = events as? [String], !names.isEmpty else { throw WebhooksFileError("\(at): 'events' must be a list of event types") }
            do {
                kinds = try SessionEvent.Kind.named(names)
            } catch {
                throw WebhooksFileError("\(at): '\(error.name.prefix(40))' is not an event type; they are \(SessionEvent.Kind.names)")
            }
        }
        func duration(_ key: String, default value: Duration, in range: ClosedRange<Duration>) throws -> Duration {
            guard let raw = entry[key] else { return value }
            guard let text = raw as? String, let parsed = Duration(parsing: text), range.contains(parsed) else {
                throw WebhooksFileError("\(at): '\(key)' must be a duration such as 10s, between \(range.lowerBound.humanReadable) and \(range.upperBound.humanReadable)")
            }
            return parsed
        }
        let timeout = try duration("timeout", default: .seconds(10), in: WebhookEndpoint.timeoutRange)
        let delay = try duration("retryDelay", default: .seconds(5), in: WebhookEndpoint.retryDelayRange)
        let retryFor = try duration("retryFor", default: .seconds(86_400), in: delay...(.seconds(365 * 86_400)))
        guard retryFor < retention else { throw WebhooksFileError("\(at): 'retryFor' must be shorter than the event retention (\(retention.humanReadable))") }
        return WebhookEndpoint(
            name: name,
            url: url,
            secrets: secrets,
            kinds: kinds,
            timeout: timeout,
            retry: WebhookRetryPolicy(initialDelay: delay, retryFor: retryFor)
        )
    }

    static func onlyKeys(_ allowed: Set<String>, in object: [String: Any], at place: String) throws {
        if let key = object.keys.sorted().first(where: { !allowed.contains($0) }) {
            throw WebhooksFileError("\(place): unknown key '\(key.prefix(40))' (known: \(allowed.sorted().joined(separator: ", ")))")
        }
    }

    static func isValidName(_ name: String) -> Bool {
        (1...64).contains(name.utf8.count)
            && name.utf8.allSatisfy { (0x30...0x39).contains($0) || (0x41...0x5A).contains($0) || (0x61...0x7A).contains($0) || $0 == 0x2D || $0 == 0x5F }
    }
}

/// A webhooks file that cannot be used: where and why, never a secret.
public struct WebhooksFileError: Error, Sendable, CustomStringConvertible {
    public var description: String
    init(_ description: String) { self.description = description }
}
