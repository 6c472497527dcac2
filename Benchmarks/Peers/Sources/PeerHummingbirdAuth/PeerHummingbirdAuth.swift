import Foundation
import Hummingbird
import HummingbirdAuth

/// hummingbird-auth's sessions as their documentation shows them: `SessionMiddleware` on the
/// in-memory `MemoryPersistDriver`. `POST /login` starts a session (its cookie is
/// `SESSION_ID`); `GET /v1/session` answers who is signed in, as Tessera's who-am-I does, or 401.
@main
struct PeerHummingbirdAuth {
    struct Session: Codable, Sendable {
        var userID: String
        var createdAt: Date
    }

    struct WhoAmI: ResponseEncodable {
        struct Body: Encodable {
            var userId: String
            var createdAt: Date
        }

        var session: Body
    }

    static func main() async throws {
        let port = Int(ProcessInfo.processInfo.environment["PORT"] ?? "") ?? 8091
        let router = Router(context: BasicSessionRequestContext<Session, String>.self)
        router.add(middleware: SessionMiddleware(storage: MemoryPersistDriver()))
        router.post("/login") { _, context -> HTTPResponse.Status in
            context.sessions.setSession(Session(userID: "bench", createdAt: Date()), expiresIn: .seconds(3600))
            return .ok
        }
        router.get("/v1/session") { _, context -> WhoAmI in
            guard let session = context.sessions.session else { throw HTTPError(.unauthorized) }
            return WhoAmI(session: .init(userId: session.userID, createdAt: session.createdAt))
        }
        let app = Application(
            router: router,
            configuration: .init(address: .hostname("127.0.0.1", port: port)),
            onServerRunning: { channel in
                let line = "PeerHummingbirdAuth listening on http://127.0.0.1:\(channel.localAddress?.port ?? port)\n"
                FileHandle.standardOutput.write(Data(line.utf8))
            }
        )
        try await app.runService()
    }
}
