import Foundation
import TesseraTestSupport
import TesseraWebDriver
import Testing

/// tessera.js in cookie mode, in headless Chromium, against a real `tessera serve` that serves
/// the test pages on its own origin.
@Suite(.heavy, .serialized, .timeLimit(.minutes(5)), .enabled(if: Browser.available, "needs Debian's chromium and chromium-driver"))
struct CookieModeTests {
    static let login = "return tessera.login({username: 'alice', password: arguments[0]}).then(() => tessera.state)"

    @Test func aRevokedSessionEndsOnceInEveryTabAndNoPageLoops() async throws {
        let server = try await PageServer()
        let browser = try await Browser()
        // Closed before the test ends: a close left to a task could outlive the test process.
        try await running({
            let first = try await browser.session.windowHandle()
            try await browser.open(server.baseURL + "/blank.html")
            #expect(try await browser.run(in: first, Self.login, [.string(PageServer.password)]).string == "signedIn")
            // Three tabs of the app, each calling the API every 200 ms.
            var tabs: [String] = []
            for _ in 0..<3 {
                let tab = try await browser.openTab(server.baseURL + "/app.html")
                #expect(try await browser.run(in: tab, "return window.ready").string == "signedIn")
                tabs.append(tab)
            }
            let sessionID = try #require(try await browser.run(in: first, "return tessera.current.session.id").string)

            _ = try server.command(["sessions", "revoke", sessionID])
            // The next call of any tab meets the revocation; each tab is told once and goes to the
            // login page once.
            let revokedAt = server.requestCount()
            // The count is of something: the login and the tabs' calls until now.
            #expect(revokedAt >= 4)
            for tab in tabs {
                try await waitUntil("every tab signed out") { try await browser.events("signedOut", in: tab).count >= 1 }
            }
            try await Task.sleep(for: .seconds(10))
            for tab in tabs {
                let signedOut = try await browser.events("signedOut", in: tab)
                #expect(signedOut.count == 1, "\(signedOut)")
                #expect(signedOut.first?["reason"]?.string == "revoked")
                let loads = try await browser.events("loaded", in: tab).compactMap { $0["page"]?.string }
                #expect(loads == ["/app.html", "/login.html"], "\(loads)")
                #expect(try await browser.session.currentURL().hasSuffix("/login.html"))
            }
            // The app went on calling every 200 ms, and the SDK sent none of it: a handful of
            // requests in 10 s (the calls that met the revocation and each login page's one check).
            let after = server.requestCount() - revokedAt
            #expect(after <= 12, "\(after) requests after the revocation")
            // And the tab that signed in stays signed out too.
            #expect(try await browser.events("signedOut", in: first).count == 1)
        }) { await browser.close() }
    }

    @Test func aTabThatMakesNoRequestLearnsAtOnceThatItsSessionWasRevokedElsewhere() async throws {
        let server = try await PageServer()
        let browser = try await Browser()
        try await running({
            let tab = try await browser.session.windowHandle()
            try await browser.open(server.baseURL + "/blank.html")
            #expect(try await browser.run(in: tab, Self.login, [.string(PageServer.password)]).string == "signedIn")
            try await waitUntil("listening") { try await browser.run(in: tab, "return tessera.events?.source?.readyState ?? -1").int == 1 }
            let sessionID = try #require(try await browser.run(in: tab, "return tessera.current.session.id").string)
            let checks = server.requests("GET", "/v1/session")
            // An operator revokes it with the command: no request of the tab's meets the revocation.
            _ = try server.command(["sessions", "revoke", sessionID])
            try await waitUntil(timeout: .seconds(10), "signed out by the stream") { try await browser.events("signedOut", in: tab).count == 1 }
            #expect(try await browser.events("signedOut", in: tab).first?["reason"]?.string == "revoked")
            #expect(server.requests("GET", "/v1/session") == checks)
            #expect(try await browser.run(in: tab, "return tessera.events").isNull)
        }) { await browser.close() }
    }

    /// Each page load opens the session's event stream and leaves the last one's: the service
    /// gives a left stream's place back when the browser closes it, so a tab reloaded more often
    /// than the session's 16 streams is still listening.
    @Test func aPageReloadedTwentyTimesStillListens() async throws {
        let server = try await PageServer()
        let browser = try await Browser()
        try await running({
            let tab = try await browser.session.windowHandle()
            try await browser.open(server.baseURL + "/blank.html")
            #expect(try await browser.run(in: tab, Self.login, [.string(PageServer.password)]).string == "signedIn")
            let listening = "return tessera.events?.source?.readyState ?? -1"
            for load in 1...20 {
                #expect(try await browser.open(server.baseURL + "/app.html?stay").string == "signedIn")
                try await waitUntil(timeout: .seconds(10), "load \(load) listening") { try await browser.run(in: tab, listening).int == 1 }
            }
            // Still listening a moment later: no stream was refused (a refused one closes for good).
            try await Task.sleep(for: .seconds(1))
            #expect(try await browser.run(in: tab, listening).int == 1)
            #expect(try await browser.events("signedOut", in: tab).isEmpty)
        }) { await browser.close() }
    }

    /// Over a BroadcastChannel, and through `storage` events in a browser without one.
    @Test(.timed, arguments: ["", "nochannel"])
    func aLogoutInOneTabReachesTheOthersWithinASecond(query: String) async throws {
        let server = try await PageServer()
        let browser = try await Browser()
        // Closed before the test ends: a close left to a task could outlive the test process.
        try await running({
            let a = try await browser.session.windowHandle()
            try await browser.open(server.baseURL + "/blank.html?\(query)")
            #expect(try await browser.run(in: a, Self.login, [.string(PageServer.password)]).string == "signedIn")
            #expect(try await browser.run(in: a, "return typeof BroadcastChannel").string == (query.isEmpty ? "function" : "undefined"))
            let b = try await browser.openTab(server.baseURL + "/app.html?stay&\(query)")
            let c = try await browser.openTab(server.baseURL + "/app.html?stay&\(query)")
            for tab in [b, c] { #expect(try await browser.run(in: tab, "return tessera.state").string == "signedIn") }

            let loggedOutAt = try #require(try await browser.run(in: a, "const at = Date.now(); return tessera.logout().then(() => at)").number)
            for tab in [b, c] {
                try await waitUntil(timeout: .seconds(5), "tab signed out") { try await browser.events("signedOut", in: tab).count == 1 }
                let event = try #require(try await browser.events("signedOut", in: tab).first)
                #expect(event["reason"]?.string == "logout")
                let at = try #require(event["at"]?.number)
                #expect(at - loggedOutAt < 1000, "signed out \(at - loggedOutAt) ms after the logout")
            }
            #expect(try await browser.events("signedOut", in: a).count == 1)
            // The session is over on the service too.
            let status = try await browser.run(in: a, "return fetch('/v1/session', {credentials: 'include'}).then(r => r.status)")
            #expect(status.int == 401)
        }) { await browser.close() }
    }

    @Test func unsafeCallsNeedTheCSRFTokenThatTheSDKAdds() async throws {
        let server = try await PageServer()
        let browser = try await Browser()
        // Closed before the test ends: a close left to a task could outlive the test process.
        try await running({
            let tab = try await browser.session.windowHandle()
            try await browser.open(server.baseURL + "/blank.html")
            _ = try await browser.run(in: tab, Self.login, [.string(PageServer.password)])
            let patch = "{method: 'PATCH', headers: {'Content-Type': 'application/json', 'If-Match': '1'}, body: JSON.stringify({theme: 'dark'})}"
            let plain = try await browser.run(
                in: tab,
                "return fetch('/v1/session/data', Object.assign({credentials: 'include'}, \(patch))).then(async r => [r.status, (await r.json()).error.code])"
            )
            #expect(plain == [403, "AUTH_1008"])
            let sdk = try await browser.run(in: tab, "return tessera.fetch('/v1/session/data', \(patch)).then(r => r.status)")
            #expect(sdk.int == 200)
        }) { await browser.close() }
    }

    @Test func aCSRFTokenThatChangedIsLearntAgainOnce() async throws {
        let server = try await PageServer()
        let browser = try await Browser()
        // Closed before the test ends: a close left to a task could outlive the test process.
        try await running({
            let tab = try await browser.session.windowHandle()
            try await browser.open(server.baseURL + "/blank.html")
            _ = try await browser.run(in: tab, Self.login, [.string(PageServer.password)])
            // The SDK holds a stale token (as after a sign-in in another tab that it missed).
            let outcome = try await browser.run(
                in: tab,
                """
                tessera.current.csrfToken = 'stale';
                const patch = {method: 'PATCH', headers: {'Content-Type': 'application/json', 'If-Match': '1'}, body: '{"k":1}'};
                const status = await tessera.fetch('/v1/session/data', patch).then(r => r.status);
                return [status, tessera.current.csrfToken !== 'stale', tessera.state]
                """
            )
            #expect(outcome == [200, true, "signedIn"])
            #expect(server.requests("PATCH", "/v1/session/data") == 2)
        }) { await browser.close() }
    }

    @Test func theIdleWarningComesBeforeTheDeadlineExtendKeepsTheSessionThenItEndsIdle() async throws {
        let server = try await PageServer(arguments: ["--idle-timeout", "6s", "--activity-granularity", "1s"])
        let browser = try await Browser()
        // Closed before the test ends: a close left to a task could outlive the test process.
        try await running({
            let tab = try await browser.session.windowHandle()
            try await browser.open(server.baseURL + "/blank.html?margin=3000")
            _ = try await browser.run(in: tab, Self.login, [.string(PageServer.password)])
            let firstDeadline = try #require(try await browser.run(in: tab, "return tessera.current.idleDeadline").number)

            try await waitUntil("expiring") { try await browser.events("expiring", in: tab).count == 1 }
            let warned = try #require(try await browser.events("expiring", in: tab).first?["at"]?.number)
            #expect(warned < firstDeadline)
            // Extending slides the deadline: no sign-out at the first one.
            #expect(try await browser.run(in: tab, "return tessera.extend().then(s => s !== null)").bool == true)
            let slid = try #require(try await browser.run(in: tab, "return tessera.current.idleDeadline").number)
            #expect(slid > firstDeadline)
            try await Task.sleep(for: .milliseconds(Int64(max(0, firstDeadline - Date().timeIntervalSince1970 * 1000)) + 500))
            #expect(try await browser.events("signedOut", in: tab).isEmpty)
            #expect(try await browser.run(in: tab, "return tessera.state").string == "signedIn")

            // Left alone, it ends idle, and the page is told why.
            try await waitUntil(timeout: .seconds(30), "signed out") { try await browser.events("signedOut", in: tab).count == 1 }
            #expect(try await browser.events("signedOut", in: tab).first?["reason"]?.string == "idle")
            #expect(try await browser.events("expiring", in: tab).count == 2)
        }) { await browser.close() }
    }

    @Test func aServiceKilledAndRestartedMidTrafficIsInvisible() async throws {
        let server = try await PageServer()
        let browser = try await Browser()
        // Closed before the test ends: a close left to a task could outlive the test process.
        try await running({
            let tab = try await browser.session.windowHandle()
            try await browser.open(server.baseURL + "/blank.html")
            _ = try await browser.run(in: tab, Self.login, [.string(PageServer.password)])
            // 5 s of traffic: a call every 100 ms, each awaited in the background.
            _ = try await browser.run(
                in: tab,
                """
                window.outcomes = [];
                window.traffic = (async () => {
                  const calls = [];
                  for (let i = 0; i < 50; i++) {
                    calls.push(tessera.fetch('/v1/session').then(r => r.status, e => e.code ?? String(e)));
                    await new Promise(r => setTimeout(r, 100));
                  }
                  window.outcomes = await Promise.all(calls);
                  return true;
                })();
                return true
                """
            )
            try await Task.sleep(for: .seconds(1))
            server.kill()
            try await Task.sleep(for: .seconds(1))
            try await server.restart()
            let done = try await browser.run(in: tab, "return window.traffic")
            #expect(done.bool == true)
            let outcomes = try await browser.run(in: tab, "return window.outcomes").array ?? []
            #expect(outcomes.count == 50)
            #expect(outcomes.allSatisfy { $0.int == 200 }, "\(outcomes)")
            #expect(try await browser.events("signedOut", in: tab).isEmpty)
            #expect(try await browser.run(in: tab, "return tessera.state").string == "signedIn")
        }) { await browser.close() }
    }
}
