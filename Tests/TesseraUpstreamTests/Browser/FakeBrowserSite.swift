import Foundation
import HTTPTypes
import Hummingbird
import Logging
import NIOCore
import ServiceLifecycle
import Synchronization

/// A fake site that only a browser can log in to: a real HTTP server on loopback whose pages
/// are built by JavaScript. The login page has no form in its HTML; its script draws the form,
/// fetches a challenge and posts the answer its script computes, so a plain HTTP recipe cannot
/// log in. Logged-in pages are shells whose script asks the API for the content and draws
/// either it or, for an ended session, the phrase page real sites show.
///
/// Sessions die after idling (`idleTimeout`), at a random moment (`randomLifetime`), and on
/// demand (``expireAllSessions()``, ``expireAfterNextBooking``), all on the injected clock.
///
/// Pages: `/login`, `/home` (draws `#user`), `/items/{n}` (draws `#price`), `/book` (a
/// `#confirm` button that books once per click, drawing `#booked`), `/slow` (draws `#done`
/// after `slowDelay`). API: `/api/challenge`, `/api/login`, `/api/me`, `/api/items/{n}`,
/// `/api/bookings`; an ended session gets the phrase page (200, HTML) from every API path.
final class FakeBrowserSite: Sendable {
    static let expiredPage = """
        <html><body><h1>Session Expired</h1><p class="expired">You are either not logged in or your session has expired. \
        Please use your back button and log in again.</p></body></html>
        """

    struct Stats: Sendable, Equatable {
        var logins = 0
        var refusedLogins = 0
        /// API answers to a missing, unknown or ended session.
        var expiredAnswers = 0
        /// Sessions that ended by their random lifetime (counted when first met ended).
        var randomExpiries = 0
        /// Sessions ended by ``expireAllSessions()`` or ``expireAfterNextBooking``.
        var killedOnDemand = 0
        var bookings = 0
        var itemsServed = 0
        var slowPages = 0
        var liveSessions = 0
    }

    struct Session {
        var user: String
        var createdAt: Date
        var lastUsed: Date
        var lifetime: Double?
    }

    struct State {
        var sessions: [String: Session] = [:]
        var challenges: Set<String> = []
        var idleTimeout: Double = 60
        var randomLifetime: ClosedRange<Double>?
        var expireAfterNextBooking = false
        var stats = Stats()
        var random: UInt64
    }

    let baseURL: String
    let now: @Sendable () -> Date
    let accounts: [String: String]
    let state: Mutex<State>
    private let serviceGroup: Mutex<ServiceGroup?> = Mutex(nil)
    private let task: Mutex<Task<Void, any Error>?> = Mutex(nil)

    private init(port: Int, now: @escaping @Sendable () -> Date, accounts: [String: String], seed: UInt64) {
        self.baseURL = "http://127.0.0.1:\(port)"
        self.now = now
        self.accounts = accounts
        self.state = Mutex(State(random: seed))
    }

    static func start(
        now: @escaping @Sendable () -> Date = { Date() },
        accounts: [String: String] = ["alice": "wonderland", "bob": "builder"],
        seed: UInt64 = 7
    ) async throws -> FakeBrowserSite {
        let core = Core()
        var logger = Logger(label: "fake-browser-site")
        logger.logLevel = .warning
        let (ports, continuation) = AsyncStream.makeStream(of: Int.self)
        let app = Application(
            router: core.router(),
            configuration: .init(address: .hostname("127.0.0.1", port: 0)),
            onServerRunning: { continuation.yield($0.localAddress?.port ?? 0) },
            logger: logger
        )
        let group = ServiceGroup(configuration: .init(services: [app], logger: logger))
        let task = Task {
            defer { continuation.finish() }
            try await group.run()
        }
        var iterator = ports.makeAsyncIterator()
        guard let port = await iterator.next(), port > 0 else {
            task.cancel()
            throw FakeUpstream.NotListening()
        }
        let site = FakeBrowserSite(port: port, now: now, accounts: accounts, seed: seed)
        core.site.withLock { $0 = site }
        site.serviceGroup.withLock { $0 = group }
        site.task.withLock { $0 = task }
        return site
    }

    func stop() async {
        guard let group = self.serviceGroup.withLock({ $0 }), let task = self.task.withLock({ $0 }) else { return }
        await group.triggerGracefulShutdown()
        let watchdog = Task {
            try? await Task.sleep(for: .seconds(2))
            task.cancel()
        }
        _ = await task.result
        watchdog.cancel()
    }

    // MARK: Knobs

    var idleTimeout: Double {
        get { self.state.withLock { $0.idleTimeout } }
        set { self.state.withLock { $0.idleTimeout = newValue } }
    }

    /// Each session dies at a moment drawn from this range (seconds after its login).
    var randomLifetime: ClosedRange<Double>? {
        get { self.state.withLock { $0.randomLifetime } }
        set { self.state.withLock { $0.randomLifetime = newValue } }
    }

    /// The next booking is made, then its session ends and the answer is the phrase page.
    var expireAfterNextBooking: Bool {
        get { self.state.withLock { $0.expireAfterNextBooking } }
        set { self.state.withLock { $0.expireAfterNextBooking = newValue } }
    }

    /// How long `/slow` takes to draw `#done` (milliseconds, real time).
    let slowDelay = 3000

    func expireAllSessions() {
        self.state.withLock { state in
            state.stats.killedOnDemand += state.sessions.count
            state.sessions.removeAll()
        }
    }

    var stats: Stats {
        let now = self.now()
        return self.state.withLock { state in
            var stats = state.stats
            stats.liveSessions = state.sessions.values.count { Self.alive($0, idle: state.idleTimeout, now: now) }
            return stats
        }
    }

    static func alive(_ session: Session, idle: Double, now: Date) -> Bool {
        now.timeIntervalSince(session.lastUsed) < idle && session.lifetime.map { now.timeIntervalSince(session.createdAt) < $0 } ?? true
    }
}

extension FakeBrowserSite {
    /// The router, which reaches the site once it exists (the port is known only then).
    final class Core: Sendable {
        let site = Mutex<FakeBrowserSite?>(nil)

        func router() -> Router<BasicRequestContext> {
            let router = Router()
            router.get("login") { _, _ in Self.html(FakeBrowserPages.login) }
            router.get("home") { _, _ in Self.html(FakeBrowserPages.home) }
            router.get("items/:n") { _, _ in Self.html(FakeBrowserPages.item) }
            router.get("book") { _, _ in Self.html(FakeBrowserPages.book) }
            router.get("slow") { _, _ in
                self.site.withLock { $0 }?.state.withLock { $0.stats.slowPages += 1 }
                return Self.html(FakeBrowserPages.slow(delay: 3000))
            }
            router.get("api/challenge") { _, _ in
                let nonce = self.withSite { site in
                    site.state.withLock { state in
                        state.random = state.random &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
                        let nonce = String(state.random >> 16, radix: 16)
                        state.challenges.insert(nonce)
                        return nonce
                    }
                }
                return Self.json(#"{"nonce":"\#(nonce ?? "")"}"#)
            }
            router.post("api/login") { request, _ in
                let body = try await request.body.collect(upTo: 1 << 16)
                let fields = (try? JSONSerialization.jsonObject(with: Data(body.readableBytesView)) as? [String: String]) ?? [:]
                return self.withSite { site in site.logIn(fields) } ?? Self.json(#"{}"#, status: .internalServerError)
            }
            router.get("api/me") { request, _ in
                self.withSite { site in
                    site.authenticated(request) { user in Self.json(#"{"user":"\#(user)"}"#) }
                } ?? Self.json("{}", status: .internalServerError)
            }
            router.get("api/items/:n") { request, context in
                let item = try context.parameters.require("n", as: Int.self)
                return self.withSite { site in
                    site.authenticated(request) { user in
                        site.state.withLock { $0.stats.itemsServed += 1 }
                        return Self.json(#"{"user":"\#(user)","item":\#(item)}"#)
                    }
                } ?? Self.json("{}", status: .internalServerError)
            }
            router.post("api/bookings") { request, _ in
                self.withSite { site in
                    site.authenticated(request) { user in
                        let (number, expire) = site.state.withLock { state in
                            state.stats.bookings += 1
                            defer { state.expireAfterNextBooking = false }
                            return (state.stats.bookings, state.expireAfterNextBooking)
                        }
                        if expire {
                            site.expireAllSessions()
                            return Self.html(FakeBrowserSite.expiredPage)
                        }
                        return Self.json(#"{"user":"\#(user)","booking":\#(number)}"#)
                    }
                } ?? Self.json("{}", status: .internalServerError)
            }
            return router
        }

        func withSite<Value>(_ body: (FakeBrowserSite) -> Value) -> Value? {
            guard let site = self.site.withLock({ $0 }) else { return nil }
            return body(site)
        }

        static func html(_ text: String) -> Response {
            Response(status: .ok, headers: [.contentType: "text/html; charset=utf-8"], body: .init(byteBuffer: ByteBuffer(string: text)))
        }

        static func json(_ text: String, status: HTTPResponse.Status = .ok) -> Response {
            Response(status: status, headers: [.contentType: "application/json"], body: .init(byteBuffer: ByteBuffer(string: text)))
        }
    }

    /// Logs in with the answer to a challenge the login page's script computed (the nonce
    /// reversed); sets `SESSID`.
    func logIn(_ fields: [String: String]) -> Response {
        let now = self.now()
        return self.state.withLock { state in
            let nonce = fields["nonce"] ?? ""
            guard state.challenges.remove(nonce) != nil, fields["proof"] == String(nonce.reversed()),
                let user = fields["username"], let password = fields["password"], self.accounts[user] == password
            else {
                state.stats.refusedLogins += 1
                return Core.json(#"{"error":"Invalid username or password"}"#, status: .unauthorized)
            }
            state.random = state.random &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
            let id = String(state.random, radix: 16) + String(state.sessions.count)
            let lifetime = state.randomLifetime.map { range in
                range.lowerBound + (range.upperBound - range.lowerBound) * Double(state.random >> 11) / Double(1 << 53)
            }
            state.sessions[id] = Session(user: user, createdAt: now, lastUsed: now, lifetime: lifetime)
            state.stats.logins += 1
            var response = Core.json(#"{"user":"\#(user)"}"#)
            response.headers.append(HTTPField(name: .setCookie, value: "SESSID=\(id); Path=/; HttpOnly"))
            return response
        }
    }

    /// `answer` for a live session (its activity noted); the phrase page otherwise.
    func authenticated(_ request: Request, _ answer: (String) -> Response) -> Response {
        let now = self.now()
        let cookie = request.headers[values: .cookie].flatMap { $0.split(separator: ";") }
            .map { $0.trimmingCharacters(in: .whitespaces) }
            .first { $0.hasPrefix("SESSID=") }
            .map { String($0.dropFirst("SESSID=".count)) }
        let user = self.state.withLock { state -> String? in
            guard let cookie, var session = state.sessions[cookie] else {
                state.stats.expiredAnswers += 1
                return nil
            }
            guard Self.alive(session, idle: state.idleTimeout, now: now) else {
                if let lifetime = session.lifetime, now.timeIntervalSince(session.createdAt) >= lifetime { state.stats.randomExpiries += 1 }
                state.sessions.removeValue(forKey: cookie)
                state.stats.expiredAnswers += 1
                return nil
            }
            session.lastUsed = now
            state.sessions[cookie] = session
            return session.user
        }
        guard let user else { return Core.html(Self.expiredPage) }
        return answer(user)
    }
}
