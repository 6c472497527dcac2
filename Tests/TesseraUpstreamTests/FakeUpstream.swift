import Foundation
import HTTPTypes
import Hummingbird
import Logging
import NIOCore
import ServiceLifecycle
import Synchronization
import Crypto

/// A fake third-party site for the upstream-session pool: a real HTTP server on a loopback port that logs users in with a
/// form, hands out a `SESSID` cookie, and lets the session die in the ways real sites do (idle timeout, maximum lifetime,
/// a random moment, cookie rotation on keep-alive, or all at once), answering a dead session in one of three styles.
///
/// Every idle and lifetime decision reads the injected `now` clock, so tests move time by hand and never sleep. Every
/// random decision (sudden expiry, the `.random` answer style, session ids) comes from generators seeded with `seed`.
///
/// Endpoints:
/// - `GET /login`: the login form. `POST /login` (form-encoded `username`, `password`): 302 to `/home` with
///   `SESSID=<32 hex>; Path=/; HttpOnly` and `lang=en; Path=/; Max-Age=86400`, or 200 with
///   "Invalid username or password" and no cookie.
/// - Logged-in pages, which need a live `SESSID` cookie and otherwise get the expired answer: `GET /home`,
///   `GET /api/items/{n}`, `POST /api/orders` (an action: counted only when logged in), `GET /ping` (keep-alive probe).
/// - `GET /public`: no session needed.
/// - Large bodies, logged in: `GET /files/{bytes}` (binary, byte `i` is `i % 251`, written in
///   64 KiB chunks as the connection takes them), `GET /text/{bytes}?phraseAt=N&type=T` (`x`s,
///   with "your session has expired" at offset N when given, as `T`, default text/plain), `POST /api/upload` (reads the body
///   as it comes and answers its length and SHA-256).
final class FakeUpstream: Sendable {
    /// The ways real sites answer a request that carries an expired or unknown session.
    enum ExpiredStyle: Sendable, Hashable, CaseIterable {
        /// 200 text/html with "Session Expired ... You are either not logged in or your session has expired ...".
        case phrasePage
        /// 302 with `Location: /login?next=<original path>`.
        case redirectToLogin
        /// 401 with a small text body.
        case unauthorized
        /// One of the three above, drawn per answer from the seeded generator.
        case random

        static let concrete: [ExpiredStyle] = [.phrasePage, .redirectToLogin, .unauthorized]
    }

    /// A snapshot of the fake's counters.
    struct Stats: Sendable, Equatable {
        /// Successful logins.
        var logins = 0
        /// Logins refused (wrong credentials, unknown user, or `refuseLogins`).
        var refusedLogins = 0
        /// Requests answered as logged in, pings and actions included.
        var authenticatedRequests = 0
        /// `GET /ping` answered as logged in.
        var pings = 0
        /// Answers given to a request whose session was missing, unknown or dead.
        var expiredAnswers = 0
        /// `expiredAnswers` by the concrete style used (never `.random`).
        var expiredByStyle: [ExpiredStyle: Int] = [:]
        /// Sessions killed by `expireProbability`.
        var randomExpiries = 0
        /// `POST /api/orders` performed (only when logged in).
        var actionsPerformed = 0
        /// Requests answered 503 or 429 by ``FakeUpstream/overloadedAnswers`` and ``FakeUpstream/rateLimitedAnswers``.
        var refusedRequests = 0
        /// Sessions alive at the fake's `now`.
        var liveSessions = 0
        /// Body bytes the large answers (`/files`, `/text`) have handed to the server so far.
        var bytesStreamed = 0
    }

    /// "http://127.0.0.1:PORT".
    let baseURL: String
    /// The port the server listens on.
    let port: Int

    private let core: Core
    private let serviceGroup: ServiceGroup
    private let task: Task<Void, any Error>

    private init(core: Core, serviceGroup: ServiceGroup, task: Task<Void, any Error>, port: Int) {
        self.core = core
        self.serviceGroup = serviceGroup
        self.task = task
        self.port = port
        self.baseURL = "http://127.0.0.1:\(port)"
    }

    deinit {
        self.task.cancel()
    }

    /// Starts the server on 127.0.0.1 with a free port and returns once it listens.
    /// - Parameters:
    ///   - now: the fake's clock; all idle and lifetime decisions use it.
    ///   - accounts: username → password.
    ///   - seed: seeds every random decision.
    static func start(
        now: @escaping @Sendable () -> Date = { Date() },
        accounts: [String: String] = ["alice": "wonderland"],
        seed: UInt64 = 42
    ) async throws -> FakeUpstream {
        let core = Core(now: now, accounts: accounts, seed: seed)
        var logger = Logger(label: "fake-upstream")
        logger.logLevel = .warning
        let (ports, portContinuation) = AsyncStream.makeStream(of: Int.self)
        let app = Application(
            router: core.router(),
            configuration: .init(address: .hostname("127.0.0.1", port: 0)),
            onServerRunning: { channel in
                portContinuation.yield(channel.localAddress?.port ?? 0)
            },
            logger: logger
        )
        let serviceGroup = ServiceGroup(configuration: .init(services: [app], logger: logger))
        let task = Task {
            defer { portContinuation.finish() }
            try await serviceGroup.run()
        }
        var iterator = ports.makeAsyncIterator()
        guard let port = await iterator.next(), port > 0 else {
            task.cancel()
            try await task.value
            throw NotListening()
        }
        return FakeUpstream(core: core, serviceGroup: serviceGroup, task: task, port: port)
    }

    struct NotListening: Error {}

    /// Shuts the server down gracefully, cancelling it if open connections hold it up for more than 2 seconds.
    /// Safe to call more than once.
    func stop() async {
        await self.serviceGroup.triggerGracefulShutdown()
        let task = self.task
        let watchdog = Task {
            try? await Task.sleep(for: .seconds(2))
            task.cancel()
        }
        _ = await task.result
        watchdog.cancel()
    }

    // MARK: Knobs

    /// When true, every login is refused.
    var refuseLogins: Bool {
        get { self.core.state.withLock { $0.refuseLogins } }
        set { self.core.state.withLock { $0.refuseLogins = newValue } }
    }

    /// A session unused (no logged-in request, no ping) for longer than this is dead. Default 60 s.
    var idleTimeout: Duration {
        get { self.core.state.withLock { $0.idleTimeout } }
        set { self.core.state.withLock { $0.idleTimeout = newValue } }
    }

    /// A session older than this is dead, however much it is used. Default 600 s.
    var maxLifetime: Duration {
        get { self.core.state.withLock { $0.maxLifetime } }
        set { self.core.state.withLock { $0.maxLifetime = newValue } }
    }

    /// When set, each session also dies at a random moment: its own lifetime, drawn at login
    /// uniformly from this range of seconds. Default `nil`.
    var randomLifetime: ClosedRange<Double>? {
        get { self.core.state.withLock { $0.randomLifetime } }
        set { self.core.state.withLock { $0.randomLifetime = newValue } }
    }

    /// When true, a login must send the `_token` of a login page fetched with the same
    /// `presession` cookie, once; otherwise it gets `419 Page Expired`. Default false.
    var requireFormToken: Bool {
        get { self.core.state.withLock { $0.requireFormToken } }
        set { self.core.state.withLock { $0.requireFormToken = newValue } }
    }

    /// The next this many requests are answered `503 Service Unavailable` before anything is
    /// looked at (an overloaded site); they do not act. Default 0.
    var overloadedAnswers: Int {
        get { self.core.state.withLock { $0.overloadedAnswers } }
        set { self.core.state.withLock { $0.overloadedAnswers = newValue } }
    }

    /// The next this many requests are answered `429 Too Many Requests` with `Retry-After: 7`;
    /// they do not act. Default 0.
    var rateLimitedAnswers: Int {
        get { self.core.state.withLock { $0.rateLimitedAnswers } }
        set { self.core.state.withLock { $0.rateLimitedAnswers = newValue } }
    }

    /// The chance that a live session dies just before a logged-in request is handled; that request already gets the
    /// expired answer. Default 0.
    var expireProbability: Double {
        get { self.core.state.withLock { $0.expireProbability } }
        set { self.core.state.withLock { $0.expireProbability = newValue } }
    }

    /// How a dead or unknown session is answered. Default `.random`.
    var expiredStyle: ExpiredStyle {
        get { self.core.state.withLock { $0.expiredStyle } }
        set { self.core.state.withLock { $0.expiredStyle = newValue } }
    }

    /// When true, a successful `GET /ping` issues a new `SESSID` and the old one dies at once. Default false.
    var rotateCookieOnPing: Bool {
        get { self.core.state.withLock { $0.rotateCookieOnPing } }
        set { self.core.state.withLock { $0.rotateCookieOnPing = newValue } }
    }

    /// Holds every `GET /ping` from now on, unanswered, until ``releasePings()``.
    func holdPings() {
        self.core.pingGate.withLock { $0.holding = true }
    }

    /// Answers the held pings and stops holding.
    func releasePings() {
        let waiting = self.core.pingGate.withLock { gate in
            gate.holding = false
            defer { gate.waiting = [] }
            return gate.waiting
        }
        for continuation in waiting { continuation.resume() }
    }

    /// How many pings are held now.
    var heldPings: Int { self.core.pingGate.withLock { $0.waiting.count } }

    /// Kills every live session now.
    func expireAllSessions() {
        self.core.state.withLock { $0.sessions.removeAll() }
    }

    /// The counters now.
    var stats: Stats {
        let now = self.core.now()
        return self.core.state.withLock { state in
            var stats = state.stats
            stats.liveSessions = state.sessions.values.count { state.isAlive($0, at: now) }
            return stats
        }
    }
}

// MARK: - Server

extension FakeUpstream {
    fileprivate struct Session {
        var user: String
        var createdAt: Date
        var lastUsed: Date
        /// The session's own random lifetime in seconds, if ``FakeUpstream/randomLifetime`` was set at login.
        var lifetime: Double?
    }

    fileprivate struct State {
        var refuseLogins = false
        var idleTimeout: Duration = .seconds(60)
        var maxLifetime: Duration = .seconds(600)
        var randomLifetime: ClosedRange<Double>?
        var overloadedAnswers = 0
        var requireFormToken = false
        /// The `_token` each pre-login session's page carried.
        var formTokens: [String: String] = [:]
        var rateLimitedAnswers = 0
        var expireProbability = 0.0
        var expiredStyle: ExpiredStyle = .random
        var rotateCookieOnPing = false
        var sessions: [String: Session] = [:]
        var stats = Stats()
        /// Draws sudden expiries and `.random` styles.
        var decisions: SplitMix64
        /// Draws session ids, apart so that logins do not shift the decisions.
        var ids: SplitMix64

        func isAlive(_ session: Session, at now: Date) -> Bool {
            now.timeIntervalSince(session.lastUsed) <= Self.interval(self.idleTimeout)
                && now.timeIntervalSince(session.createdAt) <= Self.interval(self.maxLifetime)
                && now.timeIntervalSince(session.createdAt) <= (session.lifetime ?? .infinity)
        }

        private static func interval(_ duration: Duration) -> TimeInterval {
            let (seconds, attoseconds) = duration.components
            return TimeInterval(seconds) + TimeInterval(attoseconds) / 1e18
        }

        mutating func newSessionID() -> String {
            let high = self.ids.next()
            let low = self.ids.next()
            return Self.hex(high) + Self.hex(low)
        }

        private static func hex(_ value: UInt64) -> String {
            let digits = String(value, radix: 16)
            return String(repeating: "0", count: 16 - digits.count) + digits
        }

        mutating func expiredAnswer() -> ExpiredStyle {
            let style =
                self.expiredStyle == .random
                ? ExpiredStyle.concrete[Int(self.decisions.next() % UInt64(ExpiredStyle.concrete.count))]
                : self.expiredStyle
            self.stats.expiredAnswers += 1
            self.stats.expiredByStyle[style, default: 0] += 1
            return style
        }
    }

    fileprivate enum Kind {
        case page
        case ping
        case action
    }

    fileprivate enum Outcome {
        case live(user: String, newSessionID: String?, order: Int)
        case expired(ExpiredStyle)
        case refused(HTTPResponse.Status)
    }

    fileprivate final class Core: Sendable {
        let now: @Sendable () -> Date
        let accounts: [String: String]
        let state: Mutex<State>

        init(now: @escaping @Sendable () -> Date, accounts: [String: String], seed: UInt64) {
            self.now = now
            self.accounts = accounts
            self.state = Mutex(State(decisions: SplitMix64(seed: seed), ids: SplitMix64(seed: seed ^ 0x5EED_1D5E_5EED_1D5E)))
        }

        /// Held `GET /ping` requests, and whether new ones are held.
        let pingGate = Mutex<(holding: Bool, waiting: [CheckedContinuation<Void, Never>])>((false, []))

        func waitWhilePingsAreHeld() async {
            await withCheckedContinuation { continuation in
                let resumeNow = self.pingGate.withLock { gate -> Bool in
                    guard gate.holding else { return true }
                    gate.waiting.append(continuation)
                    return false
                }
                if resumeNow { continuation.resume() }
            }
        }

        func router() -> Router<BasicRequestContext> {
            let router = Router()
            router.get("login") { request, _ in
                self.loginForm(request)
            }
            router.post("login") { request, _ in
                try await self.logIn(request)
            }
            router.get("home") { request, _ in
                self.authenticated(request, .page) { user, _ in
                    Self.html(.ok, "<html><body><h1>Welcome, \(user)</h1><a href=\"/api/items/1\">Items</a></body></html>")
                }
            }
            router.get("api/items/:n") { request, context in
                let item = try context.parameters.require("n", as: Int.self)
                return self.authenticated(request, .page) { user, _ in
                    Self.json(.ok, #"{"user":"\#(Self.escape(user))","item":\#(item)}"#)
                }
            }
            router.post("api/orders") { request, _ in
                let body = try await request.body.collect(upTo: 1 << 20)
                let echo = String(buffer: body)
                return self.authenticated(request, .action) { user, order in
                    Self.json(.created, #"{"user":"\#(Self.escape(user))","order":\#(order),"echo":"\#(Self.escape(echo))"}"#)
                }
            }
            router.get("ping") { request, _ in
                await self.waitWhilePingsAreHeld()
                return self.authenticated(request, .ping) { _, _ in
                    Response(status: .ok, headers: [.contentType: "text/plain; charset=utf-8"], body: .init(byteBuffer: ByteBuffer(string: "pong")))
                }
            }
            router.get("files/:bytes") { request, context in
                let bytes = try context.parameters.require("bytes", as: Int.self)
                return self.authenticated(request, .page) { _, _ in
                    self.large(bytes, contentType: "application/octet-stream") { offset, count in
                        ByteBuffer(bytes: (offset..<(offset + count)).map { UInt8($0 % 251) })
                    }
                }
            }
            router.get("text/:bytes") { request, context in
                let bytes = try context.parameters.require("bytes", as: Int.self)
                let phrase = Array("your session has expired".utf8)
                let phraseAt = request.uri.queryParameters["phraseAt"].flatMap { Int($0) }
                let type = request.uri.queryParameters["type"].map(String.init) ?? "text/plain; charset=utf-8"
                return self.authenticated(request, .page) { _, _ in
                    self.large(bytes, contentType: type) { offset, count in
                        var chunk = [UInt8](repeating: UInt8(ascii: "x"), count: count)
                        if let phraseAt {
                            for (index, byte) in phrase.enumerated() where (offset..<(offset + count)).contains(phraseAt + index) {
                                chunk[phraseAt + index - offset] = byte
                            }
                        }
                        return ByteBuffer(bytes: chunk)
                    }
                }
            }
            router.post("api/upload") { request, _ in
                var hasher = SHA256()
                var length = 0
                for try await chunk in request.body {
                    length += chunk.readableBytes
                    chunk.withUnsafeReadableBytes { hasher.update(bufferPointer: $0) }
                }
                let digest = hasher.finalize().map { String(format: "%02x", $0) }.joined()
                return self.authenticated(request, .action) { _, _ in
                    Self.json(.ok, #"{"bytes":\#(length),"sha256":"\#(digest)"}"#)
                }
            }
            router.get("public") { _, _ in
                Response(status: .ok, headers: [.contentType: "text/plain; charset=utf-8"], body: .init(byteBuffer: ByteBuffer(string: "public")))
            }
            return router
        }

        // MARK: Login

        /// The login page. With ``FakeUpstream/requireFormToken`` it starts a pre-login session
        /// (cookie `presession`) and carries its one-time `_token` in a hidden field, as Laravel's
        /// and Rails' forms do.
        private func loginForm(_ request: Request) -> Response {
            let issued = self.state.withLock { state -> (presession: String, token: String)? in
                guard state.requireFormToken else { return nil }
                let presession = state.newSessionID()
                let token = state.newSessionID()
                state.formTokens[presession] = token
                return (presession, token)
            }
            guard let issued else { return Self.html(.ok, Self.loginPage(error: nil)) }
            var response = Self.html(.ok, Self.loginPage(error: nil, token: issued.token))
            response.headers.append(HTTPField(name: .setCookie, value: "presession=\(issued.presession); Path=/; HttpOnly"))
            return response
        }

        private func logIn(_ request: Request) async throws -> Response {
            let body = try await request.body.collect(upTo: 1 << 16)
            let form = Self.decodeForm(String(buffer: body))
            let username = form["username"] ?? ""
            let password = form["password"] ?? ""
            let now = self.now()
            let presession = Self.cookie("presession", in: request.headers)
            let tokenAccepted = self.state.withLock { state -> Bool in
                guard state.requireFormToken else { return true }
                // A token is good once, with the cookie of the page that carried it.
                guard let presession, let expected = state.formTokens.removeValue(forKey: presession) else { return false }
                return form["_token"] == expected
            }
            guard tokenAccepted else {
                self.state.withLock { $0.stats.refusedLogins += 1 }
                return Self.html(.init(code: 419), "<html><body><h1>419 Page Expired</h1></body></html>")
            }
            let sessionID = self.state.withLock { state -> String? in
                guard !state.refuseLogins, let expected = self.accounts[username], expected == password else {
                    state.stats.refusedLogins += 1
                    return nil
                }
                state.sessions = state.sessions.filter { state.isAlive($0.value, at: now) }
                let id = state.newSessionID()
                let lifetime = state.randomLifetime.map { range in
                    range.lowerBound + (range.upperBound - range.lowerBound) * Double(state.decisions.next() >> 11) / Double(1 << 53)
                }
                state.sessions[id] = Session(user: username, createdAt: now, lastUsed: now, lifetime: lifetime)
                state.stats.logins += 1
                return id
            }
            guard let sessionID else {
                return Self.html(.ok, Self.loginPage(error: "Invalid username or password"))
            }
            var headers: HTTPFields = [.location: "/home"]
            headers.append(HTTPField(name: .setCookie, value: "SESSID=\(sessionID); Path=/; HttpOnly"))
            headers.append(HTTPField(name: .setCookie, value: "lang=en; Path=/; Max-Age=86400"))
            return Response(status: .found, headers: headers)
        }

        // MARK: Logged-in requests

        private func authenticated(_ request: Request, _ kind: Kind, _ answer: (_ user: String, _ order: Int) -> Response) -> Response {
            let sessionID = Self.cookie("SESSID", in: request.headers)
            let now = self.now()
            let outcome = self.state.withLock { state -> Outcome in
                if state.overloadedAnswers > 0 {
                    state.overloadedAnswers -= 1
                    state.stats.refusedRequests += 1
                    return .refused(.serviceUnavailable)
                }
                if state.rateLimitedAnswers > 0 {
                    state.rateLimitedAnswers -= 1
                    state.stats.refusedRequests += 1
                    return .refused(.tooManyRequests)
                }
                guard let sessionID, var session = state.sessions[sessionID] else {
                    return .expired(state.expiredAnswer())
                }
                guard state.isAlive(session, at: now) else {
                    state.sessions[sessionID] = nil
                    return .expired(state.expiredAnswer())
                }
                if state.expireProbability > 0, state.decisions.nextDouble() < state.expireProbability {
                    state.sessions[sessionID] = nil
                    state.stats.randomExpiries += 1
                    return .expired(state.expiredAnswer())
                }
                session.lastUsed = now
                state.stats.authenticatedRequests += 1
                var newSessionID: String?
                var order = 0
                switch kind {
                case .page:
                    break
                case .ping:
                    state.stats.pings += 1
                    if state.rotateCookieOnPing {
                        newSessionID = state.newSessionID()
                    }
                case .action:
                    state.stats.actionsPerformed += 1
                    order = state.stats.actionsPerformed
                }
                if let newSessionID {
                    state.sessions[sessionID] = nil
                    state.sessions[newSessionID] = session
                } else {
                    state.sessions[sessionID] = session
                }
                return .live(user: session.user, newSessionID: newSessionID, order: order)
            }
            switch outcome {
            case .live(let user, let newSessionID, let order):
                var response = answer(user, order)
                if let newSessionID {
                    response.headers.append(HTTPField(name: .setCookie, value: "SESSID=\(newSessionID); Path=/; HttpOnly"))
                }
                return response
            case .expired(let style):
                return Self.expired(style, path: request.uri.path)
            case .refused(let status):
                return Response(
                    status: status,
                    headers: status == .tooManyRequests ? [.retryAfter: "7"] : [:],
                    body: .init(byteBuffer: ByteBuffer(string: status.reasonPhrase))
                )
            }
        }

        /// A `bytes`-long answer written in 64 KiB chunks, each made by `chunk(offset, count)` when
        /// the connection has taken the one before.
        private func large(_ bytes: Int, contentType: String, chunk: @escaping @Sendable (Int, Int) -> ByteBuffer) -> Response {
            Response(
                status: .ok,
                headers: [.contentType: contentType],
                body: ResponseBody(contentLength: bytes) { writer in
                    var offset = 0
                    while offset < bytes {
                        let count = min(65536, bytes - offset)
                        try await writer.write(chunk(offset, count))
                        offset += count
                        self.state.withLock { $0.stats.bytesStreamed = offset }
                    }
                    try await writer.finish(nil)
                }
            )
        }

        private static func expired(_ style: ExpiredStyle, path: String) -> Response {
            switch style {
            case .phrasePage, .random:
                return Self.html(
                    .ok,
                    "<html><body><h1>Session Expired</h1><p>You are either not logged in or your session has expired. "
                        + "Please use your back button and log in again.</p></body></html>"
                )
            case .redirectToLogin:
                var allowed = CharacterSet.urlQueryAllowed
                allowed.remove(charactersIn: "&=+#?")
                let next = path.addingPercentEncoding(withAllowedCharacters: allowed) ?? path
                return Response(status: .found, headers: [.location: "/login?next=\(next)"])
            case .unauthorized:
                return Response(
                    status: .unauthorized,
                    headers: [.contentType: "text/plain; charset=utf-8"],
                    body: .init(byteBuffer: ByteBuffer(string: "401 Unauthorized"))
                )
            }
        }

        // MARK: Helpers

        private static func loginPage(error: String?, token: String? = nil) -> String {
            let message = error.map { "<p class=\"error\">\($0)</p>" } ?? ""
            let hidden = token.map { #"<input type="hidden" name="_token" value="\#($0)">"# } ?? ""
            return """
                <html><body><h1>Log in</h1>\(message)<form method="post" action="/login">\(hidden)\
                <input type="text" name="username"><input type="password" name="password">\
                <button type="submit">Log in</button></form></body></html>
                """
        }

        private static func html(_ status: HTTPResponse.Status, _ body: String) -> Response {
            Response(status: status, headers: [.contentType: "text/html; charset=utf-8"], body: .init(byteBuffer: ByteBuffer(string: body)))
        }

        private static func json(_ status: HTTPResponse.Status, _ body: String) -> Response {
            Response(status: status, headers: [.contentType: "application/json"], body: .init(byteBuffer: ByteBuffer(string: body)))
        }

        /// The first value of the cookie `name` in the `Cookie` header(s).
        private static func cookie(_ name: String, in headers: HTTPFields) -> String? {
            for field in headers[values: .cookie] {
                for pair in field.split(separator: ";") {
                    let parts = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
                    if parts.count == 2, parts[0].trimmingCharacters(in: .whitespaces) == name {
                        return parts[1].trimmingCharacters(in: .whitespaces)
                    }
                }
            }
            return nil
        }

        /// Decodes `application/x-www-form-urlencoded`: '+' is a space, then percent-decoding.
        private static func decodeForm(_ body: String) -> [String: String] {
            var form: [String: String] = [:]
            for pair in body.split(separator: "&") {
                let parts = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
                let decode = { (part: Substring) -> String in
                    let spaced = part.replacingOccurrences(of: "+", with: " ")
                    return spaced.removingPercentEncoding ?? spaced
                }
                let key = decode(parts[0])
                if form[key] == nil {
                    form[key] = parts.count > 1 ? decode(parts[1]) : ""
                }
            }
            return form
        }

        /// Escapes `value` for use inside a JSON string literal.
        private static func escape(_ value: String) -> String {
            var escaped = ""
            for scalar in value.unicodeScalars {
                switch scalar {
                case "\"": escaped += "\\\""
                case "\\": escaped += "\\\\"
                case "\n": escaped += "\\n"
                case "\r": escaped += "\\r"
                case "\t": escaped += "\\t"
                case _ where scalar.value < 0x20:
                    let digits = String(scalar.value, radix: 16)
                    escaped += "\\u" + String(repeating: "0", count: 4 - digits.count) + digits
                default: escaped.unicodeScalars.append(scalar)
                }
            }
            return escaped
        }
    }
}

extension FakeUpstream {
    /// SplitMix64: small, fast, and the same sequence for the same seed everywhere.
    fileprivate struct SplitMix64: RandomNumberGenerator {
        private var state: UInt64

        init(seed: UInt64) {
            self.state = seed
        }

        mutating func next() -> UInt64 {
            self.state &+= 0x9E37_79B9_7F4A_7C15
            var z = self.state
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return z ^ (z >> 31)
        }

        /// Uniform in [0, 1).
        mutating func nextDouble() -> Double {
            Double(self.next() >> 11) * 0x1.0p-53
        }
    }
}
