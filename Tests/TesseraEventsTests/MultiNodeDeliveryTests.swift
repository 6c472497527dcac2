import Foundation
import Logging
import Synchronization
import Testing
import Tessera
import TesseraEvents
import TesseraPostgres
import TesseraTestSupport

/// Two nodes on one PostgreSQL database deliver to the same endpoint at once: the store gives
/// each delivery to one of them.
@Suite(.heavy) struct MultiNodeDeliveryTests {
    @Test(.enabled(if: StoreKind.available.contains(.postgres))) func twoNodesDeliverEachEventOnce() async throws {
        try await StoreFixture.with(.postgres) { fixture in
            let receiver = try await WebhookReceiver.start()
            try await running({
                let secret = try WebhookSecret(WebhookSecret.generate())
                let endpoint = WebhookEndpoint(name: "app", url: receiver.url, secrets: [secret])
                var logger = Logger(label: "test.webhooks")
                logger.logLevel = .error
                // Two nodes: each its own store handle (its own connection pool) and dispatcher.
                let nodes = try await (0..<2).asyncMap { _ in try await fixture.openPostgres() }
                let dispatchers = nodes.map {
                    WebhookDispatcher(store: $0, endpoints: [endpoint], configuration: .init(pollInterval: .milliseconds(20), batchSize: 16), logger: logger)
                }
                for dispatcher in dispatchers { try await dispatcher.register() }
                let runs = dispatchers.map { dispatcher in Task { try await dispatcher.run() } }

                // Sessions made and ended on both nodes while both deliver.
                let sessions = nodes.map { SessionManager(store: $0) }
                try await withThrowingTaskGroup(of: Void.self) { group in
                    for worker in 0..<8 {
                        group.addTask {
                            let manager = sessions[worker % 2]
                            for _ in 0..<40 {
                                let created = try await manager.createSession(userID: "usr_\(worker)")
                                try await manager.revoke(sessionID: created.session.id, reason: "logout")
                            }
                        }
                    }
                    try await group.waitForAll()
                }
                let events = try await nodes[0].sessionEvents(after: 0, filter: .all, limit: 10_000)
                #expect(events.count == 640)
                // Until every event is received and counted: the receiver accepts an event before
                // the node that sent it hears the answer and counts the delivery.
                let deadline = ContinuousClock.now + .seconds(60)
                while Set(receiver.accepted.map(\.id)).count < events.count || dispatchers.map(\.statistics.delivered).reduce(0, +) < events.count,
                    ContinuousClock.now < deadline
                {
                    try await Task.sleep(for: .milliseconds(50))
                }
                for run in runs { run.cancel() }
                for run in runs { _ = await run.result }

                let accepted = receiver.accepted.map(\.id)
                #expect(Set(accepted) == Set(events.map(\.id)))
                // Once each: no event was sent by both nodes.
                #expect(accepted.count == events.count, "\(accepted.count - Set(accepted).count) duplicates")
                // Both nodes took part.
                #expect(dispatchers.allSatisfy { $0.statistics.delivered > 0 }, "\(dispatchers.map(\.statistics.delivered))")
                #expect(dispatchers.map(\.statistics.delivered).reduce(0, +) == events.count)
            }) {
                await receiver.stop()
            }
        }
    }
}
