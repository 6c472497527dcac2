import Foundation
import HTTPTypes
import HummingbirdTesting
import JWTKit
import NIOCore
import Testing
import Tessera
import TesseraHummingbird
import TesseraTestSupport
import TesseraTokens

/// The claims a verifier outside Tessera reads.
struct ExternalClaims: JWTPayload {
    var iss: String
    var sub: String
    var sid: String
    var iat: Int64
    var exp: Int64
    var jti: String
    func verify(using algorithm: some JWTAlgorithm) async throws {}
}

@Suite(.heavy) struct TokenModeTests {
    @Test func bearerTokensAreToldApartOnTheirShape() {
        #expect(TokenService.isAccessToken("eyJhbGciOiJFZERTQSJ9.eyJzdWIiOiJ1In0.c2ln"))
        #expect(TokenService.isAccessToken("a.b.c"[...]))
        #expect(!TokenService.isAccessToken(SessionToken.generate().rawValue))
        #expect(!TokenService.isAccessToken("tss_a.b.c"))
        #expect(!TokenService.isAccessToken("a.b"))
        #expect(!TokenService.isAccessToken("a.b.c.d"))
        #expect(!TokenService.isAccessToken(""))
    }

    @Test func aTokenLoginIssuesAPairAndTheAccessTokenAuthenticates() async throws {
        let directory = TemporaryDirectory()
        let harness = try await TokenHarness(store: try directory.sqliteStore())
        try await harness.test { client in
            let tokens = try await client.logInForTokens()
            #expect(tokens.expiresIn == 300)
            #expect(tokens.refreshToken.hasPrefix("tsr_"))
            let (response, body) = try await client.whoAmI(tokens.accessToken)
            #expect(response.status == .ok)
            #expect((body["session"] as? [String: Any])?["id"] as? String == tokens.sessionID)
            #expect(body["csrfToken"] == nil)
            #expect(response.headers[.cacheControl] == "no-store")

            // The session is a token-mode session: no session token reaches it, and the refresh
            // token is not a session token either.
            let (asSessionToken, refusedBody) = try await client.whoAmI(tokens.refreshToken)
            #expect(asSessionToken.status == .unauthorized && refusedBody.errorCode == "AUTH_1003")
        }
    }

    @Test func theKeySetVerifiesIssuedTokens() async throws {
        let directory = TemporaryDirectory()
        let harness = try await TokenHarness(store: try directory.sqliteStore())
        try await harness.test { client in
            let tokens = try await client.logInForTokens()
            let response = try await client.execute(uri: "/.well-known/jwks.json", method: .get)
            #expect(response.status == .ok)
            #expect(response.headers[.contentType] == "application/jwk-set+json")
            let verifier = JWTKeyCollection()
            try await verifier.add(jwksJSON: String(buffer: response.body))
            let claims = try await verifier.verify(tokens.accessToken, as: ExternalClaims.self)
            #expect(claims.sid == tokens.sessionID && claims.sub == "usr_alice" && claims.iss == "tessera")
            #expect(claims.exp - claims.iat == 300)
            #expect(claims.iat == Int64(harness.clock.now.timeIntervalSince1970))

            // A token whose signature was changed verifies nowhere.
            // (A character in the middle: the last one of a base64url signature carries padding
            // bits that decoders ignore.)
            var characters = Array(tokens.accessToken)
            let middle = tokens.accessToken.utf8.count - 20
            characters[middle] = characters[middle] == "A" ? "B" : "A"
            let forged = String(characters)
            await #expect(throws: (any Error).self) { _ = try await verifier.verify(forged, as: ExternalClaims.self) }
            let (refused, body) = try await client.whoAmI(forged)
            #expect(refused.status == .unauthorized && body.errorCode == "AUTH_1003")
        }
    }

    @Test func aTokenSignedByAnotherKeyIsRefused() async throws {
        let directory = TemporaryDirectory()
        let harness = try await TokenHarness(store: try directory.sqliteStore())
        // Another Tessera with its own keys, on the same store: its tokens name real sessions.
        let stranger = try await TokenHarness(store: harness.store, clock: harness.clock, users: [])
        let foreign = try await stranger.tokens.createSession(userID: "usr_alice")
        try await harness.test { client in
            let (response, body) = try await client.whoAmI(foreign.accessToken)
            #expect(response.status == .unauthorized && body.errorCode == "AUTH_1003")
        }
    }

    @Test(arguments: StoreKind.available) func fiftyConcurrentRefreshesWithOneTokenAllGetOneSuccessor(kind: StoreKind) async throws {
        try await StoreFixture.with(kind) { fixture in
            let harness = try await TokenHarness(store: try await fixture.open())
            try await harness.test { client in
                let first = try await client.logInForTokens()
                harness.clock.advance(by: .seconds(1))
                let answers = try await withThrowingTaskGroup(of: IssuedTokens?.self) { group in
                    for _ in 0..<50 {
                        group.addTask {
                            let (response, body) = try await client.refresh(first.refreshToken)
                            return response.status == .ok ? IssuedTokens(body) : nil
                        }
                    }
                    return try await group.reduce(into: [IssuedTokens?]()) { $0.append($1) }
                }
                #expect(answers.count == 50)
                #expect(answers.allSatisfy { $0 != nil }, "every racing refresh succeeds")
                let successors = Set(answers.compactMap { $0?.refreshToken })
                #expect(successors.count == 1, "one successor for all")
                #expect(Set(answers.compactMap { $0?.accessToken }).count == 1)
                let successor = try #require(answers.first ?? nil)
                #expect(successor.refreshToken != first.refreshToken && successor.sessionID == first.sessionID)
                #expect(harness.store.count("rotateRefreshToken") >= 1)

                // The successor works, and the original is used up.
                #expect(try await client.whoAmI(successor.accessToken).0.status == .ok)
                let (next, nextBody) = try await client.refresh(successor.refreshToken)
                #expect(next.status == .ok && IssuedTokens(nextBody)?.refreshToken != successor.refreshToken)
                let (introspected, introspection) = try await client.introspect(first.refreshToken)
                #expect(introspected.status == .ok && introspection["active"] as? Bool == false)
            }
        }
    }

    @Test func reuseAfterTheGraceWindowRevokesTheSessionAndTheFamily() async throws {
        let directory = TemporaryDirectory()
        let harness = try await TokenHarness(store: try directory.sqliteStore())
        try await harness.test { client in
            let first = try await client.logInForTokens()
            let (rotated, rotatedBody) = try await client.refresh(first.refreshToken)
            let second = try #require(IssuedTokens(rotatedBody))
            #expect(rotated.status == .ok)

            harness.clock.advance(by: .seconds(11))
            let (reused, reusedBody) = try await client.refresh(first.refreshToken)
            #expect(reused.status == .unauthorized)
            #expect(reusedBody.errorCode == "AUTH_1007")
            #expect(reused.headers[.wwwAuthenticate] != nil)

            // The session and the rest of its family are gone.
            let stored = try #require(try await harness.store.session(id: first.sessionID))
            #expect(stored.revokedAt != nil && stored.revocationReason == "refresh_reuse")
            let (successorRefresh, successorBody) = try await client.refresh(second.refreshToken)
            #expect(successorRefresh.status == .unauthorized && successorBody.errorCode == "AUTH_1002" && successorBody.errorReason == "revoked")
            let (access, accessBody) = try await client.whoAmI(second.accessToken)
            #expect(access.status == .unauthorized && accessBody.errorCode == "AUTH_1002" && accessBody.errorReason == "revoked")
        }
    }

    @Test func theGraceWindowRunsFromTheFirstUseAndIsNotExtended() async throws {
        let directory = TemporaryDirectory()
        let harness = try await TokenHarness(store: try directory.sqliteStore())
        try await harness.test { client in
            let first = try await client.logInForTokens()
            let successor = try #require(IssuedTokens(try await client.refresh(first.refreshToken).1))
            harness.clock.advance(by: .seconds(6))
            let again = try #require(IssuedTokens(try await client.refresh(first.refreshToken).1))
            #expect(again.refreshToken == successor.refreshToken && again.accessToken == successor.accessToken)
            // The same access token, six seconds older.
            #expect(again.expiresIn == successor.expiresIn - 6)
            harness.clock.advance(by: .seconds(4))
            let (late, lateBody) = try await client.refresh(first.refreshToken)
            #expect(late.status == .unauthorized && lateBody.errorCode == "AUTH_1007")
        }
    }

    @Test func anAccessTokenOfARevokedSessionIsRefusedBeforeItExpires() async throws {
        let directory = TemporaryDirectory()
        let harness = try await TokenHarness(store: try directory.sqliteStore())
        try await harness.test { client in
            let tokens = try await client.logInForTokens()
            let (logout, _) = try await client.json("/v1/logout", method: .post, headers: [.authorization: "Bearer \(tokens.accessToken)"])
            #expect(logout.status == .noContent)
            let (response, body) = try await client.whoAmI(tokens.accessToken)
            #expect(response.status == .unauthorized && body.errorCode == "AUTH_1002" && body.errorReason == "revoked")
            let (refresh, refreshBody) = try await client.refresh(tokens.refreshToken)
            #expect(refresh.status == .unauthorized && refreshBody.errorCode == "AUTH_1002")
        }
    }

    @Test func anExpiredAccessTokenIsRefusedAndARefreshReplacesIt() async throws {
        let directory = TemporaryDirectory()
        let harness = try await TokenHarness(store: try directory.sqliteStore())
        try await harness.test { client in
            let tokens = try await client.logInForTokens()
            harness.clock.advance(by: .seconds(299))
            #expect(try await client.whoAmI(tokens.accessToken).0.status == .ok)
            harness.clock.advance(by: .seconds(1))
            let (expired, body) = try await client.whoAmI(tokens.accessToken)
            #expect(expired.status == .unauthorized && body.errorCode == "AUTH_1010")
            let renewed = try #require(IssuedTokens(try await client.refresh(tokens.refreshToken).1))
            #expect(renewed.expiresIn == 300)
            #expect(try await client.whoAmI(renewed.accessToken).0.status == .ok)
        }
    }

    @Test func refreshesAndAccessTokensKeepTheSessionAliveAndIdleEndsIt() async throws {
        let directory = TemporaryDirectory()
        let harness = try await TokenHarness(store: try directory.sqliteStore())
        try await harness.test { client in
            var tokens = try await client.logInForTokens()
            // Ten minutes of use every four minutes, past the 15-minute idle timeout.
            for _ in 0..<5 {
                harness.clock.advance(by: .seconds(240))
                tokens = try #require(IssuedTokens(try await client.refresh(tokens.refreshToken).1))
                #expect(try await client.whoAmI(tokens.accessToken).0.status == .ok)
            }
            harness.clock.advance(by: .seconds(15 * 60))
            let (refresh, body) = try await client.refresh(tokens.refreshToken)
            #expect(refresh.status == .unauthorized && body.errorCode == "AUTH_1002" && body.errorReason == "idle")
        }
    }

    @Test func badRefreshRequestsGetClearErrors() async throws {
        let directory = TemporaryDirectory()
        let harness = try await TokenHarness(store: try directory.sqliteStore())
        try await harness.test { client in
            let (unknown, unknownBody) = try await client.refresh(RefreshToken.generate().rawValue)
            #expect(unknown.status == .unauthorized && unknownBody.errorCode == "AUTH_1003")
            let (malformed, malformedBody) = try await client.refresh("tsr_nope")
            #expect(malformed.status == .unauthorized && malformedBody.errorCode == "AUTH_1003")
            let (missing, missingBody) = try await client.json("/v1/token/refresh", method: .post, body: "{}")
            #expect(missing.status == .badRequest && missingBody.errorCode == "REQ_1001")
            let (mode, modeBody) = try await client.json(
                "/v1/login",
                method: .post,
                body: #"{"username":"alice","password":"\#(TokenHarness.password)","mode":"magic"}"#
            )
            #expect(mode.status == .badRequest && modeBody.errorCode == "REQ_1003")
        }
    }

    @Test func aServiceCreatesTokenModeSessions() async throws {
        let directory = TemporaryDirectory()
        let harness = try await TokenHarness(store: try directory.sqliteStore())
        try await harness.test { client in
            let (response, body) = try await client.json(
                "/v1/sessions",
                method: .post,
                headers: [.authorization: "Bearer \(TokenHarness.serviceKey)"],
                body: #"{"subject":"app-user-7","mode":"token","data":{"plan":"pro"}}"#
            )
            #expect(response.status == .created)
            let tokens = try #require(IssuedTokens(body))
            #expect((body["user"] as? [String: Any])?["id"] as? String == "app-user-7")
            let (me, meBody) = try await client.whoAmI(tokens.accessToken)
            #expect(me.status == .ok && ((meBody["session"] as? [String: Any])?["data"] as? [String: Any])?["plan"] as? String == "pro")
        }
    }

    @Test func rotationKeepsOldTokensValidUntilTheyExpire() async throws {
        let directory = TemporaryDirectory()
        let clock = ManualClock()
        let file = directory.url.appendingPathComponent("signing-keys.json")
        let keys = try await SigningKeys.open(file: file, now: clock.now)
        let harness = try await TokenHarness(store: try directory.sqliteStore(), clock: clock, keys: keys)
        let mode = try FileManager.default.attributesOfItem(atPath: file.path)[.posixPermissions] as? Int
        #expect(mode == 0o600)
        try await harness.test { client in
            let old = try await client.logInForTokens()
            let oldKey = keys.signingKeyID
            clock.advance(by: .seconds(60))
            let newKey = try SigningKeys.rotate(file: file, now: clock.now)
            #expect(try await keys.reloadIfChanged())
            #expect(keys.signingKeyID == newKey.id && newKey.id != oldKey)
            #expect(try FileManager.default.attributesOfItem(atPath: file.path)[.posixPermissions] as? Int == 0o600)
            // The retired key's private half left the file.
            let stored = try JSONSerialization.jsonObject(with: Data(contentsOf: file)) as? [String: Any]
            let storedKeys = try #require(stored?["keys"] as? [[String: Any]])
            #expect(storedKeys.count == 2)
            #expect(storedKeys.first { $0["kid"] as? String == oldKey }?["d"] == nil)

            let new = try await client.logInForTokens()
            #expect(try Self.kid(of: new.accessToken) == newKey.id)
            #expect(try Self.kid(of: old.accessToken) == oldKey)
            #expect(try await client.whoAmI(old.accessToken).0.status == .ok)
            #expect(try await Self.publishedKeys(client) == [oldKey, newKey.id])

            // The old token expires at login + 300 s.
            clock.advance(by: .seconds(240))
            let (expired, body) = try await client.whoAmI(old.accessToken)
            #expect(expired.status == .unauthorized && body.errorCode == "AUTH_1010")
            // The old key may have signed a token just before its retirement (at +60 s), which
            // lives until +360 s: it stays published until then, and a minute longer.
            clock.advance(by: .seconds(119))
            #expect(try await Self.publishedKeys(client) == [oldKey, newKey.id])
            clock.advance(by: .seconds(2))
            #expect(try await Self.publishedKeys(client) == [newKey.id])
            let fresh = try await client.logInForTokens()
            #expect(try await client.whoAmI(fresh.accessToken).0.status == .ok)
        }
    }

    static func kid(of token: String) throws -> String? {
        let header = try #require(token.split(separator: ".").first)
        var base64 = header.replacingOccurrences(of: "-", with: "+").replacingOccurrences(of: "_", with: "/")
        base64 += String(repeating: "=", count: (4 - base64.count % 4) % 4)
        let object = try JSONSerialization.jsonObject(with: try #require(Data(base64Encoded: base64))) as? [String: Any]
        return object?["kid"] as? String
    }

    static func publishedKeys(_ client: any TestClientProtocol) async throws -> [String] {
        let (_, body) = try await client.json("/.well-known/jwks.json")
        return (body["keys"] as? [[String: Any]] ?? []).compactMap { $0["kid"] as? String }
    }
}
