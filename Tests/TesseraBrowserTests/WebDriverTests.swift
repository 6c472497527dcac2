import Foundation
import TesseraTestSupport
import TesseraWebDriver
import Testing

/// The project's WebDriver client against chromedriver and headless Chromium: what the browser
/// tests use, and what browser-driven upstream sessions will (cookies, page source, windows,
/// elements, errors).
@Suite(.heavy, .enabled(if: Browser.available, "needs Debian's chromium and chromium-driver"))
struct WebDriverTests {
    @Test func cookiesSourceWindowsElementsAndErrorsAsTheProtocolSays() async throws {
        let server = try await PageServer()
        let browser = try await Browser()
        // Closed before the test ends: a close left to a task could outlive the test process.
        try await running({
            let session = browser.session
            try await session.navigate(to: server.baseURL + "/blank.html")
            #expect(try await session.currentURL() == server.baseURL + "/blank.html")
            #expect(try await session.pageSource().contains("<title>blank</title>"))

            // Cookies: the service's HttpOnly session cookie after a login, one added by hand, all gone.
            _ = try await session.execute(
                "return tessera.login({username: 'alice', password: arguments[0]}).then(() => true)",
                [.string(PageServer.password)]
            )
            let cookies = try await session.cookies()
            let sessionCookie = try #require(cookies.first { $0.name == "tessera_session" })
            #expect(sessionCookie.httpOnly)
            #expect(sessionCookie.value.hasPrefix("tss_"))
            try await session.addCookie(name: "probe", value: "1")
            #expect(try await session.cookies().contains { $0.name == "probe" && $0.value == "1" })
            try await session.deleteAllCookies()
            #expect(try await session.cookies().isEmpty)

            // Script values in and out.
            let echoed = try await session.execute("return [arguments[0], arguments[1] + 1, arguments[2]]", ["a", 41, ["k": true]])
            #expect(echoed == ["a", 42, ["k": true]])

            // Windows: a second one, switched to, closed.
            let first = try await session.windowHandle()
            let second = try await session.newWindow()
            #expect(Set(try await session.windowHandles()) == [first, second])
            try await session.switchToWindow(second)
            let left = try await session.closeWindow()
            #expect(left == [first])
            try await session.switchToWindow(first)

            // Elements and the protocol's errors.
            try await session.execute("document.body.innerHTML = '<p id=x data-k=v>hello</p>'")
            let element = try await session.findElement("#x")
            #expect(try await element.text() == "hello")
            #expect(try await element.attribute("data-k") == "v")
            let missing = await #expect(throws: WebDriverError.self) { try await session.findElement("#nothing") }
            #expect(missing?.error == "no such element")
            let thrown = await #expect(throws: WebDriverError.self) { try await session.execute("throw new Error('boom')") }
            #expect(thrown?.error == "javascript error")
            #expect(thrown?.message.contains("boom") == true)
        }) { await browser.close() }
    }
}
