public import Hummingbird
public import HummingbirdCore
import HummingbirdTesting
import Logging

/// Serves `router` on a loopback port of 127.0.0.1 while `body` runs, and hands it the base URL.
public func serve<Context: RequestContext, Value: Sendable>(
    _ router: Router<Context>,
    server: HTTPServerBuilder = .http1(),
    _ body: @Sendable (_ baseURL: String) async throws -> Value
) async throws -> Value where Context.Source == ApplicationRequestContextSource {
    var logger = Logger(label: "tessera.tests")
    logger.logLevel = .warning
    let app = Application(router: router, server: server, configuration: .init(address: .hostname("127.0.0.1", port: 0)), logger: logger)
    return try await app.test(.live) { client in
        guard let port = client.port else { throw HarnessError("the live test server has no port") }
        return try await body("http://127.0.0.1:\(port)")
    }
}
