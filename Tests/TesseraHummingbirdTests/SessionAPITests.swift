import Foundation
import HTTPTypes
import HummingbirdTesting
import NIOCore
import Testing
import Tessera
import TesseraHummingbird
import TesseraTestSupport

@Suite(.heavy) struct SessionAPITests {
    @Test func whoAmIWorksWithTheCookieAndWithABearerToken() async throws {
        let harness = try await ServiceHarness()
        try await harness.test { client in
            let browser = try await client.logIn()
            let (byCookie, cookieBody) = try await client.json("/v1/session", headers: browser.headers)
            #expect(byCookie.status == .ok)
            #expect(byCookie.headers[.cacheControl] == "no-store")
            #expect(byCookie.headers[.eTag] == #""1""#)
            #expect((cookieBody["session"] as? [String: Any])?["id"] as? String == browser.sessionID)
            #expect((cookieBody["user"] as? [String: Any])?["username"] as? String == "alice")
            #expect(cookieBody["csrfToken"] as? String == browser.csrfToken)

            let (byBearer, bearerBody) = try await client.json("/v1/session", headers: [.authorization: "Bearer \(browser.cookie)"])
            #expect(byBearer.status == .ok)
            #expect(bearerBody["csrfToken"] == nil)
        }
    }

    @Test func whoAmIReadsEachUserOnceNotOnEveryRequest() async throws {
        let harness = try await ServiceHarness()
        try await harness.test { client in
            let browser = try await client.logIn()
            for _ in 0..<10 {
                let (_, body) = try await client.json("/v1/session", headers: browser.headers)
                #expect((body["user"] as? [String: Any])?["username"] as? String == "alice")
            }
            #expect(harness.store.count("userByID") == 1)
        }
    }

    @Test func whoAmIReportsTheSlidDeadlines() async throws {
        let harness = try await ServiceHarness()
        try await harness.test { client in
            let browser = try await client.logIn()
            let start = harness.clock.now
            harness.clock.advance(by: .seconds(300))
            let (_, body) = try await client.json("/v1/session", headers: browser.headers)
            let session = try #require(body["session"] as? [String: Any])
            let expected = start.addingTimeInterval(300 + 900).formatted(Date.ISO8601FormatStyle(includingFractionalSeconds: true))
            #expect(session["idleExpiresAt"] as? String == expected)
            #expect(
                session["lastSeenAt"] as? String == start.addingTimeInterval(300).formatted(Date.ISO8601FormatStyle(includingFractionalSeconds: true))
            )
        }
    }

    @Test func validationOrderGivesStableCodes() async throws {
        let harness = try await ServiceHarness()
        try await harness.test { client in
            let (missing, missingBody) = try await client.json("/v1/session")
            #expect(missing.status == .unauthorized && missingBody.errorCode == "AUTH_1004")
            #expect(missing.headers[.wwwAuthenticate] == #"Bearer realm="tessera""#)
            // Nothing to clear when no cookie came.
            #expect(missing.headers[.setCookie] == nil)

            let (malformed, malformedBody) = try await client.json("/v1/session", headers: [.authorization: "Bearer nonsense"])
            #expect(malformed.status == .unauthorized && malformedBody.errorCode == "AUTH_1003")
            #expect(malformed.headers[.wwwAuthenticate]?.contains(#"error="invalid_token""#) == true)
            #expect(malformed.headers[.setCookie] == nil)

            let unknown = SessionToken.generate().rawValue
            let (_, unknownBody) = try await client.json("/v1/session", headers: [.authorization: "Bearer \(unknown)"])
            #expect(unknownBody.errorCode == "AUTH_1003")

            let browser = try await client.logIn()
            harness.clock.advance(by: .seconds(16 * 60))
            let (idle, idleBody) = try await client.json("/v1/session", headers: browser.headers)
            #expect(idle.status == .unauthorized && idleBody.errorCode == "AUTH_1002" && idleBody.errorReason == "idle")
            // A dead cookie is cleared, so the browser stops sending it.
            #expect(idle.headers[.setCookie]?.contains("Max-Age=0") == true)
        }
    }

    @Test func cookieAuthenticatedUnsafeRequestsNeedTheCSRFToken() async throws {
        let harness = try await ServiceHarness()
        try await harness.test { client in
            let browser = try await client.logIn()
            let (missing, missingBody) = try await client.json("/v1/logout", method: .post, headers: browser.headers)
            #expect(missing.status == .forbidden && missingBody.errorCode == "AUTH_1008")

            var wrong = browser.headers
            wrong[.csrfToken] = String(browser.csrfToken.reversed())
            let (mismatch, mismatchBody) = try await client.json("/v1/logout", method: .post, headers: wrong)
            #expect(mismatch.status == .forbidden && mismatchBody.errorCode == "AUTH_1008")

            // Nothing happened: the session is still valid.
            let (still, _) = try await client.json("/v1/session", headers: browser.headers)
            #expect(still.status == .ok)

            // Safe methods need no token; bearer requests need none either.
            let (bearer, _) = try await client.json(
                "/v1/session/data",
                method: .patch,
                headers: [.authorization: "Bearer \(browser.cookie)", .ifMatch: #""1""#],
                body: #"{"theme":"dark"}"#
            )
            #expect(bearer.status == .ok)
        }
    }

    @Test func logoutRevokesDurablyAndClearsTheCookie() async throws {
        let harness = try await ServiceHarness()
        try await harness.test { client in
            let browser = try await client.logIn()
            let (logout, _) = try await client.json("/v1/logout", method: .post, headers: browser.unsafeHeaders)
            #expect(logout.status == .noContent)
            let cleared = try #require(logout.headers[.setCookie])
            #expect(cleared.hasPrefix("tessera_session=;") && cleared.contains("Max-Age=0"))

            let (after, body) = try await client.json("/v1/session", headers: browser.headers)
            #expect(after.status == .unauthorized && body.errorCode == "AUTH_1002" && body.errorReason == "revoked")
            let stored = try #require(try await harness.store.session(id: browser.sessionID))
            #expect(stored.revokedAt != nil && stored.revocationReason == "logout")
        }
    }

    @Test func usersListAndRevokeTheirOwnSessions() async throws {
        let harness = try await ServiceHarness()
        try await harness.test { client in
            let laptop = try await client.logIn()
            let phone = try await client.logIn()
            let tablet = try await client.logIn()
            let bob = try await client.logIn("bob")

            let (list, body) = try await client.json("/v1/sessions", headers: laptop.headers)
            #expect(list.status == .ok)
            let sessions = try #require(body["sessions"] as? [[String: Any]])
            #expect(Set(sessions.compactMap { $0["id"] as? String }) == [laptop.sessionID, phone.sessionID, tablet.sessionID])
            #expect(sessions.filter { $0["current"] as? Bool == true }.compactMap { $0["id"] as? String } == [laptop.sessionID])

            // Someone else's session reads as absent, and stays valid.
            let (foreign, foreignBody) = try await client.json("/v1/sessions/\(bob.sessionID)", method: .delete, headers: laptop.unsafeHeaders)
            #expect(foreign.status == .notFound && foreignBody.errorCode == "REQ_1004")
            #expect(try await client.json("/v1/session", headers: bob.headers).0.status == .ok)

            let (revokeOne, _) = try await client.json("/v1/sessions/\(tablet.sessionID)", method: .delete, headers: laptop.unsafeHeaders)
            #expect(revokeOne.status == .noContent)
            #expect(try await client.json("/v1/session", headers: tablet.headers).1.errorReason == "revoked")

            let (others, othersBody) = try await client.json("/v1/sessions?scope=others", method: .delete, headers: laptop.unsafeHeaders)
            #expect(others.status == .ok && othersBody["revoked"] as? Int == 1)
            #expect(try await client.json("/v1/session", headers: phone.headers).1.errorReason == "revoked")
            #expect(try await client.json("/v1/session", headers: laptop.headers).0.status == .ok)

            let (badScope, badBody) = try await client.json("/v1/sessions?scope=everything", method: .delete, headers: laptop.unsafeHeaders)
            #expect(badScope.status == .badRequest && badBody.errorCode == "REQ_1003")

            let (all, allBody) = try await client.json("/v1/sessions?scope=all", method: .delete, headers: laptop.unsafeHeaders)
            #expect(all.status == .ok && allBody["revoked"] as? Int == 1)
            #expect(all.headers[.setCookie]?.contains("Max-Age=0") == true)
            #expect(try await client.json("/v1/session", headers: laptop.headers).1.errorReason == "revoked")
        }
    }

    @Test func sessionDataChangesCarryAVersion() async throws {
        let harness = try await ServiceHarness()
        try await harness.test { client in
            let browser = try await client.logIn()
            let (noVersion, noVersionBody) = try await client.json(
                "/v1/session/data",
                method: .patch,
                headers: browser.unsafeHeaders,
                body: #"{"a":1}"#
            )
            #expect(noVersion.status.code == 428 && noVersionBody.errorCode == "REQ_1005")

            var headers = browser.unsafeHeaders
            headers[.ifMatch] = #""1""#
            let (first, firstBody) = try await client.json("/v1/session/data", method: .patch, headers: headers, body: #"{"a":1,"b":{"c":true}}"#)
            #expect(first.status == .ok)
            #expect(first.headers[.eTag] == #""2""#)
            let data = try #require((firstBody["session"] as? [String: Any])?["data"] as? [String: Any])
            #expect(data["a"] as? Int == 1)

            // A writer that still holds version 1 conflicts, and changes nothing.
            let (stale, staleBody) = try await client.json("/v1/session/data", method: .patch, headers: headers, body: #"{"a":99}"#)
            #expect(stale.status == .conflict && staleBody.errorCode == "DATA_1001")

            headers[.ifMatch] = "2"
            let (second, secondBody) = try await client.json("/v1/session/data", method: .patch, headers: headers, body: #"{"a":null}"#)
            #expect(second.status == .ok)
            let merged = try #require((secondBody["session"] as? [String: Any])?["data"] as? [String: Any])
            #expect(merged["a"] == nil && (merged["b"] as? [String: Any])?["c"] as? Bool == true)

            headers[.ifMatch] = "three"
            let (badVersion, badVersionBody) = try await client.json("/v1/session/data", method: .patch, headers: headers, body: #"{}"#)
            #expect(badVersion.status == .badRequest && badVersionBody.errorCode == "REQ_1003")

            headers[.ifMatch] = "3"
            let (notObject, notObjectBody) = try await client.json("/v1/session/data", method: .patch, headers: headers, body: #"[1]"#)
            #expect(notObject.status == .badRequest && notObjectBody.errorCode == "REQ_1001")
        }
        #expect(
            try await harness.store.session(id: try #require(try await harness.sessions.activeSessions(userID: "usr_alice").first?.id))?.dataVersion
                == 3
        )
    }

    @Test func servicesCreateSessionsWithTheirAPIKey() async throws {
        let harness = try await ServiceHarness()
        try await harness.test { client in
            let (refused, refusedBody) = try await client.json("/v1/sessions", method: .post, body: #"{"subject":"ext-42"}"#)
            #expect(refused.status == .unauthorized && refusedBody.errorCode == "AUTH_1009")
            let (wrongKey, _) = try await client.json(
                "/v1/sessions",
                method: .post,
                headers: [.authorization: "Bearer \(ServiceAPIKey.generate())"],
                body: #"{"subject":"ext-42"}"#
            )
            #expect(wrongKey.status == .unauthorized)

            let (created, body) = try await client.json(
                "/v1/sessions",
                method: .post,
                headers: [.authorization: "Bearer \(ServiceHarness.serviceKey)"],
                body: #"{"subject":"ext-42","data":{"plan":"pro"},"label":"kiosk"}"#
            )
            #expect(created.status == .created)
            let token = try #require(body["token"] as? String)
            let (whoami, whoamiBody) = try await client.json("/v1/session", headers: [.authorization: "Bearer \(token)"])
            #expect(whoami.status == .ok)
            let session = try #require(whoamiBody["session"] as? [String: Any])
            #expect(session["userId"] as? String == "ext-42")
            #expect((session["data"] as? [String: Any])?["plan"] as? String == "pro")
            #expect((session["metadata"] as? [String: Any])?["label"] as? String == "kiosk")
        }
    }

    @Test func revokedSessionStaysRevokedOverHTTPAfterFiveThousandMore() async throws {
        let harness = try await ServiceHarness()
        try await harness.test { client in
            let browser = try await client.logIn()
            _ = try await client.json("/v1/logout", method: .post, headers: browser.unsafeHeaders)
            for index in 0..<5000 {
                let created = try await harness.sessions.createSession(userID: "bulk-\(index % 100)")
                try await harness.sessions.revoke(sessionID: created.session.id, reason: "logout")
            }
            let (response, body) = try await client.json("/v1/session", headers: browser.headers)
            #expect(response.status == .unauthorized && body.errorReason == "revoked")
        }
    }
}
