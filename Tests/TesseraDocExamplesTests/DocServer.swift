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

    /// A port on loopback where nothing listens.
    static func closedPort() throws -> Int {
        let socket = Foundation.socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(socket) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = 0
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafeMutablePointer(to: &address) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(socket, $0, length) == 0 && getsockname(socket, $0, &length) == 0 }
        }
        guard bound else { throw HarnessError("cannot find a free port") }
        // Closed again when this returns: bound once, never listening.
        return Int(UInt16(bigEndian: address.sin_port))
    }
}
