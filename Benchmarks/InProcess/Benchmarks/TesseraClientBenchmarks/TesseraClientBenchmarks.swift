import Benchmark
import NIOCore
import NIOHTTP1
import TesseraClient

/// A transport that answers at once: a token pair to a login, `200 {}` to anything else. What it
/// costs is the baseline; what `TesseraClient.send` adds on top is the client's overhead (two
/// actor hops, the credential check, the `Authorization` field).
struct ImmediateTransport: TesseraTransport {
    let ok = TesseraHTTPResponse(status: .ok, headers: ["Content-Type": "application/json"], body: ByteBuffer(string: "{}"))
    let tokens = TesseraHTTPResponse(
        status: .ok,
        headers: ["Content-Type": "application/json"],
        body: ByteBuffer(
            string: #"{"accessToken":"eyJhbGciOiJFZERTQSJ9.eyJzdWIiOiJ1c3JfYWxpY2UifQ.c2lnbmF0dXJl","tokenType":"Bearer","expiresIn":300,"#
                + #""refreshToken":"tsr_0123456789abcdef0123456789abcdef","session":{"id":"ses_1","userId":"usr_alice"},"#
                + #""user":{"id":"usr_alice","username":"alice"}}"#
        )
    )

    func send(_ request: TesseraHTTPRequest) async throws -> TesseraHTTPResponse {
        request.path == "/v1/login" ? self.tokens : self.ok
    }
}

let benchmarks: @Sendable () -> Void = {
    let configuration = Benchmark.Configuration(
        metrics: [.wallClock, .throughput, .mallocCountTotal],
        scalingFactor: .kilo,
        maxDuration: .seconds(3)
    )
    let transport = ImmediateTransport()
    var headers = HTTPHeaders()
    headers.add(name: "Authorization", value: "Bearer eyJhbGciOiJFZERTQSJ9.eyJzdWIiOiJ1c3JfYWxpY2UifQ.c2lnbmF0dXJl")
    let authorized = TesseraHTTPRequest(method: .GET, path: "/v1/session", headers: headers)
    let request = TesseraHTTPRequest.get("/v1/session")

    Benchmark("Client: transport alone (baseline)", configuration: configuration) { benchmark in
        for _ in benchmark.scaledIterations {
            blackHole(try? await transport.send(authorized))
        }
    }

    Benchmark("Client: send through TesseraClient", configuration: configuration) { benchmark in
        let client = TesseraClient(transport: transport)
        guard (try? await client.login(username: "alice", password: "pw")) != nil else { fatalError("login failed") }
        benchmark.startMeasurement()
        for _ in benchmark.scaledIterations {
            blackHole(try? await client.send(request))
        }
        benchmark.stopMeasurement()
    }
}
