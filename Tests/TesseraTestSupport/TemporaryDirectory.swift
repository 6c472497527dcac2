public import Foundation
public import TesseraSQLite

/// A directory under the system's temporary directory, removed when the value is released.
public final class TemporaryDirectory: Sendable {
    public let url: URL

    public init() {
        self.url = FileManager.default.temporaryDirectory.appendingPathComponent("tessera-tests-\(UUID().uuidString)", isDirectory: true)
        try! FileManager.default.createDirectory(at: self.url, withIntermediateDirectories: true)
    }

    public var path: String { self.url.path }

    deinit {
        try? FileManager.default.removeItem(at: self.url)
    }

    /// A real SQLite store in a file of this directory.
    public func sqliteStore(named name: String = "tessera.sqlite") throws -> SQLiteSessionStore {
        try SQLiteSessionStore(path: self.url.appendingPathComponent(name).path)
    }
}
