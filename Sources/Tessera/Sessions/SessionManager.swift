package import Foundation

/// Creates, validates, slides and revokes sessions according to a ``SessionPolicy``.
///
/// This is where every rule lives; stores only record. It is a value that is cheap to copy
/// and safe to share: the HTTP service and the middleware both use one.
public struct SessionManager: Sendable {
    /// A session just created, with the token that is shown to its holder exactly once.
    public struct NewSession: Sendable {
        public var session: Session
        public var token: SessionToken
    }

    public let store: any SessionStore
    public let policy: SessionPolicy
    public let clock: any WallClock
    /// What session data may be: its size in bytes of JSON, its nesting, its objects and arrays.
    public let dataLimits: JSONLimits
    /// Where activity goes when it is written in batches; `nil` writes it at once.
    public let activityBuffer: ActivityBuffer?
    /// Sessions read recently, so that most validations cost no store read; `nil` reads the
    /// store every time.
    public let cache: SessionCache?
    /// Group commit of new sessions; `nil` writes each on its own.
    public let insertBatcher: SessionInsertBatcher?
    /// Validations that missed the cache together are read from the store together.
    public let lookups: SessionLookupBatcher
    /// What this manager, its logins, token service, authenticators and sweeper count.
    public let metrics: SessionMetrics
    let coalescer: ActivityCoalescer

    /// - Parameters:
    ///   - store: where sessions live
    ///   - policy: timeouts and activity granularity
    ///   - clock: the source of "now" (inject a ``ManualClock`` in tests)
    ///   - dataLimits: what session data may be (default ``JSONLimits/sessionData``: 16 KiB, 32
    ///     levels, 256 members per object, 1,000 elements per array)
    ///   - activityBuffer: buffer activity for an ``ActivityFlusher`` to write in batches; by
    ///     default each due activity write happens before the request is answered
    ///   - cache: a cache of validated sessions, kept current by a ``SessionChangeFeed``
    ///   - groupCommit: write sessions created concurrently in shared transactions
    ///   - metrics: where counts go (by default to the process's swift-metrics backend)
    public init(
        store: any SessionStore,
        policy: SessionPolicy = .init(),
        clock: any WallClock = SystemClock(),
        dataLimits: JSONLimits = .sessionData,
        activityBuffer: ActivityBuffer? = nil,
        cache: SessionCache? = nil,
        groupCommit: Bool = false,
        metrics: SessionMetrics = SessionMetrics()
    ) {
        self.metrics = metrics
        self.store = store
        self.policy = policy
        self.clock = clock
        self.dataLimits = dataLimits
        self.activityBuffer = activityBuffer
        self.cache = cache
        self.insertBatcher = groupCommit ? SessionInsertBatcher(store: store) : nil
        self.lookups = SessionLookupBatcher(store: store)
        self.coalescer = ActivityCoalescer(granularity: policy.activityGranularity)
    }

    /// Now, at the precision stores keep.
    package var now: Date { self.clock.now.truncatedToMilliseconds }

    // MARK: Creating

    /// How a new session is presented: with a session token (cookie or bearer), or in token mode,
    /// through access and refresh tokens only.
    public enum Credential: Sendable, Hashable {
        /// A `tss_` session token, shown once to the creator.
        case sessionToken
        /// No session token exists: the session is reached through the access and refresh tokens
        /// issued for it (see ``TokenHash/init(tokenModeSessionID:)``).
        case tokenMode
    }

    /// Creates a session for `userID` with a fresh token and a fresh id.
    ///
    /// In ``Credential/tokenMode`` the returned ``NewSession/token`` is not a credential of the
    /// session (nothing stores its hash); it must not be handed out.
    public func createSession(
        userID: String,
        data: [String: JSONValue] = [:],
        metadata: SessionMetadata = .init(),
        credential: Credential = .sessionToken
    ) async throws -> NewSession {
        try self.checkData(data)
        let now = self.now
        let token = SessionToken.generate()
        let absolute = now.addingTimeInterval(self.policy.absoluteTimeout.timeInterval).truncatedToMilliseconds
        let idle = min(now.addingTimeInterval(self.policy.idleTimeout.timeInterval).truncatedToMilliseconds, absolute)
        let id = makeIdentifier(prefix: "ses_")
        let session = Session(
            id: id,
            tokenHash: credential == .tokenMode ? TokenHash(tokenModeSessionID: id) : token.hash,
            userID: userID,
            createdAt: now,
            lastSeenAt: now,
            idleExpiresAt: idle,
            absoluteExpiresAt: absolute,
            data: data,
            dataVersion: 1,
            metadata: metadata,
            csrfToken: Base64URL.encode(secureRandomBytes(count: 32))
        )
        if let batcher = self.insertBatcher {
            try await batcher.insert(session)
        } else {
            try await self.store.insertSession(session)
        }
        self.metrics.sessionCreated(credential)
        return NewSession(session: session, token: token)
    }

    // MARK: Validating

    /// Validates a presented token and records activity.
    ///
    /// The order is fixed: missing → `AUTH_1004`; malformed or unknown → `AUTH_1003`; revoked,
    /// idle or past its absolute deadline → `AUTH_1002` with the reason; then activity slides
    /// the idle deadline, written at most once per session per granularity window.
    ///
    /// - Returns: the session with the deadlines the store now holds.
    public func authenticate(token presented: String?) async throws -> Session {
        guard let presented, !presented.isEmpty else { throw TesseraError.tokenMissing }
        guard let token = SessionToken(presented) else { throw TesseraError.tokenInvalid }
        return try await self.authenticate(tokenHash: token.hash)
    }

    /// Validates the session whose token hash is `hash` and records activity, as
    /// ``authenticate(token:)`` does after parsing the token.
    ///
    /// For credentials that name their session in another way, such as a verified access token
    /// (with ``TokenHash/init(tokenModeSessionID:)``).
    public func authenticate(tokenHash hash: TokenHash) async throws -> Session {
        var session: Session
        let fromCache: Bool
        let now: Date
        if let cached = self.cache?.session(tokenHash: hash) {
            now = self.now
            // The common case: cached, alive, its activity buffered. Nothing to wait for.
            if let valid = self.validNow(cached, now: now) { return valid }
            session = consume cached
            fromCache = true
        } else {
            session = try await self.read(tokenHash: hash)
            fromCache = false
            now = self.now
        }
        var reason = self.endReason(of: &session, now: now, cached: fromCache)
        if fromCache, reason == .idle {
            // Another node may have seen activity this one has not: ask the store before refusing.
            session = try await self.read(tokenHash: hash)
            reason = self.endReason(of: &session, now: now)
        }
        if let reason {
            throw TesseraError.sessionExpired(reason)
        }
        try await self.slide(&session, now: now)
        return session
    }

    /// Validates the session whose token hash is `hash` and records activity, as
    /// ``authenticate(tokenHash:)`` does, when that needs nothing but this node's memory: the
    /// session is cached, alive, and activity is written in batches (``activityBuffer``).
    ///
    /// - Returns: the session as ``authenticate(tokenHash:)`` would return it, or `nil` when
    ///   validating it needs the store or ends in a refusal (it is not cached, looks idle, has
    ///   ended, or activity is written at once): ask ``authenticate(tokenHash:)`` then, which
    ///   records nothing twice. A cache miss here is not counted; that call counts it.
    public func authenticateNow(tokenHash hash: TokenHash) -> Session? {
        guard self.activityBuffer != nil, let cached = self.cache?.session(tokenHash: hash, countingMiss: false) else { return nil }
        return self.validNow(cached, now: self.now)
    }

    /// `cached` with this request's activity recorded, when it is alive at `now` and activity
    /// is buffered; `nil` otherwise (and nothing recorded).
    private func validNow(_ cached: Session, now: Date) -> Session? {
        guard let buffer = self.activityBuffer, cached.endReason(at: now) == nil else { return nil }
        var session = cached
        guard let activity = self.coalescer.claim(sessionID: session.id, storedLastSeen: session.lastSeenAt, now: now) else { return session }
        self.apply(activity: activity, to: &session)
        buffer.record(ActivityUpdate(sessionID: session.id, lastSeenAt: session.lastSeenAt, idleExpiresAt: session.idleExpiresAt))
        self.cache?.recordActivity(tokenHash: session.tokenHash, lastSeenAt: session.lastSeenAt, idleExpiresAt: session.idleExpiresAt)
        return session
    }

    /// The session whose token hash is `hash` when it is valid now, read from the store without
    /// recording activity: for introspection, which must not keep a session alive.
    public func activeSession(tokenHash hash: TokenHash) async throws -> Session? {
        guard var session = try await self.store.session(tokenHash: hash), session.tokenHash.constantTimeEquals(hash) else { return nil }
        return self.endReason(of: &session, now: self.now) == nil ? session : nil
    }

    /// Reads a session from the store, and keeps it in the cache.
    private func read(tokenHash hash: TokenHash) async throws -> Session {
        let marker = self.cache?.readMarker
        guard let session = try await self.lookups.session(tokenHash: hash), session.tokenHash.constantTimeEquals(hash) else {
            throw TesseraError.tokenInvalid
        }
        if let cache = self.cache, let marker {
            cache.insert(session, readAt: marker)
        }
        return session
    }

    /// Why `session` has ended at `now`, if it has, counting activity this node recorded and has
    /// not written yet as much as stored activity.
    ///
    /// A `cached` session already carries the activity this node slid it by
    /// (``SessionCache/recordActivity(tokenHash:lastSeenAt:idleExpiresAt:)``), so the activity
    /// still being written is looked up only when it looks idle: a validation that finds its
    /// session alive takes no lock but its cache shard's.
    private func endReason(of session: inout Session, now: Date, cached: Bool = false) -> SessionEndReason? {
        if cached {
            let reason = session.endReason(at: now)
            guard reason == .idle else { return reason }
        }
        if let pending = self.coalescer.pendingActivity(sessionID: session.id, now: now), pending > session.lastSeenAt {
            self.apply(activity: pending, to: &session)
        }
        return session.endReason(at: now)
    }

    private func apply(activity: Date, to session: inout Session) {
        session.lastSeenAt = activity
        session.idleExpiresAt = min(
            activity.addingTimeInterval(self.policy.idleTimeout.timeInterval).truncatedToMilliseconds,
            session.absoluteExpiresAt
        )
    }

    private func slide(_ session: inout Session, now: Date) async throws {
        guard let activity = self.coalescer.claim(sessionID: session.id, storedLastSeen: session.lastSeenAt, now: now) else { return }
        var updated = session
        self.apply(activity: activity, to: &updated)
        let update = ActivityUpdate(sessionID: session.id, lastSeenAt: updated.lastSeenAt, idleExpiresAt: updated.idleExpiresAt)
        if let buffer = self.activityBuffer {
            buffer.record(update)
        } else {
            do {
                try await self.store.touchSession(id: session.id, lastSeenAt: update.lastSeenAt, idleExpiresAt: update.idleExpiresAt)
            } catch {
                self.coalescer.release(sessionID: session.id, claimed: activity)
                throw error
            }
        }
        self.cache?.recordActivity(tokenHash: session.tokenHash, lastSeenAt: updated.lastSeenAt, idleExpiresAt: updated.idleExpiresAt)
        session = updated
    }

    // MARK: Listing and revoking

    /// The sessions of `userID` (of everyone with `nil`) that are still valid, newest first.
    public func activeSessions(userID: String?, limit: Int = 1000) async throws -> [Session] {
        try await self.store.activeSessions(userID: userID, at: self.now, limit: limit)
    }

    /// Revokes one session of `userID`.
    ///
    /// - Returns: whether such a session existed, belonged to `userID` and was active.
    @discardableResult
    public func revoke(sessionID: String, ofUser userID: String? = nil, reason: String) async throws -> Bool {
        if let userID {
            guard let session = try await self.store.session(id: sessionID), session.userID == userID,
                session.endReason(at: self.now) == nil
            else { return false }
        }
        let revoked = try await self.store.revokeSession(id: sessionID, at: self.now, reason: reason)
        self.cache?.invalidate(.session(id: sessionID))
        self.coalescer.forget(sessionID: sessionID)
        self.metrics.revoked(revoked ? 1 : 0, reason: reason)
        return revoked
    }

    /// Revokes every session of `userID` except `keeping`.
    /// - Returns: how many sessions were revoked.
    @discardableResult
    public func revokeAll(userID: String, keeping: String? = nil, reason: String) async throws -> Int {
        let revoked = try await self.store.revokeSessions(userID: userID, except: keeping, at: self.now, reason: reason)
        self.cache?.invalidate(.user(id: userID))
        self.metrics.revoked(revoked, reason: reason)
        return revoked
    }

    // MARK: Data

    /// Merges `patch` (JSON merge patch) into the session's data if its version is still
    /// `expectedVersion`.
    /// - Returns: the session with its new data and version.
    public func updateData(of session: Session, expectedVersion: Int, patch: [String: JSONValue]) async throws -> Session {
        guard expectedVersion == session.dataVersion else {
            throw TesseraError.versionConflict(current: session.dataVersion)
        }
        let merged = session.data.merging(patch: patch)
        try self.checkData(merged)
        let version = try await self.store.updateSessionData(id: session.id, expectedVersion: expectedVersion, data: merged, at: self.now)
        self.cache?.invalidate(.session(id: session.id))
        guard let version else {
            let current = try await self.store.session(id: session.id)?.dataVersion ?? session.dataVersion
            throw TesseraError.versionConflict(current: current)
        }
        var updated = session
        updated.data = merged
        updated.dataVersion = version
        return updated
    }

    /// Refuses data past ``dataLimits``: `DATA_1002` when it is too large, `REQ_1007` when it is
    /// nested too deeply or has too many members or elements.
    private func checkData(_ data: [String: JSONValue]) throws {
        guard !data.isEmpty else { return }
        do {
            try self.dataLimits.check(.object(data))
        } catch {
            if error.kind == .tooLarge { throw TesseraError.dataTooLarge(limit: self.dataLimits.maxBytes) }
            throw TesseraError.jsonLimitExceeded("Session data: \(error.detail).")
        }
    }
}
