import Foundation
import Logging
import Tessera

/// The keeper's round, shutdown, and the counters.
extension UpstreamPool {
    // MARK: Maintenance

    /// One round of background care, at the clock's current time:
    /// 1. reclaims leases held past `leaseTimeout`;
    /// 2. probes idle sessions unused for `keepAlive.interval` (they are not lent meanwhile) and
    ///    retires the dead ones;
    /// 3. starts replacements for sessions past their maximum age or uses;
    /// 4. starts logins up to `pool.min`.
    /// It returns when the probes are done; logins it started finish in the background
    /// (``settle()`` waits for them).
    public func maintain() async {
        guard !self.isShutDown else { return }
        let now = self.clock.now
        for (id, slot) in self.slots where slot.state == .lent {
            if let until = slot.leaseUntil, until <= now {
                self.counters.reclaimed += 1
                self.logger.warning("Reclaimed an upstream session lent too long", metadata: ["upstream_session": .stringConvertible(id)])
                self.slots[id]?.lastCheckedAt = .distantPast
                self.release(slotID: id, checkedOK: false)
            }
        }

        let due = self.slots.filter { _, slot in
            slot.state == .idle && now.timeIntervalSince(slot.lastActivityAt) >= self.configuration.keepAlive.interval
        }
        var probes: [(Int, UInt64, any UpstreamSessionConnection)] = []
        for (id, var slot) in due {
            guard let connection = slot.connection else { continue }
            let leaseID = self.nextLeaseID
            self.nextLeaseID += 1
            slot.state = .probing
            slot.leaseID = leaseID
            self.slots[id] = slot
            probes.append((id, leaseID, connection))
        }
        if !probes.isEmpty {
            let request = self.probeRequest
            let reader = self.reader
            let results = await withTaskGroup(of: (Int, UInt64, UpstreamVerdict, String?).self) { group in
                for (id, leaseID, connection) in probes {
                    group.addTask {
                        let (verdict, failure) = await connection.probe(request, reader: reader)
                        return (id, leaseID, verdict, failure)
                    }
                }
                var results: [(Int, UInt64, UpstreamVerdict, String?)] = []
                for await result in group { results.append(result) }
                return results
            }
            for (id, leaseID, verdict, error) in results {
                self.counters.keepAliveProbes += 1
                self.finish(slotID: id, leaseID: leaseID, verdict: verdict, use: .keepAlive, error: error)
            }
        }

        let current = self.clock.now
        for (id, slot) in self.slots where slot.state != .loggingIn && slot.replacedBy == nil {
            if current >= slot.retireAt {
                self.requestReplacement(of: id, reason: .maxAge)
            } else if slot.state == .idle, slot.connection?.wantsReplacement == true {
                self.requestReplacement(of: id, reason: .resources)
            } else if let maxUses = self.configuration.maxUses, slot.uses >= maxUses {
                self.requestReplacement(of: id, reason: .maxUses)
            }
        }
        while self.slots.values.filter({ $0.replacedBy == nil }).count < self.configuration.pool.min {
            guard self.startLoginIfAllowed(replacing: nil) else { break }
        }
    }

    /// Waits for the logins running now to finish.
    public func settle() async {
        while let task = self.loginTasks.values.first {
            await task.value
        }
    }

    /// Stops the pool: fails waiting borrowers, cancels running logins and closes every session.
    public func shutdown() async {
        self.isShutDown = true
        self.signal()
        for task in self.loginTasks.values { task.cancel() }
        await self.settle()
        let connections = self.slots.values.compactMap(\.connection)
        self.slots = [:]
        for connection in connections { await connection.close() }
        await self.factory.shutdown()
    }

    // MARK: Reporting

    func count(_ update: (inout Counters) -> Void) {
        update(&self.counters)
    }

    func noteError(_ message: String, now: Date) {
        self.recentErrors.append(RecentError(at: now, message: message))
        if self.recentErrors.count > 10 { self.recentErrors.removeFirst(self.recentErrors.count - 10) }
    }

    static func describe(_ verdict: UpstreamVerdict) -> String {
        switch verdict {
        case .ok: "ok"
        case .expired(let evidence): "expired (\(evidence.rawValue))"
        case .blocked: "blocked"
        case .rateLimited: "rate_limited"
        case .transient: "transient"
        }
    }

    static func seconds(_ interval: TimeInterval) -> Int {
        max(1, Int(interval.rounded(.up)))
    }
}
