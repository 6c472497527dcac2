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

    /// Phrases are looked for in text answers only, whatever the case of their content type.
    @Test func phrasesAreReadInTextAnswersOnly() {
        let phrase = "your session has expired"
        for type in ["text/html; charset=utf-8", "TEXT/PLAIN", "application/json", "application/problem+JSON", "application/xhtml+xml", "application/javascript", "Text/"] {
            #expect(self.verdict(200, phrase, headers: [("Content-Type", type)]) == .expired(.phrase), "\(type)")
        }
        for type in ["application/octet-stream", "image/png", "text", "application/pdf", "jso", ""] {
            #expect(self.verdict(200, phrase, headers: [("Content-Type", type)]) == .ok, "\(type)")
        }
        #expect(self.verdict(200, phrase, headers: []) == .expired(.phrase))
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

    @Test func fieldNamesMatchIgnoringTheCaseOfLettersOnly() {
        let response = UpstreamResponse(status: 200, headers: [("Content-Type", "text/html"), ("X-[A]", "1"), ("set-cookie", "a=1"), ("Set-Cookie", "b=2")])
        #expect(response.header("content-type") == "text/html")
        #expect(response.header("CONTENT-TYPE") == "text/html")
        #expect(response.header("content-typ") == nil)
        #expect(response.header("content-typf") == nil)
        // '[' and '{' differ by the bit that separates the cases of letters: not the same name.
        #expect(response.header("x-{a}") == nil)
        #expect(response.header("x-[a]") == "1")
        #expect(response.headers("SET-COOKIE") == ["a=1", "b=2"])
    }

    @Test func onlyTextAnswersWhoseStatusDoesNotDecideAreScanned() {
        let reader = UpstreamVerdictReader(configuration: fakeConfiguration(baseURL: "http://127.0.0.1:1"))
        func scan(_ status: Int, _ type: String?) -> Int {
            reader.bytesToScan(of: UpstreamResponse(status: status, headers: type.map { [("Content-Type", $0)] } ?? []), upTo: 4096)
        }
        #expect(scan(200, "text/html; charset=utf-8") == 4096)
        #expect(scan(200, "application/json") == 4096)
        #expect(scan(200, nil) == 4096)
        #expect(scan(200, "application/octet-stream") == 0)
        #expect(scan(200, "image/png") == 0)
        #expect(scan(401, "text/html") == 0)
        #expect(scan(503, "text/html") == 0)
        var configuration = fakeConfiguration(baseURL: "http://127.0.0.1:1")
        configuration.expiry.phrases = []
        let noPhrases = UpstreamVerdictReader(configuration: configuration)
        #expect(noPhrases.bytesToScan(of: UpstreamResponse(status: 200, headers: [("Content-Type", "text/html")]), upTo: 4096) == 0)
    }
}
