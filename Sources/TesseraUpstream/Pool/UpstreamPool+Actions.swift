public import Tessera

/// Browser actions: a list of steps taken in one leased browser session.
extension UpstreamPool {
    /// The most steps one list may have.
    public static let maxActionSteps = 32

    /// Takes `steps` in one browser session of the pool and returns what they read, with the
    /// session's expiry hidden where that is safe.
    ///
    /// The replay rule: a list of steps runs at most twice.
    /// - The session is checked before it is lent (as for ``send(_:)``), so a session found
    ///   ended before the first step is replaced without running anything.
    /// - When a step meets an ended session (an expiry marker on the page, or a browser that
    ///   crashed or hung), a list marked `idempotent` runs again, once, from its first step, on a
    ///   session seen logged in at that instant.
    /// - A list not marked idempotent is never run again: an earlier step may have acted on the
    ///   site (a booking), so it answers `UPSTREAM_SESSION_LOST` and says it was not replayed.
    ///   Each of its steps is taken at most once.
    /// - A step that fails on a logged-in page (no element matched, a wait ran out) fails the
    ///   list with `UPSTREAM_ACTION_FAILED`, naming the step; the session stays in the pool.
    ///
    /// Throws ``TesseraError`` values: `UPSTREAM_NOT_BROWSER`, `UPSTREAM_ACTION_FAILED`,
    /// `UPSTREAM_SESSION_LOST`, `UPSTREAM_BLOCKED`, and those of borrowing.
    public nonisolated func perform(_ steps: [BrowserStep], idempotent: Bool) async throws -> BrowserActionResult {
        guard self.configuration.kind == .browser else { throw TesseraError.upstreamNotBrowser(upstream: self.name) }
        var attempt = 0
        while true {
            attempt += 1
            let lease = try await self.borrow(freshness: attempt == 1 ? self.configuration.healthFreshness : 0)
            guard let browser = lease.connection as? any UpstreamBrowserConnection else {
                await self.finish(lease, verdict: .ok)
                throw TesseraError.upstreamNotBrowser(upstream: self.name)
            }
            let outcome = await browser.perform(steps, reader: self.reader)
            switch outcome {
            case .completed(var result):
                await self.finish(lease, verdict: .ok)
                await self.count { $0.actions += 1 }
                result.replayed = attempt > 1
                return result
            case .ended(let evidence, let step):
                await self.finish(lease, verdict: .expired(evidence))
                guard idempotent, attempt < 2 else {
                    await self.count { $0.actionsLost += 1 }
                    throw TesseraError.upstreamSessionLost(upstream: self.name, atStep: step, replayed: attempt > 1)
                }
                await self.count {
                    $0.expiredHidden += 1
                    $0.retries += 1
                    $0.actionsReplayed += 1
                }
            case .blocked:
                await self.finish(lease, verdict: .blocked)
                throw TesseraError.upstreamBlocked(upstream: self.name)
            case .failed(let step, let reason):
                await self.finish(lease, verdict: .ok)
                await self.count { $0.actionsFailed += 1 }
                throw TesseraError.upstreamActionFailed(upstream: self.name, step: step, name: steps[step].name, reason: reason)
            }
        }
    }
}
