import Foundation

/// The body of `POST /v1/login` in token mode.
struct LoginBody: Encodable {
    var username: String
    var password: String
    var mode = "token"
    var label: String?
}

/// The body of `POST /v1/token/refresh`.
struct RefreshBody: Encodable {
    var refreshToken: String
}

/// A token pair as login and refresh answer it.
struct TokenResponse: Decodable {
    struct SessionInfo: Decodable {
        var id: String
        var userId: String?
    }

    struct UserInfo: Decodable {
        var id: String
        var username: String?
    }

    var accessToken: String
    var tokenType: String?
    var expiresIn: Int
    var refreshToken: String
    var session: SessionInfo
    var user: UserInfo?

    /// The credentials, with the expiry counted from `receivedAt` on the device's wall clock.
    /// A negative `expiresIn` counts as an already expired token.
    func credentials(receivedAt: Date, previous: TesseraCredentials? = nil) -> TesseraCredentials {
        let lifetime = max(0, self.expiresIn)
        return TesseraCredentials(
            accessToken: self.accessToken,
            refreshToken: self.refreshToken,
            expiresAt: receivedAt.addingTimeInterval(TimeInterval(lifetime)),
            lifetime: .seconds(lifetime),
            sessionID: self.session.id,
            userID: self.user?.id ?? self.session.userId ?? previous?.userID,
            username: self.user?.username ?? previous?.username
        )
    }
}
