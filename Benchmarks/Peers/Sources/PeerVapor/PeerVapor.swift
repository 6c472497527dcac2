import Fluent
import FluentSQLiteDriver
import Foundation
import Vapor

/// Vapor's sessions as its documentation shows them: `SessionsMiddleware` on the memory driver,
/// or with `DRIVER=fluent` on Fluent's `SessionRecord` in a SQLite file (`DATABASE`, default
/// `peer-vapor.sqlite`). `POST /login` starts a session (its cookie is `vapor-session`);
/// `GET /v1/session` answers who is signed in, as Tessera's who-am-I does, or 401.
@main
struct PeerVapor {
    struct WhoAmI: Content {
        struct Body: Content {
            var userId: String
            var createdAt: String
        }

        var session: Body
    }

    static func main() async throws {
        let environment = ProcessInfo.processInfo.environment
        let port = Int(environment["PORT"] ?? "") ?? 8092
        let fluent = environment["DRIVER"] == "fluent"
        let app = try await Application.make(Environment(name: "production", arguments: ["peer-vapor"]))
        app.logger.logLevel = .warning
        if fluent {
            app.databases.use(.sqlite(.file(environment["DATABASE"] ?? "peer-vapor.sqlite")), as: .sqlite)
            app.sessions.use(.fluent)
            app.migrations.add(SessionRecord.migration)
        } else {
            app.sessions.use(.memory)
        }
        app.middleware.use(app.sessions.middleware)
        app.post("login") { request -> HTTPStatus in
            request.session.data["userId"] = "bench"
            request.session.data["createdAt"] = ISO8601DateFormatter().string(from: Date())
            return .ok
        }
        app.get("v1", "session") { request -> WhoAmI in
            guard let user = request.session.data["userId"] else { throw Abort(.unauthorized) }
            return WhoAmI(session: .init(userId: user, createdAt: request.session.data["createdAt"] ?? ""))
        }
        if fluent { try await app.autoMigrate() }
        app.http.server.configuration.hostname = "127.0.0.1"
        app.http.server.configuration.port = port
        try await app.server.start(address: .hostname("127.0.0.1", port: port))
        let bound = app.http.server.shared.localAddress?.port ?? port
        FileHandle.standardOutput.write(Data("PeerVapor\(fluent ? "Fluent" : "") listening on http://127.0.0.1:\(bound)\n".utf8))
        try await app.running?.onStop.get()
        // No `running` when the server was started by hand: serve until killed.
        while true { try await Task.sleep(for: .seconds(3600)) }
    }
}
