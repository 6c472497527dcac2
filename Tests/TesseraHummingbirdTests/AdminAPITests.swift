import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Tessera
import TesseraHummingbird
import TesseraTestSupport
import TesseraTokens
import Testing

/// The admin API over real loopback HTTP, on every store: who may use it, paging through 5,000
/// sessions while more are created, users created, disabled and given new passwords, sessions
/// revoked; the store agrees with every answer.
// One case at a time: each holds thousands of sessions, and other heavy suites run beside it.
@Suite(.heavy, .serialized) struct AdminAPITests {
    static let password = "correct horse battery staple"
    static let adminKey = ServiceAPIKey.generate(prefix: ServiceAPIKey.adminPrefix)
    static let serviceKey = ServiceAPIKey.generate()

    /// The service on `kind`'s store with users `root` (an administrator) and `alice`.
    func withService(_ kind: StoreKind, _ body: @Sendable (TesseraHTTPService, any TestClientProtocol) async throws -> Void) async throws {
        try await StoreFixture.with(kind) { fixture in
            // Behaviour, not latency: generous deadlines, as ServiceHarness has.
            let store = ResilientStore(try await fixture.open(), configuration: .init(deadline: .seconds(60), attemptTimeout: .seconds(30)))
            let clock = ManualClock()
            let sessions = SessionManager(store: store, clock: clock)
            let hasher = BcryptPasswordHasher(cost: 4)
            let login = try await PasswordLogin(sessions: sessions, hasher: hasher)
            let hash = try await hasher.hash(Self.password)
            try await store.insertUser(User(id: "usr_root", username: "root", passwordHash: hash, createdAt: clock.now, role: .admin))
            try await store.insertUser(User(id: "usr_alice", username: "alice", passwordHash: hash, createdAt: clock.now))
            let service = TesseraHTTPService(
                login: login,
                serviceKey: ServiceAPIKey(key: Self.serviceKey),
                configuration: .init(trustForwardedFor: true),
                admin: AdminSettings(key: ServiceAPIKey(key: Self.adminKey))
            )
            try await Application(router: service.buildRouter()).test(.live) { client in
                try await body(service, client)
            }
        }
    }

    var key: HTTPFields { [.authorization: "Bearer \(Self.adminKey)"] }

    @Test(arguments: StoreKind.available) func onlyOperatorsGetIn(kind: StoreKind) async throws {
        try await self.withService(kind) { _, client in
            #expect(try await client.json("/v1/admin/sessions").1.errorCode == "AUTH_1004")
            let wrongKey = ServiceAPIKey.generate(prefix: ServiceAPIKey.adminPrefix)
            #expect(try await client.json("/v1/admin/sessions", headers: [.authorization: "Bearer \(wrongKey)"]).1.errorCode == "AUTH_1009")
            // The service key is not the admin key.
            #expect(try await client.json("/v1/admin/sessions", headers: [.authorization: "Bearer \(Self.serviceKey)"]).0.status == .unauthorized)
            let alice = try await client.logIn("alice", password: Self.password)
            let (refused, body) = try await client.json("/v1/admin/sessions", headers: alice.headers)
            #expect(refused.status == .forbidden && body.errorCode == "AUTH_1005")

            let root = try await client.logIn("root", password: Self.password)
            #expect(try await client.json("/v1/admin/sessions", headers: root.headers).0.status == .ok)
            // An unsafe request by cookie needs the CSRF token.
            let (forged, forgedBody) = try await client.json("/v1/admin/users/usr_alice/sessions", method: .delete, headers: root.headers)
            #expect(forged.status == .forbidden && forgedBody.errorCode == "AUTH_1008")
            #expect(try await client.json("/v1/session", headers: alice.headers).0.status == .ok, "the forged action revoked nothing")
            let (revoked, revokedBody) = try await client.json("/v1/admin/users/usr_alice/sessions", method: .delete, headers: root.unsafeHeaders)
            #expect(revoked.status == .ok && revokedBody["revoked"] as? Int == 1)
            #expect(try await client.json("/v1/session", headers: alice.headers).1.errorReason == "revoked")
            #expect(revoked.headers[.cacheControl] == "no-store")
        }
    }

    @Test(arguments: StoreKind.available) func pagesThrough5000SessionsWithNoneTwiceAndNoneMissingWhileMoreAreCreated(kind: StoreKind) async throws {
        try await self.withService(kind) { service, client in
            let store = service.sessions.store
            let start = service.sessions.now
            let existing = (0..<5000).map { index in
                Session(
                    id: String(format: "ses_old%05d", index),
                    tokenHash: SessionToken.generate().hash,
                    userID: "usr_\(index % 50)",
                    createdAt: start.addingTimeInterval(Double(index / 4) / 1000 - 60),
                    lastSeenAt: start,
                    idleExpiresAt: start.addingTimeInterval(900),
                    absoluteExpiresAt: start.addingTimeInterval(3600),
                    data: [:],
                    dataVersion: 1,
                    metadata: .init(label: index % 2 == 0 ? "even" : nil),
                    csrfToken: "c"
                )
            }
            for batch in stride(from: 0, to: existing.count, by: 500) {
                try await store.insertSessions(Array(existing[batch..<batch + 500]))
            }
            // Applications keep creating sessions through the API while the pages are read.
            let creator = Task {
                var created = 0
                for _ in 0..<200 {
                    let (response, _) = try await client.json(
                        "/v1/sessions",
                        method: .post,
                        headers: [.authorization: "Bearer \(Self.serviceKey)"],
                        body: #"{"subject":"usr_new"}"#
                    )
                    if response.status == .created { created += 1 }
                }
                return created
            }
            var seen: [String] = []
            var next: String? = ""
            while let cursor = next {
                let (response, body) = try await client.json("/v1/admin/sessions?limit=500" + (cursor.isEmpty ? "" : "&cursor=\(cursor)"), headers: self.key)
                #expect(response.status == .ok)
                let page = try #require(body["sessions"] as? [[String: Any]])
                seen += page.compactMap { $0["id"] as? String }
                #expect(page.allSatisfy { $0["active"] as? Bool == true && $0["data"] == nil && $0["csrfToken"] == nil })
                next = body["nextCursor"] as? String
            }
            #expect(try await creator.value == 200)
            #expect(Set(seen).count == seen.count, "a session was listed twice")
            #expect(seen.filter { $0.hasPrefix("ses_old") } == existing.map(\.id).reversed(), "an existing session was missing or out of order")
            // Everything created is there when listed again.
            #expect(try await store.countActiveSessions(at: service.sessions.now) == 5200)

            // Filters: a user's, by label, by username.
            let (byUser, userBody) = try await client.json("/v1/admin/sessions?userId=usr_7&limit=500", headers: self.key)
            #expect(byUser.status == .ok)
            #expect((userBody["sessions"] as? [[String: Any]])?.count == 100)
            let (_, labelled) = try await client.json("/v1/admin/sessions?label=even&userId=usr_7", headers: self.key)
            #expect((labelled["sessions"] as? [[String: Any]])?.count == 0, "usr_7 has only odd sessions")
            let (_, evens) = try await client.json("/v1/admin/sessions?label=even&userId=usr_8", headers: self.key)
            #expect((evens["sessions"] as? [[String: Any]])?.count == 100)
            let (_, nobody) = try await client.json("/v1/admin/sessions?username=nobody", headers: self.key)
            #expect((nobody["sessions"] as? [[String: Any]])?.isEmpty == true)
            // Bad parameters are 400s in the one error shape.
            for query in ["limit=0", "limit=501", "limit=x", "cursor=bogus", "active=maybe"] {
                let (response, body) = try await client.json("/v1/admin/sessions?" + query, headers: self.key)
                #expect(response.status == .badRequest && body.errorCode == "REQ_1003", "\(query)")
            }
        }
    }

    @Test(arguments: StoreKind.available) func usersAreCreatedDisabledAndGivenNewPasswords(kind: StoreKind) async throws {
        try await self.withService(kind) { service, client in
            let store = service.sessions.store
            let (created, user) = try await client.json(
                "/v1/admin/users",
                method: .post,
                headers: self.key,
                body: #"{"username":"carol","password":"a long password","role":"user"}"#
            )
            #expect(created.status == .created)
            let id = try #require(user["id"] as? String)
            #expect(user["password"] == nil && user["passwordHash"] == nil && user["disabled"] as? Bool == false)
            #expect(try await client.json("/v1/admin/users", method: .post, headers: self.key, body: #"{"username":"CAROL","password":"a long password"}"#).1.errorCode == "USER_1001")
            #expect(try await client.json("/v1/admin/users", method: .post, headers: self.key, body: #"{"username":"dan","password":"short"}"#).1.errorCode == "REQ_1003")
            #expect(try await client.json("/v1/admin/users", method: .post, headers: self.key, body: #"{"username":"a b","password":"long enough"}"#).1.errorCode == "REQ_1003")

            let (listed, list) = try await client.json("/v1/admin/users?prefix=CA", headers: self.key)
            #expect(listed.status == .ok)
            #expect((list["users"] as? [[String: Any]])?.compactMap { $0["username"] as? String } == ["carol"])

            // Carol signs in twice; a new password revokes both sessions and only it works.
            let first = try await client.logIn("carol", password: "a long password")
            _ = try await client.logIn("carol", password: "a long password")
            let (reset, resetBody) = try await client.json(
                "/v1/admin/users/\(id)/password",
                method: .put,
                headers: self.key,
                body: #"{"password":"another long one"}"#
            )
            #expect(reset.status == .ok && resetBody["revoked"] as? Int == 2)
            #expect(try await client.json("/v1/session", headers: first.headers).1.errorReason == "revoked")
            #expect(try await store.sessions(matching: SessionQuery(userID: id), at: service.sessions.now, after: nil, limit: 10).isEmpty)
            let (oldLogin, _) = try await client.json("/v1/login", method: .post, body: #"{"username":"carol","password":"a long password"}"#)
            #expect(oldLogin.status == .unauthorized)
            let again = try await client.logIn("carol", password: "another long one")

            // Disabling revokes her sessions and refuses her logins, as wrong credentials would.
            let (disabled, disabledBody) = try await client.json("/v1/admin/users/\(id)", method: .patch, headers: self.key, body: #"{"disabled":true}"#)
            #expect(disabled.status == .ok && disabledBody["disabled"] as? Bool == true)
            #expect(try await client.json("/v1/session", headers: again.headers).1.errorReason == "revoked")
            let (refused, refusedBody) = try await client.json("/v1/login", method: .post, body: #"{"username":"carol","password":"another long one"}"#)
            #expect(refused.status == .unauthorized && refusedBody.errorCode == "AUTH_1001")
            #expect(try await store.user(id: id)?.isEnabled == false)
            #expect(try await client.json("/v1/admin/users/\(id)", method: .patch, headers: self.key, body: #"{"disabled":false}"#).0.status == .ok)
            _ = try await client.logIn("carol", password: "another long one")

            // One session revoked by id, then a 404 for it and for unknown ids.
            let session = try await client.logIn("alice", password: Self.password)
            #expect(try await client.json("/v1/admin/sessions/\(session.sessionID)", method: .delete, headers: self.key).0.status == .noContent)
            #expect(try await store.session(id: session.sessionID)?.revocationReason == "admin")
            #expect(try await client.json("/v1/admin/sessions/\(session.sessionID)", method: .delete, headers: self.key).1.errorCode == "REQ_1004")
            #expect(try await client.json("/v1/admin/users/usr_ghost", headers: self.key).1.errorCode == "REQ_1004")
            #expect(try await client.json("/v1/admin/users/usr_ghost", method: .patch, headers: self.key, body: #"{"disabled":true}"#).1.errorCode == "REQ_1004")
        }
    }
}
