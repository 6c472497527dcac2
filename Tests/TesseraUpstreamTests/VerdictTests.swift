import NIOCore
import Testing
import TesseraUpstream

@Suite struct VerdictTests {
    let reader = UpstreamVerdictReader(
        configuration: .init(
            name: "portal",
            baseURL: "https://portal.example.com",
            login: .init(path: "/login"),
            blocked: .init(statuses: [423], phrases: ["account locked"])
        )
    )

    func verdict(_ status: Int, _ body: String = "", headers: [(name: String, value: String)] = [("Content-Type", "text/html")]) -> UpstreamVerdict {
        self.reader.verdict(on: UpstreamResponse(status: status, headers: headers, body: ByteBuffer(string: body)))
    }

    @Test func answersGetTheirTypedVerdicts() {
        #expect(self.verdict(200, "<h1>Your bookings</h1>") == .ok)
        #expect(self.verdict(401) == .expired(.status))
        #expect(self.verdict(419) == .expired(.status))
        #expect(self.verdict(440) == .expired(.status))
        #expect(self.verdict(200, "You are EITHER not logged in or your session has expired") == .expired(.phrase))
        #expect(self.verdict(200, "<p>Please use your Back button</p>") == .expired(.phrase))
        #expect(self.verdict(302, headers: [("Location", "/login?next=/x")]) == .expired(.loginRedirect))
        #expect(self.verdict(302, headers: [("Location", "https://portal.example.com/login/")]) == .expired(.loginRedirect))
        #expect(self.verdict(302, headers: [("Location", "/bookings/2")]) == .ok)
        #expect(self.verdict(429, headers: [("Retry-After", "7")]) == .rateLimited(retryAfter: 7))
        #expect(self.verdict(503) == .transient)
        #expect(self.verdict(500) == .ok)
        #expect(self.verdict(423) == .blocked)
        #expect(self.verdict(200, "Your account locked after failures") == .blocked)
    }

    @Test func phrasesAreNotLookedForInBinaryBodies() {
        #expect(self.verdict(200, "your session has expired", headers: [("Content-Type", "image/png")]) == .ok)
        #expect(self.verdict(200, "your session has expired", headers: [("Content-Type", "application/json")]) == .expired(.phrase))
    }
}
