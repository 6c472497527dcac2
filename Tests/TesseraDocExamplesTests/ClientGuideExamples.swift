import Foundation
import NIOHTTP1
import TesseraClient

// The Swift examples of docs/client.md, as the docs show them (ClientGuideTests runs them against
// a real `tessera serve`).

// docs:begin
import TesseraClient

/// The app's one client, kept for its life. `serviceURL` is the service, such as
/// `https://auth.example.com`; on Apple platforms `KeychainCredentialStore(service:)` keeps the
/// credentials in the keychain instead of a file.
func makeClient(serviceURL: String, credentialsFile: URL) -> TesseraClient {
    TesseraClient(baseURL: serviceURL, store: FileCredentialStore(url: credentialsFile))
}
// docs:end

// docs:begin
/// What the app reads of `GET /v1/session`.
struct WhoAmI: Decodable {
    struct User: Decodable {
        var id: String
        var username: String?
    }
    var user: User
}

enum ThemeError: Error {
    case refused(TesseraServerError?)
}

/// Signs in, reads who is signed in, and keeps a setting in the session's data.
func signInAndChooseTheme(client: TesseraClient, password: String) async throws -> WhoAmI {
    // POST /v1/login with "mode": "token"; the credentials are stored.
    try await client.login(username: "alice", password: password, label: "Alice's phone")

    // Authorization: Bearer <access token> is added, and the token refreshed when due.
    let session = try await client.send(.get("/v1/session"))
    let me = try session.decode(WhoAmI.self)

    // A change names the version it was made on (If-Match, the ETag of the read): if the
    // data changed meanwhile, nothing is written and the answer is 409.
    var update = try TesseraHTTPRequest(method: .PATCH, path: "/v1/session/data", json: ["theme": "dark"])
    update.headers.replaceOrAdd(name: "If-Match", value: session.headers.first(name: "ETag") ?? "")
    let updated = try await client.send(update)
    switch updated.status {
    case .ok: return me  // updated's ETag names the new version
    case .conflict: return me  // changed meanwhile (409 DATA_1001): read again, apply again
    default: throw ThemeError.refused(updated.serverError)
    }
}
// docs:end

// docs:begin
/// Shows the login screen when the session ends, whatever ended it.
func watchSession(of client: TesseraClient, showLogin: @escaping @Sendable (SignOutReason) -> Void) -> Task<Void, Never> {
    Task {
        for await event in client.events() {
            if case .signedOut(let reason) = event { showLogin(reason) }
        }
    }
}
// docs:end

// docs:begin
/// Call when the app comes back to the foreground; in SwiftUI:
/// `.onChange(of: scenePhase) { _, phase in if phase == .active { Task { await appBecameActive(client) } } }`
func appBecameActive(_ client: TesseraClient) async {
    await client.resume()
}
// docs:end

// docs:begin
/// What the app shows of a request to the service.
func profileStatus(client: TesseraClient) async -> String {
    do {
        let response = try await client.send(.get("/v1/session"))
        return response.status == .ok ? "signed in" : "refused (\(response.status.code))"
    } catch let error as TesseraClientError where error.code == .signedOut || error.code == .notSignedIn {
        return "signed out"
    } catch let error as TesseraClientError where error.isTransient {
        // Down, unreachable or refusing for a while: failed within seconds; nothing is lost.
        return "offline, try again \(error.retryAfter.map { "in \($0)" } ?? "later")"
    } catch {
        return "failed: \(error)"
    }
}
// docs:end
