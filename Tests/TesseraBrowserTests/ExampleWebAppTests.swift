import Foundation
import TesseraTestSupport
import TesseraWebDriver
import Testing

/// Examples/WebApp, served by `tessera serve --static-dir`, used as a person would: the form,
/// the greeting, the countdown, the sign-out.
@Suite(.heavy, .enabled(if: Browser.available, "needs Debian's chromium and chromium-driver"))
struct ExampleWebAppTests {
    static let folder = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Examples/WebApp").path

    @Test func thePageSignsInShowsTheUserAndTheCountdownAndSignsOut() async throws {
        let server = try await PageServer(staticDirectory: Self.folder)
        let browser = try await Browser()
        // Closed before the test ends: a close left to a task could outlive the test process.
        try await running({
            try await browser.session.navigate(to: server.baseURL + "/")
            try await waitUntil("the sign-in form shows") {
                try await browser.session.execute("return document.getElementById('signed-out').hidden").bool == false
            }
            // A wrong password first: told so, still signed out.
            try await browser.session.findElement("input[name=username]").sendKeys("alice")
            try await browser.session.findElement("input[name=password]").sendKeys("wrong")
            try await browser.session.findElement("#login button").click()
            try await waitUntil("the error shows") { try await browser.session.findElement("#error").text() == "Wrong username or password." }

            try await browser.session.execute("document.querySelector('input[name=password]').value = ''")
            try await browser.session.findElement("input[name=password]").sendKeys(PageServer.password)
            try await browser.session.findElement("#login button").click()
            try await waitUntil("signed in") { try await browser.session.findElement("#user").text() == "alice" }
            try await waitUntil("the countdown runs") { try await browser.session.findElement("#countdown").text().hasSuffix(" s") }

            // A reload keeps the session (the cookie), and the page shows it again.
            try await browser.session.refresh()
            try await waitUntil("signed in after a reload") { try await browser.session.findElement("#user").text() == "alice" }

            try await browser.session.findElement("#logout").click()
            try await waitUntil("signed out") { try await browser.session.findElement("#why").text() == "You signed out." }
            let status = try await browser.session.execute("return fetch('/v1/session', {credentials: 'include'}).then(r => r.status)")
            #expect(status.int == 401)
        }) { await browser.close() }
    }
}
