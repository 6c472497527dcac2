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
        let body = #"{"session":{"id":"ses_baseline","userId":"u"}}"#
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
