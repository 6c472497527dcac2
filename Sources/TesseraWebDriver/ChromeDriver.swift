public import Foundation
import NIOCore

/// A chromedriver process on loopback, serving the W3C WebDriver protocol: started, waited for
/// until it is ready, and stopped (with every browser it started) by ``stop()``.
public final class ChromeDriver: @unchecked Sendable {
    /// Where chromedriver is looked for when no path is given: Debian's `chromium-driver`
    /// package installs `/usr/bin/chromedriver`.
    public static let defaultPaths = ["/usr/bin/chromedriver", "/usr/lib/chromium/chromedriver", "/usr/local/bin/chromedriver"]

    /// The remote end, such as `http://127.0.0.1:9515`.
    public let url: String
    public let port: Int
    /// chromedriver's process, in a group of its own with the browsers it starts.
    public let process: MarkedProcess

    /// Starts chromedriver on a free port of 127.0.0.1 and waits (at most `timeout`) until it
    /// answers that it is ready.
    ///
    /// - Parameters:
    ///   - path: the chromedriver executable (by default the first of ``defaultPaths`` there is)
    ///   - logFile: where its output goes (by default nowhere)
    ///   - marker: the value of ``MarkedProcess/markerVariable`` in the environment of
    ///     chromedriver and every browser it starts (by default a random one)
    ///   - timeout: how long it may take to be ready
    public init(path: String? = nil, logFile: URL? = nil, marker: String? = nil, timeout: Duration = .seconds(20)) async throws {
        guard let executable = path ?? Self.defaultPaths.first(where: { FileManager.default.isExecutableFile(atPath: $0) }) else {
            throw WebDriverError(
                error: "transport",
                message: "chromedriver not found at \(Self.defaultPaths.joined(separator: ", ")); install Debian's chromium-driver",
                command: "start chromedriver"
            )
        }
        self.port = try Self.freePort()
        self.url = "http://127.0.0.1:\(self.port)"
        // The browser gets a small environment: no secret of the server's reaches it.
        let inherited = ProcessInfo.processInfo.environment.filter { ["PATH", "HOME", "TMPDIR", "LANG", "TZ"].contains($0.key) }
        self.process = try MarkedProcess(
            executable: executable,
            arguments: ["--port=\(self.port)", "--allowed-ips=127.0.0.1"],
            environment: inherited,
            marker: marker ?? UUID().uuidString.lowercased(),
            logFile: logFile?.path
        )
        let driver = WebDriver(url: self.url, commandTimeout: .seconds(2))
        let deadline = ContinuousClock.now.advanced(by: timeout)
        while ContinuousClock.now < deadline {
            if await driver.isReady() { return }
            guard self.process.isRunning else { break }
            try await Task.sleep(for: .milliseconds(50))
        }
        self.process.kill()
        throw WebDriverError(error: "transport", message: "chromedriver did not become ready within \(timeout)", command: "start chromedriver")
    }

    /// A client of this chromedriver.
    public var driver: WebDriver { WebDriver(url: self.url) }

    /// Stops chromedriver (SIGTERM, then SIGKILL after a second) and kills what is left of the
    /// browsers it started.
    public func stop() async {
        await self.process.terminate(grace: .seconds(1))
        self.process.kill()
    }

    deinit {
        self.process.kill()
    }

    /// A port of 127.0.0.1 that nothing listens on now.
    static func freePort() throws -> Int {
        let socket = Foundation.socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard socket >= 0 else { throw WebDriverError(error: "transport", message: "no socket", command: "start chromedriver") }
        defer { close(socket) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = 0
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafeMutablePointer(to: &address) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(socket, $0, length) == 0 && getsockname(socket, $0, &length) == 0 }
        }
        guard bound else { throw WebDriverError(error: "transport", message: "no free port", command: "start chromedriver") }
        return Int(UInt16(bigEndian: address.sin_port))
    }
}
