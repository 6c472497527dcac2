public import CoreMetrics
public import Tessera

/// The upstream pools when metrics are scraped: sessions by state, logins, refusals, expiries
/// hidden, retries, and each account's login breaker. Labels are the configured pool and
/// account names.
public struct UpstreamMetrics: MetricsSource {
    let pools: UpstreamPools
    let sessions: GaugeFamily
    let logins: MirroredCounterFamily
    let refusals: MirroredCounterFamily
    let expiriesHidden: MirroredCounterFamily
    let retries: MirroredCounterFamily
    let circuits: GaugeFamily

    public init(pools: UpstreamPools, factory: any MetricsFactory = MetricsSystem.factory) {
        self.pools = pools
        self.sessions = GaugeFamily("tessera_upstream_sessions", labels: ["upstream", "state"], factory: factory)
        self.logins = MirroredCounterFamily("tessera_upstream_logins_total", labels: ["upstream", "result"], factory: factory)
        self.refusals = MirroredCounterFamily("tessera_upstream_refusals_total", labels: ["upstream", "reason"], factory: factory)
        self.expiriesHidden = MirroredCounterFamily("tessera_upstream_expiries_hidden_total", labels: ["upstream"], factory: factory)
        self.retries = MirroredCounterFamily("tessera_upstream_retries_total", labels: ["upstream"], factory: factory)
        self.circuits = GaugeFamily("tessera_upstream_account_circuit_open", labels: ["upstream", "account"], factory: factory)
    }

    public func collect() async {
        for pool in self.pools.ordered {
            let snapshot = await pool.snapshot()
            let name = snapshot.name
            for state in ["logging_in", "idle", "lent", "probing"] {
                self.sessions.set([name, state], to: Double(snapshot.sessions.count { $0.state == state }))
            }
            let counters = snapshot.counters
            self.logins.update([name, "ok"], to: counters.logins)
            self.logins.update([name, "failed"], to: counters.loginFailures)
            self.refusals.update([name, "exhausted"], to: counters.exhausted)
            self.refusals.update([name, "rate_limited"], to: counters.rateLimited)
            self.expiriesHidden.update([name], to: counters.expiredHidden)
            self.retries.update([name], to: counters.retries)
            for account in snapshot.accounts {
                self.circuits.set([name, account.name], to: account.circuit == "open" ? 1 : 0)
            }
        }
    }
}
