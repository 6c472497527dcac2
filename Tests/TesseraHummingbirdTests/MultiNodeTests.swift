import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1
import Testing
import Tessera
import TesseraTestSupport

/// Two real `tessera serve` processes sharing one PostgreSQL database.
@Suite(.serialized, .enabled(if: StoreKind.available.contains(.postgres), "needs PostgreSQL (TESSERA_TEST_POSTGRES_URL)"))
struct MultiNodeTests {
    func status(_ method: HTTPMethod, _ url: String, token: String, body: String? = nil, key: String? = nil) async throws -> (Int, [String: Any]) {
        var request = HTTPClientRequest(url: url)
        request.method = method
        request.headers.add(name: "Authorization", value: "Bearer \(key ?? token)")
        if let body {
            request.headers.add(name: "Content-Type", value: "application/json")
            request.body = .bytes(ByteBuffer(string: body))
        }
        let response = try await HTTPClient.shared.execute(request, timeout: .seconds(10))
        let bytes = try await response.body.collect(upTo: 1 << 20)
        let json = (try? JSONSerialization.jsonObject(with: Data(bytes.readableBytesView))) as? [String: Any] ?? [:]
        return (Int(response.status.code), json)
    }

    // Asserts a wall-clock bound: runs while no heavy suite loads the cores.
    @Test(.timed) func aRevocationThroughOneNodeIsSeenByTheOtherWithinOneSecond() async throws {
        let base = try #require(StoreKind.postgresURL)
        let schema = "t_" + UUID().uuidString.lowercased().replacingOccurrences(of: "-", with: "")
        let store = base + (base.contains("?") ? "&" : "?") + "schema=\(schema)"
        let key = ServiceAPIKeyForTests.make()
        let environment = RestartTests.environment.merging(["TESSERA_STORE": store, "TESSERA_SERVICE_API_KEY": key]) { $1 }
        let directoryA = TemporaryDirectory()
        let directoryB = TemporaryDirectory()
        // Both nodes start at once: the migrations' advisory lock lets exactly one apply them.
        async let startA = ServerProcess(dataDirectory: directoryA.path, logDirectory: directoryA.url, environment: environment, name: "a")
        async let startB = ServerProcess(dataDirectory: directoryB.path, logDirectory: directoryB.url, environment: environment, name: "b")
        let (nodeA, nodeB) = try await (startA, startB)
        defer {
            nodeA.terminate()
            nodeB.terminate()
            _ = try? spawnAndWait("/usr/bin/psql", [base, "-q", "-c", "DROP SCHEMA IF EXISTS \(schema) CASCADE"])
        }

        // 200 sessions created through A, each valid on B.
        var tokens: [(id: String, token: String)] = []
        for index in 0..<200 {
            let (status, body) = try await self.status(
                .POST,
                nodeA.baseURL + "/v1/sessions",
                token: "",
                body: #"{"subject":"user-\#(index % 20)"}"#,
                key: key
            )
            #expect(status == 201)
            let id = try #require((body["session"] as? [String: Any])?["id"] as? String)
            tokens.append((id, try #require(body["token"] as? String)))
        }
        for (_, token) in tokens.prefix(20) {
            #expect(try await self.status(.GET, nodeB.baseURL + "/v1/session", token: token).0 == 200)
        }

        // Each revoked through A; B is polled until it refuses. The bound is on when a request
        // is sent: B must refuse every request sent 1 s or more after the revocation returned.
        // (Timing the answers instead would count a loaded machine's scheduling delays.)
        var delays: [Duration] = []
        for (id, token) in tokens {
            #expect(try await self.status(.DELETE, nodeA.baseURL + "/v1/sessions/\(id)", token: token).0 == 204)
            let revokedAt = ContinuousClock.now
            var refusedAfter: Duration?
            while refusedAfter == nil, ContinuousClock.now - revokedAt < .seconds(5) {
                let sentAfter = ContinuousClock.now - revokedAt
                let (status, body) = try await self.status(.GET, nodeB.baseURL + "/v1/session", token: token)
                if status == 401 && (body["error"] as? [String: Any])?["reason"] as? String == "revoked" {
                    refusedAfter = sentAfter
                } else {
                    #expect(sentAfter < .seconds(1), "node B accepted session \(id) in a request sent \(sentAfter) after its revocation")
                }
            }
            let delay = try #require(refusedAfter, "node B never refused session \(id)")
            delays.append(delay)
        }
        let sorted = delays.sorted()
        let p50 = sorted[sorted.count / 2]
        let p99 = sorted[min(sorted.count - 1, sorted.count * 99 / 100)]
        print(
            "Revocation propagation A → B over \(sorted.count) sessions (first refused request sent after): p50 \(p50), p99 \(p99), max \(sorted.last!)"
        )
    }
}

enum ServiceAPIKeyForTests {
    static func make() -> String {
        "tsk_" + UUID().uuidString.replacingOccurrences(of: "-", with: "") + UUID().uuidString.replacingOccurrences(of: "-", with: "")
    }
}
