/// What happened to a ``TesseraClient``'s session, delivered by ``TesseraClient/events()``.
public enum TesseraClientEvent: Hashable, Sendable {
    /// A login succeeded and the client holds a new session.
    case signedIn(sessionID: String)
    /// The client holds a newer credential: from a refresh, or adopted from the credential store
    /// where another process had put it.
    case credentialsRefreshed(sessionID: String)
    /// The session ended and the credentials were cleared. Emitted exactly once per session.
    case signedOut(SignOutReason)
}

/// Why a session ended.
public enum SignOutReason: Hashable, Sendable, CustomStringConvertible {
    /// The app called ``TesseraClient/signOut()``.
    case userInitiated
    /// The session was revoked (by the user elsewhere, an administrator, or a logout).
    case revoked
    /// The session timed out.
    case expired(Expiry)
    /// The service refused the refresh token (unknown, or refused without a reason the client knows).
    case refreshRejected
    /// The refresh token had been used already and the service ended the session to protect it
    /// (`AUTH_1007`): two parties held the same token.
    case refreshTokenReused
    /// The service answered refreshes, several in a row, with access tokens shorter than it ever
    /// issues (``TesseraClient/Configuration/shortestLifetime``), already expired ones included:
    /// refreshing on would never end. Signing in again may help; if not, the service is
    /// misconfigured.
    case refreshLoop

    /// Which timeout ended the session.
    public enum Expiry: String, Hashable, Sendable {
        /// Unused for longer than the idle timeout.
        case idle
        /// Older than the absolute lifetime.
        case absolute
    }

    public var description: String {
        switch self {
        case .userInitiated: "user initiated"
        case .revoked: "revoked"
        case .expired(let expiry): "expired (\(expiry.rawValue))"
        case .refreshRejected: "refresh rejected"
        case .refreshTokenReused: "refresh token reused"
        case .refreshLoop: "refresh loop"
        }
    }
}
