import Foundation
import Testing
import TesseraUpstream

@Suite struct CookieJarTests {
    let now = Date(timeIntervalSince1970: 1_800_000_000)
    let site = URL(string: "https://www.example.com/account/login")!

    func url(_ text: String) -> URL { URL(string: text)! }

    @Test func hostOnlyCookiesGoToTheirHostAloneAndDomainCookiesToSubdomains() {
        var jar = CookieJar()
        jar.store(setCookie: ["host=1; Path=/", "wide=2; Domain=example.com; Path=/"], from: self.site, now: self.now)
        #expect(jar.header(for: self.url("https://www.example.com/"), now: self.now) == "host=1; wide=2")
        #expect(jar.header(for: self.url("https://api.example.com/"), now: self.now) == "wide=2")
        #expect(jar.header(for: self.url("https://example.org/"), now: self.now) == nil)
    }

    @Test func aDomainTheHostDoesNotMatchIsRejected() {
        var jar = CookieJar()
        jar.store(setCookie: ["evil=1; Domain=other.com"], from: self.site, now: self.now)
        #expect(jar.all(now: self.now).isEmpty)
    }

    @Test func pathsMatchBySegmentAndTheDefaultPathIsTheRequestsDirectory() {
        var jar = CookieJar()
        jar.store(setCookie: ["scoped=1; Path=/account", "default=2"], from: self.site, now: self.now)
        #expect(jar.header(for: self.url("https://www.example.com/account/home"), now: self.now) == "scoped=1; default=2")
        #expect(jar.header(for: self.url("https://www.example.com/accounting"), now: self.now) == nil)
        #expect(jar.header(for: self.url("https://www.example.com/"), now: self.now) == nil)
        #expect(jar.all(now: self.now).first { $0.name == "default" }?.path == "/account")
    }

    @Test func longerPathsComeFirst() {
        var jar = CookieJar()
        jar.store(setCookie: ["a=root; Path=/", "a=deep; Path=/account"], from: self.site, now: self.now)
        #expect(jar.header(for: self.url("https://www.example.com/account/x"), now: self.now) == "a=deep; a=root")
    }

    @Test func expiryIsHonouredWithMaxAgeOverExpires() {
        var jar = CookieJar()
        jar.store(
            setCookie: ["short=1; Max-Age=60; Expires=Wed, 01 Jan 2099 00:00:00 GMT", "dated=2; Expires=Wed, 01 Jan 2020 00:00:00 GMT"],
            from: self.site,
            now: self.now
        )
        #expect(jar.header(for: self.site, now: self.now) == "short=1")
        #expect(jar.header(for: self.site, now: self.now.addingTimeInterval(61)) == nil)
    }

    @Test func aLaterCookieReplacesAnEarlierOneAndMaxAgeZeroDeletesIt() {
        var jar = CookieJar()
        jar.store(setCookie: ["SESSID=old; Path=/"], from: self.site, now: self.now)
        jar.store(setCookie: ["SESSID=new; Path=/"], from: self.site, now: self.now)
        #expect(jar.header(for: self.site, now: self.now) == "SESSID=new")
        jar.store(setCookie: ["SESSID=; Path=/; Max-Age=0"], from: self.site, now: self.now)
        #expect(jar.header(for: self.site, now: self.now) == nil)
    }

    @Test func secureCookiesAreOnlyTakenAndSentOverHTTPS() {
        var jar = CookieJar()
        jar.store(setCookie: ["plain=1; Secure"], from: self.url("http://www.example.com/"), now: self.now)
        #expect(jar.all(now: self.now).isEmpty)
        jar.store(setCookie: ["safe=1; Secure; Path=/"], from: self.site, now: self.now)
        #expect(jar.header(for: self.url("https://www.example.com/"), now: self.now) == "safe=1")
        #expect(jar.header(for: self.url("http://www.example.com/"), now: self.now) == nil)
    }

    @Test func anIPAddressHostMatchesOnlyItself() {
        var jar = CookieJar()
        jar.store(setCookie: ["a=1; Path=/"], from: self.url("http://127.0.0.1:8080/login"), now: self.now)
        #expect(jar.header(for: self.url("http://127.0.0.1:8080/x"), now: self.now) == "a=1")
        #expect(jar.header(for: self.url("http://27.0.0.1/x"), now: self.now) == nil)
    }
}
