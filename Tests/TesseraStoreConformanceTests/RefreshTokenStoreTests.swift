import Foundation
import Testing
import Tessera
import TesseraTestSupport

/// Refresh-token storage, run the same against every store.
@Suite(.heavy) struct RefreshTokenStoreTests {
    @Test(arguments: StoreKind.available) func aTokenRotatesOnceAndItsSuccessorIsStored(kind: StoreKind) async throws {
        try await StoreFixture.with(kind) { fixture in
            let store = try await fixture.open()
            let clock = ManualClock()
            let sessions = SessionManager(store: store, clock: clock)
            let session = try await sessions.createSession(userID: "u", credential: .tokenMode).session
            #expect(session.tokenHash == TokenHash(tokenModeSessionID: session.id))
            let first = RefreshToken.generate()
            let record = RefreshTokenRecord(tokenHash: first.hash, sessionID: session.id, createdAt: clock.now)
            try await store.insertRefreshToken(record)
            try await store.insertRefreshToken(record)  // idempotent
            #expect(try await store.refreshToken(hash: first.hash) == record)

            let successor = RefreshTokenRecord(tokenHash: RefreshToken.generate().hash, sessionID: session.id, createdAt: clock.now)
            let rotatedAt = clock.now.addingTimeInterval(5)
            #expect(try await store.rotateRefreshToken(hash: first.hash, at: rotatedAt, sealedSuccessor: [1, 2, 3], successor: successor))
            let rotated = try #require(try await store.refreshToken(hash: first.hash))
            #expect(rotated.rotatedAt == rotatedAt && rotated.sealedSuccessor == [1, 2, 3])
            #expect(try await store.refreshToken(hash: successor.tokenHash) == successor)

            // A second rotation changes nothing, not even the sealed pair.
            let other = RefreshTokenRecord(tokenHash: RefreshToken.generate().hash, sessionID: session.id, createdAt: clock.now)
            #expect(
                try await store.rotateRefreshToken(hash: first.hash, at: rotatedAt.addingTimeInterval(1), sealedSuccessor: [9], successor: other)
                    == false
            )
            #expect(try await store.refreshToken(hash: first.hash) == rotated)
            #expect(try await store.refreshToken(hash: other.tokenHash) == nil)
            #expect(
                try await store.rotateRefreshToken(hash: RefreshToken.generate().hash, at: rotatedAt, sealedSuccessor: [9], successor: other) == false
            )
        }
    }

    @Test(arguments: StoreKind.available) func ofRacingRotationsExactlyOneWins(kind: StoreKind) async throws {
        try await StoreFixture.with(kind) { fixture in
            let store = try await fixture.open()
            let clock = ManualClock()
            let session = try await SessionManager(store: store, clock: clock).createSession(userID: "u", credential: .tokenMode).session
            let token = RefreshToken.generate()
            try await store.insertRefreshToken(RefreshTokenRecord(tokenHash: token.hash, sessionID: session.id, createdAt: clock.now))
            let successors = (0..<20).map { _ in
                RefreshTokenRecord(tokenHash: RefreshToken.generate().hash, sessionID: session.id, createdAt: clock.now)
            }
            let winners = try await withThrowingTaskGroup(of: Int?.self) { group in
                for (index, successor) in successors.enumerated() {
                    group.addTask {
                        try await store.rotateRefreshToken(hash: token.hash, at: clock.now, sealedSuccessor: [UInt8(index)], successor: successor)
                            ? index : nil
                    }
                }
                return try await group.reduce(into: [Int]()) { if let index = $1 { $0.append(index) } }
            }
            try #require(winners.count == 1)
            let winner = winners[0]
            #expect(try await store.refreshToken(hash: token.hash)?.sealedSuccessor == [UInt8(winner)])
            for (index, successor) in successors.enumerated() {
                #expect((try await store.refreshToken(hash: successor.tokenHash) != nil) == (index == winner))
            }
        }
    }

    @Test(arguments: StoreKind.available) func sweepingASessionDeletesItsRefreshTokens(kind: StoreKind) async throws {
        try await StoreFixture.with(kind) { fixture in
            let store = try await fixture.open()
            let clock = ManualClock()
            let sessions = SessionManager(store: store, clock: clock)
            let ended = try await sessions.createSession(userID: "u", credential: .tokenMode).session
            let kept = try await sessions.createSession(userID: "u", credential: .tokenMode).session
            let endedToken = RefreshToken.generate()
            let keptToken = RefreshToken.generate()
            try await store.insertRefreshToken(RefreshTokenRecord(tokenHash: endedToken.hash, sessionID: ended.id, createdAt: clock.now))
            try await store.insertRefreshToken(RefreshTokenRecord(tokenHash: keptToken.hash, sessionID: kept.id, createdAt: clock.now))
            try await sessions.revoke(sessionID: ended.id, reason: "logout")
            clock.advance(by: .seconds(1))
            #expect(try await store.deleteSessions(endedBefore: clock.now, limit: 10) == 1)
            #expect(try await store.refreshToken(hash: endedToken.hash) == nil)
            #expect(try await store.refreshToken(hash: keptToken.hash) != nil)
        }
    }
}
