public import CoreMetrics
import Foundation
public import Tessera

/// Webhook delivery when metrics are scraped: what this node's dispatcher delivered, failed and
/// gave up on, and from the store (every node's work) each endpoint's pending and dead
/// deliveries, its oldest pending event's age, and whether it is disabled.
public struct WebhookMetrics: MetricsSource {
    let dispatcher: WebhookDispatcher
    let attempts: MirroredCounterFamily
    let pending: GaugeFamily
    let dead: GaugeFamily
    let oldestPending: GaugeFamily
    let disabled: GaugeFamily

    public init(dispatcher: WebhookDispatcher, factory: any MetricsFactory = MetricsSystem.factory) {
        self.dispatcher = dispatcher
        self.attempts = MirroredCounterFamily("tessera_webhook_deliveries_total", labels: ["result"], factory: factory)
        self.pending = GaugeFamily("tessera_webhook_pending", labels: ["endpoint"], factory: factory)
        self.dead = GaugeFamily("tessera_webhook_dead", labels: ["endpoint"], factory: factory)
        self.oldestPending = GaugeFamily("tessera_webhook_oldest_pending_seconds", labels: ["endpoint"], factory: factory)
        self.disabled = GaugeFamily("tessera_webhook_endpoint_disabled", labels: ["endpoint"], factory: factory)
    }

    public func collect() async {
        let statistics = self.dispatcher.statistics
        self.attempts.update(["delivered"], to: statistics.delivered)
        self.attempts.update(["failed"], to: statistics.failedAttempts)
        self.attempts.update(["dead"], to: statistics.dead)
        let now = self.dispatcher.clock.now
        // The store's figures, waited for at most 2 s; a scrape during an outage keeps the last ones.
        let store = self.dispatcher.store
        guard let states = try? await withDeadline(.seconds(2), { try await store.webhookEndpoints(at: now) }) else { return }
        let configured = Set(self.dispatcher.endpoints.map(\.name))
        for state in states where configured.contains(state.name) {
            self.pending.set([state.name], to: Double(state.pending))
            self.dead.set([state.name], to: Double(state.dead))
            self.oldestPending.set([state.name], to: state.oldestPendingAt.map { max(0, now.timeIntervalSince($0)) } ?? 0)
            self.disabled.set([state.name], to: state.disabledAt == nil ? 0 : 1)
        }
    }
}
