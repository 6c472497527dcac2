import ArgumentParser
import Foundation
import Tessera

/// A setting given by a flag, else by its `TESSERA_…` environment variable, else by default.
struct Setting {
    static var environment: [String: String] { ProcessInfo.processInfo.environment }

    static func string(_ flag: String?, env: String, default defaultValue: String) -> String {
        flag ?? self.environment[env] ?? defaultValue
    }

    static func duration(_ flag: String?, env: String, option: String, default defaultValue: Duration) throws -> Duration {
        guard let text = flag ?? self.environment[env] else { return defaultValue }
        guard let duration = Duration(parsing: text), duration > .zero else {
            throw ValidationError("\(option) (or \(env)) must be a duration such as 90s, 15m or 2h, not '\(text)'.")
        }
        return duration
    }

    static func integer(_ flag: Int?, env: String, option: String, range: ClosedRange<Int>, default defaultValue: Int) throws -> Int {
        let value: Int
        if let flag {
            value = flag
        } else if let text = self.environment[env] {
            guard let parsed = Int(text) else { throw ValidationError("\(env) must be a whole number, not '\(text)'.") }
            value = parsed
        } else {
            value = defaultValue
        }
        guard range.contains(value) else {
            throw ValidationError("\(option) (or \(env)) must be between \(range.lowerBound) and \(range.upperBound).")
        }
        return value
    }

    static func flag(_ flag: Bool, env: String) -> Bool {
        if flag { return true }
        guard let text = self.environment[env]?.lowercased() else { return false }
        return ["1", "true", "yes", "on"].contains(text)
    }
}

/// The data directory option every subcommand shares.
struct DataDirectoryOptions: ParsableArguments {
    @Option(name: .customLong("data-dir"), help: "Where Tessera keeps its data (env TESSERA_DATA_DIR; default ./.tessera).")
    var path: String?

    var directory: DataDirectory {
        DataDirectory(path: Setting.string(self.path, env: "TESSERA_DATA_DIR", default: ".tessera"))
    }
}
