import Foundation
import Hummingbird

/// The baseline of `scripts/bench-http.sh`: a bare Hummingbird route with the same server
/// configuration as `tessera serve`, answering `GET /v1/session` with a small fixed JSON body and
/// doing nothing else: no middleware, no store.
@main
struct BareRoute {
    static func main() async throws {
        let environment = ProcessInfo.processInfo.environment
        let port = Int(environment["PORT"] ?? "") ?? 8090
        let router = Router()
        // BODY_BYTES pads the answer to that many bytes (a filler field), so that the baseline can
        // also answer as much as who-am-I does and the comparison isolate the work per request.
        let small = #"{"session":{"id":"ses_baseline","userId":"u"}}"#
        var padded = small
        if let size = Int(environment["BODY_BYTES"] ?? ""), size > small.utf8.count + 12 {
            padded = #"{"filler":""# + String(repeating: "x", count: size - small.utf8.count - 12) + #"","# + small.dropFirst()
        }
        let body = padded
        router.get("/v1/session") { _, _ in
            Response(status: .ok, headers: [.contentType: "application/json; charset=utf-8"], body: .init(byteBuffer: ByteBuffer(string: body)))
        }
        let app = Application(
            router: router,
            configuration: .init(address: .hostname("127.0.0.1", port: port), serverName: "Tessera"),
            onServerRunning: { channel in
                let line = "BareRoute listening on http://127.0.0.1:\(channel.localAddress?.port ?? port)\n"
                FileHandle.standardOutput.write(Data(line.utf8))
            }
        )
        try await app.runService()
    }
}
