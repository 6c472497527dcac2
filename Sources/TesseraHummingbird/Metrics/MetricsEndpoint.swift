public import Hummingbird
public import Prometheus
public import Tessera

/// `GET /metrics` in the Prometheus text format (version 0.0.4): the sources are brought up to
/// date, then everything the registry holds is written.
///
/// `tessera serve` serves it on a listener of its own (`--metrics-address`, loopback by
/// default), never on the API's port, and the admin API serves the same text to operators
/// (`GET /v1/admin/metrics`).
public struct MetricsEndpoint: Sendable {
    public let registry: PrometheusCollectorRegistry
    public let sources: [any MetricsSource]

    public init(registry: PrometheusCollectorRegistry, sources: [any MetricsSource]) {
        self.registry = registry
        self.sources = sources
    }

    /// The media type of the text format.
    public static let contentType = "text/plain; version=0.0.4; charset=utf-8"

    /// A swift-metrics factory that writes to `registry`, with timer buckets from 100 µs (a
    /// validation takes well under a millisecond) to 10 s.
    public static func factory(registry: PrometheusCollectorRegistry) -> PrometheusMetricsFactory {
        var factory = PrometheusMetricsFactory(registry: registry)
        factory.defaultDurationHistogramBuckets = [
            .microseconds(100), .microseconds(250), .microseconds(500), .milliseconds(1), .microseconds(2500),
            .milliseconds(5), .milliseconds(10), .milliseconds(25), .milliseconds(50), .milliseconds(100), .milliseconds(250),
            .milliseconds(500), .seconds(1), .milliseconds(2500), .seconds(5), .seconds(10),
        ]
        return factory
    }

    /// The text of a scrape.
    public func render() async -> [UInt8] {
        for source in self.sources {
            await source.collect()
        }
        var buffer: [UInt8] = []
        buffer.reserveCapacity(16 * 1024)
        self.registry.emit(into: &buffer)
        return buffer
    }

    /// A scrape as a response.
    public func response() async -> Response {
        Response(
            status: .ok,
            headers: [.contentType: Self.contentType, .cacheControl: "no-store"],
            body: .init(byteBuffer: ByteBuffer(bytes: await self.render()))
        )
    }

    /// A router that serves `GET /metrics` and nothing else.
    public func buildRouter() -> Router<BasicRequestContext> {
        let router = Router(context: BasicRequestContext.self)
        router.get("/metrics") { _, _ in await self.response() }
        return router
    }
}
