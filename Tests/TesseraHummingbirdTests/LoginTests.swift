import Foundation
import HTTPTypes
import HummingbirdTesting
import NIOCore
import Testing
import Tessera
import TesseraHummingbird
import TesseraTestSupport

@Suite(.heavy) struct LoginTests {
    func attributes(_ setCookie: String) -> (name: String, value: String, attributes: [String: String]) {
        let parts = setCookie.split(separator: ";").map { $0.trimmingCharacters(in: .whitespaces) }
        let pair = parts[0].split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
        var attributes: [String: String] = [:]
        for part in parts.dropFirst() {
            let kv = part.split(separator: "=", maxSplits: 1)
            attributes[String(kv[0]).lowercased()] = kv.count > 1 ? String(kv[1]) : ""
        }
        return (String(pair[0]), String(pair[1]), attributes)
    }

    @Test func loginSetsAnHttpOnlyLaxCookieThatLivesToTheAbsoluteDeadline() async throws {
        let harness = try await ServiceHarness()
        try await harness.test { client in
            let (response, body) = try await client.json(
                "/v1/login",
                method: .post,
                body: #"{"username":"alice","password":"\#(ServiceHarness.password)"}"#
            )
            #expect(response.status == .ok)
            let cookie = self.attributes(try #require(response.headers[.setCookie]))
            #expect(cookie.name == "tessera_session")
            #expect(SessionToken(cookie.value) != nil)
            #expect(cookie.attributes["httponly"] == "")
            #expect(cookie.attributes["samesite"] == "Lax")
            #expect(cookie.attributes["path"] == "/")
            #expect(cookie.attributes["max-age"] == String(160 * 60))
            #expect(cookie.attributes["secure"] == nil)
            #expect(cookie.attributes["domain"] == nil)
            #expect(response.headers[.cacheControl] == "no-store")
            let session = try #require(body["session"] as? [String: Any])
            #expect(session["userId"] as? String == "usr_alice")
            #expect((body["user"] as? [String: Any])?["username"] as? String == "alice")
            #expect((body["csrfToken"] as? String)?.count == 43)
            // The token is only in the cookie, never in the body.
            #expect(!String(buffer: response.body).contains(cookie.value))
        }
    }

    @Test func secureCookiesUseTheHostPrefix() async throws {
        let harness = try await ServiceHarness(configuration: .init(cookie: SessionCookie(secure: true)))
        try await harness.test { client in
            let (response, _) = try await client.json(
                "/v1/login",
                method: .post,
                body: #"{"username":"alice","password":"\#(ServiceHarness.password)"}"#
            )
            let cookie = self.attributes(try #require(response.headers[.setCookie]))
            #expect(cookie.name == "__Host-tessera_session")
            #expect(cookie.attributes["secure"] == "")
            #expect(cookie.attributes["path"] == "/")
            #expect(cookie.attributes["domain"] == nil)

            let (whoami, _) = try await client.json("/v1/session", headers: [.cookie: "__Host-tessera_session=\(cookie.value)"])
            #expect(whoami.status == .ok)
        }
    }

    @Test func everyLoginCreatesANewSession() async throws {
        let harness = try await ServiceHarness()
        try await harness.test { client in
            let first = try await client.logIn()
            // Logging in while holding a session still gives a new id and a new token.
            let (response, body) = try await client.json(
                "/v1/login",
                method: .post,
                headers: first.headers,
                body: #"{"username":"alice","password":"\#(ServiceHarness.password)"}"#
            )
            #expect(response.status == .ok)
            let second = try #require((body["session"] as? [String: Any])?["id"] as? String)
            #expect(second != first.sessionID)
            #expect(!(response.headers[.setCookie] ?? "").contains(first.cookie))
        }
    }

    @Test func unknownUserAndWrongPasswordReadTheSameAndDoTheSameWork() async throws {
        let harness = try await ServiceHarness()
        try await harness.test { client in
            let before = harness.hasher.verifications.count
            let (wrong, wrongBody) = try await client.json("/v1/login", method: .post, body: #"{"username":"alice","password":"nope"}"#)
            #expect(harness.hasher.verifications.count == before + 1)
            let (unknown, unknownBody) = try await client.json("/v1/login", method: .post, body: #"{"username":"mallory","password":"nope"}"#)
            // The unknown user's attempt is checked against a decoy hash of the same cost.
            #expect(harness.hasher.verifications.count == before + 2)
            #expect(wrong.status == .unauthorized && unknown.status == .unauthorized)
            #expect(wrongBody.errorCode == "AUTH_1001" && unknownBody.errorCode == "AUTH_1001")
            let message = { (body: [String: Any]) in (body["error"] as? [String: Any])?["message"] as? String }
            #expect(message(wrongBody) == message(unknownBody))
        }
    }

    @Test func failedLoginsAreThrottledPerAccountUntilTheWindowEnds() async throws {
        let harness = try await ServiceHarness(throttle: .init(maxFailuresPerAccount: 3, maxFailuresPerClient: 100, window: .seconds(600)))
        try await harness.test { client in
            for attempt in 0..<3 {
                let (response, _) = try await client.json(
                    "/v1/login",
                    method: .post,
                    headers: [.forwardedFor: "198.51.100.\(attempt)"],
                    body: #"{"username":"alice","password":"wrong"}"#
                )
                #expect(response.status == .unauthorized)
            }
            // Even the right password is refused now, from any address, without a password check.
            let checks = harness.hasher.verifications.count
            let (throttled, body) = try await client.json(
                "/v1/login",
                method: .post,
                headers: [.forwardedFor: "203.0.113.9"],
                body: #"{"username":"alice","password":"\#(ServiceHarness.password)"}"#
            )
            #expect(throttled.status == .tooManyRequests)
            #expect(body.errorCode == "AUTH_1006")
            #expect(throttled.headers[.retryAfter] == "600")
            #expect(harness.hasher.verifications.count == checks)

            // Other accounts are unaffected.
            _ = try await client.logIn("bob")

            harness.clock.advance(by: .seconds(600))
            _ = try await client.logIn("alice")
        }
    }

    @Test func failedLoginsAreThrottledPerClientAddress() async throws {
        let harness = try await ServiceHarness(throttle: .init(maxFailuresPerAccount: 100, maxFailuresPerClient: 4, window: .seconds(300)))
        try await harness.test { client in
            for index in 0..<4 {
                let (response, _) = try await client.json(
                    "/v1/login",
                    method: .post,
                    headers: [.forwardedFor: "198.51.100.7"],
                    body: #"{"username":"user\#(index)","password":"wrong"}"#
                )
                #expect(response.status == .unauthorized)
            }
            harness.clock.advance(by: .seconds(100))
            let (throttled, body) = try await client.json(
                "/v1/login",
                method: .post,
                headers: [.forwardedFor: "198.51.100.7"],
                body: #"{"username":"alice","password":"\#(ServiceHarness.password)"}"#
            )
            #expect(throttled.status == .tooManyRequests)
            #expect(body.errorCode == "AUTH_1006")
            #expect(throttled.headers[.retryAfter] == "200")
            // Another address logs in.
            _ = try await client.logIn("alice", from: "198.51.100.8")
        }
        // The counters are in the store, where every node sees them. The successful login's
        // attempt, counted before its password was checked, was taken back.
        #expect(try await harness.store.throttleCounter(key: "client:198.51.100.7")?.failures == 4)
        #expect(try await harness.store.throttleCounter(key: "client:198.51.100.8")?.failures == 0)
    }

    @Test func concurrentAttemptsCannotAllPassTheLimit() async throws {
        // Twelve wrong passwords at once, for one account and from one address: each is counted
        // before its password is checked, so exactly the limit's worth are checked.
        let harness = try await ServiceHarness(throttle: .init(maxFailuresPerAccount: 3, maxFailuresPerClient: 5, window: .seconds(600)))
        let checks = harness.hasher.verifications.count
        let statuses = try await Self.wrongPasswordsAtOnce(12, harness: harness, address: "198.51.100.20") { _ in "alice" }
        #expect(statuses.filter { $0 == .unauthorized }.count == 3)
        #expect(statuses.filter { $0 == .tooManyRequests }.count == 9)
        #expect(harness.hasher.verifications.count - checks == 3)

        // The same from one address against twelve accounts: the client's limit holds.
        let perClient = try await Self.wrongPasswordsAtOnce(12, harness: harness, address: "198.51.100.21") { "nobody\($0)" }
        #expect(perClient.filter { $0 == .unauthorized }.count == 5)
        #expect(perClient.filter { $0 == .tooManyRequests }.count == 7)
    }

    @Test func concurrentRightPasswordsAreNeverThrottled() async throws {
        // Forty logins with the right password, eight at a time, for one account with a limit
        // of five: the attempts in flight are counted, but a right one waits for a place
        // instead of being refused.
        let harness = try await ServiceHarness(throttle: .init(maxFailuresPerAccount: 5, maxFailuresPerClient: 5, window: .seconds(600)))
        let statuses = try await harness.test { client in
            try await withThrowingTaskGroup(of: [HTTPResponse.Status].self) { group in
                for _ in 0..<8 {
                    group.addTask {
                        var statuses: [HTTPResponse.Status] = []
                        for _ in 0..<5 {
                            let (response, _) = try await client.json(
                                "/v1/login",
                                method: .post,
                                headers: [.forwardedFor: "198.51.100.30"],
                                body: #"{"username":"alice","password":"\#(ServiceHarness.password)"}"#
                            )
                            statuses.append(response.status)
                        }
                        return statuses
                    }
                }
                return try await group.reduce(into: [HTTPResponse.Status]()) { $0 += $1 }
            }
        }
        #expect(statuses.count == 40)
        #expect(statuses.allSatisfy { $0 == .ok }, "\(statuses.filter { $0 != .ok }.count) of 40 refused")
        let counter = try #require(try await harness.store.throttleCounter(key: "account:alice"))
        #expect(counter.failures == 0)
        #expect(counter.inFlight == 0)
    }

    @Test func rightAndWrongPasswordsAtOnceKeepTheLimitForTheWrongOnes() async throws {
        // Ten wrong and ten right passwords at once: at most three wrong ones are checked, and a
        // right one is refused only once three wrong ones have failed.
        let harness = try await ServiceHarness(throttle: .init(maxFailuresPerAccount: 3, maxFailuresPerClient: 100, window: .seconds(600)))
        let results = try await harness.test { client in
            try await withThrowingTaskGroup(of: (Bool, HTTPResponse.Status).self) { group in
                for index in 0..<20 {
                    let right = index.isMultiple(of: 2)
                    group.addTask {
                        let password = right ? ServiceHarness.password : "wrong"
                        let (response, _) = try await client.json(
                            "/v1/login",
                            method: .post,
                            body: #"{"username":"alice","password":"\#(password)"}"#
                        )
                        return (right, response.status)
                    }
                }
                return try await group.reduce(into: [(Bool, HTTPResponse.Status)]()) { $0.append($1) }
            }
        }
        let wrong = results.filter { !$0.0 }.map(\.1)
        let right = results.filter { $0.0 }.map(\.1)
        // A right password resets the account, so more than three wrong ones may be checked in
        // all, but never more than three between two right ones: every wrong one is refused or
        // answered 401, and no right one gets 401.
        #expect(wrong.allSatisfy { $0 == .unauthorized || $0 == .tooManyRequests })
        #expect(right.allSatisfy { $0 == .ok || $0 == .tooManyRequests })
        #expect(!right.contains(.unauthorized))
        let counter = try #require(try await harness.store.throttleCounter(key: "account:alice"))
        #expect(counter.inFlight == 0)
        #expect(counter.failures <= 3)
    }

    /// The statuses of `count` concurrent logins with a wrong password from `address`.
    static func wrongPasswordsAtOnce(
        _ count: Int,
        harness: ServiceHarness,
        address: String,
        username: @escaping @Sendable (Int) -> String
    ) async throws -> [HTTPResponse.Status] {
        try await harness.test { client in
            try await withThrowingTaskGroup(of: HTTPResponse.Status.self) { group in
                for index in 0..<count {
                    group.addTask {
                        let (response, _) = try await client.json(
                            "/v1/login",
                            method: .post,
                            headers: [.forwardedFor: address],
                            body: #"{"username":"\#(username(index))","password":"wrong"}"#
                        )
                        return response.status
                    }
                }
                return try await group.reduce(into: [HTTPResponse.Status]()) { $0.append($1) }
            }
        }
    }

    @Test func successfulLoginClearsTheAccountCounter() async throws {
        let harness = try await ServiceHarness(throttle: .init(maxFailuresPerAccount: 3))
        try await harness.test { client in
            for _ in 0..<2 {
                _ = try await client.json("/v1/login", method: .post, body: #"{"username":"alice","password":"wrong"}"#)
            }
            _ = try await client.logIn()
            for _ in 0..<2 {
                let (response, _) = try await client.json("/v1/login", method: .post, body: #"{"username":"alice","password":"wrong"}"#)
                #expect(response.status == .unauthorized)
            }
        }
    }

    @Test(arguments: [
        (#"{"username":"alice"}"#, "REQ_1001"),
        (#"{"username":5,"password":"x"}"#, "REQ_1001"),
        (#"not json"#, "REQ_1001"),
        (#"[1,2]"#, "REQ_1001"),
        (#"{"username":"","password":"x"}"#, "REQ_1003"),
        (#"{"username":"alice","password":""}"#, "REQ_1003"),
        // Lengths count Unicode scalars, as the document's maxLength does: 60 characters of two
        // scalars each are 120, past the label's 100.
        (#"{"username":"alice","password":"x","label":"\#(String(repeating: "e\u{301}", count: 60))"}"#, "REQ_1003"),
        (#"{"username":"\#(String(repeating: "e\u{301}", count: 129))","password":"x"}"#, "REQ_1003"),
    ])
    func malformedLoginBodiesAreRefusedWithACode(body: String, code: String) async throws {
        let harness = try await ServiceHarness()
        try await harness.test { client in
            let (response, json) = try await client.json("/v1/login", method: .post, body: body)
            #expect(response.status == .badRequest)
            #expect(json.errorCode == code)
        }
    }

    @Test func oversizedLoginBodyIsRefused() async throws {
        let harness = try await ServiceHarness()
        try await harness.test { client in
            let padding = String(repeating: "x", count: 20_000)
            let (response, json) = try await client.json(
                "/v1/login",
                method: .post,
                body: #"{"username":"alice","password":"\#(padding)"}"#
            )
            #expect(response.status == .contentTooLarge)
            #expect(json.errorCode == "REQ_1002")
        }
    }
}
