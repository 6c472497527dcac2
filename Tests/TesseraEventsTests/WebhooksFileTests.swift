import Foundation
import Testing
import Tessera
import TesseraEvents

/// The `--webhooks` file: what it accepts, and a sentence naming the place of what it refuses.
@Suite struct WebhooksFileTests {
    let secret = WebhookSecret.generate()
    let retention = Duration.seconds(7 * 86_400)

    func decode(_ text: String, environment: [String: String]? = nil, files: [String: String] = [:]) throws -> WebhooksFile {
        try WebhooksFile.decode(Data(text.utf8), environment: environment ?? ["APP_SECRET": self.secret], retention: self.retention) { files[$0] }
    }

    func problem(_ text: String, environment: [String: String]? = nil) -> String {
        do {
            _ = try self.decode(text, environment: environment)
            return "accepted"
        } catch {
            return "\(error)"
        }
    }

    @Test func aFileOfTwoEndpointsGivesTheirSettings() throws {
        let file = try self.decode(
            """
            {"webhooks": [
              {"name": "app", "url": "https://app.example.com/hooks", "secret": {"env": "APP_SECRET"},
               "events": ["session.revoked", "session.expired"], "timeout": "3s", "retryDelay": "1s", "retryFor": "2h"},
              {"name": "audit", "url": "http://127.0.0.1:9000/in", "secret": {"file": "/run/secret"}}
            ]}
            """,
            files: ["/run/secret": "\(self.secret) \(WebhookSecret.generate())\n"]
        )
        #expect(file.endpoints.map(\.name) == ["app", "audit"])
        let app = file.endpoints[0]
        #expect(app.kinds == [.sessionRevoked, .sessionExpired])
        #expect(app.timeout == .seconds(3) && app.retry.initialDelay == .seconds(1) && app.retry.retryFor == .seconds(7200))
        #expect(app.secrets == [try WebhookSecret(self.secret)])
        let audit = file.endpoints[1]
        #expect(audit.kinds == nil && audit.secrets.count == 2 && audit.timeout == .seconds(10) && audit.retry.retryFor == .seconds(86_400))
    }

    @Test func mistakesAreRefusedWithTheirPlaceAndNeverTheSecret() {
        let base = #"{"name": "app", "url": "https://a.example/h", "secret": {"env": "APP_SECRET"}"#
        #expect(self.problem("[]").contains("the top level must be an object"))
        #expect(self.problem(#"{"webhook": []}"#).contains("unknown key 'webhook'"))
        #expect(self.problem(#"{"webhooks": [\#(base), "retries": 3}]}"#).contains("webhooks[0]: unknown key 'retries'"))
        #expect(self.problem(#"{"webhooks": [{"name": "a b", "url": "https://a/h", "secret": {"env": "APP_SECRET"}}]}"#).contains("'name'"))
        #expect(self.problem(#"{"webhooks": [{"name": "a", "url": "ftp://a/h", "secret": {"env": "APP_SECRET"}}]}"#).contains("'url'"))
        #expect(self.problem(#"{"webhooks": [{"name": "a", "url": "https://u:p@a/h", "secret": {"env": "APP_SECRET"}}]}"#).contains("without credentials"))
        #expect(self.problem(#"{"webhooks": [{"name": "a", "url": "https://a/h", "secret": "whsec_x"}]}"#).contains("'secret' must be"))
        #expect(self.problem(#"{"webhooks": [{"name": "a", "url": "https://a/h", "secret": {"env": "MISSING"}}]}"#).contains("MISSING holds no secret"))
        let bad = self.problem(#"{"webhooks": [\#(base)}]}"#, environment: ["APP_SECRET": "not-a-secret-value"])
        #expect(bad.contains("whsec_") && !bad.contains("not-a-secret-value"))
        #expect(self.problem(#"{"webhooks": [\#(base), "events": ["session.exploded"]}]}"#).contains("not an event type"))
        #expect(self.problem(#"{"webhooks": [\#(base), "timeout": "2h"}]}"#).contains("'timeout'"))
        #expect(self.problem(#"{"webhooks": [\#(base), "retryFor": "30d"}]}"#).contains("shorter than the event retention"))
        #expect(self.problem(#"{"webhooks": [\#(base)}, \#(base)}]}"#).contains("names must be unique"))
        #expect(self.problem("{\"webhooks\": [").contains("not valid JSON"))
        #expect(self.problem(#"{"webhooks": [\#(base)}]}"#) == "accepted")
    }
}
