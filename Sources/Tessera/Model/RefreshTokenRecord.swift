public import Foundation

/// A refresh token as a store keeps it: its hash, its session, and whether it was used.
///
/// The tokens of one session form its family: each refresh marks the presented token rotated
/// and inserts its successor. Rotated tokens are kept while the session is, so that a late
/// reuse is recognized as theft.
public struct RefreshTokenRecord: Sendable, Hashable {
    /// SHA-256 of the token.
    public var tokenHash: TokenHash
    /// The session the token refreshes.
    public var sessionID: String
    public var createdAt: Date
    /// When the token was first used (and its successor made), if it was.
    public var rotatedAt: Date?
    /// The successor pair, sealed with a key that only the holder of this token can derive, so
    /// that racing uses within the grace window get the same answer; `nil` until rotated.
    public var sealedSuccessor: [UInt8]?

    public init(tokenHash: TokenHash, sessionID: String, createdAt: Date, rotatedAt: Date? = nil, sealedSuccessor: [UInt8]? = nil) {
        self.tokenHash = tokenHash
        self.sessionID = sessionID
        self.createdAt = createdAt
        self.rotatedAt = rotatedAt
        self.sealedSuccessor = sealedSuccessor
    }
}
