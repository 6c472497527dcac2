import Foundation
import Testing
import Tessera
import TesseraTestSupport

/// The resilience layer over a real SQLite store, with failures injected in front of it.
@Suite struct ResilientStoreTests {
    let directory = TemporaryDirectory()

    func stores(_ configuration: ResilientStore.Configuration = .init()) throws -> (FaultyStore, ResilientStore, SessionManager) {
        let faulty = FaultyStore(try self.directory.sqliteStore())
        let resilient = ResilientStore(faulty, configuration: configuration)
        return (faulty, resilient, SessionManager(store: resilient))
    }

    @Test func transientFailuresAreRetriedInvisibly() async throws {
        // What is counted is attempts, not time: a deadline no loaded machine reaches.
        let (faulty, _, sessions) = try self.stores(.init(deadline: .seconds(60), attemptTimeout: .seconds(20)))
        let created = try await sessions.createSession(userID: "u")
        let before = faulty.calls
        faulty.failNext(2)
        let session = try await sessions.authenticate(token: created.token.rawValue)
        #expect(session.id == created.session.id)
        #expect(faulty.calls == before + 3)
    }

    // Asserts a wall-clock bound: runs while no heavy suite loads the cores.
    @Test(.timed) func aStoreThatStaysDownFailsWithinTheDeadline() async throws {
        let (faulty, _, sessions) = try self.stores(.init(deadline: .milliseconds(800)))
        let created = try await sessions.createSession(userID: "u")
        for mode in [FaultyStore.Mode.down, .hanging] {
            faulty.set(mode)
            let started = ContinuousClock.now
            await #expect(throws: StoreUnavailableError.self) { _ = try await sessions.authenticate(token: created.token.rawValue) }
            // Bounded, not a speed measurement: the answer must come by the deadline, not hang.
            #expect(ContinuousClock.now - started < .seconds(2))
        }
    }

    @Test func definiteAnswersAreNotRetried() async throws {
        let (faulty, resilient, _) = try self.stores()
        let user = User(id: "usr_1", username: "ann", passwordHash: "h", createdAt: Date())
        try await resilient.insertUser(user)
        let before = faulty.calls
        await #expect(throws: UserExistsError.self) { try await resilient.insertUser(user) }
        #expect(faulty.calls == before + 1)
    }

    /// Its probe must answer within the 500 ms deadline under test: a wall-clock bound.
    @Test(.timed) func theBreakerOpensFailsFastAndRecoversByItself() async throws {
        let (faulty, resilient, sessions) = try self.stores(
            .init(attempts: 1, deadline: .milliseconds(500), breakerThreshold: 3, breakerCooldown: .milliseconds(200))
        )
        // Set up outside the short deadline under test: a loaded machine may take longer to write.
        let created = try await SessionManager(store: faulty).createSession(userID: "u")
        faulty.set(.down)
        for _ in 0..<3 {
            await #expect(throws: StoreUnavailableError.self) { _ = try await sessions.authenticate(token: created.token.rawValue) }
        }
        guard case .open = resilient.breakerState else {
            Issue.record("the breaker should be open, is \(resilient.breakerState)")
            return
        }
        // While open, calls fail without reaching the store.
        let reached = faulty.calls
        await #expect(throws: StoreUnavailableError.self) { _ = try await sessions.authenticate(token: created.token.rawValue) }
        #expect(faulty.calls == reached)

        // The store comes back; after the cooldown one probe goes through and closes the breaker.
        faulty.set(.healthy)
        try await Task.sleep(for: .milliseconds(250))
        #expect(resilient.breakerState == .halfOpen)
        _ = try await sessions.authenticate(token: created.token.rawValue)
        #expect(resilient.breakerState == .closed)
    }

    @Test func aCancelledProbeHandsTheTurnToTheNextCall() async throws {
        let (faulty, resilient, sessions) = try self.stores(
            .init(attempts: 1, deadline: .seconds(5), attemptTimeout: .seconds(5), breakerThreshold: 1, breakerCooldown: .milliseconds(50))
        )
        let created = try await sessions.createSession(userID: "u")
        faulty.set(.down)
        await #expect(throws: StoreUnavailableError.self) { _ = try await sessions.authenticate(token: created.token.rawValue) }
        try await Task.sleep(for: .milliseconds(80))
        #expect(resilient.breakerState == .halfOpen)

        // The probe hangs and its caller gives up.
        faulty.set(.hanging)
        let probe = Task { try await sessions.authenticate(token: created.token.rawValue) }
        for _ in 0..<100 where faulty.calls < 3 {
            try await Task.sleep(for: .milliseconds(5))
        }
        probe.cancel()
        _ = await probe.result

        // The next call probes the (now healthy) store and closes the breaker.
        faulty.set(.healthy)
        _ = try await sessions.authenticate(token: created.token.rawValue)
        #expect(resilient.breakerState == .closed)
    }

    @Test func backoffGrowsExponentiallyUpToItsCap() {
        let configuration = ResilientStore.Configuration(initialBackoff: .milliseconds(100), maximumBackoff: .milliseconds(700))
        #expect(configuration.backoffCeiling(retry: 0) == .milliseconds(100))
        #expect(configuration.backoffCeiling(retry: 1) == .milliseconds(200))
        #expect(configuration.backoffCeiling(retry: 2) == .milliseconds(400))
        #expect(configuration.backoffCeiling(retry: 3) == .milliseconds(700))
        #expect(configuration.backoffCeiling(retry: 50) == .milliseconds(700))
    }
}
