import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1
import Testing
import Tessera
import TesseraTestSupport

/// Server-sent event streams and webhook endpoint states through the real `tessera` executable.
@Suite(.serialized, .heavy) struct EventStreamServeTests {
    let helper = EventsServeTests()

    func start(_ directory: TemporaryDirectory, environment: [String: String] = [:], name: String) async throws -> (ServerProcess, String, String) {
        let data = directory.url.appendingPathComponent("data").path
        let server = try await ServerProcess(
            dataDirectory: data,
            logDirectory: directory.url,
            environment: EventsServeTests.environment.merging(environment) { $1 },
            name: name
        )
        let key = try String(contentsOfFile: data + "/service-api-key", encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)
        return (server, key, data)
    }

    func sessionID(_ event: EventStreamReader.Event) -> String? {
        let json = try? JSONSerialization.jsonObject(with: Data(event.data.utf8)) as? [String: Any]
        return (json?["data"] as? [String: Any])?["sessionId"] as? String
    }

    @Test func aStreamResumedWithLastEventIDReceivesExactlyTheEventsItMissed() async throws {
        let directory = TemporaryDirectory()
        let (server, key, _) = try await self.start(directory, name: "sse")
        defer { server.terminate() }
        let auth = [("Authorization", "Bearer \(key)")]

        var first: [String] = []
        for index in 0..<3 {
            first.append(try #require(try await self.helper.createSession(server.baseURL, key: key, subject: "usr_\(index)")).id)
        }
        let stream = try await EventStreamReader.open(server.baseURL + "/v1/events?after=0", headers: auth)
        #expect(stream.status == 200)
        #expect(try await stream.wait { $0.events.count == 3 })
        #expect(stream.events.map { self.sessionID($0) } == first)
        let lastSeen = try #require(stream.events.last?.id)
        await stream.close()

        // While nobody listens: four sessions, one logged out.
        var missed: [String] = []
        var tokens: [String] = []
        for index in 0..<4 {
            let created = try #require(try await self.helper.createSession(server.baseURL, key: key, subject: "usr_\(index)"))
            missed.append(created.id)
            tokens.append(created.token)
        }
        #expect(try await self.helper.logOut(server.baseURL, token: tokens[0]))

        let resumed = try await EventStreamReader.open(server.baseURL + "/v1/events", headers: auth + [("Last-Event-ID", lastSeen)])
        #expect(try await resumed.wait { $0.events.count == 5 })
        let events = resumed.events
        #expect(events.map(\.event) == ["session.created", "session.created", "session.created", "session.created", "session.revoked"])
        #expect(events.map { self.sessionID($0) } == missed + [missed[0]])
        #expect(events.compactMap { $0.id.flatMap(Int.init) } == events.compactMap { $0.id.flatMap(Int.init) }.sorted())
        #expect(events.allSatisfy { ($0.id.flatMap(Int.init) ?? 0) > Int(lastSeen) ?? 0 })
        // Then live: a session created now arrives on the open stream, and nothing else.
        let live = try #require(try await self.helper.createSession(server.baseURL, key: key, subject: "usr_live")).id
        #expect(try await resumed.wait { $0.events.count == 6 })
        try await Task.sleep(for: .milliseconds(600))
        #expect(resumed.events.count == 6 && resumed.events.last.flatMap { self.sessionID($0) } == live)
        await resumed.close()

        // Filtered by type; refused without the key or with a bad cursor, in the JSON error shape.
        let revocations = try await EventStreamReader.open(server.baseURL + "/v1/events?after=0&types=session.revoked", headers: auth)
        #expect(try await revocations.wait { $0.events.count == 1 })
        #expect(revocations.events.first?.event == "session.revoked")
        await revocations.close()
        let anonymous = try await self.helper.send(.GET, server.baseURL + "/v1/events")
        #expect(anonymous.status == 401 && (anonymous.json["error"] as? [String: Any])?["code"] as? String == "AUTH_1009")
        let badCursor = try await self.helper.send(.GET, server.baseURL + "/v1/events", headers: auth + [("Last-Event-ID", "yesterday")])
        #expect(badCursor.status == 400 && (badCursor.json["error"] as? [String: Any])?["code"] as? String == "REQ_1003")
        let badType = try await self.helper.send(.GET, server.baseURL + "/v1/events?types=session.exploded", headers: auth)
        #expect(badType.status == 400)
    }

    @Test func aSignedInDeviceLearnsAtOnceThatItsSessionWasRevokedAndTheStreamEnds() async throws {
        let directory = TemporaryDirectory()
        let (server, key, _) = try await self.start(directory, name: "session-sse")
        defer { server.terminate() }
        let phone = try #require(try await self.helper.createSession(server.baseURL, key: key, subject: "usr_ann"))
        let laptop = try #require(try await self.helper.createSession(server.baseURL, key: key, subject: "usr_ann"))
        let other = try #require(try await self.helper.createSession(server.baseURL, key: key, subject: "usr_bob"))

        let own = try await EventStreamReader.open(server.baseURL + "/v1/session/events", headers: [("Authorization", "Bearer \(phone.token)")])
        let user = try await EventStreamReader.open(server.baseURL + "/v1/session/events?scope=user", headers: [("Authorization", "Bearer \(laptop.token)")])
        #expect(own.status == 200 && user.status == 200)
        // Another user's events and another session's never reach the phone's stream.
        #expect(try await self.helper.logOut(server.baseURL, token: other.token))
        #expect(try await self.helper.logOut(server.baseURL, token: phone.token))
        #expect(try await own.wait { $0.ended })
        #expect(own.events.map(\.event) == ["session.revoked"])
        #expect(own.events.first.flatMap { self.sessionID($0) } == phone.id)
        // The laptop's user-wide stream saw the phone's logout and stays open.
        #expect(try await user.wait { $0.events.contains { self.sessionID($0) == phone.id } })
        #expect(!user.ended && user.events.allSatisfy { self.sessionID($0) != other.id })
        await user.close()

        // A revoked session cannot open a stream: 401 with the reason.
        let refused = try await self.helper.send(.GET, server.baseURL + "/v1/session/events", headers: [("Authorization", "Bearer \(phone.token)")])
        #expect(refused.status == 401 && (refused.json["error"] as? [String: Any])?["reason"] as? String == "revoked")
        let anonymous = try await self.helper.send(.GET, server.baseURL + "/v1/session/events")
        #expect(anonymous.status == 401)
    }

    @Test(.timed) func shutdownEndsOpenStreamsPromptly() async throws {
        let directory = TemporaryDirectory()
        let (server, key, _) = try await self.start(directory, name: "shutdown")
        let base = server.baseURL
        let streams = try await withThrowingTaskGroup(of: EventStreamReader.self) { group in
            for _ in 0..<5 {
                group.addTask { try await EventStreamReader.open(base + "/v1/events", headers: [("Authorization", "Bearer \(key)")]) }
            }
            return try await group.reduce(into: []) { $0.append($1) }
        }
        #expect(streams.allSatisfy { $0.status == 200 })
        let started = ContinuousClock.now
        server.terminate()
        let elapsed = ContinuousClock.now - started
        #expect(elapsed < .seconds(5), "shutdown took \(elapsed)")
        #expect(server.process.terminationStatus == 0)
        for stream in streams {
            #expect(try await stream.wait(upTo: .seconds(5)) { $0.ended })
        }
    }

    @Test func aGoneReceiverDisablesTheEndpointAndTheCommandsSaySo() async throws {
        let directory = TemporaryDirectory()
        let receiver = try await WebhookReceiver.start()
        defer { Task { await receiver.stop() } }
        receiver.answer(410)
        let (server, key, data) = try await self.start(directory, environment: self.helper.environment(receiver), name: "gone")
        defer { server.terminate() }
        _ = try await self.helper.createSession(server.baseURL, key: key, subject: "usr_a")
        var listed = ""
        for _ in 0..<200 {
            listed = try ServerProcess.run(["events", "list", "--data-dir", data]).output
            if listed.contains("disabled since") { break }
            try await Task.sleep(for: .milliseconds(50))
        }
        #expect(listed.contains("disabled since") && listed.contains("410"))
        #expect(server.standardError.contains("410 Gone") || server.standardOutput.contains("410 Gone"))
        let doctor = try ServerProcess.run(["doctor", "--data-dir", data])
        #expect(doctor.status != 0 && doctor.output.contains("is disabled since") && doctor.output.contains("tessera events enable webhook"))

        // A second event waits while disabled; enabling delivers both.
        _ = try await self.helper.createSession(server.baseURL, key: key, subject: "usr_b")
        try await Task.sleep(for: .milliseconds(600))
        #expect(receiver.requests.count == 1)
        receiver.answer(200)
        let enabled = try ServerProcess.run(["events", "enable", "--data-dir", data])
        #expect(enabled.status == 0 && enabled.output.contains("resume"))
        #expect(try await self.wait { receiver.accepted.count == 2 })
    }

    @Test(.timed) func aReceiverFailingForAWhileGetsTheEventAfterGrowingDelays() async throws {
        let directory = TemporaryDirectory()
        let receiver = try await WebhookReceiver.start()
        defer { Task { await receiver.stop() } }
        receiver.answer { attempt, _ in attempt <= 3 ? 500 : 200 }
        let (server, key, data) = try await self.start(directory, environment: self.helper.environment(receiver, retryDelay: "1s"), name: "retry")
        defer { server.terminate() }
        _ = try await self.helper.createSession(server.baseURL, key: key, subject: "usr_a")
        #expect(try await self.wait(upTo: .seconds(30)) { !receiver.accepted.isEmpty })
        let attempts = receiver.requests
        #expect(attempts.map(\.status) == [500, 500, 500, 200])
        #expect(Set(attempts.map(\.id)).count == 1)
        let gaps = zip(attempts.dropFirst(), attempts).map { $0.receivedAt - $1.receivedAt }
        // 1 s, 2 s, 4 s less up to a quarter, plus up to a poll interval.
        #expect(gaps.count == 3 && gaps[0] >= .milliseconds(700) && gaps[1] > gaps[0] && gaps[2] > gaps[1], "\(gaps)")
        let listed = try ServerProcess.run(["events", "list", "--data-dir", data]).output
        #expect(listed.contains("enabled"))
    }

    @Test func theVerifyCommandAcceptsASignedBodyAndRefusesATamperedOneOrAnotherSecret() throws {
        let secret = WebhookSecret.generate()
        let body = #"{"id":"evt_1","type":"session.revoked"}"#
        let timestamp = Int64(Date().timeIntervalSince1970)
        let signature = WebhookSignature.header(id: "evt_1", timestamp: timestamp, body: Array(body.utf8), secrets: [try WebhookSecret(secret)])
        let arguments = ["events", "verify", "--id", "evt_1", "--timestamp", "\(timestamp)", "--signature", signature]
        let good = try ServerProcess.run(arguments, input: body, environment: ["TESSERA_WEBHOOK_SECRET": secret])
        #expect(good.status == 0 && good.output.contains("Verified"), "\(good.output)")
        let tampered = try ServerProcess.run(arguments, input: body + " ", environment: ["TESSERA_WEBHOOK_SECRET": secret])
        #expect(tampered.status == 1 && tampered.output.contains("No v1 signature"), "\(tampered.output)")
        let other = try ServerProcess.run(arguments, input: body, environment: ["TESSERA_WEBHOOK_SECRET": WebhookSecret.generate()])
        #expect(other.status == 1)
        let missing = try ServerProcess.run(arguments, input: body, environment: ["TESSERA_WEBHOOK_SECRET": ""])
        #expect(missing.status == 1 && missing.output.contains("holds no secret") && !missing.output.contains(secret))
        let secretLine = try ServerProcess.run(["events", "new-secret"])
        #expect(secretLine.status == 0 && (try? WebhookSecret(secretLine.output)) != nil)
    }

    func wait(upTo limit: Duration = .seconds(20), _ condition: () -> Bool) async throws -> Bool {
        let deadline = ContinuousClock.now + limit
        while ContinuousClock.now < deadline {
            if condition() { return true }
            try await Task.sleep(for: .milliseconds(50))
        }
        return condition()
    }
}
