import Foundation
import HTTPTypes
import Hummingbird
import Logging
import Tessera

/// The admin API (`/v1/admin/…`): every session and user, for operators. See `docs/admin.md`.
///
/// Every action that changes something is logged at `notice` with who acted (`actor`) and the
/// request's correlation id.
extension TesseraHTTPService {
    func addAdminRoutes(to router: Router<TesseraRequestContext>) {
        let admin = router.group("/v1/admin")
            .add(
                middleware: AdminAuthenticator(key: self.admin.key, sessions: self.authenticator())
            )
        admin.get("/sessions", use: self.adminListSessions)
        admin.delete("/sessions/{id}", use: self.adminRevokeSession)
        admin.get("/users", use: self.adminListUsers)
        admin.post("/users", use: self.adminCreateUser)
        admin.get("/users/{id}", use: self.adminUser)
        admin.patch("/users/{id}", use: self.adminUpdateUser)
        admin.put("/users/{id}/password", use: self.adminSetPassword)
        admin.delete("/users/{id}/sessions", use: self.adminRevokeUserSessions)
        admin.get("/overview", use: self.adminOverview)
        admin.get("/metrics", use: self.adminMetrics)
    }

    // MARK: Sessions

    @Sendable func adminListSessions(_ request: Request, context: TesseraRequestContext) async throws -> Response {
        let parameters = request.uri.queryParameters
        let limit = try Self.pageLimit(parameters["limit"].map(String.init))
        let cursor = try parameters["cursor"].map { text in
            guard let cursor = SessionCursor(token: String(text)) else { throw TesseraError.invalidField("The cursor is not one this service gave.") }
            return cursor
        }
        var query = SessionQuery(activeOnly: try Self.flag(parameters["active"].map(String.init), name: "active", default: true))
        query.label = try Self.label(parameters["label"].map(String.init))
        if let userID = parameters["userId"] {
            query.userID = String(userID)
        } else if let username = parameters["username"] {
            guard let user = try await self.sessions.store.user(username: String(username)) else {
                return try Response.json(AdminSessionPage(sessions: [], nextCursor: nil))
            }
            query.userID = user.id
        }
        let page = try await self.sessions.store.sessions(matching: query, at: self.sessions.now, after: cursor, limit: limit)
        let now = self.sessions.clock.now
        return try Response.json(
            AdminSessionPage(
                sessions: page.map { AdminSessionBody($0, now: now) },
                nextCursor: page.count == limit ? page.last.map { SessionCursor(after: $0).token } : nil
            )
        )
    }

    @Sendable func adminRevokeSession(_ request: Request, context: TesseraRequestContext) async throws -> Response {
        let id = try context.parameters.require("id")
        guard try await self.sessions.revoke(sessionID: id, reason: RevocationReason.admin.rawValue) else {
            throw TesseraError.notFound("No active session with that id.")
        }
        context.logger.notice("Admin revoked a session", metadata: ["actor": .string(context.adminActor), "revoked_session_id": .string(id)])
        var response = Response(status: .noContent)
        if context.authenticatedSession?.session.id == id {
            response.setCookie(self.configuration.cookie.clearing())
        }
        return response
    }

    @Sendable func adminRevokeUserSessions(_ request: Request, context: TesseraRequestContext) async throws -> Response {
        let user = try await self.requireUser(context)
        let revoked = try await self.sessions.revokeAll(userID: user.id, reason: RevocationReason.admin.rawValue)
        context.logger.notice(
            "Admin revoked a user's sessions",
            metadata: ["actor": .string(context.adminActor), "user_id": .string(user.id), "count": "\(revoked)"]
        )
        return try Response.json(RevokedCountResponse(revoked: revoked))
    }

    // MARK: Users

    @Sendable func adminListUsers(_ request: Request, context: TesseraRequestContext) async throws -> Response {
        let parameters = request.uri.queryParameters
        let limit = try Self.pageLimit(parameters["limit"].map(String.init))
        let prefix = parameters["prefix"].map(String.init)
        if let prefix, prefix.unicodeScalars.count > 256 { throw TesseraError.invalidField("The prefix may be at most 256 characters.") }
        let cursor = try parameters["cursor"].map { text in
            guard let bytes = Base64URL.decode(text), let username = String(validating: bytes, as: UTF8.self), username.utf8.count <= 1024 else {
                throw TesseraError.invalidField("The cursor is not one this service gave.")
            }
            return username
        }
        let users = try await self.sessions.store.users(prefix: prefix, after: cursor, limit: limit)
        return try Response.json(
            AdminUserPage(
                users: users.map(AdminUserBody.init),
                nextCursor: users.count == limit ? users.last.map { Base64URL.encode(Array($0.username.utf8)) } : nil
            )
        )
    }

    @Sendable func adminUser(_ request: Request, context: TesseraRequestContext) async throws -> Response {
        try Response.json(AdminUserBody(try await self.requireUser(context)))
    }

    @Sendable func adminCreateUser(_ request: Request, context: TesseraRequestContext) async throws -> Response {
        let body = try await JSONCoding.object(from: request, limit: 8 * 1024)
        let username = try body.string("username")
        if let problem = User.problem(username: username) { throw TesseraError.invalidField(problem) }
        let password = try body.string("password")
        if let problem = User.problem(password: password) { throw TesseraError.invalidField(problem) }
        let role = try Self.role(try body.optionalString("role")) ?? .user
        let user = User(
            id: User.makeID(),
            username: username,
            passwordHash: try await self.login.hasher.hash(password),
            createdAt: self.sessions.now,
            role: role
        )
        do {
            try await self.sessions.store.insertUser(user)
        } catch is UserExistsError {
            throw TesseraError.userExists
        }
        context.logger.notice(
            "Admin created a user",
            metadata: ["actor": .string(context.adminActor), "user_id": .string(user.id), "role": .string(role.rawValue)]
        )
        return try Response.json(AdminUserBody(user), status: .created)
    }

    /// `{"disabled": true}` disables the user and revokes every session of theirs; `false`
    /// enables them again. `{"role": "admin"}` makes them an operator.
    @Sendable func adminUpdateUser(_ request: Request, context: TesseraRequestContext) async throws -> Response {
        var user = try await self.requireUser(context)
        let body = try await JSONCoding.object(from: request, limit: 8 * 1024)
        let disabled = try body.optionalBool("disabled")
        let role = try Self.role(try body.optionalString("role"))
        guard disabled != nil || role != nil else { throw TesseraError.invalidField("Give 'disabled' or 'role'.") }
        if context.authenticatedSession?.session.userID == user.id, disabled == true || role == .user {
            throw TesseraError.invalidField("An administrator cannot disable or demote themselves.")
        }
        if let disabled { user.disabledAt = disabled ? (user.disabledAt ?? self.sessions.now) : nil }
        if let role { user.role = role }
        guard try await self.sessions.store.updateUser(user) else { throw TesseraError.notFound("No user with that id.") }
        var revoked = 0
        if disabled == true {
            revoked = try await self.sessions.revokeAll(userID: user.id, reason: RevocationReason.admin.rawValue)
        }
        context.logger.notice(
            "Admin updated a user",
            metadata: [
                "actor": .string(context.adminActor), "user_id": .string(user.id), "disabled": "\(user.disabledAt != nil)",
                "role": .string(user.role.rawValue), "revoked": "\(revoked)",
            ]
        )
        return try Response.json(AdminUserBody(user))
    }

    /// Sets a new password and revokes the user's sessions (all of them, but the operator's own
    /// when they set their own password).
    @Sendable func adminSetPassword(_ request: Request, context: TesseraRequestContext) async throws -> Response {
        var user = try await self.requireUser(context)
        let body = try await JSONCoding.object(from: request, limit: 8 * 1024)
        let password = try body.string("password")
        if let problem = User.problem(password: password) { throw TesseraError.invalidField(problem) }
        user.passwordHash = try await self.login.hasher.hash(password)
        guard try await self.sessions.store.updateUser(user) else { throw TesseraError.notFound("No user with that id.") }
        let own = context.authenticatedSession.map(\.session).flatMap { $0.userID == user.id ? $0.id : nil }
        let revoked = try await self.sessions.revokeAll(userID: user.id, keeping: own, reason: RevocationReason.admin.rawValue)
        context.logger.notice(
            "Admin set a user's password",
            metadata: ["actor": .string(context.adminActor), "user_id": .string(user.id), "revoked": "\(revoked)"]
        )
        return try Response.json(RevokedCountResponse(revoked: revoked))
    }

    // MARK: Helpers

    func requireUser(_ context: TesseraRequestContext) async throws -> User {
        let id = try context.parameters.require("id")
        guard let user = try await self.sessions.store.user(id: id) else { throw TesseraError.notFound("No user with that id.") }
        return user
    }

    /// `limit`: 1 to 500, 100 when absent.
    static func pageLimit(_ text: String?) throws -> Int {
        guard let text else { return 100 }
        guard let limit = Int(text), (1...500).contains(limit) else { throw TesseraError.invalidField("The limit must be 1 to 500.") }
        return limit
    }

    static func flag(_ text: String?, name: String, default value: Bool) throws -> Bool {
        switch text {
        case nil: return value
        case "true": return true
        case "false": return false
        default: throw TesseraError.invalidField("The \(name) parameter must be 'true' or 'false'.")
        }
    }

    static func role(_ text: String?) throws -> User.Role? {
        guard let text else { return nil }
        guard let role = User.Role(rawValue: text) else { throw TesseraError.invalidField("The role must be 'user' or 'admin'.") }
        return role
    }
}
