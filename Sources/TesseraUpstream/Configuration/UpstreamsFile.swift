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
        let names = file.upstreams.map(\.name)
        guard Set(names).count == names.count else {
            throw UpstreamConfigurationError(upstream: "", message: "\(source): upstream names must be unique")
        }
        for upstream in file.upstreams { try upstream.validate() }
        return file
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
