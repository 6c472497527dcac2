import Foundation
import HTTPTypes
import HummingbirdTesting
import Testing
import Tessera
import TesseraTestSupport

@testable import TesseraTokens

@Suite struct VerifiedTokenCacheTests {
    @Test func aRememberedTokenStillExpiresAndStillDiesWithItsSession() async throws {
        let directory = TemporaryDirectory()
        let harness = try await TokenHarness(store: try directory.sqliteStore())
        try await harness.test { client in
            let first = try await client.logInForTokens()
            #expect(harness.tokens.verified.count == 0)
            for _ in 0..<3 {
                #expect(try await client.whoAmI(first.accessToken).0.status == .ok)
            }
            #expect(harness.tokens.verified.count == 1)

            // Only the exact string that verified matches: a changed signature is verified, and refused.
            var characters = Array(first.accessToken)
            let middle = characters.count - 20
            characters[middle] = characters[middle] == "A" ? "B" : "A"
            let (forged, forgedBody) = try await client.whoAmI(String(characters))
            #expect(forged.status == .unauthorized && forgedBody.errorCode == "AUTH_1003")
            #expect(harness.tokens.verified.count == 1)

            // The session is checked on every use.
            try await harness.sessions.revoke(sessionID: first.sessionID, reason: "admin")
            let (revoked, revokedBody) = try await client.whoAmI(first.accessToken)
            #expect(revoked.status == .unauthorized && revokedBody.errorReason == "revoked")

            // So is expiry.
            let second = try await client.logInForTokens()
            #expect(try await client.whoAmI(second.accessToken).0.status == .ok)
            harness.clock.advance(by: .seconds(300))
            let (expired, expiredBody) = try await client.whoAmI(second.accessToken)
            #expect(expired.status == .unauthorized && expiredBody.errorCode == "AUTH_1010")
        }
    }

    @Test func theCacheStaysWithinItsCapacity() async throws {
        let cache = VerifiedTokenCache(capacity: 2)
        let claims = AccessTokenClaims(iss: "tessera", sub: "u", sid: "s", iat: 0, exp: 100, jti: "j")
        cache.insert("a", claims: claims, now: 10)
        cache.insert("b", claims: claims, now: 10)
        #expect(cache.count == 2)
        cache.insert("c", claims: claims, now: 10)
        #expect(cache.count <= 2 && cache.claims(of: "c") == claims)
        // Full of expired entries: they go first.
        let expired = AccessTokenClaims(iss: "tessera", sub: "u", sid: "s", iat: 0, exp: 5, jti: "j")
        let other = VerifiedTokenCache(capacity: 2)
        other.insert("old1", claims: expired, now: 1)
        other.insert("live", claims: claims, now: 1)
        other.insert("new", claims: claims, now: 10)
        #expect(other.claims(of: "old1") == nil && other.claims(of: "live") == claims && other.claims(of: "new") == claims)
        #expect(VerifiedTokenCache(capacity: 0).claims(of: "a") == nil)
    }
}
