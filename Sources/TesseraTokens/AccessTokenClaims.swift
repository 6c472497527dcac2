import JWTKit

/// The claims of an access token. Times are whole seconds since 1970 (JWT's NumericDate).
struct AccessTokenClaims: JWTPayload, Equatable {
    /// The issuer.
    var iss: String
    /// The subject: the session's user id.
    var sub: String
    /// The session id.
    var sid: String
    var iat: Int64
    var exp: Int64
    /// A random id, so no two tokens are alike.
    var jti: String

    /// Expiry and issuer are checked by ``TokenService`` against its own clock, not here.
    func verify(using algorithm: some JWTAlgorithm) async throws {}
}
