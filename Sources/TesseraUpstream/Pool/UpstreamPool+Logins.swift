import Foundation
import Logging
import Tessera

/// Logins (single-flight per account, bounded, backing off) and retirements.
extension UpstreamPool {
    // MARK: Logins

    /// Starts a login if a slot and an account are free; `true` when one started.
    @discardableResult
    func startLoginIfAllowed(replacing old: Int?) -> Bool {
        guard !self.isShutDown else { return false }
        let now = self.clock.now
        let live = self.slots.values.filter { $0.replacedBy == nil }.count
        guard old != nil || live < self.configuration.pool.max else { return false }
        guard self.loginTasks.count < self.configuration.backoff.maxConcurrentLogins else { return false }
        let perAccount = Dictionary(grouping: self.slots.values.filter { $0.replacedBy == nil }, by: \.account).mapValues(\.count)
        let limit = old == nil ? (self.configuration.maxSessionsPerAccount ?? Int.max) : Int.max
        let eligible = self.accounts.indices.filter {
            !self.isLoggingIn(account: $0) && self.accounts[$0].nextAttempt(now: now) <= now && perAccount[$0, default: 0] < limit
        }
        guard let account = eligible.min(by: { (perAccount[$0] ?? 0, $0) < (perAccount[$1] ?? 0, $1) }) else { return false }

        let id = self.nextSlotID
        self.nextSlotID += 1
        self.slots[id] = Slot(account: account, createdAt: now, retireAt: now, replaces: old)
        if let old { self.slots[old]?.replacedBy = .pending }
        let accountConfiguration = self.accounts[account].account
        self.loginTasks[id] = Task {
            let started = ContinuousClock.now
            let result: Result<any UpstreamSessionConnection, UpstreamLoginError>
            do {
                result = .success(try await self.factory.logIn(account: accountConfiguration))
            } catch let error as UpstreamLoginError {
                result = .failure(error)
            } catch {
                result = .failure(UpstreamLoginError(.unreachable, reason: "\(error)"))
            }
            await self.loginFinished(slotID: id, result: result, took: ContinuousClock.now - started)
        }
        return true
    }

    func loginFinished(slotID: Int, result: Result<any UpstreamSessionConnection, UpstreamLoginError>, took: Duration = .zero) async {
        self.loginTasks.removeValue(forKey: slotID)
        guard var slot = self.slots[slotID] else { return }
        let now = self.clock.now
        switch result {
        case .success(let connection):
            if self.isShutDown {
                self.slots.removeValue(forKey: slotID)
                await connection.close()
                return
            }
            self.accounts[slot.account].succeeded()
            self.counters.logins += 1
            self.counters.loginTime.add(took)
            slot.connection = connection
            slot.state = .idle
            slot.createdAt = now
            slot.lastCheckedAt = now
            slot.lastActivityAt = now
            slot.lastVerdict = "ok"
            let jitter = self.configuration.lifetimeJitter * self.random()
            slot.retireAt = now.addingTimeInterval(self.configuration.maxAge * (1 - jitter))
            self.slots[slotID] = slot
            self.logger.info(
                "Logged in to the upstream",
                metadata: ["account": .string(self.accounts[slot.account].account.name), "upstream_session": .stringConvertible(slotID)]
            )
            if let old = slot.replaces, let oldSlot = self.slots[old] {
                // The replacement is ready: the old session goes now, or when it comes back.
                self.slots[old]?.replacedBy = .done
                if oldSlot.state == .idle { self.retire(old, reason: oldSlot.retireReason ?? .maxAge) }
            }
        case .failure(let error):
            self.slots.removeValue(forKey: slotID)
            if let old = slot.replaces { self.slots[old]?.replacedBy = nil }
            self.counters.loginFailures += 1
            let delay = self.accounts[slot.account].failed(error, configuration: self.configuration.backoff, now: now, jitter: self.random())
            let account = self.accounts[slot.account].account.name
            self.noteError("login as '\(account)' failed: \(error.reason)", now: now)
            self.logger.warning(
                "Login to the upstream failed",
                metadata: [
                    "account": .string(account), "reason": .string(error.reason), "backoff_seconds": .stringConvertible(Int(delay.rounded(.up))),
                ]
            )
        }
        self.signal()
    }

    /// Whether a login of `account` is running (logins are single-flight per account).
    func isLoggingIn(account: Int) -> Bool {
        self.slots.values.contains { $0.account == account && $0.state == .loggingIn }
    }

    func requestReplacement(of slotID: Int, reason: RetireReason) {
        guard self.slots[slotID]?.replacedBy == nil else { return }
        self.slots[slotID]?.retireReason = reason
        self.startLoginIfAllowed(replacing: slotID)
    }

    func loginFailedError(now: Date) -> TesseraError {
        let next = self.accounts.map { $0.nextAttempt(now: now) }.min() ?? now
        let reason = self.accounts.compactMap(\.lastError).first
        return .upstreamLoginFailed(upstream: self.name, reason: reason, retryAfter: Self.seconds(next.timeIntervalSince(now)))
    }

    func backOffRateLimited(retryAfter: Double?, now: Date) {
        let delay = min(max(retryAfter ?? self.configuration.backoff.initial, 1), 3600)
        self.rateLimitedUntil = now.addingTimeInterval(delay)
        self.counters.rateLimited += 1
        self.noteError("the upstream answered 429; pausing for \(Int(delay)) s", now: now)
    }

    // MARK: Retiring

    func retire(_ slotID: Int, reason: RetireReason) {
        guard let slot = self.slots.removeValue(forKey: slotID) else { return }
        self.counters.retirements[reason.rawValue, default: 0] += 1
        self.logger.info(
            "Retired an upstream session",
            metadata: ["upstream_session": .stringConvertible(slotID), "reason": .string(reason.rawValue), "uses": .stringConvertible(slot.uses)]
        )
        if let connection = slot.connection {
            Task { await connection.close() }
        }
        // Keep the pool at its minimum without waiting for the next maintenance.
        if !self.isShutDown && self.slots.count < self.configuration.pool.min {
            self.startLoginIfAllowed(replacing: nil)
        }
        self.signal()
    }
}
