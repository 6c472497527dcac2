import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import NIOCore
import Synchronization
import Tessera
import TesseraTestSupport
import Testing

/// docs/events.md's receivers: the Swift route takes a real `tessera serve`'s webhooks and
/// refuses a forged one; the Python function verifies a signature Tessera made.
@Suite(.heavy) struct EventsGuideTests {
    @Test func theSwiftRouteReceivesTheServicesWebhooksAndRefusesAForgedOne() async throws {
        let secret = WebhookSecret.generate()
        let received = Mutex<[String]>([])
        let router = Router()
        try addWebhookRoute(to: router, secret: secret) { body in
            let json = try? JSONSerialization.jsonObject(with: Data(body.readableBytesView)) as? [String: Any]
            received.withLock { $0.append(json?["type"] as? String ?? "?") }
        }
        let app = Application(router: router, configuration: .init(address: .hostname("127.0.0.1", port: 0)))
        try await app.test(.live) { client in
            let directory = TemporaryDirectory()
            let secretFile = directory.url.appendingPathComponent("webhook-secret").path
            try secret.write(toFile: secretFile, atomically: true, encoding: .utf8)
            let server = try await DocServer(arguments: [
                "--webhook-url", "http://127.0.0.1:\(client.port ?? 0)/hooks/tessera", "--webhook-secret-file", secretFile,
            ])
            defer { server.stop() }
            let body = #"{"username":"alice","password":"\#(DocServer.password)"}"#
            let login = try await RawHTTP.exchange(
                port: server.port,
                "POST /v1/login HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: \(body.utf8.count)\r\nConnection: close\r\n\r\n\(body)"
            )
            #expect(login.status == 200)
            let deadline = ContinuousClock.now + .seconds(20)
            while received.withLock({ $0.isEmpty }), ContinuousClock.now < deadline { try await Task.sleep(for: .milliseconds(50)) }
            #expect(received.withLock { $0 } == ["session.created"])

            // A request signed with another secret is refused, and handed to nobody.
            let forged = Array(#"{"type":"session.revoked"}"#.utf8)
            let timestamp = Int64(Date().timeIntervalSince1970)
            let signature = WebhookSignature.header(id: "evt_forged", timestamp: timestamp, body: forged, secrets: [try WebhookSecret(WebhookSecret.generate())])
            var headers = HTTPFields()
            headers[HTTPField.Name("webhook-id")!] = "evt_forged"
            headers[HTTPField.Name("webhook-timestamp")!] = "\(timestamp)"
            headers[HTTPField.Name("webhook-signature")!] = signature
            try await client.execute(uri: "/hooks/tessera", method: .post, headers: headers, body: ByteBuffer(bytes: forged)) { response in
                #expect(response.status == .unauthorized)
            }
            #expect(received.withLock { $0 } == ["session.created"])
        }
    }

    @Test func thePythonFunctionVerifiesTessera_sSignatureAndRefusesATamperedBody() throws {
        let doc = try String(contentsOf: DocBlocks.packageRoot.appendingPathComponent("docs/events.md"), encoding: .utf8)
        let start = try #require(doc.range(of: "```python\n"))
        let end = try #require(doc.range(of: "```", range: start.upperBound..<doc.endIndex))
        let function = String(doc[start.upperBound..<end.lowerBound])
        #expect(function.split(separator: "\n").count <= 12)

        let secret = WebhookSecret.generate()
        let body = #"{"id":"evt_1","type":"session.revoked"}"#
        let timestamp = Int64(Date().timeIntervalSince1970)
        let signature = WebhookSignature.header(id: "evt_1", timestamp: timestamp, body: Array(body.utf8), secrets: [try WebhookSecret(secret)])
        let script =
            function + """

            import sys
            headers = {"webhook-id": "evt_1", "webhook-timestamp": "\(timestamp)", "webhook-signature": sys.argv[2]}
            print(verify(sys.argv[1], headers, sys.argv[3].encode()))
            """
        let path = TemporaryDirectory().url.appendingPathComponent("verify.py")
        try FileManager.default.createDirectory(at: path.deletingLastPathComponent(), withIntermediateDirectories: true)
        try script.write(to: path, atomically: true, encoding: .utf8)
        let good = try Self.python([path.path, secret, signature, body])
        #expect(good == "True")
        let tampered = try Self.python([path.path, secret, signature, body.replacingOccurrences(of: "revoked", with: "created")])
        #expect(tampered == "False")
        let otherSecret = try Self.python([path.path, WebhookSecret.generate(), signature, body])
        #expect(otherSecret == "False")
    }

    static func python(_ arguments: [String]) throws -> String {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["python3"] + arguments
        let output = Pipe()
        process.standardOutput = output
        try process.run()
        let data = output.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return String(decoding: data, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
    }
}
