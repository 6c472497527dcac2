import Synchronization
import Testing

@testable import TesseraClient

/// The gate that keeps the SDK's HTTP client within its connections.
@Suite struct RequestGateTests {
    @Test func atMostTheLimitPassAtOnceAndTheOthersFollowInOrder() async throws {
        let gate = RequestGate(limit: 2)
        let far = ContinuousClock.now.advanced(by: .seconds(60))
        try await gate.enter(until: far)
        try await gate.enter(until: far)
        let order = Order()
        var waiting: [Task<Void, any Error>] = []
        for number in 1...3 {
            waiting.append(
                Task {
                    try await gate.enter(until: far)
                    order.values.withLock { $0.append(number) }
                }
            )
            // Each queues before the next comes.
            while gate.queued < number { await Task.yield() }
        }
        #expect(order.values.withLock { $0 }.isEmpty)
        gate.leave()
        try await waiting[0].value
        gate.leave()
        try await waiting[1].value
        gate.leave()
        try await waiting[2].value
        #expect(order.values.withLock { $0 } == [1, 2, 3])
    }

    @Test func aWaitEndsAtItsDeadlineOrWithItsTaskAndGivesNothingAway() async throws {
        let gate = RequestGate(limit: 1)
        try await gate.enter(until: .now.advanced(by: .seconds(60)))
        // A deadline already passed: it times out at once.
        await #expect(throws: RequestGate.TimedOut.self) { try await gate.enter(until: .now) }
        let cancelled = Task { try await gate.enter(until: .now.advanced(by: .seconds(60))) }
        cancelled.cancel()
        await #expect(throws: CancellationError.self) { try await cancelled.value }
        // Neither took the turn: the next one gets it when it is given back.
        gate.leave()
        try await gate.enter(until: .now.advanced(by: .seconds(1)))
    }
}

final class Order: Sendable {
    let values = Mutex<[Int]>([])
}
