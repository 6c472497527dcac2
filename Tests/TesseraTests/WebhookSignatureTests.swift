import Foundation
import Testing
import Tessera

/// Standard Webhooks signatures: the specification's own example, rotation, and what a receiver
/// must refuse.
@Suite struct WebhookSignatureTests {
    // The example of the Standard Webhooks specification and its reference libraries.
    let secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
    let id = "msg_p5jXN8AQM9LWM0D4loKWxJek"
    let timestamp: Int64 = 1_614_265_330
    let body = Array(#"{"test": 2432232314}"#.utf8)
    let expected = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="

    var now: Date { Date(timeIntervalSince1970: TimeInterval(self.timestamp)) }

    @Test func theSignatureIsTheSpecificationsExample() throws {
        let header = WebhookSignature.header(id: self.id, timestamp: self.timestamp, body: self.body, secrets: [try WebhookSecret(self.secret)])
        #expect(header == self.expected)
        try WebhookSignature.verify(body: self.body, id: self.id, timestamp: "\(self.timestamp)", signatures: header, secret: try WebhookSecret(self.secret), now: self.now)
    }

    @Test func duringARotationEitherSecretVerifies() throws {
        let old = try WebhookSecret(self.secret)
        let new = try WebhookSecret(WebhookSecret.generate())
        let header = WebhookSignature.header(id: self.id, timestamp: self.timestamp, body: self.body, secrets: [new, old])
        #expect(header.split(separator: " ").count == 2)
        for secret in [old, new] {
            try WebhookSignature.verify(body: self.body, id: self.id, timestamp: "\(self.timestamp)", signatures: header, secret: secret, now: self.now)
        }
    }

    @Test func aReceiverRefusesATamperedBodyAnotherIdAStaleTimestampAndAnotherSecret() throws {
        let theSecret = try WebhookSecret(self.secret)
        func verify(body: [UInt8]? = nil, id: String? = nil, timestamp: String? = nil, signatures: String? = nil, secret: WebhookSecret? = nil, now: Date? = nil)
            throws(WebhookVerificationError)
        {
            try WebhookSignature.verify(
                body: body ?? self.body,
                id: id ?? self.id,
                timestamp: timestamp ?? "\(self.timestamp)",
                signatures: signatures ?? self.expected,
                secret: secret ?? theSecret,
                now: now ?? self.now
            )
        }
        #expect(throws: WebhookVerificationError.noMatchingSignature) { try verify(body: Array(#"{"test": 2432232315}"#.utf8)) }
        #expect(throws: WebhookVerificationError.noMatchingSignature) { try verify(id: "msg_other") }
        #expect(throws: WebhookVerificationError.noMatchingSignature) { try verify(secret: try WebhookSecret(WebhookSecret.generate())) }
        #expect(throws: WebhookVerificationError.noMatchingSignature) { try verify(signatures: "v2,abc v1,!!! v1") }
        #expect(throws: WebhookVerificationError.timestampOutOfTolerance) { try verify(now: self.now.addingTimeInterval(301)) }
        #expect(throws: WebhookVerificationError.timestampOutOfTolerance) { try verify(now: self.now.addingTimeInterval(-301)) }
        #expect(throws: WebhookVerificationError.malformedTimestamp) { try verify(timestamp: "1614265330.5") }
        try verify(now: self.now.addingTimeInterval(299))
    }

    @Test func secretsMustBeWhsecAndBase64AndNeverPrintThemselves() throws {
        #expect(throws: WebhookSecretError.self) { try WebhookSecret("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw") }
        #expect(throws: WebhookSecretError.self) { try WebhookSecret("whsec_not base64!") }
        #expect(throws: WebhookSecretError.self) { try WebhookSecret("whsec_" + Data(count: 8).base64EncodedString()) }
        let generated = WebhookSecret.generate()
        #expect(generated.hasPrefix("whsec_"))
        let secret = try WebhookSecret(generated)
        #expect(!"\(secret)".contains(String(generated.dropFirst(6).prefix(8))))
    }

    @Test func eventIdsAreULIDsThatSortByTime() {
        let early = SessionEvent.makeID(at: Date(timeIntervalSince1970: 1_800_000_000))
        let late = SessionEvent.makeID(at: Date(timeIntervalSince1970: 1_800_000_000.001))
        #expect(early.count == 30 && early.hasPrefix("evt_"))
        #expect(early < late)
        #expect(SessionEvent.makeID(at: Date(timeIntervalSince1970: 0)).hasPrefix("evt_0000000000"))
        let alphabet = Set("0123456789ABCDEFGHJKMNPQRSTVWXYZ")
        #expect(early.dropFirst(4).allSatisfy { alphabet.contains($0) })
    }
}
