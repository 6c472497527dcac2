/// Counts refreshes in a sliding window on the monotonic clock. It counts the refreshes that were
/// not due (asked for by a `401` or by ``TesseraClient/refresh()`` before the token's refresh
/// time) and those answered with a token too short to use; the refreshes a healthy client makes
/// on schedule, at most two per token lifetime, are not counted, so no lifetime the service
/// accepts can exhaust the limit.
struct RefreshLimiter {
    let maximum: Int
    let window: Duration
    private var starts: [MonotonicInstant] = []

    init(maximum: Int, window: Duration) {
        self.maximum = maximum
        self.window = window
    }

    /// Whether one more refresh at `now` stays within the limit.
    mutating func allows(at now: MonotonicInstant) -> Bool {
        self.starts.removeAll { $0.advanced(by: self.window) <= now }
        return self.starts.count < self.maximum
    }

    /// Counts a refresh made at `at`.
    mutating func record(at instant: MonotonicInstant) {
        self.starts.append(instant)
    }

    /// When the next refresh will be admitted.
    func nextAdmission(after now: MonotonicInstant) -> MonotonicInstant {
        let live = self.starts.filter { $0.advanced(by: self.window) > now }.sorted()
        guard live.count >= self.maximum else { return now }
        return live[live.count - self.maximum].advanced(by: self.window)
    }
}

/// Exponential backoff after transient refresh failures.
struct RefreshBackoff {
    let initial: Duration
    let maximum: Duration
    private(set) var failures = 0
    /// No refresh is sent before this instant.
    private(set) var until: MonotonicInstant?

    init(initial: Duration, maximum: Duration) {
        self.initial = initial
        self.maximum = maximum
    }

    /// Records a failure at `now`; the wait doubles with each one, and is at least `retryAfter`.
    mutating func fail(at now: MonotonicInstant, retryAfter: Duration?) -> Duration {
        self.failures += 1
        var delay = self.initial
        for _ in 1..<min(self.failures, 32) where delay < self.maximum { delay = delay * 2 }
        delay = min(delay, self.maximum)
        if let retryAfter { delay = max(delay, retryAfter) }
        self.until = now.advanced(by: delay)
        return delay
    }

    mutating func reset() {
        self.failures = 0
        self.until = nil
    }

    /// How long until a refresh may be sent, or `nil` if it may be sent now.
    func remaining(at now: MonotonicInstant) -> Duration? {
        guard let until, now < until else { return nil }
        return now.duration(to: until)
    }
}
