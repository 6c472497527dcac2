public import Foundation

/// Why a session stopped being valid. Clients see `idle`, `absolute` or `revoked`.
public enum SessionEndReason: String, Sendable, Hashable, Codable {
    /// No activity for the idle timeout.
    case idle
    /// The absolute lifetime ran out.
    case absolute
    /// Revoked: logout, a revocation by the user or an administrator.
    case revoked
}

/// Where a session came from and what device holds it. Informational only.
public struct SessionMetadata: Sendable, Hashable, Codable {
    /// The client address the session was created from.
    public var ipAddress: String?
    /// The user agent the session was created with (truncated).
    public var userAgent: String?
    /// A label the client chose, such as a device name.
    public var label: String?

    public init(ipAddress: String? = nil, userAgent: String? = nil, label: String? = nil) {
        self.ipAddress = ipAddress
        self.userAgent = userAgent
        self.label = label
    }
}

/// A session as a store keeps it.
///
/// The token itself is never part of it: only its SHA-256 is.
public struct Session: Sendable, Hashable {
    /// A session's columns in the stores' `sessions` table, in the order both stores select and
    /// insert them.
    package static let storedColumns = """
        id, token_hash, user_id, created_at, last_seen_at, idle_expires_at, absolute_expires_at, revoked_at, \
        revocation_reason, data, data_version, ip_address, user_agent, label, csrf_token
        """

    /// The public id, for listing and revoking. Never a credential.
    public var id: String
    /// SHA-256 of the session token.
    public var tokenHash: TokenHash
    /// The subject: a Tessera user id, or the subject an application named.
    public var userID: String
    public var createdAt: Date
    /// The last activity the store has recorded (coalesced to the activity granularity).
    public var lastSeenAt: Date
    /// When the session ends for inactivity, unless activity is recorded first. Never later
    /// than ``absoluteExpiresAt``.
    public var idleExpiresAt: Date
    /// When the session ends whatever happens.
    public var absoluteExpiresAt: Date
    /// When the session was revoked, if it was.
    public var revokedAt: Date?
    /// Why it was revoked (`logout`, `user`, `admin`, …), if it was.
    public var revocationReason: String?
    /// The application's data, a small JSON object.
    public var data: [String: JSONValue]
    /// Bumped on every data change; writers must name the version they read.
    public var dataVersion: Int
    public var metadata: SessionMetadata
    /// The token a browser client must echo in `X-CSRF-Token` on unsafe requests.
    public var csrfToken: String

    public init(
        id: String,
        tokenHash: TokenHash,
        userID: String,
        createdAt: Date,
        lastSeenAt: Date,
        idleExpiresAt: Date,
        absoluteExpiresAt: Date,
        revokedAt: Date? = nil,
        revocationReason: String? = nil,
        data: [String: JSONValue] = [:],
        dataVersion: Int = 1,
        metadata: SessionMetadata = .init(),
        csrfToken: String
    ) {
        self.id = id
        self.tokenHash = tokenHash
        self.userID = userID
        self.createdAt = createdAt
        self.lastSeenAt = lastSeenAt
        self.idleExpiresAt = idleExpiresAt
        self.absoluteExpiresAt = absoluteExpiresAt
        self.revokedAt = revokedAt
        self.revocationReason = revocationReason
        self.data = data
        self.dataVersion = dataVersion
        self.metadata = metadata
        self.csrfToken = csrfToken
    }

    /// Why the session is not valid at `now`, or `nil` when it is.
    ///
    /// Revocation wins over expiry. A deadline is inclusive: at exactly `idleExpiresAt` the
    /// session has ended. When the idle deadline was capped by the absolute one, the reason is
    /// `absolute`.
    public func endReason(at now: Date) -> SessionEndReason? {
        if let revokedAt, revokedAt <= now { return .revoked }
        if now >= self.absoluteExpiresAt { return .absolute }
        if now >= self.idleExpiresAt { return self.idleExpiresAt >= self.absoluteExpiresAt ? .absolute : .idle }
        return nil
    }
}

/// A user who logs in with a password.
public struct User: Sendable, Hashable {
    /// What a user may do besides holding sessions of their own.
    public enum Role: String, Sendable, Hashable, CaseIterable {
        /// An ordinary user.
        case user
        /// An operator: the admin API and console, with a session of theirs.
        case admin
    }

    public var id: String
    public var username: String
    /// The bcrypt hash of the password.
    public var passwordHash: String
    public var createdAt: Date
    public var role: Role
    /// When the user was disabled (they cannot log in); `nil` while enabled.
    public var disabledAt: Date?

    public init(id: String, username: String, passwordHash: String, createdAt: Date, role: Role = .user, disabledAt: Date? = nil) {
        self.id = id
        self.username = username
        self.passwordHash = passwordHash
        self.createdAt = createdAt
        self.role = role
        self.disabledAt = disabledAt
    }

    /// Whether the user may log in.
    public var isEnabled: Bool { self.disabledAt == nil }
}

/// The login attempts of one key (an account or a client address): the failures in a fixed
/// window, and the attempts whose passwords are being checked now.
public struct ThrottleCounter: Sendable, Hashable {
    /// Wrong passwords since ``windowStartedAt``.
    public var failures: Int
    public var windowStartedAt: Date
    /// Attempts begun and not yet ended: each may still fail.
    public var inFlight: Int
    /// When the oldest attempt in flight began (as far as the store knows).
    public var inFlightSince: Date

    public init(failures: Int, windowStartedAt: Date, inFlight: Int = 0, inFlightSince: Date? = nil) {
        self.failures = failures
        self.windowStartedAt = windowStartedAt
        self.inFlight = inFlight
        self.inFlightSince = inFlightSince ?? windowStartedAt
    }
}

/// How a login attempt ended, for ``SessionStore/endAttempt(key:at:window:outcome:)``.
public enum LoginAttemptOutcome: Sendable, Hashable {
    /// The password was wrong: one more failure.
    case failed
    /// The password was right: the key starts over (its failures are forgotten).
    case succeeded
    /// The attempt counts for nothing: it was not checked, or it succeeded on a key that keeps
    /// its failures (a client address).
    case withdrawn
}
