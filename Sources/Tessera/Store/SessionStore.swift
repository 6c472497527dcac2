public import Foundation

/// Durable storage of sessions, users and login-throttling counters.
///
/// Every store passes the same conformance suite. Stores hold no policy: the
/// ``SessionManager`` decides, the store records. An acknowledged write (a returned call) is
/// durable.
public protocol SessionStore: Sendable {
    /// Succeeds when the store can serve reads and writes; for readiness checks.
    func ping() async throws

    // MARK: Sessions

    /// Inserts new sessions in one durable transaction (group commit): all or none.
    /// Idempotent: inserting a session whose id exists changes nothing, so a retry after a lost
    /// acknowledgement is safe.
    func insertSessions(_ sessions: [Session]) async throws

    /// The session whose token hashes to `tokenHash`, whatever its state.
    func session(tokenHash: TokenHash) async throws -> Session?

    /// The sessions whose tokens hash to any of `tokenHashes`, whatever their state, in no
    /// particular order; hashes no session has are left out. One read for all of them (one
    /// statement, one round trip), for validations that missed the cache together.
    func sessions(tokenHashes: [TokenHash]) async throws -> [Session]

    /// The session with the public id `id`, whatever its state.
    func session(id: String) async throws -> Session?

    /// Records activity: sets `lastSeenAt` and `idleExpiresAt`, but only forward in time (a
    /// late write never moves a deadline back) and never on a revoked session.
    /// - Returns: whether a row changed.
    @discardableResult
    func touchSession(id: String, lastSeenAt: Date, idleExpiresAt: Date) async throws -> Bool

    /// Records the activity of many sessions in one durable write. For each update,
    /// `lastSeenAt` and `idleExpiresAt` become the greater of the stored and the given value
    /// (`GREATEST`), so batches from several nodes, in any order, never move a deadline back.
    /// Revoked sessions are left alone.
    /// - Returns: how many sessions changed.
    @discardableResult
    func touchSessions(_ updates: [ActivityUpdate]) async throws -> Int

    /// Replaces the session's data if its version is still `expectedVersion`; `at` is when, for
    /// the change feed.
    /// - Returns: the new version, or `nil` when the version had moved on (or the session is gone).
    func updateSessionData(id: String, expectedVersion: Int, data: [String: JSONValue], at: Date) async throws -> Int?

    /// Revokes one session. Revoking is permanent; a second revocation keeps the first time.
    /// - Returns: whether the session existed and was not already revoked.
    @discardableResult
    func revokeSession(id: String, at: Date, reason: String) async throws -> Bool

    /// Revokes every unrevoked session of `userID`, except `exceptID`.
    /// - Returns: how many sessions were revoked.
    @discardableResult
    func revokeSessions(userID: String, except exceptID: String?, at: Date, reason: String) async throws -> Int

    /// The sessions of `userID` (of everyone with `nil`) that are neither revoked nor expired at
    /// `now`, newest first, at most `limit`.
    func activeSessions(userID: String?, at now: Date, limit: Int) async throws -> [Session]

    // MARK: The change feed

    /// Changes recorded after `cursor`, in the order they committed, at most `limit`.
    ///
    /// Every revocation and every data update records one change in the same transaction as
    /// the write, so a node that reads the feed learns of every write made through any node or
    /// process; ``SessionCache`` uses it to drop what it holds. Sequence numbers only grow and
    /// are never reused.
    func sessionChanges(after cursor: Int64, limit: Int) async throws -> [SessionChange]

    /// Where a new reader of the feed starts: the sequence number of the newest committed change
    /// (or a smaller one, such as 0 when the feed is empty), so that reading after it returns
    /// every change that commits later.
    func latestSessionChange() async throws -> Int64

    /// Deletes changes recorded before `cutoff`.
    /// - Returns: how many were deleted.
    func deleteSessionChanges(before cutoff: Date) async throws -> Int

    /// Deletes up to `limit` sessions that ended (revoked or expired) before `cutoff`, with
    /// their refresh tokens.
    /// - Returns: how many sessions were deleted.
    func deleteSessions(endedBefore cutoff: Date, limit: Int) async throws -> Int

    // MARK: Session events (the outbox)

    /// Events recorded after `cursor` that pass `filter`, in the order they committed, at most
    /// `limit`.
    ///
    /// Every write that changes a session records its ``SessionEvent`` in the same transaction:
    /// ``insertSessions(_:)`` a `session.created` per session inserted, ``revokeSession(id:at:reason:)``
    /// a `session.revoked`, ``revokeSessions(userID:except:at:reason:)`` one `session.revoked` per
    /// session and a `user.sessions_revoked`, ``updateSessionData(id:expectedVersion:data:at:)``
    /// a `session.data_changed`, ``recordExpiries(at:idleGrace:limit:)`` a `session.expired`. A
    /// write that changes nothing records nothing. Sequence numbers become visible in order, so a
    /// reader that moves past one never misses an earlier one.
    func sessionEvents(after cursor: Int64, filter: SessionEventFilter, limit: Int) async throws -> [SessionEvent]

    /// The sequence number of the newest committed event (0 when none ever was).
    func latestSessionEvent() async throws -> Int64

    /// Records `session.expired` for up to `limit` sessions whose deadline has passed at `now`
    /// and whose expiry is not recorded yet: absolute deadlines at once, idle ones `idleGrace`
    /// after they pass (so that activity another node has buffered but not written yet can still
    /// keep a session alive). A session whose expiry is recorded takes no more activity.
    /// - Returns: how many expiries were recorded, by reason.
    func recordExpiries(at now: Date, idleGrace: Duration, limit: Int) async throws -> RecordedExpiries

    /// Deletes up to `limit` events recorded before `cutoff`.
    /// - Returns: how many were deleted.
    func deleteSessionEvents(before cutoff: Date, limit: Int) async throws -> Int

    // MARK: Refresh tokens

    /// Inserts a new, unused refresh token. Idempotent: inserting a hash that exists changes
    /// nothing.
    func insertRefreshToken(_ token: RefreshTokenRecord) async throws

    /// The refresh token whose hash is `hash`, used or not.
    func refreshToken(hash: TokenHash) async throws -> RefreshTokenRecord?

    /// Rotates a refresh token: in one durable transaction, marks `hash` used at `at` with
    /// `sealedSuccessor`, and inserts `successor`, but only if `hash` exists and was not used
    /// yet. Of racing rotations of one token, exactly one succeeds.
    /// - Returns: whether this call rotated the token.
    func rotateRefreshToken(hash: TokenHash, at: Date, sealedSuccessor: [UInt8], successor: RefreshTokenRecord) async throws -> Bool

    // MARK: Users

    /// Inserts a user; throws ``UserExistsError`` when the username is taken.
    func insertUser(_ user: User) async throws

    /// The user called `username` (case-insensitive).
    func user(username: String) async throws -> User?

    /// The user with id `id`.
    func user(id: String) async throws -> User?

    /// All users, by username.
    func users() async throws -> [User]

    /// Users whose username starts with `prefix` (case-insensitive; every user with `nil`), by
    /// username (case-insensitive), after the username `cursor`, at most `limit`.
    func users(prefix: String?, after cursor: String?, limit: Int) async throws -> [User]

    /// Replaces the stored user with the same id: its password hash, role and disabled time
    /// (the username and creation time stay).
    /// - Returns: whether the user exists.
    func updateUser(_ user: User) async throws -> Bool

    // MARK: Administration

    /// How many sessions are active (neither revoked nor expired) at `now`.
    func countActiveSessions(at now: Date) async throws -> Int

    /// The sessions that match `query` at `now`, newest first (by creation time, then id, both descending), that
    /// come after `cursor` in that order, at most `limit`. Paging on with the last session's
    /// ``SessionCursor`` visits every session that existed when the first page was read exactly
    /// once, however many are created meanwhile (they sort before the cursor).
    func sessions(matching query: SessionQuery, at now: Date, after cursor: SessionCursor?, limit: Int) async throws -> [Session]

    // MARK: Login throttling

    /// The failure counter for `key`, if any.
    func throttleCounter(key: String) async throws -> ThrottleCounter?

    /// Begins a login attempt on `key`'s counter, in one atomic step: starts a new window (no
    /// failures) when the current one began at or before `now - window`; forgets attempts in
    /// flight when the oldest began at or before `now - staleAfter` (their node died before it
    /// ended them); counts this attempt in flight.
    ///
    /// Logins begin an attempt before they check the password and end it after, so that of many
    /// concurrent attempts only as many as the limit leaves room for are checked at once (see
    /// ``PasswordLogin``).
    /// - Returns: the counter with this attempt counted in flight.
    func beginAttempt(key: String, at now: Date, window: Duration, staleAfter: Duration) async throws -> ThrottleCounter

    /// Ends an attempt that ``beginAttempt(key:at:window:staleAfter:)`` began: it is no longer in
    /// flight (never below zero), and `outcome` adds a failure (in a new window when the current
    /// one began at or before `now - window`), forgets the failures, or leaves them.
    func endAttempt(key: String, at now: Date, window: Duration, outcome: LoginAttemptOutcome) async throws

    /// Deletes counters whose window started before `cutoff`.
    func deleteThrottleCounters(startedBefore cutoff: Date) async throws -> Int
}

extension SessionStore {
    /// Reads each hash with ``session(tokenHash:)``, one after the other: for stores that have
    /// no read of several.
    public func sessions(tokenHashes: [TokenHash]) async throws -> [Session] {
        var sessions: [Session] = []
        for hash in tokenHashes {
            if let session = try await self.session(tokenHash: hash) { sessions.append(session) }
        }
        return sessions
    }

    /// Inserts one new session: ``insertSessions(_:)`` with a batch of one.
    public func insertSession(_ session: Session) async throws {
        try await self.insertSessions([session])
    }
}

/// The username is already taken.
public struct UserExistsError: Error, Sendable, CustomStringConvertible {
    public var username: String

    public init(username: String) {
        self.username = username
    }

    public var description: String { "A user called '\(self.username)' already exists." }
}

/// What ``SessionStore/sessions(matching:at:after:limit:)`` looks for.
public struct SessionQuery: Sendable, Hashable {
    /// Only this user's sessions.
    public var userID: String?
    /// Only sessions with exactly this label.
    public var label: String?
    /// Only sessions active at the time asked (else ended ones too, until they are swept).
    public var activeOnly: Bool

    public init(userID: String? = nil, label: String? = nil, activeOnly: Bool = true) {
        self.userID = userID
        self.label = label
        self.activeOnly = activeOnly
    }
}

extension SessionQuery {
    /// A SQL `LIKE` pattern (with `ESCAPE '\\'`) for names that start with `prefix`, its own
    /// `%`, `_` and `\\` taken literally: for the stores' ``SessionStore/users(prefix:after:limit:)``.
    package static func likePattern(prefix: String) -> String {
        var pattern = ""
        for character in prefix {
            if character == "%" || character == "_" || character == "\\" { pattern.append("\\") }
            pattern.append(character)
        }
        return pattern + "%"
    }
}

/// A place in the order of ``SessionStore/sessions(matching:at:after:limit:)``: the creation
/// time and id of the last session of a page.
public struct SessionCursor: Sendable, Hashable {
    public var createdAt: Date
    public var id: String

    public init(createdAt: Date, id: String) {
        self.createdAt = createdAt
        self.id = id
    }

    /// Where the page that ends with `session` ends.
    public init(after session: Session) {
        self.init(createdAt: session.createdAt, id: session.id)
    }

    /// The cursor as an opaque token for an API: base64url of `milliseconds:id`.
    public var token: String {
        Base64URL.encode(Array("\(self.createdAt.millisecondsSince1970):\(self.id)".utf8))
    }

    /// The last millisecond of the year 9999.
    static let latestMilliseconds: Int64 = 253_402_300_799_999

    /// Reads a ``token``; `nil` for anything else.
    public init?(token: String) {
        guard token.utf8.count <= 200, let bytes = Base64URL.decode(token), let text = String(validating: bytes, as: UTF8.self),
            let colon = text.firstIndex(of: ":"), let milliseconds = Int64(text[..<colon]),
            // Times a `Date` holds exactly, 1970 to 9999: a forged cursor cannot overflow the
            // conversion back to milliseconds.
            (0...Self.latestMilliseconds).contains(milliseconds)
        else { return nil }
        let id = String(text[text.index(after: colon)...])
        guard !id.isEmpty, id.utf8.count <= 100 else { return nil }
        self.init(createdAt: Date(millisecondsSince1970: milliseconds), id: id)
    }
}

/// Expiries that ``SessionStore/recordExpiries(at:idleGrace:limit:)`` recorded, by reason.
public struct RecordedExpiries: Sendable, Hashable {
    /// Sessions that ended idle.
    public var idle: Int
    /// Sessions that reached their absolute deadline.
    public var absolute: Int

    public init(idle: Int = 0, absolute: Int = 0) {
        self.idle = idle
        self.absolute = absolute
    }

    /// Counts the expiry events of `events` by their reason.
    package init(_ events: [PendingEvent]) {
        self.init()
        for event in events where event.kind == .sessionExpired {
            if event.reason == SessionEndReason.absolute.rawValue { self.absolute += 1 } else { self.idle += 1 }
        }
    }

    /// Every expiry recorded.
    public var count: Int { self.idle + self.absolute }
}

/// Activity of one session to record: see ``SessionStore/touchSessions(_:)``.
public struct ActivityUpdate: Sendable, Hashable {
    public var sessionID: String
    public var lastSeenAt: Date
    public var idleExpiresAt: Date

    public init(sessionID: String, lastSeenAt: Date, idleExpiresAt: Date) {
        self.sessionID = sessionID
        self.lastSeenAt = lastSeenAt
        self.idleExpiresAt = idleExpiresAt
    }
}

/// One entry of the change feed: see ``SessionStore/sessionChanges(after:limit:)``.
public struct SessionChange: Sendable, Hashable {
    /// What changed.
    public enum Subject: Sendable, Hashable {
        /// One session was revoked or its data changed.
        case session(id: String)
        /// Sessions of this user were revoked.
        case user(id: String)
    }

    /// The change's place in the feed.
    public var sequence: Int64
    public var subject: Subject

    public init(sequence: Int64, subject: Subject) {
        self.sequence = sequence
        self.subject = subject
    }
}

/// A store that can announce new changes as they commit, so that readers of the change feed
/// need not wait for their next poll.
public protocol SessionChangeNotifier: Sendable {
    /// Calls `onChange` once when listening starts and then whenever changes have committed,
    /// until the task is cancelled. Throws when the listening connection is lost.
    func listenForSessionChanges(_ onChange: @escaping @Sendable () -> Void) async throws
}
