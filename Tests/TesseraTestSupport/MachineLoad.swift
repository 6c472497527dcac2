public import Testing

/// How much of the machine a suite or test needs, so that a test that asserts a wall-clock bound
/// (an outage answered within 2 s) does not run while other suites load both cores.
///
/// Swift Testing runs suites in parallel, and every test target shares one test process. Suites
/// that start servers and processes or run thousands of requests are marked ``heavy``: they run
/// beside each other. A test marked ``timed`` waits until no heavy suite runs, and heavy suites
/// that start meanwhile wait for it.
///
/// ```swift
/// @Suite(.heavy) struct RestartTests { … }
///
/// @Test(.timed) func anOutageIsAnswered503WithinTwoSeconds() async throws { … }
/// ```
///
/// Unmarked suites (pure unit tests) run at any time. A timed test may sit in a heavy suite
/// that is `.serialized`: it gives back its suite's place while it runs.
public struct MachineLoad: SuiteTrait, TestTrait, TestScoping {
    fileprivate let exclusive: Bool

    /// For a suite, the scope is the whole suite, once.
    public var isRecursive: Bool { false }

    public func provideScope(
        for test: Test,
        testCase: Test.Case?,
        performing function: @Sendable () async throws -> Void
    ) async throws {
        let gate = LoadGate.shared
        if self.exclusive {
            // A timed test inside a heavy suite gives back its suite's place while it runs, so
            // that it does not wait for itself (its suite must be `.serialized`).
            let suiteHolds = LoadGate.holdsShared
            if suiteHolds { await gate.release(exclusive: false) }
            await gate.acquireExclusive()
            try await running(function) {
                await gate.release(exclusive: true)
                if suiteHolds { await gate.acquireShared() }
            }
        } else {
            await gate.acquireShared()
            try await running({ try await LoadGate.$holdsShared.withValue(true) { try await function() } }) {
                await gate.release(exclusive: false)
            }
        }
    }
}

extension Trait where Self == MachineLoad {
    /// Loads the cores (servers, processes, thousands of requests): runs beside other heavy
    /// suites, never beside a ``timed`` test.
    public static var heavy: Self { MachineLoad(exclusive: false) }

    /// Asserts a wall-clock bound: runs while no ``heavy`` suite does.
    public static var timed: Self { MachineLoad(exclusive: true) }
}

/// A readers–writer gate that prefers the writer: once a timed test waits, heavy suites that
/// arrive after it wait too, so it cannot starve.
actor LoadGate {
    static let shared = LoadGate()

    /// Whether the current task runs inside a heavy suite's scope.
    @TaskLocal static var holdsShared = false

    private var readers = 0
    private var writing = false
    private var waitingWriters: [CheckedContinuation<Void, Never>] = []
    private var waitingReaders: [CheckedContinuation<Void, Never>] = []

    func acquireShared() async {
        if !self.writing && self.waitingWriters.isEmpty {
            self.readers += 1
            return
        }
        // `releaseExclusive()` counts the reader in before resuming it.
        await withCheckedContinuation { self.waitingReaders.append($0) }
    }

    func release(exclusive: Bool) {
        if exclusive { self.releaseExclusive() } else { self.releaseShared() }
    }

    private func releaseShared() {
        self.readers -= 1
        if self.readers == 0, !self.waitingWriters.isEmpty {
            self.writing = true
            self.waitingWriters.removeFirst().resume()
        }
    }

    func acquireExclusive() async {
        if !self.writing && self.readers == 0 {
            self.writing = true
            return
        }
        // Handed over with `writing` already set.
        await withCheckedContinuation { self.waitingWriters.append($0) }
    }

    private func releaseExclusive() {
        if !self.waitingWriters.isEmpty {
            self.waitingWriters.removeFirst().resume()
            return
        }
        self.writing = false
        self.readers += self.waitingReaders.count
        for reader in self.waitingReaders { reader.resume() }
        self.waitingReaders.removeAll()
    }
}
