public import Foundation
import Synchronization

/// A real `tessera` process, started from the binary this package builds.
public final class ServerProcess {
    public let process: Process
    public let stdoutPath: String
    public let stderrPath: String
    public private(set) var port: Int = 0

    /// The `tessera` executable beside the test bundle (both are build products of one build).
    public static var binary: URL {
        get throws {
            var candidates: [URL] = []
            if let override = ProcessInfo.processInfo.environment["TESSERA_BINARY"] {
                candidates.append(URL(fileURLWithPath: override))
            }
            let testBinary = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath()
            var directory = testBinary.deletingLastPathComponent()
            for _ in 0..<4 {
                candidates.append(directory.appendingPathComponent("tessera"))
                directory = directory.deletingLastPathComponent()
            }
            let packageRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
            candidates.append(packageRoot.appendingPathComponent(".build/debug/tessera"))
            guard let found = candidates.first(where: { FileManager.default.isExecutableFile(atPath: $0.path) }) else {
                throw HarnessError("No tessera executable found; looked at \(candidates.map(\.path)). Build it with `swift build`.")
            }
            return found
        }
    }

    /// What every `tessera` a test starts gets: a metrics listener on a free port, so that
    /// services started side by side do not compete for the default one.
    public static let environment = ["TESSERA_METRICS_ADDRESS": "127.0.0.1:0"]

    /// Runs `tessera arguments…` to completion with `input` on standard input.
    @discardableResult
    public static func run(_ arguments: [String], input: String = "", environment: [String: String] = [:]) throws -> (status: Int32, output: String) {
        let process = Process()
        process.executableURL = try binary
        process.arguments = arguments
        process.environment = ProcessInfo.processInfo.environment.merging(Self.environment) { $1 }.merging(environment) { $1 }
        let stdin = Pipe()
        let stdout = Pipe()
        process.standardInput = stdin
        process.standardOutput = stdout
        process.standardError = stdout
        try process.run()
        stdin.fileHandleForWriting.write(Data(input.utf8))
        try stdin.fileHandleForWriting.close()
        let output = stdout.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return (process.terminationStatus, String(decoding: output, as: UTF8.self))
    }

    /// Starts `tessera serve` on a free port of 127.0.0.1 and waits until it listens.
    public init(
        dataDirectory: String,
        logDirectory: URL,
        environment: [String: String] = [:],
        arguments: [String] = [],
        name: String
    ) async throws {
        self.stdoutPath = logDirectory.appendingPathComponent("\(name).out").path
        self.stderrPath = logDirectory.appendingPathComponent("\(name).err").path
        _ = FileManager.default.createFile(atPath: self.stdoutPath, contents: nil)
        _ = FileManager.default.createFile(atPath: self.stderrPath, contents: nil)
        self.process = Process()
        self.process.executableURL = try Self.binary
        self.process.arguments = ["serve", "--data-dir", dataDirectory, "--host", "127.0.0.1", "--port", "0"] + arguments
        self.process.environment = ProcessInfo.processInfo.environment.merging(Self.environment) { $1 }.merging(environment) { $1 }
        self.process.standardOutput = FileHandle(forWritingAtPath: self.stdoutPath)
        self.process.standardError = FileHandle(forWritingAtPath: self.stderrPath)
        try self.process.run()

        // Wait (bounded) for the line that names the port.
        for _ in 0..<600 {
            let output = (try? String(contentsOfFile: self.stdoutPath, encoding: .utf8)) ?? ""
            if let line = output.split(separator: "\n").first(where: { $0.hasPrefix("Tessera listening on http://127.0.0.1:") }),
                let port = Int(line.split(separator: ":").last ?? "")
            {
                self.port = port
                return
            }
            guard self.process.isRunning else { break }
            try await Task.sleep(for: .milliseconds(50))
        }
        self.process.terminate()
        let errors = (try? String(contentsOfFile: self.stderrPath, encoding: .utf8)) ?? ""
        throw HarnessError("tessera serve did not start: \(errors.suffix(2000))")
    }

    public var baseURL: String { "http://127.0.0.1:\(self.port)" }

    /// Kills the process with SIGKILL: no shutdown code runs.
    public func kill() {
        Foundation.kill(self.process.processIdentifier, SIGKILL)
        self.process.waitUntilExit()
    }

    /// Asks the process to shut down (SIGTERM) and waits.
    public func terminate() {
        self.process.terminate()
        self.process.waitUntilExit()
    }

    public var standardOutput: String { (try? String(contentsOfFile: self.stdoutPath, encoding: .utf8)) ?? "" }
    public var standardError: String { (try? String(contentsOfFile: self.stderrPath, encoding: .utf8)) ?? "" }

    deinit {
        if self.process.isRunning { Foundation.kill(self.process.processIdentifier, SIGKILL) }
    }
}

/// Runs a program to completion with its output discarded, through `posix_spawn` and `waitpid`.
/// (Foundation's `Process.waitUntilExit` can miss the exit of a short-lived child on Linux.)
public func spawnAndWait(_ path: String, _ arguments: [String], environment: [String: String] = [:]) throws -> Int32 {
    var actions = posix_spawn_file_actions_t()
    posix_spawn_file_actions_init(&actions)
    defer { posix_spawn_file_actions_destroy(&actions) }
    posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0)
    let argv = ([path] + arguments).map { strdup($0) } + [nil]
    let merged = ProcessInfo.processInfo.environment.merging(environment) { $1 }
    let envp = merged.map { strdup("\($0.key)=\($0.value)") } + [nil]
    defer {
        argv.forEach { free($0) }
        envp.forEach { free($0) }
    }
    var pid = pid_t()
    let spawned = posix_spawn(&pid, path, &actions, nil, argv, envp)
    guard spawned == 0 else { throw HarnessError("cannot start \(path): error \(spawned)") }
    var status: Int32 = 0
    while waitpid(pid, &status, 0) == -1 {
        guard errno == EINTR else { throw HarnessError("waitpid failed for \(path): errno \(errno)") }
    }
    // WIFEXITED / WEXITSTATUS
    return (status & 0x7f) == 0 ? (status >> 8) & 0xff : -1
}

/// A test harness failure, with what went wrong.
public struct HarnessError: Error, CustomStringConvertible {
    public var description: String
    public init(_ description: String) { self.description = description }
}

extension TemporaryDirectory {
    /// The service API key `tessera serve` generated in this data directory on its first start.
    public func serviceKey() throws -> String {
        try String(contentsOf: self.url.appendingPathComponent("service-api-key"), encoding: .utf8)
            .trimmingCharacters(in: .whitespacesAndNewlines)
    }
}
