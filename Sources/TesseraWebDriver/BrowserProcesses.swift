import Foundation

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A child process started in a process group of its own, with a marker in its environment, so
/// that it can be ended with everything it started: chromedriver starts Chromium in its group,
/// and Chromium's crash handlers leave the group (they call `setsid`) but keep the environment.
///
/// ``kill()`` sends `SIGKILL` to the group and to every process that carries the marker, then
/// reaps the child. Reading `/proc` makes the marker search and the memory figures Linux-only;
/// elsewhere the group alone is killed and memory is not measured.
public final class MarkedProcess: @unchecked Sendable {
    /// The environment variable that marks the processes of one ``MarkedProcess``.
    public static let markerVariable = "TESSERA_BROWSER_MARK"

    /// The child's pid, which is also its process group.
    public let pid: Int32
    /// The marker value its processes carry.
    public let marker: String
    private let lock = NSLock()
    private var reaped = false

    /// Starts `executable` with `arguments` in a new process group, its output appended to
    /// `logFile` (or discarded), and `environment` plus the marker.
    public init(executable: String, arguments: [String], environment: [String: String], marker: String, logFile: String? = nil) throws {
        self.marker = marker
        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        posix_spawnattr_setpgroup(&attributes, 0)
        // The child starts with no blocked signal and default dispositions (the server ignores
        // SIGPIPE, and ignored signals survive exec).
        var none = sigset_t()
        sigemptyset(&none)
        posix_spawnattr_setsigmask(&attributes, &none)
        var defaults = sigset_t()
        sigemptyset(&defaults)
        for signal in [SIGPIPE, SIGCHLD, SIGINT, SIGTERM, SIGHUP] { sigaddset(&defaults, signal) }
        posix_spawnattr_setsigdefault(&attributes, &defaults)
        #if canImport(Darwin)
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_CLOEXEC_DEFAULT))
        #else
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF))
        #endif

        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        let output = logFile ?? "/dev/null"
        posix_spawn_file_actions_addopen(&actions, 1, output, O_WRONLY | O_CREAT | O_APPEND, 0o600)
        posix_spawn_file_actions_adddup2(&actions, 1, 2)
        Self.closeInheritedFiles(&actions)

        var variables = environment
        variables[Self.markerVariable] = marker
        let argv = ([executable] + arguments).map { strdup($0) } + [nil]
        let envp = variables.map { strdup("\($0.key)=\($0.value)") } + [nil]
        defer {
            for pointer in argv { free(pointer) }
            for pointer in envp { free(pointer) }
        }
        var pid = Int32()
        let result = posix_spawn(&pid, executable, &actions, &attributes, argv, envp)
        guard result == 0 else {
            throw WebDriverError(error: "transport", message: "cannot start \(executable): \(String(cString: strerror(result)))", command: "start")
        }
        self.pid = pid
    }

    /// Has the child start with only its standard input, output and error. Sockets are not
    /// close-on-exec: without this a browser would hold a copy of every connection open when it
    /// started, and a connection the server closed would stay open to its client (no FIN) until
    /// that browser ended.
    private static func closeInheritedFiles(_ actions: inout posix_spawn_file_actions_t) {
        #if canImport(Darwin)
        // POSIX_SPAWN_CLOEXEC_DEFAULT, among the spawn attributes' flags, does it.
        #else
        // glibc 2.34 and later; looked up, since Swift's Glibc module does not declare it.
        typealias CloseFrom = @convention(c) (UnsafeMutablePointer<posix_spawn_file_actions_t>, Int32) -> Int32
        if let symbol = dlsym(UnsafeMutableRawPointer(bitPattern: 0), "posix_spawn_file_actions_addclosefrom_np") {
            _ = unsafeBitCast(symbol, to: CloseFrom.self)(&actions, 3)
        } else if let names = try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/fd") {
            // Older C libraries: each descriptor open now (one closed meanwhile is skipped by the
            // child's close failing quietly on glibc).
            for descriptor in names.compactMap(Int32.init) where descriptor > 2 {
                posix_spawn_file_actions_addclose(&actions, descriptor)
            }
        }
        #endif
    }

    /// Whether the child itself still runs (it is reaped once it has ended).
    public var isRunning: Bool {
        self.lock.lock()
        defer { self.lock.unlock() }
        guard !self.reaped else { return false }
        var status: Int32 = 0
        let result = waitpid(self.pid, &status, WNOHANG)
        if result == self.pid || (result < 0 && errno == ECHILD) {
            self.reaped = true
            return false
        }
        return true
    }

    /// Asks the child to end (`SIGTERM` to it alone), waiting at most `grace` for it, without
    /// holding a thread meanwhile.
    public func terminate(grace: Duration = .seconds(1)) async {
        guard self.isRunning else { return }
        Foundation.kill(self.pid, SIGTERM)
        let deadline = ContinuousClock.now.advanced(by: grace)
        while self.isRunning && ContinuousClock.now < deadline {
            try? await Task.sleep(for: .milliseconds(20))
        }
    }

    /// Kills the group and every marked process. The child is reaped on a thread of its own
    /// (a process in the middle of a system call can take a moment to go), so that no caller's
    /// thread waits. Safe to call again.
    public func kill() {
        Foundation.kill(-self.pid, SIGKILL)
        for process in Self.processes(marked: self.marker) { Foundation.kill(process, SIGKILL) }
        let reap = self.lock.withLock { () -> Bool in
            defer { self.reaped = true }
            return !self.reaped
        }
        guard reap else { return }
        let pid = self.pid
        Thread.detachNewThread {
            var status: Int32 = 0
            _ = waitpid(pid, &status, 0)
        }
    }

    /// The processes of this child now: its group and the marked ones (zombies left out).
    public var processes: [Int32] {
        Self.processes(inGroupsOf: [self.pid], markedWithPrefix: nil, marked: self.marker)
    }

    /// The memory its processes hold, in bytes: the sum of their proportional set sizes (shared
    /// pages divided among the processes that share them); `nil` where `/proc` cannot tell.
    public var memoryBytes: Int? {
        #if os(Linux)
        let sizes = self.processes.compactMap(Self.proportionalSetSize)
        return sizes.isEmpty ? nil : sizes.reduce(0, +)
        #else
        return nil
        #endif
    }

    // MARK: /proc

    /// Every live process (not a zombie) whose environment has `markerVariable=marker`.
    public static func processes(marked marker: String) -> [Int32] {
        let entry = "\(Self.markerVariable)=\(marker)"
        return Self.livePIDs().filter { Self.environment(of: $0).contains(entry) }
    }

    /// Every live process whose marker starts with `prefix` (all the browsers of a pool, say).
    public static func processes(markedWithPrefix prefix: String) -> [Int32] {
        let start = "\(Self.markerVariable)=\(prefix)"
        return Self.livePIDs().filter { Self.environment(of: $0).contains { $0.hasPrefix(start) } }
    }

    /// The marker a process carries, if any.
    public static func marker(of pid: Int32) -> String? {
        let start = "\(Self.markerVariable)="
        return Self.environment(of: pid).first { $0.hasPrefix(start) }.map { String($0.dropFirst(start.count)) }
    }

    /// The `NAME=value` entries of a process's environment (empty when unreadable).
    static func environment(of pid: Int32) -> [String] {
        guard let data = FileManager.default.contents(atPath: "/proc/\(pid)/environ") else { return [] }
        return data.split(separator: 0).map { String(decoding: $0, as: UTF8.self) }
    }

    /// In one walk of `/proc`: every live process of one of `groups`, or whose marker starts
    /// with `prefix`, or is `marker`.
    public static func processes(inGroupsOf groups: Set<Int32>, markedWithPrefix prefix: String?, marked marker: String? = nil) -> [Int32] {
        Self.livePIDs().filter { pid in
            if let group = Self.stat(of: pid)?.group, groups.contains(group) { return true }
            guard prefix != nil || marker != nil, let value = Self.marker(of: pid) else { return false }
            return prefix.map { value.hasPrefix($0) } == true || value == marker
        }
    }

    /// Every live process of the process group `group`.
    public static func processes(inGroupOf group: Int32) -> [Int32] {
        Self.livePIDs().filter { Self.stat(of: $0)?.group == group }
    }

    /// Pids in `/proc` whose state is not zombie or dead.
    static func livePIDs() -> [Int32] {
        guard let names = try? FileManager.default.contentsOfDirectory(atPath: "/proc") else { return [] }
        return names.compactMap { Int32($0) }.filter { pid in
            guard let state = Self.stat(of: pid)?.state else { return false }
            return state != "Z" && state != "X"
        }
    }

    /// The state and process group in `/proc/<pid>/stat` (the fields after the parenthesised name).
    static func stat(of pid: Int32) -> (state: Character, group: Int32)? {
        guard let data = FileManager.default.contents(atPath: "/proc/\(pid)/stat"), let text = String(data: data, encoding: .utf8),
            let close = text.lastIndex(of: ")")
        else { return nil }
        let fields = text[text.index(after: close)...].split(separator: " ")
        guard fields.count > 2, let state = fields[0].first, let group = Int32(fields[2]) else { return nil }
        return (state, group)
    }

    static func proportionalSetSize(of pid: Int32) -> Int? {
        guard let data = FileManager.default.contents(atPath: "/proc/\(pid)/smaps_rollup"), let text = String(data: data, encoding: .utf8)
        else { return nil }
        for line in text.split(separator: "\n") where line.hasPrefix("Pss:") {
            let kilobytes = line.split(separator: " ").dropFirst().first.flatMap { Int($0) }
            return kilobytes.map { $0 * 1024 }
        }
        return nil
    }
}
