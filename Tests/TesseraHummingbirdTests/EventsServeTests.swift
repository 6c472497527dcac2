import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1
import Synchronization
import Testing
import Tessera
import TesseraSQLite
import TesseraTestSupport

/// Session events through the real `tessera` executable over loopback: webhooks to a real
/// receiver across `kill -9`, retries, a gone receiver, and server-sent event streams.
@Suite(.serialized, .heavy) struct EventsServeTests {
    static let environment = ["TESSERA_BCRYPT_COST": "4", "TESSERA_LOG_LEVEL": "warning"]
    let secret = WebhookSecret.generate()

    struct Reply {
        var status: Int
        var json: [String: Any]
    }

    func send(_ method: HTTPMethod, _ url: String, headers: [(String, String)] = [], body: String? = nil) async throws -> Reply {
        var request = HTTPClientRequest(url: url)
        request.method = method
        for (name, value) in headers { request.headers.add(name: name, value: value) }
        if let body {
            request.headers.add(name: "Content-Type", value: "application/json")
            request.body = .bytes(ByteBuffer(string: body))
        }
        let response = try await HTTPClient.shared.execute(request, timeout: .seconds(30))
        let bytes = try await response.body.collect(upTo: 1 << 20)
        let json = (try? JSONSerialization.jsonObject(with: Data(bytes.readableBytesView))) as? [String: Any] ?? [:]
        return Reply(status: Int(response.status.code), json: json)
    }

    /// Creates a session for `subject` through the service API: its id and token.
    func createSession(_ base: String, key: String, subject: String) async throws -> (id: String, token: String)? {
        let reply = try await self.send(.POST, base + "/v1/sessions", headers: [("Authorization", "Bearer \(key)")], body: #"{"subject":"\#(subject)"}"#)
        guard reply.status == 201 || reply.status == 200, let token = reply.json["token"] as? String,
            let id = (reply.json["session"] as? [String: Any])?["id"] as? String
        else { return nil }
        return (id, token)
    }

    /// Logs a session out: whether the service says it is revoked now (a retried logout, whose
    /// first answer a kill lost, finds it revoked already).
    func logOut(_ base: String, token: String) async throws -> Bool {
        let reply = try await self.send(.POST, base + "/v1/logout", headers: [("Authorization", "Bearer \(token)")])
        return reply.status == 204 || (reply.status == 401 && (reply.json["error"] as? [String: Any])?["reason"] as? String == "revoked")
    }

    func environment(_ receiver: WebhookReceiver, retryDelay: String = "200ms") -> [String: String] {
        Self.environment.merging([
            "TESSERA_WEBHOOK_URL": receiver.url.absoluteString, "TESSERA_WEBHOOK_SECRET": self.secret, "TESSERA_WEBHOOK_RETRY_DELAY": retryDelay,
        ]) { $1 }
    }

    func events(in data: String) async throws -> [SessionEvent] {
        let store = try SQLiteSessionStore(path: data + "/tessera.sqlite")
        return try await store.sessionEvents(after: 0, filter: .all, limit: 1_000_000)
    }

    /// What the clients were told: sessions created (id → token) and logouts acknowledged.
    final class Progress: Sendable {
        struct State {
            var created: [String: String] = [:]
            var revoked = Set<String>()
        }
        let state = Mutex(State())
        func withLock<T>(_ body: (inout State) -> T) -> T { self.state.withLock { body(&$0) } }
    }

    @Test func twoThousandSessionsCreatedAndRevokedAcrossTwoKillsReachTheReceiverSignedWithNoneMissing() async throws {
        let directory = TemporaryDirectory()
        let data = directory.url.appendingPathComponent("data").path
        let receiver = try await WebhookReceiver.start()
        defer { Task { await receiver.stop() } }

        let progress = Progress()
        for round in 0..<3 {
            let server = try await ServerProcess(
                dataDirectory: data,
                logDirectory: directory.url,
                environment: self.environment(receiver),
                name: "round\(round)"
            )
            let key = try String(contentsOfFile: data + "/service-api-key", encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)
            let target = round == 2 ? 2000 : 700 * (round + 1)
            let base = server.baseURL
            let workload = Task {
                try await withThrowingTaskGroup(of: Void.self) { group in
                    for worker in 0..<16 {
                        group.addTask {
                            // Sessions of earlier rounds whose logout was not acknowledged, then new ones.
                            let leftovers = progress.withLock { p in p.created.filter { !p.revoked.contains($0.key) } }
                            for (id, token) in leftovers.sorted(by: { $0.key < $1.key }) where id.hashValue & 15 == worker {
                                if try await self.logOut(base, token: token) { _ = progress.withLock { $0.revoked.insert(id) } }
                            }
                            while progress.withLock({ $0.created.count }) < target {
                                guard let (id, token) = try await self.createSession(base, key: key, subject: "usr_\(worker)") else { continue }
                                progress.withLock { $0.created[id] = token }
                                if try await self.logOut(base, token: token) { _ = progress.withLock { $0.revoked.insert(id) } }
                            }
                        }
                    }
                    try await group.waitForAll()
                }
            }
            if round < 2 {
                // kill -9 in the middle of the round's work: requests in flight fail.
                let halfway = 700 * round + 350
                while progress.withLock({ $0.created.count }) < halfway { try await Task.sleep(for: .milliseconds(20)) }
                server.kill()
                // Requests waiting for a connection would retry until their deadline.
                workload.cancel()
                _ = await workload.result
            } else {
                try await workload.value
                // Every event the store holds reaches the receiver.
                let expected = Set(try await self.events(in: data).map(\.id))
                let deadline = ContinuousClock.now + .seconds(120)
                while !expected.isSubset(of: Set(receiver.accepted.map(\.id))), ContinuousClock.now < deadline {
                    try await Task.sleep(for: .milliseconds(100))
                }
                server.terminate()
            }
        }

        let events = try await self.events(in: data)
        let final = progress.withLock { $0 }
        #expect(final.created.count >= 2000)
        #expect(final.revoked.count == final.created.count && final.revoked.isSubset(of: Set(final.created.keys)))
        let requests = receiver.requests
        let accepted = Set(receiver.accepted.map(\.id))
        // None missing: every event of the outbox was accepted, and nothing else was sent.
        let outbox = Set(events.map(\.id))
        #expect(accepted.count == outbox.count && outbox.subtracting(accepted).isEmpty && accepted.subtracting(outbox).isEmpty)
        #expect(Set(requests.map(\.id)).subtracting(accepted).isEmpty)
        // Every acknowledged change has its event.
        let created = Set(events.filter { $0.kind == .sessionCreated }.compactMap(\.sessionID))
        let revoked = Set(events.filter { $0.kind == .sessionRevoked && $0.reason == "logout" }.compactMap(\.sessionID))
        #expect(Set(final.created.keys).subtracting(created).isEmpty)
        #expect(final.revoked.subtracting(revoked).isEmpty)
        // Each request verifies; duplicates (redeliveries after a kill) carry the same id and body.
        var bodies: [String: [UInt8]] = [:]
        var unverified = 0
        for request in requests {
            do {
                try WebhookSignature.verify(
                    body: request.body,
                    id: request.id,
                    timestamp: request.timestamp,
                    signatures: request.signature,
                    secret: try WebhookSecret(self.secret)
                )
            } catch {
                unverified += 1
            }
            if let earlier = bodies[request.id] { #expect(earlier == request.body) } else { bodies[request.id] = request.body }
        }
        #expect(unverified == 0)
        // In order per session at the receiver: a session's revocation is never accepted before its creation.
        let order = Dictionary(receiver.accepted.enumerated().map { ($0.element.id, $0.offset) }, uniquingKeysWith: min)
        let bySession = Dictionary(grouping: events.filter { $0.sessionID != nil }, by: { $0.sessionID ?? "" })
        var outOfOrder = 0
        for (_, sessionEvents) in bySession {
            let positions = sessionEvents.sorted { $0.sequence < $1.sequence }.compactMap { order[$0.id] }
            if positions != positions.sorted() { outOfOrder += 1 }
        }
        #expect(outOfOrder == 0)
    }
}
