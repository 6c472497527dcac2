/// Counts refreshes in a sliding window on the monotonic clock and refuses one past the limit.
/// It counts refreshes sent, not the requests that wait for them.
struct RefreshLimiter {
    let maximum: Int
    let window: Duration
    private var starts: [MonotonicInstant] = []

    init(maximum: Int, window: Duration) {
        self.maximum = maximum
        self.window = window
    }

    /// Records a refresh starting at `now` and returns `true`, or returns `false` if the window
    /// is full.
    mutating func admit(at now: MonotonicInstant) -> Bool {
        self.starts.removeAll { $0.advanced(by: self.window) <= now }
        guard self.starts.count < self.maximum else { return false }
        self.starts.append(now)
        return true
    }

    /// When the next refresh will be admitted.
    func nextAdmission(after now: MonotonicInstant) -> MonotonicInstant {
        let live = self.starts.filter { $0.advanced(by: self.window) > now }
        guard live.count >= self.maximum, let oldest = live.first else { return now }
        return oldest.advanced(by: self.window)
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
