import Foundation
import Testing
import TesseraTestSupport
import TesseraUpstream

@Suite struct ConfigurationTests {
    static let yaml = """
        upstreams:
          - name: portal
            baseURL: https://portal.example.com
            login:
              path: /login
              fields:
                username: { env: PORTAL_USER }
                password: { file: /run/secrets/portal }
                action: { value: login }
              success: { cookie: SESSID, status: [302] }
            accounts:
              - name: first
                fields: { username: { env: PORTAL_USER_1 } }
              - name: second
                fields: { username: { env: PORTAL_USER_2 } }
            pool: { min: 2, max: 6 }
            keepAlive: { path: /home, interval: 15 }
            maxUses: 500
        """

    /// Inputs the fuzzer found (`Fuzz/Regressions/upstreams-file/`): each is refused with a
    /// sentence, none traps or expands without bound.
    @Test func filesTheFuzzerFoundAreRefusedWithASentence() throws {
        let directory = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("Fuzz/Regressions/upstreams-file")
        let names = try FileManager.default.contentsOfDirectory(atPath: directory.path).sorted()
        #expect(names.count >= 3)
        for name in names {
            let data = try Data(contentsOf: directory.appendingPathComponent(name))
            for json in [false, true] {
                #expect(throws: UpstreamConfigurationError.self, "\(name)") { try UpstreamsFile.decode(data, json: json) }
            }
        }
        // A mapping key that is not a string, and a duration past any use.
        #expect(throws: UpstreamConfigurationError.self) { try UpstreamsFile.decode(Data("upstreams: []\nx: {[a]: b}".utf8), json: false) }
        let infinite = Self.yaml.replacingOccurrences(of: "maxUses: 500", with: "maxUses: 500\n    borrowTimeout: .inf")
        do {
            _ = try UpstreamsFile.decode(Data(infinite.utf8), json: false)
            Issue.record("an infinite borrowTimeout was accepted")
        } catch let error as UpstreamConfigurationError {
            #expect(error.message.contains("borrowTimeout must be a number of seconds no larger than"))
        }
    }

    @Test func aYAMLFileDecodesWithDefaultsForWhatItLeavesOut() throws {
        let file = try UpstreamsFile.decode(Data(Self.yaml.utf8), json: false)
        let portal = try #require(file.upstreams.first)
        #expect(portal.name == "portal")
        #expect(portal.login.method == "POST")
        #expect(portal.login.encoding == "form")
        #expect(portal.login.fields["username"] == .init(env: "PORTAL_USER"))
        #expect(portal.login.fields["password"] == .init(file: "/run/secrets/portal"))
        #expect(portal.login.success == .init(status: [302], cookie: "SESSID"))
        #expect(portal.accounts.map(\.name) == ["first", "second"])
        #expect(portal.pool == .init(min: 2, max: 6))
        #expect(portal.keepAlive == .init(path: "/home", interval: 15))
        #expect(portal.maxUses == 500)
        // The issue's defaults.
        #expect(portal.expiry.statuses == [401, 419, 440])
        #expect(portal.expiry.phrases == ["you are either not logged in", "your session has expired", "please use your back button"])
        #expect(portal.expiry.loginRedirect)
        #expect(portal.maxAge == 120)
        #expect(portal.healthFreshness == 5)
        #expect(portal.blocked == .init())
    }

    @Test func theSameFileInJSONDecodesTheSame() throws {
        let json = """
            {"upstreams": [{"name": "portal", "baseURL": "https://portal.example.com",
              "login": {"path": "/login", "encoding": "json", "fields": {"username": {"env": "U"}, "password": {"env": "P"}}},
              "keepAlive": {"path": "/ping"}}]}
            """
        let file = try UpstreamsFile.decode(Data(json.utf8), json: true)
        let portal = try #require(file.upstreams.first)
        #expect(portal.login.encoding == "json")
        #expect(portal.keepAlive == .init(path: "/ping", interval: 20))
        #expect(portal.effectiveAccounts.map(\.name) == ["default"])
    }

    @Test(arguments: [
        ("name: Portal!", "the name must be"),
        ("baseURL: ftp://x", "baseURL must be"),
        ("login: { path: login }", "login.path must start"),
        ("pool: { min: 5, max: 2 }", "pool sizes"),
        ("login: { path: /login, fields: { password: { env: P, value: hunter2 } } }", "exactly one of env, file or value"),
        ("maxAge: 1", "maxAge must be"),
    ])
    func invalidUpstreamsAreRefusedWithTheirProblem(change: String, message: String) throws {
        var fields: [String: String] = [
            "name": "name: portal", "baseURL": "baseURL: https://portal.example.com", "login": "login: { path: /login }",
        ]
        let key = String(change.prefix { $0 != ":" })
        fields[key] = change
        let body = fields.values.sorted().map { "    " + $0 }.joined(separator: "\n")
        let text = "upstreams:\n  - \(body.dropFirst(4))"
        #expect {
            try UpstreamsFile.decode(Data(text.utf8), json: false)
        } throws: { error in
            "\(error)".contains(message)
        }
    }

    @Test func aMissingFieldIsNamedByItsPath() throws {
        let text = "upstreams:\n  - name: portal\n    login: { path: /login }\n"
        #expect {
            try UpstreamsFile.decode(Data(text.utf8), json: false)
        } throws: { error in
            "\(error)".contains("upstreams.[0]") && "\(error)".contains("'baseURL' is missing")
        }
    }

    @Test func aMisspeltKeyIsRefusedRatherThanIgnored() throws {
        let text = "upstreams:\n  - name: portal\n    baseURL: https://a.example\n    login: { path: /login }\n    keepalive: { interval: 5 }\n"
        #expect {
            try UpstreamsFile.decode(Data(text.utf8), json: false)
        } throws: { error in
            "\(error)".contains("upstreams[0]: unknown key 'keepalive'")
        }
        let field =
            #"{"upstreams": [{"name": "p", "baseURL": "https://a.example", "login": {"path": "/l", "fields": {"password": {"environment": "P"}}}}]}"#
        #expect {
            try UpstreamsFile.decode(Data(field.utf8), json: true)
        } throws: { error in
            "\(error)".contains("upstreams[0].login.fields.password: unknown key 'environment'")
        }
    }

    @Test func duplicateNamesAreRefused() throws {
        let one = "  - { name: portal, baseURL: 'https://a.example', login: { path: /login } }"
        #expect(throws: UpstreamConfigurationError.self) {
            try UpstreamsFile.decode(Data("upstreams:\n\(one)\n\(one)\n".utf8), json: false)
        }
    }

    @Test func credentialsComeFromTheEnvironmentOrAFileAndErrorsNeverShowThem() throws {
        let directory = TemporaryDirectory()
        let secret = directory.url.appendingPathComponent("secret")
        try Data("s3cr3t-value\n".utf8).write(to: secret)
        let environment = ["PORTAL_USER": "alice"]
        typealias Source = UpstreamConfiguration.FieldSource
        #expect(try Source(env: "PORTAL_USER").resolve(field: "username", upstream: "p", environment: environment) == "alice")
        #expect(try Source(file: secret.path).resolve(field: "password", upstream: "p", environment: environment) == "s3cr3t-value")
        #expect(try Source(value: "login").resolve(field: "action", upstream: "p", environment: environment) == "login")
        #expect {
            try Source(env: "MISSING").resolve(field: "password", upstream: "p", environment: environment)
        } throws: { error in
            "\(error)" == "upstream 'p': login field 'password': the environment variable MISSING is not set"
        }
    }
}
