import Foundation
import TesseraTestSupport

/// A real `tessera serve` on loopback with the user the docs sign in as.
final class DocServer: @unchecked Sendable {
    static let environment = ["TESSERA_BCRYPT_COST": "4"]
    static let password = "correct horse battery staple"

    let directory = TemporaryDirectory()
    let dataDirectory: String
    private(set) var process: ServerProcess

    init(arguments: [String] = []) async throws {
        self.dataDirectory = self.directory.url.appendingPathComponent("data").path
        let added = try ServerProcess.run(
            ["users", "add", "alice", "--data-dir", self.dataDirectory],
            input: Self.password + "\n",
            environment: Self.environment
        )
        guard added.status == 0 else { throw HarnessError("users add alice: \(added.output)") }
        self.process = try await ServerProcess(
            dataDirectory: self.dataDirectory,
            logDirectory: self.directory.url,
            environment: Self.environment,
            arguments: arguments,
            name: "docs"
        )
    }

    var port: Int { self.process.port }
    var baseURL: String { self.process.baseURL }
    var databasePath: String { self.dataDirectory + "/tessera.sqlite" }

    /// Kills the process (SIGKILL).
    func stop() { self.process.kill() }

    /// Starts the service again, on the same data directory and port.
    func restart() async throws {
        let port = self.process.port
        self.process = try await ServerProcess(
            dataDirectory: self.dataDirectory,
            logDirectory: self.directory.url,
            environment: Self.environment,
            arguments: ["--port", String(port)],
            name: "docs-again"
        )
    }
}
