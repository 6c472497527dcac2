import Foundation
import Testing

@testable import Tessera

@Suite struct PolicyTests {
    @Test(arguments: [
        ("90s", Duration.seconds(90)), ("15m", .seconds(900)), ("2h", .seconds(7200)), ("1d", .seconds(86400)),
        ("250ms", .milliseconds(250)), ("45", .seconds(45)), (" 3m ", .seconds(180)),
    ])
    func durationsParse(text: String, expected: Duration) {
        #expect(Duration(parsing: text) == expected)
    }

    @Test(arguments: ["", "m", "-5m", "5 m", "1.5h", "15min", "99999999999999999h"])
    func malformedDurationsAreRejected(text: String) {
        #expect(Duration(parsing: text) == nil)
    }

    @Test func durationsPrintInTheLargestWholeUnit() {
        #expect(Duration.seconds(900).humanReadable == "15m")
        #expect(Duration.seconds(9600).humanReadable == "160m")
        #expect(Duration.seconds(7200).humanReadable == "2h")
        #expect(Duration.seconds(90).humanReadable == "90s")
        #expect(Duration.milliseconds(1500).humanReadable == "1500ms")
    }

    @Test func defaultPolicyMatchesTheDesign() {
        let policy = SessionPolicy()
        #expect(policy.idleTimeout == .seconds(15 * 60))
        #expect(policy.absoluteTimeout == .seconds(160 * 60))
        #expect(policy.activityGranularity == .seconds(60))
        #expect(policy.clientRefreshMargin == .seconds(120))
        #expect(policy.problems.isEmpty)
    }

    @Test func unsoundPoliciesAreReported() {
        #expect(!SessionPolicy(idleTimeout: .zero).problems.isEmpty)
        #expect(!SessionPolicy(idleTimeout: .seconds(30), activityGranularity: .seconds(60)).problems.isEmpty)
    }

    func session(lastSeen: Date, idle: TimeInterval, absolute: TimeInterval, revokedAt: Date? = nil) -> Session {
        Session(
            id: "ses_x",
            tokenHash: TokenHash(hashing: "x"),
            userID: "u",
            createdAt: lastSeen,
            lastSeenAt: lastSeen,
            idleExpiresAt: lastSeen.addingTimeInterval(min(idle, absolute)),
            absoluteExpiresAt: lastSeen.addingTimeInterval(absolute),
            revokedAt: revokedAt,
            csrfToken: "c"
        )
    }

    @Test func deadlinesAreInclusiveAndRevocationWins() {
        let start = Date(timeIntervalSince1970: 1_800_000_000)
        let session = self.session(lastSeen: start, idle: 900, absolute: 9600)
        #expect(session.endReason(at: start.addingTimeInterval(899.999)) == nil)
        #expect(session.endReason(at: start.addingTimeInterval(900)) == .idle)
        let capped = self.session(lastSeen: start, idle: 900, absolute: 600)
        #expect(capped.endReason(at: start.addingTimeInterval(600)) == .absolute)
        let revoked = self.session(lastSeen: start, idle: 900, absolute: 9600, revokedAt: start)
        #expect(revoked.endReason(at: start.addingTimeInterval(10_000)) == .revoked)
    }

    @Test func mergePatchFollowsRFC7396() {
        let data: [String: JSONValue] = ["a": .number(1), "b": .object(["c": .string("x"), "d": .bool(true)]), "e": .null]
        let merged = data.merging(patch: ["a": .null, "b": .object(["c": .null, "f": .number(2)]), "g": .array([.string("y")])])
        #expect(merged == ["b": .object(["d": .bool(true), "f": .number(2)]), "e": .null, "g": .array([.string("y")])])
    }

    @Test func manualClockMovesOnlyWhenTold() {
        let clock = ManualClock()
        let start = clock.now
        clock.advance(by: .seconds(16 * 60))
        #expect(clock.now.timeIntervalSince(start) == 960)
    }
}
