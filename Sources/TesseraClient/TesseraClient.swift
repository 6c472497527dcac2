import Foundation
public import Logging
public import NIOCore
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

    let transport: any TesseraTransport
    let store: any CredentialStore
    let clock: any MonotonicClock
    let logger: Logger
    nonisolated let hub = EventHub()

    /// The credentials in use, with their deadlines on the monotonic clock.
    struct Current {
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
    struct Flight {
        let id: UInt64
        let task: Task<Void, Never>
        var waiters: [UInt64: CheckedContinuation<Credential, any Error>] = [:]
    }

    var loaded = false
    var current: Current?
    var lastSignOutReason: SignOutReason?
    /// Bumped by every sign-out and login: a refresh started in an older generation is discarded
    /// when it completes, never written back.
    var generation: UInt64 = 0
    var lastVersion: UInt64 = 0
    var flight: Flight?
    var lastFlightID: UInt64 = 0
    var lastWaiterID: UInt64 = 0
    var limiter: RefreshLimiter
    /// Whether the limit's refusal was logged as a warning since the last counted refresh.
    var limitReported = false
    /// Refreshes in a row answered with a token shorter than ``Configuration/shortestLifetime``.
    var shortLivedInARow = 0
    var backoff: RefreshBackoff
    var timer: Task<Void, Never>?
    var timerID: UInt64 = 0

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

    /// Creates a client that talks to `baseURL` through AsyncHTTPClient
    /// (``HTTPClientTransport``).
    ///
    /// - Parameters:
    ///   - baseURL: the service, such as `https://auth.example.com`
    ///   - connectTimeout: how long establishing a connection may take (default 3 seconds)
    ///   - requestTimeout: the deadline of each request, connecting included (default 10 seconds)
    ///   - store: where the credentials are kept between launches
    ///   - configuration: the refresh margin, limits and backoff
    ///   - logger: where the client logs refreshes and sign-outs (never tokens)
    public init(
        baseURL: String,
        connectTimeout: TimeAmount = .seconds(3),
        requestTimeout: TimeAmount = .seconds(10),
        store: any CredentialStore = InMemoryCredentialStore(),
        configuration: Configuration = .init(),
        logger: Logger = Logger(label: "tessera.client")
    ) {
        self.init(
            transport: HTTPClientTransport(baseURL: baseURL, connectTimeout: connectTimeout, timeout: requestTimeout),
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
            self.shortLivedInARow = 0
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
}
