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
        let live = VerifiedAccessToken(claims: AccessTokenClaims(iss: "tessera", sub: "u", sid: "s", iat: 0, exp: 100, jti: "j"))
        let cache = VerifiedTokenCache(capacity: 2)
        cache.insert("a", live, now: 10)
        cache.insert("b", live, now: 10)
        #expect(cache.count == 2)
        cache.insert("c", live, now: 10)
        #expect(cache.count <= 2 && cache.token("c") === live)
        // Full of expired entries: they go first.
        let expired = VerifiedAccessToken(claims: AccessTokenClaims(iss: "tessera", sub: "u", sid: "s", iat: 0, exp: 5, jti: "j"))
        let other = VerifiedTokenCache(capacity: 2)
        other.insert("old1", expired, now: 1)
        other.insert("live", live, now: 1)
        other.insert("new", live, now: 10)
        #expect(other.token("old1") == nil && other.token("live") === live && other.token("new") === live)
        #expect(VerifiedTokenCache(capacity: 0).token("a") == nil)
    }

    @Test func aLargeCacheInPartsStaysWithinItsCapacityAndKeepsTheTokenInsertedLast() {
        let verified = VerifiedAccessToken(claims: AccessTokenClaims(iss: "tessera", sub: "u", sid: "s", iat: 0, exp: 100, jti: "j"))
        let cache = VerifiedTokenCache(capacity: 1024)
        let tokens = (0..<1024).map { _ in "h.p." + Base64URL.encode(secureRandomBytes(count: 64)) }
        for token in tokens { cache.insert(token, verified, now: 10) }
        #expect(cache.count <= 1024)
        // Whatever a full part dropped, the token inserted last is there.
        #expect(cache.token(tokens[1023]) === verified)
        for token in tokens.shuffled().prefix(3000) { cache.insert(token, verified, now: 10) }
        #expect(cache.count <= 1024)
    }

    @Test func aTokenMatchesOnlyWhenEveryCharacterDoes() {
        let verified = VerifiedAccessToken(claims: AccessTokenClaims(iss: "tessera", sub: "u", sid: "s", iat: 0, exp: 100, jti: "j"))
        let cache = VerifiedTokenCache(capacity: 10)
        let signature = Base64URL.encode(secureRandomBytes(count: 64))
        cache.insert("header.claims." + signature, verified, now: 10)
        // The same signature under other claims hashes alike (by the signature's tail) and is
        // still another key.
        #expect(cache.token("header.claimz." + signature) == nil)
        #expect(cache.token("header.claims." + signature) === verified)
        #expect(verified.sessionHash == TokenHash(tokenModeSessionID: "s"))
    }
}
