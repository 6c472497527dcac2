import Foundation
import NIOHTTP1
import Synchronization
import TesseraClient
import TesseraTestSupport
import Testing

/// docs/client.md's examples, run as an app would run them, against a real `tessera serve`.
// Serialized, so that its wall-clock tests (`.timed`) can give back the suite's place while they run.
@Suite(.heavy, .serialized) struct ClientGuideTests {
    @Test func theGuidesClientSignsInChangesTheDataFollowsAnotherProcessAndIsToldOfTheEnd() async throws {
        let server = try await DocServer()
        let file = server.directory.url.appendingPathComponent("credentials.json")
        let client = makeClient(serviceURL: server.baseURL, credentialsFile: file)
        let reasons = Mutex<[SignOutReason]>([])
        let watching = watchSession(of: client) { reason in reasons.withLock { $0.append(reason) } }
        defer { watching.cancel() }

        let me = try await signInAndChooseTheme(client: client, password: DocServer.password)
        #expect(me.user.username == "alice")
        // The change was made: the data holds it, at the next version.
        let read = try await client.send(.get("/v1/session"))
        let session = try #require((try JSONSerialization.jsonObject(with: read.data) as? [String: Any])?["session"] as? [String: Any])
        #expect((session["data"] as? [String: Any])?["theme"] as? String == "dark")
        #expect(read.headers.first(name: "ETag") == "\"2\"")
        #expect(await profileStatus(client: client) == "signed in")

        // Another process sharing the credentials file refreshes: coming back to the foreground,
        // the app takes on what it stored instead of presenting a rotated-out token.
        let other = makeClient(serviceURL: server.baseURL, credentialsFile: file)
        try await other.refresh()
        let stored = try #require(await other.credentials)
        #expect(await client.credentials?.refreshToken != stored.refreshToken)
        await appBecameActive(client)
        #expect(await client.credentials == stored)
        #expect(await profileStatus(client: client) == "signed in")

        // The other process signs out: the session is over, and this client is told once.
        await other.signOut()
        let afterwards = await profileStatus(client: client)
        #expect(afterwards == "signed out")
        try await waitUntil("the app was told") { reasons.withLock { !$0.isEmpty } }
        #expect(reasons.withLock { $0 } == [.revoked])
        #expect(await client.credentials == nil)
    }

    /// Bounds wall-clock time: runs while no heavy test loads the machine.
    @Test(.timed) func aServiceThatIsDownFailsWithinSecondsAndOneThatCameBackServes() async throws {
        let server = try await DocServer()
        let file = server.directory.url.appendingPathComponent("credentials.json")
        let client = makeClient(serviceURL: server.baseURL, credentialsFile: file)
        _ = try await signInAndChooseTheme(client: client, password: DocServer.password)

        server.stop()
        let start = ContinuousClock.now
        let down = await profileStatus(client: client)
        let elapsed = ContinuousClock.now - start
        print("A request to a service that is down failed after \(elapsed)")
        #expect(down.hasPrefix("offline"), "\(down)")
        // The connect deadline is 3 s; before it, AsyncHTTPClient's shared client retried for the
        // request's whole 30 s.
        #expect(elapsed < .seconds(8))
        #expect(await client.credentials != nil)

        try await server.restart()
        #expect(await profileStatus(client: client) == "signed in")
    }

    /// Bounds wall-clock time: runs while no heavy test loads the machine.
    @Test(.timed) func aServiceThatNeverListenedFailsWithinSeconds() async throws {
        let port = try freeLoopbackPort()
        let client = makeClient(serviceURL: "http://127.0.0.1:\(port)", credentialsFile: TemporaryDirectory().url.appendingPathComponent("c.json"))
        let start = ContinuousClock.now
        let error = await #expect(throws: TesseraClientError.self) {
            try await client.login(username: "alice", password: DocServer.password)
        }
        let elapsed = ContinuousClock.now - start
        print("A login to a closed port failed after \(elapsed)")
        #expect(error?.code == .transport)
        #expect(error?.isTransient == true)
        #expect(elapsed < .seconds(8))
    }
}
