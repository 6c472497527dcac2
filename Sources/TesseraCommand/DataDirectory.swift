import Foundation
import Tessera
import TesseraHummingbird
import TesseraSQLite

/// The data directory: the SQLite database, the service API key and the signing keys.
struct DataDirectory {
    let url: URL

    init(path: String) {
        self.url = URL(fileURLWithPath: path, isDirectory: true).standardizedFileURL
    }

    var databasePath: String { self.url.appendingPathComponent("tessera.sqlite").path }
    var serviceKeyPath: String { self.url.appendingPathComponent("service-api-key").path }
    var signingKeysURL: URL { self.url.appendingPathComponent("signing-keys.json") }

    /// Creates the directory (owner-only) if needed.
    func prepare() throws {
        var isDirectory: ObjCBool = false
        if FileManager.default.fileExists(atPath: self.url.path, isDirectory: &isDirectory) {
            guard isDirectory.boolValue else { throw CommandError("The data directory \(self.url.path) is a file, not a directory.") }
        } else {
            do {
                try FileManager.default.createDirectory(at: self.url, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
            } catch {
                throw CommandError("Cannot create the data directory \(self.url.path): \(Self.reason(error)).")
            }
        }
        guard FileManager.default.isWritableFile(atPath: self.url.path) else {
            throw CommandError("The data directory \(self.url.path) is not writable.")
        }
    }

    /// Opens the store, creating and migrating it as needed.
    func openStore(node: String = SessionEvent.defaultNode + "/cli", recordsEvents: Bool = true) throws -> SQLiteSessionStore {
        try self.prepare()
        do {
            return try SQLiteSessionStore(path: self.databasePath, configuration: .init(node: node, recordsEvents: recordsEvents))
        } catch {
            throw CommandError("Cannot open the database \(self.databasePath): \(error).")
        }
    }

    /// The service API key, generated (mode 0600) on first use.
    /// - Returns: the key, and whether it was generated now.
    func serviceKey() throws -> (key: String, generated: Bool) {
        if let existing = try? String(contentsOfFile: self.serviceKeyPath, encoding: .utf8) {
            let key = existing.trimmingCharacters(in: .whitespacesAndNewlines)
            guard key.hasPrefix(ServiceAPIKey.prefix), key.count > 20 else {
                throw CommandError("The service API key file \(self.serviceKeyPath) does not hold a key; delete it to generate a new one.")
            }
            return (key, false)
        }
        let key = ServiceAPIKey.generate()
        let created = FileManager.default.createFile(
            atPath: self.serviceKeyPath,
            contents: Data((key + "\n").utf8),
            attributes: [.posixPermissions: 0o600]
        )
        guard created else { throw CommandError("Cannot write the service API key to \(self.serviceKeyPath).") }
        return (key, true)
    }

    static func reason(_ error: any Error) -> String {
        (error as NSError).localizedDescription
    }
}

/// A failure the command reports as a plain sentence, with exit status 1.
struct CommandError: Error, CustomStringConvertible {
    var description: String

    init(_ description: String) {
        self.description = description
    }
}
