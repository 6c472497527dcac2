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
            do {
                let session = try await factory.logIn(account: account)
                defer { Task { await session.close() } }
                let probe = UpstreamRequest(method: "GET", pathAndQuery: self.keepAlive.path)
                let response = try await session.send(probe)
                let verdict = reader.verdict(on: response)
                let passed = verdict == .ok
                let detail =
                    passed
                    ? "logged in; \(self.keepAlive.path) answered \(response.status) as logged in"
                    : "logged in, but \(self.keepAlive.path) answered \(response.status): \(UpstreamPool.describe(verdict))"
                results.append(UpstreamAccountCheck(account: account.name, passed: passed, detail: detail))
            } catch let error as UpstreamLoginError {
                results.append(UpstreamAccountCheck(account: account.name, passed: false, detail: "login failed: \(error.reason)"))
            } catch {
                results.append(UpstreamAccountCheck(account: account.name, passed: false, detail: "the probe got no answer: \(error)"))
            }
        }
        return results
    }
}
