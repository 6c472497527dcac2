public import Foundation
import Crypto
public import Tessera

/// Token mode: issues signed access tokens and rotating refresh tokens for sessions, refreshes
/// them, validates access tokens and answers introspection.
///
/// The session stays the authority: an access token is accepted only while its session is valid,
/// and a refresh token only while its session is valid and the token is unused (or used within
/// the grace window, which gets the same successor pair). See `docs/tokens.md`.
public struct TokenService: Sendable {
    /// Lifetimes and names.
    public struct Configuration: Sendable {
        /// How long an access token is valid (default 5 minutes, at most an hour).
        public var accessTokenLifetime: Duration
        /// How long after its first use a refresh token still answers its successor pair, for
        /// racing requests (default 10 seconds).
        public var refreshGracePeriod: Duration
        /// The `iss` claim (default `tessera`).
        public var issuer: String
        /// How many verified access tokens are remembered, so that a token used again is not
        /// verified again (default 10,000; 0 verifies every time). Expiry and the session are
        /// checked on every use regardless.
        public var verifiedTokenCacheSize: Int

        public init(
            accessTokenLifetime: Duration = .seconds(300),
            refreshGracePeriod: Duration = .seconds(10),
            issuer: String = "tessera",
            verifiedTokenCacheSize: Int = 10_000
        ) {
            self.accessTokenLifetime = min(max(accessTokenLifetime, .seconds(1)), .seconds(3600))
            self.refreshGracePeriod = max(refreshGracePeriod, .zero)
            self.issuer = issuer
            self.verifiedTokenCacheSize = max(0, verifiedTokenCacheSize)
        }
    }

    /// An access token and a refresh token for one session.
    public struct Tokens: Sendable {
        /// The signed access token (a JWT).
        public var accessToken: String
        /// Whole seconds the access token is valid from now.
        public var expiresIn: Int
        /// The refresh token (`tsr_…`), good for one refresh.
        public var refreshToken: String
        /// The session the tokens belong to.
        public var session: Session
    }

    /// What introspection found out about a token (RFC 7662).
    public struct Introspection: Sendable, Hashable {
        /// The kinds of token Tessera issues.
        public enum TokenType: String, Sendable, Hashable {
            case sessionToken = "session_token"
            case accessToken = "access_token"
            case refreshToken = "refresh_token"
        }

        public var active: Bool
        public var tokenType: TokenType?
        /// The session's user id.
        public var subject: String?
        public var sessionID: String?
        public var issuedAt: Date?
        public var expiresAt: Date?
        public var issuer: String?

        /// The answer for a token that is not active, which says nothing more.
        public static let inactive = Introspection(active: false)
    }

    public let sessions: SessionManager
    public let keys: SigningKeys
    public let configuration: Configuration
    let verified: VerifiedTokenCache

    /// - Parameters:
    ///   - sessions: the sessions the tokens belong to
    ///   - keys: the keys that sign access tokens
    ///   - configuration: lifetimes and issuer
    public init(sessions: SessionManager, keys: SigningKeys, configuration: Configuration = .init()) {
        self.sessions = sessions
        self.keys = keys
        self.configuration = configuration
        self.verified = VerifiedTokenCache(capacity: configuration.verifiedTokenCacheSize)
    }

    var store: any SessionStore { self.sessions.store }
    var now: Date { self.sessions.now }

    // MARK: Issuing

    /// Creates a token-mode session for `userID` and its first tokens.
    public func createSession(userID: String, data: [String: JSONValue] = [:], metadata: SessionMetadata = .init()) async throws -> Tokens {
        let created = try await self.sessions.createSession(userID: userID, data: data, metadata: metadata, credential: .tokenMode)
        return try await self.issueTokens(for: created.session)
    }

    /// The first tokens of a token-mode session (one created with
    /// ``SessionManager/Credential/tokenMode``).
    public func issueTokens(for session: Session) async throws -> Tokens {
        let now = self.now
        let refreshToken = RefreshToken.generate()
        let (accessToken, expiresAt) = try await self.accessToken(for: session, now: now)
        try await self.store.insertRefreshToken(RefreshTokenRecord(tokenHash: refreshToken.hash, sessionID: session.id, createdAt: now))
        return Tokens(
            accessToken: accessToken,
            expiresIn: Self.seconds(from: now, to: expiresAt),
            refreshToken: refreshToken.rawValue,
            session: session
        )
    }

    private func accessToken(for session: Session, now: Date) async throws -> (String, Date) {
        let issuedAt = Int64(now.timeIntervalSince1970.rounded(.down))
        let expiresAt = issuedAt + Int64(self.configuration.accessTokenLifetime.timeInterval.rounded(.up))
        let claims = AccessTokenClaims(
            iss: self.configuration.issuer,
            sub: session.userID,
            sid: session.id,
            iat: issuedAt,
            exp: expiresAt,
            jti: Base64URL.encode(secureRandomBytes(count: 12))
        )
        return (try await self.keys.sign(claims), Date(timeIntervalSince1970: TimeInterval(expiresAt)))
    }

    static func seconds(from now: Date, to date: Date) -> Int {
        max(0, Int(date.timeIntervalSince(now).rounded(.down)))
    }

    // MARK: Refreshing

    /// Rotates a refresh token: answers a new pair and uses the presented token up.
    ///
    /// Uses within the grace window after the first get the same pair. A use after the window is
    /// theft: the session (and with it the whole family) is revoked, `AUTH_1007`.
    /// - Throws: `AUTH_1003` for a malformed or unknown token, `AUTH_1002` when the session has
    ///   ended, `AUTH_1007` on reuse.
    public func refresh(_ presented: String) async throws -> Tokens {
        let metrics = self.sessions.metrics
        do {
            let (tokens, result) = try await self.rotate(presented)
            metrics.refreshed(result)
            return tokens
        } catch let error as TesseraError where error.code == TesseraError.refreshTokenReused.code {
            metrics.refreshed(.reuseDetected)
            throw error
        } catch let error as TesseraError where error.isAuthenticationFailure {
            metrics.refreshed(.invalid)
            throw error
        } catch {
            metrics.refreshed(.error)
            throw error
        }
    }

    private func rotate(_ presented: String) async throws -> (Tokens, SessionMetrics.RefreshResult) {
        guard let token = RefreshToken(presented) else { throw TesseraError.tokenInvalid }
        let hash = token.hash
        guard var record = try await self.store.refreshToken(hash: hash), record.tokenHash.constantTimeEquals(hash) else {
            throw TesseraError.tokenInvalid
        }
        let sessionHash = TokenHash(tokenModeSessionID: record.sessionID)
        if record.rotatedAt == nil {
            // Validating also records the refresh as activity of the session.
            let session = try await self.sessions.authenticate(tokenHash: sessionHash)
            let now = self.now
            let successor = RefreshToken.generate()
            let (accessToken, expiresAt) = try await self.accessToken(for: session, now: now)
            let pair = SealedPair(accessToken: accessToken, accessExpiresAt: expiresAt.millisecondsSince1970, refreshToken: successor.rawValue)
            let rotated = try await self.store.rotateRefreshToken(
                hash: hash,
                at: now,
                sealedSuccessor: try pair.sealed(with: token),
                successor: RefreshTokenRecord(tokenHash: successor.hash, sessionID: session.id, createdAt: now)
            )
            if rotated {
                let tokens = Tokens(
                    accessToken: accessToken,
                    expiresIn: Self.seconds(from: now, to: expiresAt),
                    refreshToken: successor.rawValue,
                    session: session
                )
                return (tokens, .ok)
            }
            // Another request rotated it first: answer what it sealed.
            guard let current = try await self.store.refreshToken(hash: hash) else { throw TesseraError.tokenInvalid }
            record = current
        }
        guard let rotatedAt = record.rotatedAt, let sealed = record.sealedSuccessor else { throw TesseraError.internalError }
        let now = self.now
        guard now < rotatedAt.addingTimeInterval(self.configuration.refreshGracePeriod.timeInterval) else {
            try await self.sessions.revoke(sessionID: record.sessionID, reason: RevocationReason.refreshReuse.rawValue)
            throw TesseraError.refreshTokenReused
        }
        let session = try await self.sessions.authenticate(tokenHash: sessionHash)
        let pair = try SealedPair.open(sealed, with: token)
        let tokens = Tokens(
            accessToken: pair.accessToken,
            expiresIn: Self.seconds(from: now, to: Date(millisecondsSince1970: pair.accessExpiresAt)),
            refreshToken: pair.refreshToken,
            session: session
        )
        return (tokens, .grace)
    }

    // MARK: Validating

    /// Whether `token` looks like an access token (a JWT: three dot-separated parts) rather than
    /// a session token.
    public static func isAccessToken(_ token: some StringProtocol) -> Bool {
        self.isAccessToken(String(token))
    }

    /// Whether `token` looks like an access token: as the generic form, without converting a
    /// string (the authenticator asks this of every bearer token).
    public static func isAccessToken(_ token: String) -> Bool {
        var text = token
        return text.withUTF8 { bytes in
            // Not a session token, and three dot-separated parts.
            guard !bytes.starts(with: SessionToken.prefix.utf8) else { return false }
            var dots = 0
            for byte in bytes where byte == UInt8(ascii: ".") { dots += 1 }
            return dots == 2
        }
    }

    /// Validates an access token and its session, and records activity, as
    /// ``SessionManager/authenticate(token:)`` does for a session token.
    /// - Throws: `AUTH_1003` for a token that does not verify, `AUTH_1010` when it has expired,
    ///   `AUTH_1002` when its session has ended.
    public func authenticate(accessToken: String) async throws -> Session {
        let verified = try await self.verifiedToken(accessToken)
        let session = try await self.sessions.authenticate(tokenHash: verified.sessionHash)
        guard session.userID == verified.claims.sub else { throw TesseraError.tokenInvalid }
        return session
    }

    /// Validates an access token and its session and records activity, as
    /// ``authenticate(accessToken:)`` does, when that needs nothing but this node's memory: the
    /// token was verified before and is remembered, it has not expired, and its session
    /// validates with ``SessionManager/authenticateNow(tokenHash:)``.
    ///
    /// - Returns: the session, or `nil` when ``authenticate(accessToken:)`` is to decide
    ///   (which also gives the reason for a refusal).
    public func authenticateNow(accessToken: String) -> Session? {
        guard let verified = self.verified.token(accessToken),
            self.nowSeconds < verified.claims.exp,
            let session = self.sessions.authenticateNow(tokenHash: verified.sessionHash),
            session.userID == verified.claims.sub
        else { return nil }
        return session
    }

    /// Now in whole seconds, as access tokens' times are.
    private var nowSeconds: Int64 { Int64(self.now.timeIntervalSince1970.rounded(.down)) }

    /// `accessToken`, remembered or verified now, when its signature verifies, its issuer is
    /// this service's and it has not expired.
    private func verifiedToken(_ accessToken: String) async throws -> VerifiedAccessToken {
        let now = self.nowSeconds
        let verified: VerifiedAccessToken
        if let remembered = self.verified.token(accessToken) {
            verified = remembered
        } else {
            verified = try await self.verify(accessToken, now: now)
        }
        guard now < verified.claims.exp else { throw TesseraError.accessTokenExpired }
        return verified
    }

    /// Verifies a token that is not remembered, and remembers it when it verifies and has not
    /// expired (expiry is checked again on every use).
    private func verify(_ accessToken: String, now: Int64) async throws -> VerifiedAccessToken {
        let claims: AccessTokenClaims
        do {
            claims = try await self.keys.verify(accessToken)
        } catch {
            throw TesseraError.tokenInvalid
        }
        guard claims.iss == self.configuration.issuer else { throw TesseraError.tokenInvalid }
        let verified = VerifiedAccessToken(claims: claims)
        if now < claims.exp { self.verified.insert(accessToken, verified, now: now) }
        return verified
    }

    // MARK: Introspection

    /// Whether `token` (a session token, an access token or a refresh token) is active now, and
    /// whose. Records no activity; never throws for a bad token, which is simply not active.
    public func introspect(_ token: String) async throws -> Introspection {
        if let sessionToken = SessionToken(token) {
            guard let session = try await self.sessions.activeSession(tokenHash: sessionToken.hash) else { return .inactive }
            return Introspection(
                active: true,
                tokenType: .sessionToken,
                subject: session.userID,
                sessionID: session.id,
                issuedAt: session.createdAt,
                expiresAt: session.idleExpiresAt,
                issuer: self.configuration.issuer
            )
        }
        if let refreshToken = RefreshToken(token) {
            guard let record = try await self.store.refreshToken(hash: refreshToken.hash), record.rotatedAt == nil,
                let session = try await self.sessions.activeSession(tokenHash: TokenHash(tokenModeSessionID: record.sessionID))
            else { return .inactive }
            return Introspection(
                active: true,
                tokenType: .refreshToken,
                subject: session.userID,
                sessionID: session.id,
                issuedAt: record.createdAt,
                expiresAt: session.idleExpiresAt,
                issuer: self.configuration.issuer
            )
        }
        guard Self.isAccessToken(token), let claims = try? await self.verifiedToken(token).claims,
            let session = try await self.sessions.activeSession(tokenHash: TokenHash(tokenModeSessionID: claims.sid)),
            session.userID == claims.sub
        else { return .inactive }
        return Introspection(
            active: true,
            tokenType: .accessToken,
            subject: claims.sub,
            sessionID: claims.sid,
            issuedAt: Date(timeIntervalSince1970: TimeInterval(claims.iat)),
            expiresAt: Date(timeIntervalSince1970: TimeInterval(claims.exp)),
            issuer: claims.iss
        )
    }

    /// The JWK set to publish now.
    public func jwks() -> JWKSet {
        self.keys.jwks(now: self.now, tokenLifetime: self.configuration.accessTokenLifetime)
    }
}

/// The successor pair of a rotated refresh token, as the store keeps it: sealed (AES-GCM) with a
/// key derived (HKDF-SHA256) from the rotated token itself, so only its holder can open it.
struct SealedPair: Codable {
    var accessToken: String
    var accessExpiresAt: Int64
    var refreshToken: String

    static func key(for token: RefreshToken) -> SymmetricKey {
        HKDF<SHA256>.deriveKey(
            inputKeyMaterial: SymmetricKey(data: Array(token.rawValue.utf8)),
            salt: Array("tessera refresh successor".utf8),
            info: [],
            outputByteCount: 32
        )
    }

    func sealed(with token: RefreshToken) throws -> [UInt8] {
        let box = try AES.GCM.seal(try JSONEncoder().encode(self), using: Self.key(for: token))
        guard let combined = box.combined else { throw TesseraError.internalError }
        return Array(combined)
    }

    static func open(_ sealed: [UInt8], with token: RefreshToken) throws -> SealedPair {
        let box = try AES.GCM.SealedBox(combined: sealed)
        return try JSONDecoder().decode(SealedPair.self, from: try AES.GCM.open(box, using: Self.key(for: token)))
    }
}
