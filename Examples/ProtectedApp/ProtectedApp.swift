import Foundation
import Hummingbird
import Tessera
import TesseraHummingbird
import TesseraSQLite

/// A small application whose `/api` routes need a Tessera session.
///
/// It shares Tessera's data directory, so sessions created by `tessera serve` (log in there)
/// authenticate here:
///
///     swift run tessera serve --data-dir .tessera &
///     TESSERA_DATA_DIR=.tessera swift run ProtectedApp
///     curl -b 'tessera_session=tss_…' localhost:8081/api/hello
@main
struct ProtectedApp {
    static func main() async throws {
        let environment = ProcessInfo.processInfo.environment
        let directory = environment["TESSERA_DATA_DIR"] ?? ".tessera"
        let store = try SQLiteSessionStore(path: URL(fileURLWithPath: directory).appendingPathComponent("tessera.sqlite").path)
        let app = buildApplication(sessions: SessionManager(store: store), port: Int(environment["PORT"] ?? "") ?? 8081)
        try await app.runService()
    }
}

/// The application: mounting Tessera takes the three `add(middleware:)` lines.
func buildApplication(sessions: SessionManager, port: Int = 8081) -> some ApplicationProtocol {
    let router = Router(context: TesseraRequestContext.self)
    router.add(middleware: CorrelationIDMiddleware())
    router.add(middleware: ErrorMiddleware())
    router.get("/") { _, _ in "Public page\n" }

    let api = router.group("/api").add(middleware: TesseraAuthenticator(sessions: sessions))
    api.get("/hello") { _, context -> String in
        let session = try context.requireSession().session
        return "Hello, \(session.userID). Your session ends by \(session.absoluteExpiresAt.formatted(.iso8601)).\n"
    }
    return Application(router: router, configuration: .init(address: .hostname("127.0.0.1", port: port)))
}
