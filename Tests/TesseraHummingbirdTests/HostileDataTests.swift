import Foundation
import NIOHTTP1
import GRDB
import Testing
import Tessera
import TesseraSQLite
import TesseraTestSupport

/// Session data and logins, tried against the real process as a hostile but fair user would:
/// the process stays up, the answer has the one JSON error shape and its code, nothing is
/// stored, and everyone else is served.
@Suite(.heavy) struct HostileDataTests {
    @Test func deeplyNestedDataIsRefusedBeforeAnythingIsStored() async throws {
        let server = try await HostileServer()
        let alice = try await server.logIn()
        for depth in [510, 450, 33] {
            let reply = try await server.send(
                .PATCH,
                "/v1/session/data",
                headers: alice.unsafeHeaders + [("If-Match", #""1""#), ("Content-Type", "application/merge-patch+json")],
                body: HostileServer.nested(depth)
            )
            #expect(reply.status == 422, "depth \(depth): \(reply.status) \(reply.body)")
            #expect(reply.errorCode == "REQ_1007")
        }
        // Thirty-two levels are session data's limit, and accepted.
        let accepted = try await server.send(
            .PATCH,
            "/v1/session/data",
            headers: alice.unsafeHeaders + [("If-Match", #""1""#)],
            body: #"{"deep":\#(HostileServer.nested(31))}"#
        )
        #expect(accepted.status == 200, "\(accepted.body)")
        #expect(accepted.session?["dataVersion"] as? Int == 2)

        // Through the service API: refused, and neither the token nor the CSRF token of an
        // answer reaches the log.
        let created = try await server.createSession(extra: #","data":\#(HostileServer.nested(510))"#)
        #expect(created.reply.status == 422)
        #expect(created.reply.errorCode == "REQ_1007")
        #expect(created.token == nil)
        #expect(try await server.stillServes())
        #expect(!server.output.contains("tss_"))
        #expect(!server.output.contains(alice.csrfToken))
        #expect(!server.output.contains("Fatal error"))
        #expect(server.errorLines.isEmpty, "\(server.errorLines)")
    }

    @Test func dataPastTheOtherLimitsIsRefusedWithItsCode() async throws {
        let server = try await HostileServer()
        let manyKeys = "{" + (0..<257).map { #""k\#($0)":1"# }.joined(separator: ",") + "}"
        let longArray = #"{"list":["# + Array(repeating: "0", count: 1001).joined(separator: ",") + "]}"
        let duplicate = #"{"a":1,"a":2}"#
        let loneSurrogate = #"{"a":"\ud800"}"#
        let hugeNumber = #"{"a":1e999}"#
        for (data, status, code) in [
            (manyKeys, 422, "REQ_1007"), (longArray, 422, "REQ_1007"), (duplicate, 400, "REQ_1001"), (loneSurrogate, 400, "REQ_1001"),
            (hugeNumber, 400, "REQ_1001"),
        ] {
            let created = try await server.createSession(extra: #","data":\#(data)"#)
            #expect(created.reply.status == status, "\(data.prefix(40)): \(created.reply.body)")
            #expect(created.reply.errorCode == code)
        }
        #expect(try await server.stillServes())
    }

    @Test func storedDataFromAnOlderBuildIsServedAndAnUnreadableRowFailsOnlyItsOwnRequests() async throws {
        // No cache: every request reads the store, as after a restart.
        let server = try await HostileServer(arguments: ["--cache-size", "0"])
        let deep = try await server.createSession(subject: "deep")
        let broken = try await server.createSession(subject: "broken")
        let mistyped = try await server.createSession(subject: "mistyped")
        let deepToken = try #require(deep.token)
        let brokenToken = try #require(broken.token)
        let mistypedToken = try #require(mistyped.token)
        let mistypedCSRF = try #require(mistyped.reply.json["csrfToken"] as? String)
        // What an older build could store (nested 500 deep, past today's limit), and a row whose
        // data is not JSON at all, written into the file the running service uses.
        let database = try DatabaseQueue(path: server.dataDirectory + "/tessera.sqlite")
        try await database.write { db in
            try db.execute(
                sql: "UPDATE sessions SET data = ? WHERE user_id = 'deep'",
                arguments: [#"{"old":\#(HostileServer.nested(500))}"#]
            )
            try db.execute(sql: "UPDATE sessions SET data = '{\"a\":' WHERE user_id = 'broken'")
            try db.execute(sql: "UPDATE sessions SET data_version = 'not a number' WHERE user_id = 'mistyped'")
        }
        try await database.close()

        // Eight clients read the two sessions for two seconds while healthy calls go on.
        let deadline = ContinuousClock.now + .seconds(2)
        let (poisonStatuses, healthy) = try await withThrowingTaskGroup(of: ([Int], [Int]).self) { group in
            for client in 0..<8 {
                let token = client.isMultiple(of: 2) ? deepToken : brokenToken
                group.addTask {
                    var statuses: [Int] = []
                    while ContinuousClock.now < deadline {
                        statuses.append(try await server.send(.GET, "/v1/session", headers: [("Authorization", "Bearer \(token)")]).status)
                    }
                    return (statuses, [])
                }
            }
            group.addTask {
                var statuses: [Int] = []
                while ContinuousClock.now < deadline {
                    statuses.append(try await server.send(.GET, "/readyz").status)
                    statuses.append(
                        try await server.send(.POST, "/v1/login", body: #"{"username":"bob","password":"\#(HostileServer.password)"}"#).status
                    )
                    statuses.append(try await server.createSession().reply.status == 201 ? 200 : 500)
                }
                return ([], statuses)
            }
            return try await group.reduce(into: ([Int](), [Int]())) {
                $0.0 += $1.0; $0.1 += $1.1
            }
        }
        #expect(!healthy.isEmpty)
        #expect(healthy.allSatisfy { $0 == 200 }, "healthy calls: \(healthy.filter { $0 != 200 })")
        #expect(!poisonStatuses.contains(503), "the breaker opened")
        let deepRead = try await server.send(.GET, "/v1/session", headers: [("Authorization", "Bearer \(deepToken)")])
        #expect(deepRead.status == 200)
        #expect(deepRead.body.contains(HostileServer.nested(500)))
        let brokenRead = try await server.send(.GET, "/v1/session", headers: [("Authorization", "Bearer \(brokenToken)")])
        #expect(brokenRead.status == 500)
        #expect(brokenRead.errorCode == "SRV_1000")
        // A column of the wrong type: the driver's error would print the whole row.
        let mistypedRead = try await server.send(.GET, "/v1/session", headers: [("Authorization", "Bearer \(mistypedToken)")])
        #expect(mistypedRead.status == 500)
        // The log says what failed, never the stored value.
        #expect(server.errorLines.count >= 2)
        #expect(server.errorLines.allSatisfy { $0.contains("cannot be read") && !$0.contains(#"{\"a\":"#) })
        #expect(!server.output.contains(mistypedCSRF))
        #expect(try await server.stillServes())
    }

    @Test func rightPasswordsAtOnceAreNeverThrottledAndWrongOnesAreHeldToTheLimit() async throws {
        let server = try await HostileServer()
        // Eight clients, five logins each, with the right password (limit: 5 per account).
        let statuses = try await withThrowingTaskGroup(of: [Int].self) { group in
            for _ in 0..<8 {
                group.addTask {
                    var statuses: [Int] = []
                    for _ in 0..<5 {
                        statuses.append(
                            try await server.send(.POST, "/v1/login", body: #"{"username":"alice","password":"\#(HostileServer.password)"}"#).status
                        )
                    }
                    return statuses
                }
            }
            return try await group.reduce(into: [Int]()) { $0 += $1 }
        }
        #expect(statuses.count == 40)
        #expect(statuses.allSatisfy { $0 == 200 }, "\(statuses.filter { $0 != 200 })")

        // Sixteen wrong passwords at once for bob: five are checked, eleven refused.
        let wrong = try await withThrowingTaskGroup(of: Int.self) { group in
            for _ in 0..<16 {
                group.addTask { try await server.send(.POST, "/v1/login", body: #"{"username":"bob","password":"wrong"}"#).status }
            }
            return try await group.reduce(into: [Int]()) { $0.append($1) }
        }
        #expect(wrong.filter { $0 == 401 }.count == 5)
        #expect(wrong.filter { $0 == 429 }.count == 11)
    }
}
