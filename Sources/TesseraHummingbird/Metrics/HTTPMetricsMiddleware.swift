public import CoreMetrics
public import Hummingbird
import Synchronization
import Tessera

/// Counts requests and times them by route template, method and status class, through
/// swift-metrics: `tessera_http_requests_total`, `tessera_http_request_duration_seconds`, and
/// `tessera_http_unavailable_responses_total` for every `503` sent.
///
/// Labels come from a fixed set only: the route is the template the router matched
/// (`/v1/sessions/{id}`), `static` for a file of the static folder, or `unmatched`; the method is one of HTTP's usual seven, or `other`; the
/// status is its class (`2xx` … `5xx`). No request can create a new series. (Hummingbird's
/// `MetricsMiddleware` labels by the method a request names, which a client can vary without
/// end, and by the full status code.)
///
/// Mount it first, outside ``CorrelationIDMiddleware``, so that it sees every answer as sent.
/// Requests the connection handler refuses before routing (malformed HTTP, oversized headers or
/// bodies, timeouts) never reach it and are not counted.
/// The time is until the response is ready to be written: a stream's body is not counted.
public struct HTTPMetricsMiddleware<Context: RequestContext>: RouterMiddleware {
    let series: HTTPMetricSeries

    /// - Parameter factory: the backend (by default the one bootstrapped for the process)
    public init(factory: any MetricsFactory = MetricsSystem.factory) {
        self.series = HTTPMetricSeries(factory: factory)
    }

    public func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        let started = ContinuousClock.now
        do {
            let response = try await next(request, context)
            self.series.record(route: context.endpointPath, method: request.method, status: response.status.code, since: started)
            return response
        } catch {
            let status = (error as? any HTTPResponseError)?.status.code ?? 500
            self.series.record(route: context.endpointPath, method: request.method, status: status, since: started)
            throw error
        }
    }
}

/// The counters and timers made so far, one per route, method and status class.
final class HTTPMetricSeries: Sendable {
    struct Key: Hashable {
        var route: String
        var method: Int
        var statusClass: Int
    }

    struct Entry: Sendable {
        var requests: Counter
        var duration: Timer
    }

    static let methods: [HTTPRequest.Method] = [.get, .head, .post, .put, .patch, .delete, .options]
    static let methodNames = HTTPMetricSeries.methods.map(\.rawValue) + ["other"]
    static let statusClasses = ["1xx", "2xx", "3xx", "4xx", "5xx"]

    let factory: any MetricsFactory
    let entries = Mutex<[Key: Entry]>([:])
    let unavailable: Counter

    init(factory: any MetricsFactory) {
        self.factory = factory
        self.unavailable = Counter(label: "tessera_http_unavailable_responses_total", factory: factory)
    }

    func record(route: String?, method: HTTPRequest.Method, status: Int, since started: ContinuousClock.Instant) {
        let elapsed = ContinuousClock.now - started
        let key = Key(
            route: Self.route(route),
            method: Self.methods.firstIndex(of: method) ?? Self.methods.count,
            statusClass: min(max(status / 100, 1), 5) - 1
        )
        let entry = self.entry(for: key)
        entry.requests.increment()
        entry.duration.recordNanoseconds(elapsed.nanoseconds)
        if status == 503 { self.unavailable.increment() }
    }

    /// The route label: the matched template; `static` for a file of the static folder;
    /// `unmatched` for a request no route took.
    static func route(_ endpoint: String?) -> String {
        switch endpoint {
        case nil, "NotFound": "unmatched"
        case "FileMiddleware": "static"
        case let template?: template
        }
    }

    private func entry(for key: Key) -> Entry {
        if let entry = self.entries.withLock({ $0[key] }) { return entry }
        // Made outside the lock: the factory takes its own.
        let dimensions = [
            ("route", key.route),
            ("method", Self.methodNames[key.method]),
            ("status", Self.statusClasses[key.statusClass]),
        ]
        let entry = Entry(
            requests: Counter(label: "tessera_http_requests_total", dimensions: dimensions, factory: self.factory),
            duration: Timer(label: "tessera_http_request_duration_seconds", dimensions: dimensions, factory: self.factory)
        )
        return self.entries.withLock { entries in
            if let existing = entries[key] { return existing }
            entries[key] = entry
            return entry
        }
    }
}
