public import AsyncHTTPClient
import Foundation
public import Logging
import NIOCore
import NIOHTTP1

/// The client of a Tessera service in token mode: it owns the credentials, attaches them to
/// requests, and refreshes them without storms, loops, or spurious sign-outs.
///
/// ```swift
/// let client = TesseraClient(baseURL: "https://auth.example.com", store: FileCredentialStore(url: file))
/// try await client.login(username: "alice", password: "…")
/// let response = try await client.send(.get("/v1/session"))
/// ```
///
/// - One refresh at a time: every request that needs a new access token waits for the same one.
/// - The access token is refreshed at `expiry − margin`, on a monotonic clock, with the expiry
///   counted from `expiresIn` and the local time: a wrong device clock does not matter.
/// - A request answered `401` is retried once, with a newer credential; never twice.
/// - At most ``Configuration/maximumRefreshes`` refreshes per ``Configuration/refreshWindow``.
/// - A failed refresh signs out only when the service says the session is gone; a network error,
///   a timeout or a `5xx` keeps the session (see `docs/client.md`).
/// - When the session ends, the credentials are cleared and exactly one
///   ``TesseraClientEvent/signedOut(_:)`` is emitted on ``events()``.
public actor TesseraClient {
    /// The configuration the client was created with.
    public nonisolated let configuration: Configuration

    private let transport: any TesseraTransport
    private let store: any CredentialStore
    private let clock: any MonotonicClock
    private let logger: Logger
    private nonisolated let hub = EventHub()

    /// The credentials in use, with their deadlines on the monotonic clock.
    private struct Current {
        var credentials: TesseraCredentials
        /// Increases with every credential the client takes on, so a `401` can be told apart:
        /// sent with an older credential (retry with the current one) or with the current one
        /// (refresh first).
        var version: UInt64
        var expiresAt: MonotonicInstant
        var refreshAt: MonotonicInstant

        /// What a request is sent with now.
        var credential: Credential { Credential(accessToken: self.credentials.accessToken, version: self.version) }
    }

    /// What a request is sent with.
    struct Credential: Sendable {
        var accessToken: String
        var version: UInt64
    }

    /// The one refresh in progress and the requests waiting for it.
    private struct Flight {
        let id: UInt64
        let task: Task<Void, Never>
        var waiters: [UInt64: CheckedContinuation<Credential, any Error>] = [:]
    }

    private var loaded = false
    private var current: Current?
    private var lastSignOutReason: SignOutReason?
    /// Bumped by every sign-out and login: a refresh started in an older generation is discarded
    /// when it completes, never written back.
    private var generation: UInt64 = 0
    private var lastVersion: UInt64 = 0
    private var flight: Flight?
    private var lastFlightID: UInt64 = 0
    private var lastWaiterID: UInt64 = 0
    private var limiter: RefreshLimiter
    private var backoff: RefreshBackoff
    private var timer: Task<Void, Never>?
    private var timerID: UInt64 = 0

    /// Creates a client.
    ///
    /// - Parameters:
    ///   - transport: sends the requests (``HTTPClientTransport`` in an app)
    ///   - store: where the credentials are kept between launches; they are loaded on first use
    ///   - configuration: the refresh margin, limits and backoff
    ///   - clock: the monotonic clock deadlines are scheduled on (a ``ManualMonotonicClock`` in tests)
    ///   - logger: where the client logs refreshes and sign-outs (never tokens)
    public init(
        transport: any TesseraTransport,
        store: any CredentialStore = InMemoryCredentialStore(),
        configuration: Configuration = .init(),
        clock: any MonotonicClock = SystemMonotonicClock(),
        logger: Logger = Logger(label: "tessera.client")
    ) {
        self.transport = transport
        self.store = store
        self.configuration = configuration
        self.clock = clock
        self.logger = logger
        self.limiter = RefreshLimiter(maximum: configuration.maximumRefreshes, window: configuration.refreshWindow)
        self.backoff = RefreshBackoff(initial: configuration.initialBackoff, maximum: configuration.maximumBackoff)
    }

    /// Creates a client that talks to `baseURL` through AsyncHTTPClient.
    ///
    /// - Parameters:
    ///   - baseURL: the service, such as `https://auth.example.com`
    ///   - httpClient: the client to send with (by default the process-wide shared one)
    ///   - store: where the credentials are kept between launches
    ///   - configuration: the refresh margin, limits and backoff
    ///   - logger: where the client logs refreshes and sign-outs (never tokens)
    public init(
        baseURL: String,
        httpClient: HTTPClient = .shared,
        store: any CredentialStore = InMemoryCredentialStore(),
        configuration: Configuration = .init(),
        logger: Logger = Logger(label: "tessera.client")
    ) {
        self.init(
            transport: HTTPClientTransport(baseURL: baseURL, httpClient: httpClient),
            store: store,
            configuration: configuration,
            logger: logger
        )
    }

    deinit {
        self.timer?.cancel()
        self.hub.finish()
    }

    // MARK: Public API

    /// A new stream of the client's events, from now on. Each call returns a stream of its own.
    public nonisolated func events() -> AsyncStream<TesseraClientEvent> {
        self.hub.subscribe()
    }

    /// The credentials in use, or `nil` when signed out.
    public var credentials: TesseraCredentials? {
        self.loadIfNeeded()
        return self.current?.credentials
    }

    /// Whether the client holds credentials.
    public var isSignedIn: Bool { self.credentials != nil }

    /// Signs in with a username and password (`POST /v1/login`, `"mode": "token"`), replacing any
    /// credentials the client held, and emits ``TesseraClientEvent/signedIn(sessionID:)``.
    ///
    /// - Parameters:
    ///   - username: the user's name
    ///   - password: the user's password
    ///   - label: the session's label (by default ``Configuration/sessionLabel``)
    /// - Returns: the new credentials
    /// - Throws: ``TesseraClientError`` with ``TesseraClientError/Code/invalidCredentials`` for a
    ///   wrong username or password, ``TesseraClientError/Code/loginFailed`` for another refusal
    @discardableResult
    public func login(username: String, password: String, label: String? = nil) async throws -> TesseraCredentials {
        self.loadIfNeeded()
        let request = try TesseraHTTPRequest(
            method: .POST,
            path: "/v1/login",
            json: LoginBody(username: username, password: password, label: label ?? self.configuration.sessionLabel)
        )
        // The expiry counts from the moment the request left, which is no later than the server's
        // issuance: the client errs on the side of refreshing early.
        let sentAt = self.clock.now
        let sentDate = self.clock.date
        let response = try await self.transmit(request)
        switch response.status.code {
        case 200:
            let tokens: TokenResponse
            do {
                tokens = try response.decode(TokenResponse.self)
            } catch {
                throw TesseraClientError(.invalidResponse, "the login answer is not a token pair", status: response.status, underlyingError: error)
            }
            let credentials = tokens.credentials(receivedAt: sentDate)
            // A login replaces whatever this client held: a refresh still running for it is
            // discarded, and requests waiting for it go on with the new credentials.
            self.generation += 1
            let flight = self.flight
            self.flight = nil
            flight?.task.cancel()
            self.backoff.reset()
            self.lastSignOutReason = nil
            self.save(credentials)
            let current = self.takeOn(credentials, expiresAt: sentAt.advanced(by: credentials.lifetime))
            for waiter in flight?.waiters.values ?? [:].values { waiter.resume(returning: current) }
            self.logger.debug("signed in", metadata: ["session": "\(credentials.sessionID)"])
            self.hub.emit(.signedIn(sessionID: credentials.sessionID))
            return credentials
        case 401 where response.serverError?.code == "AUTH_1001":
            throw TesseraClientError(
                .invalidCredentials,
                "wrong username or password",
                serverError: response.serverError,
                status: response.status
            )
        default:
            throw TesseraClientError(
                .loginFailed,
                "the login was refused with \(response.status.code)",
                serverError: response.serverError,
                status: response.status,
                retryAfter: RefreshOutcome.retryAfter(response.headers)
            )
        }
    }

    /// Sends an authenticated request: with `Authorization: Bearer <access token>`, after a
    /// refresh if the access token has expired.
    ///
    /// A `401` answer is retried once, with a newer credential (refreshing first if the request
    /// was sent with the current one). Every other answer is returned as it is.
    ///
    /// - Parameter request: the request; its `Authorization` field is replaced
    /// - Returns: the response, whatever its status except `401`
    /// - Throws: ``TesseraClientError``: ``TesseraClientError/Code/signedOut`` when the session
    ///   ended, ``TesseraClientError/Code/unauthorized`` for a `401` to a just-obtained credential,
    ///   ``TesseraClientError/Code/refreshUnavailable`` or
    ///   ``TesseraClientError/Code/refreshLimitExceeded`` when a needed refresh could not happen,
    ///   ``TesseraClientError/Code/transport`` when no response came; `CancellationError` when the
    ///   calling task is cancelled (a shared refresh goes on regardless).
    public func send(_ request: TesseraHTTPRequest) async throws -> TesseraHTTPResponse {
        var credential = try await self.usableCredential()
        var retried = false
        while true {
            var authorized = request
            authorized.headers.replaceOrAdd(name: "Authorization", value: "Bearer \(credential.accessToken)")
            let response = try await self.transmit(authorized)
            guard response.status == .unauthorized else { return response }
            guard !retried else {
                // Sent with the credential obtained for this very request: refreshing again would
                // only loop. The service does not accept this user here.
                throw TesseraClientError(
                    .unauthorized,
                    "the request was refused with a credential just obtained",
                    serverError: response.serverError,
                    status: response.status
                )
            }
            retried = true
            credential = try await self.credential(after: credential.version)
        }
    }

    /// Refreshes now (or waits for the refresh in progress), unless another process sharing the
    /// store has refreshed already.
    ///
    /// - Throws: as ``send(_:)`` does when a refresh is needed and fails
    public func refresh() async throws {
        self.loadIfNeeded()
        guard let current = self.current else { throw self.noSessionError() }
        _ = try await self.newerCredential(than: current.version)
    }

    /// Signs out: clears the credentials at once, discards any refresh in progress, fails the
    /// requests waiting for it, emits ``TesseraClientEvent/signedOut(_:)`` with
    /// ``SignOutReason/userInitiated``, then asks the service to end the session
    /// (`POST /v1/logout`, best effort: a failure there changes nothing locally).
    ///
    /// Calling it again, or when a refresh failure has already signed out, does nothing.
    public func signOut() async {
        self.loadIfNeeded()
        guard let accessToken = self.current?.credentials.accessToken else { return }
        self.end(.userInitiated, serverError: nil)
        var headers = HTTPHeaders()
        headers.add(name: "Authorization", value: "Bearer \(accessToken)")
        do {
            let response = try await self.transport.send(TesseraHTTPRequest(method: .POST, path: "/v1/logout", headers: headers))
            self.logger.debug("logout answered", metadata: ["status": "\(response.status.code)"])
        } catch {
            self.logger.debug("logout failed; the session ends at its timeout", metadata: ["error": "\(error)"])
        }
    }

    /// Re-checks the credentials when the app comes back to the foreground (call it from
    /// `applicationDidBecomeActive` or a `scenePhase` change to `.active`): takes on credentials
    /// another process stored meanwhile, and refreshes in the background if the access token is
    /// within the margin of its expiry. Timers do not fire while an app is suspended.
    public func resume() {
        self.loadIfNeeded()
        guard let current = self.current else { return }
        _ = self.adoptStoredCredentials(unlessRefreshToken: current.credentials.refreshToken)
        self.refreshInBackground()
    }

    // MARK: Credentials

    private func loadIfNeeded() {
        guard !self.loaded else { return }
        self.loaded = true
        do {
            guard let stored = try self.store.load() else { return }
            self.takeOn(stored, expiresAt: self.rebase(stored))
        } catch {
            self.logger.warning("the stored credentials could not be read", metadata: ["error": "\(error)"])
        }
    }

    /// The expiry of stored credentials on the monotonic clock: what remained of their lifetime
    /// on the wall clock, counted from now.
    private func rebase(_ credentials: TesseraCredentials) -> MonotonicInstant {
        let remaining = credentials.expiresAt.timeIntervalSince(self.clock.date)
        return self.clock.now.advanced(by: .milliseconds(Int64((remaining * 1000).rounded(.down))))
    }

    @discardableResult
    private func takeOn(_ credentials: TesseraCredentials, expiresAt: MonotonicInstant) -> Credential {
        self.lastVersion += 1
        let margin = min(self.configuration.refreshMargin, credentials.lifetime / 2)
        let current = Current(
            credentials: credentials,
            version: self.lastVersion,
            expiresAt: expiresAt,
            refreshAt: expiresAt.advanced(by: .zero - margin)
        )
        self.current = current
        self.scheduleTimer(at: current.refreshAt)
        return current.credential
    }

    /// Takes on the stored credentials if the store holds another refresh token than
    /// `refreshToken`: another process sharing the store has rotated it.
    private func adoptStoredCredentials(unlessRefreshToken refreshToken: String) -> Bool {
        let stored: TesseraCredentials?
        do {
            stored = try self.store.load()
        } catch {
            self.logger.warning("the stored credentials could not be read", metadata: ["error": "\(error)"])
            return false
        }
        guard let stored, stored.refreshToken != refreshToken else { return false }
        self.takeOn(stored, expiresAt: self.rebase(stored))
        self.logger.debug("took on the credentials another process stored", metadata: ["session": "\(stored.sessionID)"])
        self.hub.emit(.credentialsRefreshed(sessionID: stored.sessionID))
        return true
    }

    private func save(_ credentials: TesseraCredentials) {
        do {
            try self.store.save(credentials)
        } catch {
            self.logger.error("the credentials could not be stored", metadata: ["error": "\(error)"])
        }
    }

    private func noSessionError() -> TesseraClientError {
        if let reason = self.lastSignOutReason { return .signedOut(reason) }
        return TesseraClientError(.notSignedIn, "the client holds no credentials; sign in first")
    }

    /// Ends the session locally: clears the credentials, discards and fails any refresh, emits
    /// the one `signedOut` event. Does nothing when already signed out.
    private func end(_ reason: SignOutReason, serverError: TesseraServerError?) {
        guard self.current != nil else { return }
        self.generation += 1
        self.current = nil
        self.lastSignOutReason = reason
        self.timer?.cancel()
        self.timer = nil
        self.backoff.reset()
        do {
            try self.store.clear()
        } catch {
            self.logger.error("the stored credentials could not be cleared", metadata: ["error": "\(error)"])
        }
        let flight = self.flight
        self.flight = nil
        // Only a sign-out cancels a shared refresh; when the refresh itself ended the session,
        // this cancels a task that is finishing anyway.
        flight?.task.cancel()
        var error = TesseraClientError.signedOut(reason)
        error.serverError = serverError
        for waiter in flight?.waiters.values ?? [:].values { waiter.resume(throwing: error) }
        self.logger.notice("signed out", metadata: ["reason": "\(reason)"])
        self.hub.emit(.signedOut(reason))
    }

    // MARK: Sending

    private func transmit(_ request: TesseraHTTPRequest) async throws -> TesseraHTTPResponse {
        do {
            return try await self.transport.send(request)
        } catch {
            if Task.isCancelled || error is CancellationError { throw CancellationError() }
            throw TesseraClientError(.transport, "no response to \(request.method) \(request.path): \(error)", underlyingError: error)
        }
    }

    /// A credential to send a request with: the current one, or after a refresh when it has expired.
    private func usableCredential() async throws -> Credential {
        self.loadIfNeeded()
        guard let current = self.current else { throw self.noSessionError() }
        let now = self.clock.now
        if now < current.refreshAt {
            return current.credential
        }
        if now < current.expiresAt {
            // Within the margin: still valid, so send with it while a refresh runs in the background.
            self.refreshInBackground()
            guard let current = self.current else { throw self.noSessionError() }
            return current.credential
        }
        return try await self.newerCredential(than: current.version)
    }

    /// A credential to retry with after a request sent with credential `version` was refused.
    private func credential(after version: UInt64) async throws -> Credential {
        guard let current = self.current else { throw self.noSessionError() }
        if current.version > version {
            // Replaced while the request was out: retry with the current one, no refresh.
            return try await self.usableCredential()
        }
        return try await self.newerCredential(than: version)
    }

    /// A credential newer than `version`: from the refresh in progress, from the store if another
    /// process refreshed, or from a refresh started now.
    private func newerCredential(than version: UInt64) async throws -> Credential {
        if let flight = self.flight {
            return try await self.wait(for: flight.id)
        }
        guard let current = self.current else { throw self.noSessionError() }
        if self.adoptStoredCredentials(unlessRefreshToken: current.credentials.refreshToken) {
            return try await self.usableCredential()
        }
        let flightID = try self.startRefresh()
        return try await self.wait(for: flightID)
    }

    // MARK: Refreshing

    /// Starts the one shared refresh, unless backing off or past the limit.
    private func startRefresh() throws -> UInt64 {
        guard let current = self.current else { throw self.noSessionError() }
        let now = self.clock.now
        if let remaining = self.backoff.remaining(at: now) {
            throw TesseraClientError(
                .refreshUnavailable,
                "the last refresh failed for a passing reason; the next is tried in \(remaining)",
                retryAfter: remaining
            )
        }
        guard self.limiter.admit(at: now) else {
            self.logger.warning("refresh limit reached", metadata: ["maximum": "\(self.limiter.maximum)", "window": "\(self.limiter.window)"])
            throw TesseraClientError(
                .refreshLimitExceeded,
                "more than \(self.limiter.maximum) refreshes in \(self.limiter.window)",
                retryAfter: now.duration(to: self.limiter.nextAdmission(after: now))
            )
        }
        self.lastFlightID += 1
        let id = self.lastFlightID
        let generation = self.generation
        let presented = current.credentials
        // Unstructured and owned by the client: a caller's cancellation never reaches it, only a
        // sign-out does.
        let task = Task { await self.performRefresh(flightID: id, generation: generation, presented: presented) }
        self.flight = Flight(id: id, task: task)
        return id
    }

    private func performRefresh(flightID: UInt64, generation: UInt64, presented: TesseraCredentials) async {
        let sentAt = self.clock.now
        let sentDate = self.clock.date
        let outcome: RefreshOutcome
        do {
            let request = try TesseraHTTPRequest(method: .POST, path: "/v1/token/refresh", json: RefreshBody(refreshToken: presented.refreshToken))
            outcome = RefreshOutcome.classify(try await self.transport.send(request))
        } catch {
            outcome = .transient(
                TesseraClientError(.refreshUnavailable, "the refresh got no answer: \(error); the session is kept", underlyingError: error)
            )
        }
        // Signed out (or signed in anew) meanwhile: the answer belongs to a session this client
        // no longer holds, and is never written back.
        guard generation == self.generation, self.flight?.id == flightID else {
            self.logger.debug("a refresh finished after the session it was for ended; discarded")
            return
        }
        switch outcome {
        case .refreshed(let tokens):
            self.backoff.reset()
            let credentials = tokens.credentials(receivedAt: sentDate, previous: presented)
            self.save(credentials)
            let credential = self.takeOn(credentials, expiresAt: sentAt.advanced(by: credentials.lifetime))
            self.logger.debug("refreshed", metadata: ["session": "\(credentials.sessionID)"])
            self.hub.emit(.credentialsRefreshed(sessionID: credentials.sessionID))
            self.finishFlight(.success(credential))
        case .alreadyUsed(let serverError):
            // Another process sharing the store may have rotated the token: if the store holds
            // another one, it is the successor, and this is no theft.
            if self.adoptStoredCredentials(unlessRefreshToken: presented.refreshToken), let current = self.current {
                self.finishFlight(.success(current.credential))
            } else {
                self.end(.refreshTokenReused, serverError: serverError)
            }
        case .terminal(let reason, let serverError):
            self.end(reason, serverError: serverError)
        case .transient(var error):
            let now = self.clock.now
            error.retryAfter = self.backoff.fail(at: now, retryAfter: error.retryAfter)
            self.logger.notice("refresh failed; the session is kept", metadata: ["error": "\(error)"])
            self.finishFlight(.failure(error))
            self.scheduleTimer(at: self.backoff.until)
        }
    }

    private func finishFlight(_ result: Result<Credential, TesseraClientError>) {
        guard let flight = self.flight else { return }
        self.flight = nil
        for waiter in flight.waiters.values { waiter.resume(with: result.mapError { $0 as any Error }) }
    }

    /// Waits for the refresh `flightID`; the caller's cancellation ends the wait, not the refresh.
    private func wait(for flightID: UInt64) async throws -> Credential {
        self.lastWaiterID += 1
        let waiterID = self.lastWaiterID
        return try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Credential, any Error>) in
                if Task.isCancelled {
                    continuation.resume(throwing: CancellationError())
                } else if self.flight?.id == flightID {
                    self.flight?.waiters[waiterID] = continuation
                } else if let current = self.current {
                    continuation.resume(returning: current.credential)
                } else {
                    continuation.resume(throwing: self.noSessionError())
                }
            }
        } onCancel: {
            Task { await self.cancelWait(waiterID, of: flightID) }
        }
    }

    private func cancelWait(_ waiterID: UInt64, of flightID: UInt64) {
        guard self.flight?.id == flightID, let waiter = self.flight?.waiters.removeValue(forKey: waiterID) else { return }
        waiter.resume(throwing: CancellationError())
    }

    /// Starts a refresh with no request waiting, if one is due and allowed; otherwise arms the
    /// timer for when it will be.
    private func refreshInBackground() {
        guard let current = self.current, self.flight == nil else { return }
        let now = self.clock.now
        if self.adoptStoredCredentials(unlessRefreshToken: current.credentials.refreshToken), let adopted = self.current, now < adopted.refreshAt {
            return
        }
        guard let current = self.current else { return }
        guard now >= current.refreshAt else {
            self.scheduleTimer(at: current.refreshAt)
            return
        }
        if let until = self.backoff.until, now < until {
            self.scheduleTimer(at: until)
            return
        }
        do {
            _ = try self.startRefresh()
        } catch {
            self.scheduleTimer(at: self.limiter.nextAdmission(after: now))
        }
    }

    /// Arms the refresh timer for `deadline` on the monotonic clock, replacing the previous one.
    private func scheduleTimer(at deadline: MonotonicInstant?) {
        self.timer?.cancel()
        self.timer = nil
        guard self.configuration.automaticRefresh, let deadline, self.current != nil else { return }
        self.timerID += 1
        let id = self.timerID
        let clock = self.clock
        self.timer = Task { [weak self] in
            do {
                try await clock.sleep(until: deadline)
            } catch {
                return
            }
            await self?.timerFired(id)
        }
    }

    private func timerFired(_ id: UInt64) {
        guard id == self.timerID else { return }
        self.timer = nil
        self.refreshInBackground()
    }
}
