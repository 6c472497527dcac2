public import CoreMetrics
import Synchronization

/// What a ``ResilientStore`` counts, through swift-metrics: each call's time by operation
/// (`tessera_store_call_duration_seconds`), retries, calls that failed for good, and breaker
/// openings. The breaker's state is a gauge that ``ResilientStore/breakerState`` answers.
public final class StoreMetrics: Sendable {
    let factory: any MetricsFactory
    let timers = MetricCache<String, Timer>()
    let retries: Counter
    let failures: Counter
    let breakerOpenings: Counter

    /// - Parameter factory: the backend (by default the one bootstrapped for the process)
    public init(factory: any MetricsFactory = MetricsSystem.factory) {
        self.factory = factory
        self.retries = Counter(label: "tessera_store_retries_total", factory: factory)
        self.failures = Counter(label: "tessera_store_unavailable_total", factory: factory)
        self.breakerOpenings = Counter(label: "tessera_store_breaker_openings_total", factory: factory)
    }

    /// Records one call of `operation` (a name from the store protocol, never from a request)
    /// that took `duration`, retries and backoff included.
    func record(_ operation: String, _ duration: Duration) {
        self.timer(operation).recordNanoseconds(duration.nanoseconds)
    }

    /// Counts a retry after a transient failure.
    func retried() { self.retries.increment() }

    /// Counts a call that failed for good (retries spent, deadline reached, breaker open).
    func failed() { self.failures.increment() }

    /// Counts the breaker opening from closed.
    func breakerOpened() { self.breakerOpenings.increment() }

    private func timer(_ operation: String) -> Timer {
        self.timers.value(for: operation) {
            Timer(label: "tessera_store_call_duration_seconds", dimensions: [("operation", operation)], factory: self.factory)
        }
    }
}
