import Foundation
import Testing
import TesseraUpstream

/// The browser kind's part of the upstreams file: steps, success on the page, browser limits.
@Suite struct BrowserConfigurationTests {
    static let yaml = """
        upstreams:
          - name: portal
            kind: browser
            baseURL: https://portal.example.com
            login:
              path: /login
              fields:
                username: { env: PORTAL_USER }
                password: { file: /run/secrets/portal }
              steps:
                - goto: /login
                - waitFor: { selector: "#username", timeout: 15 }
                - fill: { selector: "#username", field: username }
                - fill: { selector: "#password", field: password }
                - fill: { selector: "#remember", value: "yes" }
                - press: { selector: "#password", key: Enter }
                - click: "button[type=submit]"
                - submit: "form#login"
                - read: page
              success: { url: "/home*", selector: "#logout" }
            keepAlive: { path: /home, interval: 20, waitFor: { text: "Welcome", timeout: 8 } }
            browser: { commandTimeout: 20, maxMemoryMB: 512, arguments: ["--lang=en"] }
        """

    @Test func aBrowserUpstreamDecodesItsStepsAndLimits() throws {
        let file = try UpstreamsFile.decode(Data(Self.yaml.utf8), json: false)
        let portal = try #require(file.upstreams.first)
        #expect(portal.kind == .browser)
        #expect(
            portal.login.steps == [
                .goto("/login"),
                .waitFor(.init(selector: "#username"), timeout: 15),
                .fill(selector: "#username", value: .field("username")),
                .fill(selector: "#password", value: .field("password")),
                .fill(selector: "#remember", value: .source(.init(value: "yes"))),
                .press(selector: "#password", key: "Enter"),
                .click("button[type=submit]"),
                .submit("form#login"),
                .read(.page, label: nil),
            ]
        )
        #expect(portal.login.success.condition == BrowserCondition(selector: "#logout", url: "/home*"))
        #expect(portal.keepAlive.waitFor == BrowserWait(text: "Welcome", timeout: 8))
        #expect(portal.browser == .init(commandTimeout: 20, maxMemoryMB: 512, arguments: ["--lang=en"]))
        // What the file leaves out: the HTTP kind, the browser defaults.
        let plain = try UpstreamsFile.decode(Data(ConfigurationTests.yaml.utf8), json: false).upstreams[0]
        #expect(plain.kind == .http)
        #expect(plain.browser == .init(commandTimeout: 30, loginTimeout: 60, maxMemoryMB: 1024, maxReadBytes: 262_144))
    }

    @Test func stepsRoundTripThroughJSON() throws {
        let file = try UpstreamsFile.decode(Data(Self.yaml.utf8), json: false)
        let json = try JSONEncoder().encode(file)
        #expect(try UpstreamsFile.decode(json, json: true) == file)
    }

    @Test(arguments: [
        ("- goto: /login\n        - click: \"#go\"\n      success: {}", "a browser upstream needs login.success with a selector, url or text"),
        ("- click: \"#go\"\n        - tap: \"#x\"\n      success: { selector: a }", "a step is an object with one of click, fill, goto, press, read, submit, waitFor"),
        ("- goto: /login\n          click: \"#x\"\n      success: { selector: a }", "a step is an object with one of"),
        ("- fill: { selector: \"#u\", field: user, value: x }\n      success: { selector: a }", "a fill step takes one of field, env, file or value"),
        ("- fill: { selector: \"#u\", field: nobody }\n      success: { selector: a }", "fills the field 'nobody', which account 'default' does not have"),
        ("- fill: { selector: \"#u\", colour: red }\n      success: { selector: a }", "a fill step has no key 'colour'"),
        ("- goto: https://elsewhere.example/\n      success: { selector: a }", "goto takes a path below the base URL"),
        ("- waitFor: { selector: a, timeout: 1000 }\n      success: { selector: a }", "waitFor.timeout must be more than 0 and at most 120 seconds"),
        ("- press: { selector: a, key: Hyper }\n      success: { selector: a }", "press takes one character or one of"),
        ("- read: everything\n      success: { selector: a }", "read is page, source, url"),
    ])
    func aBadStepIsRefusedWithItsPlace(steps: String, message: String) throws {
        let yaml = """
            upstreams:
              - name: portal
                kind: browser
                baseURL: https://portal.example.com
                login:
                  path: /login
                  steps:
                    \(steps)
            """
        do {
            _ = try UpstreamsFile.decode(Data(yaml.utf8), json: false)
            Issue.record("accepted: \(steps)")
        } catch let error as UpstreamConfigurationError {
            #expect(error.description.contains(message), "\(error)")
        }
    }

    @Test func aBrowserUpstreamWithoutStepsOrWithAnUnknownBrowserKeyIsRefused() throws {
        let noSteps = """
            upstreams:
              - { name: portal, kind: browser, baseURL: "https://p.example", login: { path: /login, success: { selector: a } } }
            """
        #expect(throws: UpstreamConfigurationError.self) { try UpstreamsFile.decode(Data(noSteps.utf8), json: false) }
        let unknown = Self.yaml.replacingOccurrences(of: "maxMemoryMB: 512", with: "maxMemoryMB: 512, headful: true")
        do {
            _ = try UpstreamsFile.decode(Data(unknown.utf8), json: false)
            Issue.record("an unknown browser key was accepted")
        } catch let error as UpstreamConfigurationError {
            #expect(error.message.contains("upstreams[0].browser: unknown key 'headful'"))
        }
        let tooMany = Self.yaml.replacingOccurrences(of: "    browser:", with: "    pool: { max: 64 }\n    browser:")
        #expect(throws: UpstreamConfigurationError.self) { try UpstreamsFile.decode(Data(tooMany.utf8), json: false) }
    }

    @Test func urlPatternsMatchPathsOrWholeURLs() {
        #expect(BrowserCondition.matches("https://p.example/home?tab=1", pattern: "/home*"))
        #expect(BrowserCondition.matches("https://p.example/home", pattern: "/home"))
        #expect(!BrowserCondition.matches("https://p.example/homes", pattern: "/home"))
        #expect(BrowserCondition.matches("https://p.example/a/b/c", pattern: "/a/*/c"))
        #expect(BrowserCondition.matches("https://p.example/login?next=/x", pattern: "https://p.example/login*"))
        #expect(!BrowserCondition.matches("https://p.example/a", pattern: "https://other.example/*"))
        #expect(BrowserCondition.matches("https://p.example/", pattern: "*"))
    }

    @Test func aPageIsJudgedByItsStatusURLAndSource() {
        let reader = UpstreamVerdictReader(configuration: UpstreamConfiguration(name: "p", baseURL: "https://p.example", login: .init(path: "/login")))
        #expect(reader.verdict(onPage: .init(url: "https://p.example/home", status: 200, source: "<h1>Welcome</h1>")) == .ok)
        #expect(reader.verdict(onPage: .init(url: "https://p.example/home", status: nil, source: "<p>You are either NOT logged in</p>")) == .expired(.phrase))
        #expect(reader.verdict(onPage: .init(url: "https://p.example/login?next=/home", status: 200, source: "")) == .expired(.loginRedirect))
        #expect(reader.verdict(onPage: .init(url: "https://p.example/home", status: 401, source: "")) == .expired(.status))
        #expect(reader.verdict(onPage: .init(url: "https://p.example/home", status: 503, source: "")) == .transient)
    }
}
