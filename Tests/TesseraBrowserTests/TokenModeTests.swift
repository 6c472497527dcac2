import Foundation
import TesseraTestSupport
import TesseraWebDriver
import Testing

/// tessera.js in token mode: the access token in memory, one refresh for all the tabs of the
/// origin, and no refresh that writes a session back after a sign-out.
@Suite(.heavy, .serialized, .timeLimit(.minutes(5)), .enabled(if: Browser.available, "needs Debian's chromium and chromium-driver"))
struct TokenModeTests {
    static let login = "return tessera.login({username: 'alice', password: arguments[0]}).then(() => tessera.state)"

    @Test func threeTabsOf50CallsWithAnExpiredTokenShareOneRefresh() async throws {
        let server = try await PageServer()
        let browser = try await Browser()
        // Closed before the test ends: a close left to a task could outlive the test process.
        try await running({
            let first = try await browser.session.windowHandle()
            try await browser.open(server.baseURL + "/blank.html?mode=token")
            #expect(try await browser.run(in: first, Self.login, [.string(PageServer.password)]).string == "signedIn")
            // Two more tabs: they get the tokens from the first (memory only, never stored).
            let tabs = [
                first, try await browser.openTab(server.baseURL + "/blank.html?mode=token"),
                try await browser.openTab(server.baseURL + "/blank.html?mode=token"),
            ]
            for tab in tabs {
                try await waitUntil("the tab has the tokens") { try await browser.run(in: tab, "return tessera.state").string == "signedIn" }
            }
            #expect(server.requests("POST", "/v1/token/refresh") == 0)

            // An hour later on the tabs' clocks: every access token has expired. 50 calls at once
            // in each tab.
            for tab in tabs { _ = try await browser.run(in: tab, "window.clockOffset = 3600 * 1000; return true") }
            for tab in tabs { _ = try await browser.run(in: tab, "window.results = window.burst(50); return true") }
            for tab in tabs {
                let statuses = try await browser.run(in: tab, "return window.results").array ?? []
                #expect(statuses.count == 50)
                #expect(statuses.allSatisfy { $0.int == 200 }, "\(statuses.prefix(5))")
            }
            #expect(server.requests("POST", "/v1/token/refresh") == 1)
            // The 150 calls, and at most one check of the session per tab: a tab that comes to the
            // front (the test switching to it) an hour after its last read asks the service.
            let reads = server.requests("GET", "/v1/session")
            #expect((150...153).contains(reads), "\(reads)")
            // Every tab holds the one new pair.
            let tokens = Set(try await tabs.asyncMap { try await browser.run(in: $0, "return tessera.tokens.accessToken").string ?? "" })
            #expect(tokens.count == 1)
        }) { await browser.close() }
    }

    @Test func aRefreshThatCompletesAfterLogoutLeavesTheTabSignedOut() async throws {
        let server = try await PageServer()
        let browser = try await Browser()
        // Closed before the test ends: a close left to a task could outlive the test process.
        try await running({
            let tab = try await browser.session.windowHandle()
            try await browser.open(server.baseURL + "/blank.html?mode=token")
            _ = try await browser.run(in: tab, Self.login, [.string(PageServer.password)])
            // The refresh's answer is held for a second; logout comes meanwhile.
            let outcome = try await browser.run(
                in: tab,
                """
                window.delayRefreshes = 1000;
                window.clockOffset = 3600 * 1000;
                const refreshing = tessera.accessToken().then(() => 'token', e => e.code);
                await new Promise(r => setTimeout(r, 300));
                await tessera.logout();
                const result = await refreshing;
                await new Promise(r => setTimeout(r, 1200));
                return [result, tessera.state, tessera.tokens === null, tessera.current === null]
                """
            )
            #expect(outcome == ["signed_out", "signedOut", true, true], "\(outcome)")
            #expect(server.requests("POST", "/v1/token/refresh") == 1)
            let calls = try await browser.run(in: tab, "return window.burst(3)")
            #expect(calls == ["signed_out", "signed_out", "signed_out"])
            #expect(try await browser.events("signedOut", in: tab).map { $0["reason"]?.string } == ["logout"])
        }) { await browser.close() }
    }
}
