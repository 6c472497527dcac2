import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import NIOCore
import Tessera
import TesseraHummingbird
import TesseraTestSupport
import TesseraTokens

/// The HTTP service with token mode, on a real store (SQLite unless told), with a manual clock
/// and bcrypt at its lowest cost.
struct TokenHarness {
    static let password = "correct horse battery staple"
    static let serviceKey = ServiceAPIKey.generate()

    let clock: ManualClock
    let store: CountingStore
    let tokens: TokenService
    let service: TesseraHTTPService

    init(
        store base: any SessionStore,
        clock: ManualClock = ManualClock(),
        keys: SigningKeys? = nil,
        grace: Duration = .seconds(10),
        users: [String] = ["alice"]
    ) async throws {
        self.clock = clock
        self.store = CountingStore(base)
        let hasher = BcryptPasswordHasher(cost: 4)
        let sessions = SessionManager(store: self.store, clock: clock)
        let login = try await PasswordLogin(sessions: sessions, hasher: hasher)
        for name in users {
            try await self.store.insertUser(
                User(id: "usr_\(name)", username: name, passwordHash: try await hasher.hash(Self.password), createdAt: clock.now)
            )
        }
        let signingKeys: SigningKeys
        if let keys {
            signingKeys = keys
        } else {
            signingKeys = await SigningKeys.ephemeral(clock: clock)
        }
        self.tokens = TokenService(sessions: sessions, keys: signingKeys, configuration: .init(refreshGracePeriod: grace))
        self.service = TesseraHTTPService(login: login, serviceKey: ServiceAPIKey(key: Self.serviceKey), tokens: self.tokens)
    }

    var sessions: SessionManager { self.service.sessions }

    /// Runs `body` against the router, in process.
    func test<Value: Sendable>(_ body: @Sendable (any TestClientProtocol) async throws -> Value) async throws -> Value {
        let app = Application(router: self.service.buildRouter())
        return try await app.test(.router, body)
    }
}

/// A token-mode answer.
struct IssuedTokens: Sendable, Equatable {
    var accessToken: String
    var refreshToken: String
    var expiresIn: Int
    var sessionID: String
}

extension TestClientProtocol {
    func json(
        _ uri: String,
        method: HTTPRequest.Method = .get,
        headers: HTTPFields = [:],
        body: String? = nil
    ) async throws -> (TestResponse, [String: Any]) {
        var headers = headers
        if body != nil, headers[.contentType] == nil { headers[.contentType] = "application/json" }
        let response = try await self.execute(uri: uri, method: method, headers: headers, body: body.map { ByteBuffer(string: $0) })
        let object = (try? JSONSerialization.jsonObject(with: Data(response.body.readableBytesView))) as? [String: Any] ?? [:]
        return (response, object)
    }

    func logInForTokens() async throws -> IssuedTokens {
        let (response, body) = try await self.json(
            "/v1/login",
            method: .post,
            body: #"{"username":"alice","password":"\#(TokenHarness.password)","mode":"token"}"#
        )
        guard response.status == .ok, response.headers[.setCookie] == nil, let tokens = IssuedTokens(body) else {
            throw TokenTestError("token login failed: \(response.status) \(String(buffer: response.body))")
        }
        return tokens
    }

    func refresh(_ refreshToken: String) async throws -> (TestResponse, [String: Any]) {
        try await self.json("/v1/token/refresh", method: .post, body: #"{"refreshToken":"\#(refreshToken)"}"#)
    }

    func whoAmI(_ accessToken: String) async throws -> (TestResponse, [String: Any]) {
        try await self.json("/v1/session", headers: [.authorization: "Bearer \(accessToken)"])
    }

    func introspect(_ token: String, key: String = TokenHarness.serviceKey) async throws -> (TestResponse, [String: Any]) {
        try await self.json("/v1/introspect", method: .post, headers: [.authorization: "Bearer \(key)"], body: #"{"token":"\#(token)"}"#)
    }
}

extension IssuedTokens {
    init?(_ body: [String: Any]) {
        guard let access = body["accessToken"] as? String, let refresh = body["refreshToken"] as? String,
            let expiresIn = body["expiresIn"] as? Int, body["tokenType"] as? String == "Bearer",
            let session = body["session"] as? [String: Any], let id = session["id"] as? String
        else { return nil }
        self.init(accessToken: access, refreshToken: refresh, expiresIn: expiresIn, sessionID: id)
    }
}

struct TokenTestError: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}

extension [String: Any] {
    var errorCode: String? { (self["error"] as? [String: Any])?["code"] as? String }
    var errorReason: String? { (self["error"] as? [String: Any])?["reason"] as? String }
}
