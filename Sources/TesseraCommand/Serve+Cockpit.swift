import Foundation
import Hummingbird
import Logging
import ServiceLifecycle
import Tessera
import TesseraEvents
import TesseraHummingbird

extension Serve {
    /// The webhook dispatcher of the configured endpoints, or `nil` for none.
    static func dispatcher(_ endpoints: [WebhookEndpoint], base: any SessionStore, logger: Logger) throws -> WebhookDispatcher? {
        guard !endpoints.isEmpty else { return nil }
        guard let deliveries = base as? any WebhookDeliveryStore & SessionStore else {
            throw CommandError("This store cannot deliver webhooks.")
        }
        return WebhookDispatcher(store: deliveries, endpoints: endpoints, logger: logger)
    }

    /// `GET /metrics` on a listener of its own: loopback by default, so that the figures never
    /// share the API's (often public) port and Prometheus needs no secret; an operator who
    /// scrapes from elsewhere binds it to a private interface.
    static func metricsServer(_ metrics: MetricsEndpoint, listener: (host: String, port: Int), logger: Logger) -> some Service {
        Application(
            router: metrics.buildRouter(),
            configuration: .init(address: .hostname(listener.host, port: listener.port), serverName: "Tessera"),
            onServerRunning: { channel in
                let port = channel.localAddress?.port ?? listener.port
                say("Metrics listening on http://\(listener.host):\(port)/metrics")
            },
            logger: logger
        )
    }
}
