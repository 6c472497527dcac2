/// Runs test bodies one at a time across every test target (they share one test process).
///
/// For a test that asserts a wall-clock bound (an outage answered within 2 s) and the suites
/// that load both cores with servers and processes: Swift Testing runs suites in parallel, and
/// on a 2-core machine their load alone can push the bounded test past its bound.
public func oneAtATime<Value: Sendable>(_ body: @Sendable () async throws -> Value) async throws -> Value {
    await OneAtATime.shared.acquire()
    do {
        let value = try await body()
        await OneAtATime.shared.release()
        return value
    } catch {
        await OneAtATime.shared.release()
        throw error
    }
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
