import Foundation
import Logging

/// Log lines on standard error, in `StreamLogHandler`'s format.
///
/// Unlike `StreamLogHandler`, it formats metadata only when a line is written: the service sets
/// metadata on requests, and most requests write no line at the configured level. The
/// correlation id comes from the bootstrapped metadata provider.
struct StandardErrorLogHandler: LogHandler {
    let label: String
    var logLevel: Logger.Level
    var metadata: Logger.Metadata = [:]
    var metadataProvider: Logger.MetadataProvider?

    init(label: String, level: Logger.Level, metadataProvider: Logger.MetadataProvider? = nil) {
        self.label = label
        self.logLevel = level
        self.metadataProvider = metadataProvider
    }

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { self.metadata[key] }
        set { self.metadata[key] = newValue }
    }

    func log(event: LogEvent) {
        var merged = self.metadata
        if let provided = self.metadataProvider?.get() { merged.merge(provided) { _, provided in provided } }
        if let extra = event.metadata { merged.merge(extra) { _, extra in extra } }
        // Metadata and messages quote requests (paths, field values): escaped, so that no request
        // can forge or hide a log line.
        var line = Self.timestamp() + " \(event.level) \(self.label):"
        for (key, value) in merged.sorted(by: { $0.key < $1.key }) {
            line += " " + terminalSafe("\(key)=\(value)")
        }
        line += " [\(event.source)] " + terminalSafe("\(event.message)") + "\n"
        try? FileHandle.standardError.write(contentsOf: Data(line.utf8))
    }

    static func timestamp() -> String {
        Date().formatted(.iso8601.year().month().day().time(includingFractionalSeconds: false).timeZone(separator: .omitted))
    }
}
