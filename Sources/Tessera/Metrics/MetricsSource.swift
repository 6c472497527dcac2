public import CoreMetrics
import Synchronization

/// A part of the service whose figures are read when metrics are scraped, rather than counted
/// as they happen: sizes, states, and counts the part keeps itself.
public protocol MetricsSource: Sendable {
    /// Brings this source's gauges and counters up to date.
    func collect() async
}

/// A swift-metrics counter that follows a count kept elsewhere (a part's own statistics): each
/// ``update(to:)`` adds what the count grew by since the last one.
public final class MirroredCounter: Sendable {
    let counter: Counter
    let last = Mutex<Int>(0)

    public init(label: String, dimensions: [(String, String)] = [], factory: any MetricsFactory) {
        self.counter = Counter(label: label, dimensions: dimensions, factory: factory)
    }

    /// Sets the counter to `total` when it has grown (a count that went back, as after a
    /// restart of the part, is followed from there on).
    public func update(to total: Int) {
        let grown = self.last.withLock { last in
            defer { last = total }
            return total - last
        }
        if grown > 0 { self.counter.increment(by: grown) }
    }
}

/// Metric handles made on first use and kept, one per key: what every family of metrics below
/// (and the store's timers, the HTTP series) looks its handles up in.
package final class MetricCache<Key: Hashable & Sendable, Value: Sendable>: Sendable {
    private let values = Mutex<[Key: Value]>([:])

    package init() {}

    /// The value of `key`, made by `make` the first time (outside the lock: a metrics factory
    /// takes its own).
    package func value(for key: Key, make: () -> Value) -> Value {
        if let value = self.values.withLock({ $0[key] }) { return value }
        let made = make()
        return self.values.withLock { values in
            if let existing = values[key] { return existing }
            values[key] = made
            return made
        }
    }
}

/// Gauges of one metric, one per value of its label, made on first use and kept.
public final class GaugeFamily: Sendable {
    let label: String
    let dimensions: [(String, String)]
    let factory: any MetricsFactory
    let gauges = MetricCache<[String], Gauge>()

    /// - Parameters:
    ///   - label: the metric's name
    ///   - dimensions: the names of its labels
    public init(_ label: String, labels dimensions: [String], factory: any MetricsFactory) {
        self.label = label
        self.dimensions = dimensions.map { ($0, "") }
        self.factory = factory
    }

    /// Sets the gauge of the label values `values` (in the order of the names given at init).
    public func set(_ values: [String], to value: Double) {
        self.gauge(values).record(value)
    }

    private func gauge(_ values: [String]) -> Gauge {
        self.gauges.value(for: values) {
            Gauge(label: self.label, dimensions: zip(self.dimensions, values).map { ($0.0, $1) }, factory: self.factory)
        }
    }
}

/// Counters that follow counts kept elsewhere, one per value of its labels, made on first use.
public final class MirroredCounterFamily: Sendable {
    let label: String
    let names: [String]
    let factory: any MetricsFactory
    let counters = MetricCache<[String], MirroredCounter>()

    public init(_ label: String, labels names: [String], factory: any MetricsFactory) {
        self.label = label
        self.names = names
        self.factory = factory
    }

    /// Follows the count of the label values `values` to `total`.
    public func update(_ values: [String], to total: Int) {
        self.counters.value(for: values) {
            MirroredCounter(label: self.label, dimensions: Array(zip(self.names, values)), factory: self.factory)
        }.update(to: total)
    }
}
