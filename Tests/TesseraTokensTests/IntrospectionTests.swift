import Foundation
import HTTPTypes
import HummingbirdTesting
import NIOCore
import Testing
import Tessera
import TesseraHummingbird
import TesseraTestSupport
import TesseraTokens

@Suite(.heavy) struct IntrospectionTests {
    @Test func everyKindOfTokenIsIntrospectedAndAnEndedSessionMakesThemInactive() async throws {
        let directory = TemporaryDirectory()
        let harness = try await TokenHarness(store: try directory.sqliteStore())
        let cookieSession = try await harness.sessions.createSession(userID: "usr_bob")
        try await harness.test { client in
            let tokens = try await client.logInForTokens()
            let now = Int64(harness.clock.now.timeIntervalSince1970)

            let (access, accessBody) = try await client.introspect(tokens.accessToken)
            #expect(access.status == .ok && access.headers[.cacheControl] == "no-store")
            #expect(accessBody["active"] as? Bool == true && accessBody["token_type"] as? String == "access_token")
            #expect(accessBody["sub"] as? String == "usr_alice" && accessBody["sid"] as? String == tokens.sessionID)
            #expect((accessBody["exp"] as? NSNumber)?.int64Value == now + 300 && accessBody["iss"] as? String == "tessera")

            let (_, refreshBody) = try await client.introspect(tokens.refreshToken)
            #expect(refreshBody["active"] as? Bool == true && refreshBody["token_type"] as? String == "refresh_token")
            #expect(refreshBody["sid"] as? String == tokens.sessionID)

            let (_, sessionBody) = try await client.introspect(cookieSession.token.rawValue)
            #expect(sessionBody["active"] as? Bool == true && sessionBody["token_type"] as? String == "session_token")
            #expect(sessionBody["sub"] as? String == "usr_bob")

            for garbage in ["", "nonsense", "a.b.c", "tss_x", RefreshToken.generate().rawValue] {
                let (response, body) = try await client.introspect(garbage)
                #expect(response.status == .ok && body.count == 1 && body["active"] as? Bool == false, "\(garbage)")
            }

            // RFC 7662's own form encoding.
            let form = try await client.execute(
                uri: "/v1/introspect",
                method: .post,
                headers: [.authorization: "Bearer \(TokenHarness.serviceKey)", .contentType: "application/x-www-form-urlencoded"],
                body: ByteBuffer(string: "token=\(tokens.accessToken)&token_type_hint=access_token")
            )
            #expect(String(buffer: form.body).contains(#""active":true"#))

            try await harness.sessions.revoke(sessionID: tokens.sessionID, reason: "admin")
            try await harness.sessions.revoke(sessionID: cookieSession.session.id, reason: "admin")
            for token in [tokens.accessToken, tokens.refreshToken, cookieSession.token.rawValue] {
                let (_, body) = try await client.introspect(token)
                #expect(body["active"] as? Bool == false && body.count == 1)
            }
        }
    }

    @Test func introspectionNeedsTheServiceKeyAndRecordsNoActivity() async throws {
        let directory = TemporaryDirectory()
        let harness = try await TokenHarness(store: try directory.sqliteStore())
        try await harness.test { client in
            let tokens = try await client.logInForTokens()
            let (refused, refusedBody) = try await client.introspect(tokens.accessToken, key: "tsk_wrong")
            #expect(refused.status == .unauthorized && refusedBody.errorCode == "AUTH_1009")
            let (anonymous, _) = try await client.json("/v1/introspect", method: .post, body: #"{"token":"x"}"#)
            #expect(anonymous.status == .unauthorized)

            // Introspecting every 10 minutes does not keep the session alive past its idle timeout.
            for _ in 0..<2 {
                harness.clock.advance(by: .seconds(600))
                _ = try await client.introspect(tokens.refreshToken)
            }
            let (_, body) = try await client.introspect(tokens.refreshToken)
            #expect(body["active"] as? Bool == false)
            let stored = try #require(try await harness.store.session(id: tokens.sessionID))
            #expect(stored.lastSeenAt == stored.createdAt)
        }
    }
}
