public import Foundation

/// What a signed-in client holds: the token pair and the session it belongs to.
///
/// This is the value a ``CredentialStore`` persists. `expiresAt` is a wall-clock time for
/// persistence only: the client schedules refreshes on its monotonic clock and, when it loads
/// stored credentials, re-bases the remaining lifetime (`expiresAt` minus the wall clock at load)
/// on that clock.
public struct TesseraCredentials: Codable, Hashable, Sendable {
    /// The signed access token, sent as `Authorization: Bearer`.
    public var accessToken: String
    /// The opaque refresh token (`tsr_…`); every refresh uses it up and returns a new one.
    public var refreshToken: String
    /// When the access token expires, on the device's wall clock at receipt.
    public var expiresAt: Date
    /// The access token's lifetime as the server announced it (`expiresIn`).
    public var lifetime: Duration
    /// The Tessera session the tokens belong to.
    public var sessionID: String
    /// The signed-in user's id, when the server said.
    public var userID: String?
    /// The signed-in user's name, when the server said.
    public var username: String?

    /// Creates credentials.
    public init(
        accessToken: String,
        refreshToken: String,
        expiresAt: Date,
        lifetime: Duration,
        sessionID: String,
        userID: String? = nil,
        username: String? = nil
    ) {
        self.accessToken = accessToken
        self.refreshToken = refreshToken
        self.expiresAt = expiresAt
        self.lifetime = lifetime
        self.sessionID = sessionID
        self.userID = userID
        self.username = username
    }
}
