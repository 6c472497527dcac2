import ArgumentParser
import Foundation
import TesseraHummingbird

/// `tessera serve`'s cockpit: where Prometheus scrapes, and the admin API key.
struct CockpitOptions: ParsableArguments {
    @Option(
        help: """
            Where GET /metrics is served, HOST:PORT on a listener of its own, or 'off' \
            (env TESSERA_METRICS_ADDRESS; default 127.0.0.1:9464, loopback only).
            """
    )
    var metricsAddress: String?

    @Option(
        help: """
            A file holding the admin API key, tak_… (env TESSERA_ADMIN_API_KEY holds it directly; \
            `tessera keys new-admin-key` makes one). Without one, only administrators' sessions use the admin API.
            """
    )
    var adminKeyFile: String?

    /// The metrics listener's host and port, or `nil` for none.
    func metricsListener() throws -> (host: String, port: Int)? {
        let text = Setting.string(self.metricsAddress, env: "TESSERA_METRICS_ADDRESS", default: "127.0.0.1:9464")
        if text.lowercased() == "off" { return nil }
        guard let colon = text.lastIndex(of: ":"), let port = Int(text[text.index(after: colon)...]), (0...65535).contains(port) else {
            throw ValidationError("--metrics-address must be HOST:PORT (such as 127.0.0.1:9464) or 'off'.")
        }
        var host = String(text[..<colon])
        if host.hasPrefix("["), host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
        guard !host.isEmpty else { throw ValidationError("--metrics-address must name a host, such as 127.0.0.1:9464.") }
        return (host, port)
    }

    /// The admin API key, if one is configured.
    func adminKey() throws -> ServiceAPIKey? {
        var key = Setting.environment["TESSERA_ADMIN_API_KEY"] ?? ""
        if let path = self.adminKeyFile {
            guard let text = try? String(contentsOfFile: path, encoding: .utf8) else {
                throw ValidationError("Cannot read the admin key file \(path).")
            }
            key = text.trimmingCharacters(in: .whitespacesAndNewlines)
        }
        guard !key.isEmpty else { return nil }
        guard key.hasPrefix(ServiceAPIKey.adminPrefix), key.count >= 24 else {
            throw ValidationError("The admin API key must start with \(ServiceAPIKey.adminPrefix) and be at least 24 characters.")
        }
        return ServiceAPIKey(key: key)
    }
}
