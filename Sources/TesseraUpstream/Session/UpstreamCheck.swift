import Foundation
/// The result of trying one account of an upstream: a login and a keep-alive probe.
public struct UpstreamAccountCheck: Sendable, Equatable {
    public var account: String
    /// Whether the login succeeded and the probe was answered as logged in.
    public var passed: Bool
    /// What happened, for an operator: the verdict, or why the login failed. Never a credential.
    public var detail: String
}

extension UpstreamConfiguration {
    /// Logs in once per account through `factory` and probes the keep-alive path, so that an
    /// operator can try a recipe before the pool relies on it. Accounts are tried one after
    /// another (sites lock out accounts, not slow logins).
    public func checkAccounts(with factory: any UpstreamSessionFactory) async -> [UpstreamAccountCheck] {
        let reader = UpstreamVerdictReader(configuration: self)
        var results: [UpstreamAccountCheck] = []
        for account in self.effectiveAccounts {
            let started = ContinuousClock.now
            let session: any UpstreamSessionConnection
            do {
                session = try await factory.logIn(account: account)
            } catch let error as UpstreamLoginError {
                results.append(UpstreamAccountCheck(account: account.name, passed: false, detail: "login failed: \(error.reason)"))
                continue
            } catch {
                results.append(UpstreamAccountCheck(account: account.name, passed: false, detail: "login failed: \(error)"))
                continue
            }
            let took = ContinuousClock.now - started
            let probe = UpstreamRequest(method: "GET", pathAndQuery: self.keepAlive.path, headers: [("accept", "text/html,*/*;q=0.8")])
            let path = self.keepAlive.path
            switch self.kind {
            case .http:
                do {
                    let response = try await session.send(probe)
                    let verdict = reader.verdict(on: response)
                    let passed = verdict == .ok
                    let detail =
                        passed
                        ? "logged in; \(path) answered \(response.status) as logged in"
                        : "logged in, but \(path) answered \(response.status): \(UpstreamPool.describe(verdict))"
                    results.append(UpstreamAccountCheck(account: account.name, passed: passed, detail: detail))
                } catch {
                    results.append(UpstreamAccountCheck(account: account.name, passed: false, detail: "the probe got no answer: \(error)"))
                }
            case .browser:
                let (verdict, failure) = await session.probe(probe, reader: reader)
                let seconds = Double(took.components.seconds) + Double(took.components.attoseconds) / 1e18
                let login = "logged in in the browser in \(String(format: "%.1f", seconds)) s"
                let detail: String
                if verdict == .ok {
                    detail = "\(login); \(path) showed as logged in"
                } else if let failure {
                    detail = "\(login), but the visit to \(path) failed: \(failure)"
                } else {
                    detail = "\(login), but \(path) showed \(UpstreamPool.describe(verdict))"
                }
                results.append(UpstreamAccountCheck(account: account.name, passed: verdict == .ok, detail: detail))
            }
            await session.close()
        }
        return results
    }
}
