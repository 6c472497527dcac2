/// Runs test bodies one at a time across every test target (they share one test process).
///
/// For the upstream pool's fixtures: each runs a fake site, a pool and its HTTP client on both
/// cores, and their borrow and login waits are real time. Side by side, as ``MachineLoad/heavy``
/// would let them run, they pushed each other past those waits.
public func oneAtATime<Value: Sendable>(_ body: @Sendable () async throws -> Value) async throws -> Value {
    await OneAtATime.shared.acquire()
    return try await running(body) { await OneAtATime.shared.release() }
}

actor OneAtATime {
    static let shared = OneAtATime()
    private var busy = false
    private var waiting: [CheckedContinuation<Void, Never>] = []

    func acquire() async {
        guard self.busy else {
            self.busy = true
            return
        }
        // `release()` hands the lock straight to the first waiter, so `busy` stays set.
        await withCheckedContinuation { self.waiting.append($0) }
    }

    func release() {
        if self.waiting.isEmpty {
            self.busy = false
        } else {
            self.waiting.removeFirst().resume()
        }
    }
}
