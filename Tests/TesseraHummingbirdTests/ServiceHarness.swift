import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import NIOCore
import Synchronization
import Tessera
import TesseraHummingbird
import TesseraSQLite
import TesseraTestSupport
import TesseraTokens

/// The HTTP service on a real SQLite file, with a manual clock and bcrypt at its lowest cost.
struct ServiceHarness {
    static let password = "correct horse battery staple"
    static let serviceKey = ServiceAPIKey.generate()

    let directory = TemporaryDirectory()
    let clock = ManualClock()
    let store: CountingStore
    let service: TesseraHTTPService
    let hasher: CountingHasher
    /// The injector of store failures, under the resilience layer the service really uses.
    let faults: FaultyStore

    init(
        policy: SessionPolicy = .init(),
        throttle: LoginThrottlePolicy = .init(),
        configuration: TesseraHTTPService.Configuration = .init(trustForwardedFor: true),
        users: [String] = ["alice", "bob"],
        // The harness tests behaviour, not latency: with the service's 500 ms per attempt, a
        // SQLite write on a 2-core machine that every suite loads at once can answer 503. The
        // latency bounds have timed tests of their own, with their own settings.
        resilience: ResilientStore.Configuration = .init(deadline: .seconds(10), attemptTimeout: .seconds(5))
    ) async throws {
        self.faults = FaultyStore(try self.directory.sqliteStore())
        self.store = CountingStore(ResilientStore(self.faults, configuration: resilience))
        self.hasher = CountingHasher(base: BcryptPasswordHasher(cost: 4))
        let sessions = SessionManager(store: self.store, policy: policy, clock: self.clock)
        let login = try await PasswordLogin(sessions: sessions, hasher: self.hasher, throttle: throttle)
        for name in users {
            let hash = try await self.hasher.hash(Self.password)
            try await self.store.insertUser(User(id: "usr_\(name)", username: name, passwordHash: hash, createdAt: self.clock.now))
        }
        self.service = TesseraHTTPService(
            login: login,
            serviceKey: ServiceAPIKey(key: Self.serviceKey),
            tokens: TokenService(sessions: sessions, keys: await SigningKeys.ephemeral(clock: self.clock)),
            configuration: configuration
        )
    }

    var sessions: SessionManager { self.service.sessions }

    /// Runs `body` against the router, in process.
    func test<Value: Sendable>(_ body: @Sendable (any TestClientProtocol) async throws -> Value) async throws -> Value {
        let app = Application(router: self.service.buildRouter())
        return try await app.test(.router, body)
    }
}

/// Counts password verifications, passing each to the real bcrypt hasher.
final class CountingHasher: PasswordHasher {
    let base: BcryptPasswordHasher
    let verifications = Counter()

    init(base: BcryptPasswordHasher) {
        self.base = base
    }

    func hash(_ password: String) async throws -> String { try await self.base.hash(password) }

    func verify(_ password: String, hash: String) async throws -> Bool {
        self.verifications.increment()
        return try await self.base.verify(password, hash: hash)
    }
}

final class Counter: Sendable {
    private let value = Mutex(0)
    func increment() { self.value.withLock { $0 += 1 } }
    var count: Int { self.value.withLock { $0 } }
}

/// A browser-like session: the cookie and CSRF token a login returned.
struct BrowserSession {
    var cookie: String
    var csrfToken: String
    var sessionID: String

    var headers: HTTPFields { [.cookie: "tessera_session=\(self.cookie)"] }
    var unsafeHeaders: HTTPFields { [.cookie: "tessera_session=\(self.cookie)", .csrfToken: self.csrfToken] }
}

extension TestClientProtocol {
    func json(
        _ uri: String,
        method: HTTPRequest.Method = .get,
        headers: HTTPFields = [:],
        body: String? = nil
    ) async throws -> (TestResponse, [String: Any]) {
        var headers = headers
        if body != nil { headers[.contentType] = "application/json" }
        let response = try await self.execute(uri: uri, method: method, headers: headers, body: body.map { ByteBuffer(string: $0) })
        let object = (try? JSONSerialization.jsonObject(with: Data(response.body.readableBytesView))) as? [String: Any] ?? [:]
        return (response, object)
    }

    func logIn(_ username: String = "alice", password: String = ServiceHarness.password, from address: String = "192.0.2.1") async throws
        -> BrowserSession
    {
        let (response, body) = try await self.json(
            "/v1/login",
            method: .post,
            headers: [.forwardedFor: address],
            body: #"{"username":"\#(username)","password":"\#(password)"}"#
        )
        guard response.status == .ok, let setCookie = response.headers[.setCookie],
            let value = setCookie.split(separator: ";").first?.split(separator: "=", maxSplits: 1).last,
            let csrf = body["csrfToken"] as? String,
            let session = body["session"] as? [String: Any], let id = session["id"] as? String
        else { throw HarnessError("login failed: \(response.status) \(String(buffer: response.body))") }
        return BrowserSession(cookie: String(value), csrfToken: csrf, sessionID: id)
    }
}

extension [String: Any] {
    /// `error.code` of an error body.
    var errorCode: String? { (self["error"] as? [String: Any])?["code"] as? String }
    var errorReason: String? { (self["error"] as? [String: Any])?["reason"] as? String }
}
