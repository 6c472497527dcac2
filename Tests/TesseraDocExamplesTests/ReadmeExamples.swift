import Hummingbird
import Tessera
import TesseraHummingbird
import TesseraSQLite

// The Swift examples of README.md, as the docs show them (ReadmeExamplesTests runs them).

// docs:begin
import Hummingbird
import Tessera
import TesseraHummingbird
import TesseraSQLite

/// The app's router: `/api` answers only requests with a Tessera session (its cookie, or
/// `Authorization: Bearer tss_…`). `databasePath` is the store `tessera serve` writes, such as
/// `.tessera/tessera.sqlite`.
func makeRouter(databasePath: String) throws -> Router<TesseraRequestContext> {
    let store = try SQLiteSessionStore(path: databasePath)
    let router = Router(context: TesseraRequestContext.self)
    router.add(middleware: CorrelationIDMiddleware())
    router.add(middleware: ErrorMiddleware())
    router.group("/api")
        .add(middleware: TesseraAuthenticator(sessions: SessionManager(store: store)))
        .get("/hello") { _, context in "Hello, \(try context.requireSession().session.userID)" }
    return router
}
// docs:end
