public import AsyncHTTPClient
public import NIOCore
import NIOHTTP1

/// The ``TesseraTransport`` on AsyncHTTPClient.
public struct HTTPClientTransport: TesseraTransport {
    /// The service's base URL, without a trailing slash, such as `https://auth.example.com`.
    public let baseURL: String
    /// The client that sends the requests; not shut down by the transport.
    public let httpClient: HTTPClient
    /// How long a request may take, from sending to the last byte of the response.
    public let timeout: TimeAmount
    /// The largest response body accepted, in bytes.
    public let maximumBodySize: Int

    /// Creates a transport.
    ///
    /// - Parameters:
    ///   - baseURL: the service's base URL, such as `https://auth.example.com`
    ///   - httpClient: the client to send with (by default the process-wide shared one)
    ///   - timeout: the deadline of each request (default 30 seconds)
    ///   - maximumBodySize: the largest response body accepted (default 4 MiB)
    public init(
        baseURL: String,
        httpClient: HTTPClient = .shared,
        timeout: TimeAmount = .seconds(30),
        maximumBodySize: Int = 4 * 1024 * 1024
    ) {
        self.baseURL = baseURL.hasSuffix("/") ? String(baseURL.dropLast()) : baseURL
        self.httpClient = httpClient
        self.timeout = timeout
        self.maximumBodySize = maximumBodySize
    }

    public func send(_ request: TesseraHTTPRequest) async throws -> TesseraHTTPResponse {
        var outgoing = HTTPClientRequest(url: self.baseURL + request.path)
        outgoing.method = request.method
        outgoing.headers = request.headers
        if let body = request.body {
            outgoing.body = .bytes(body)
        }
        let response = try await self.httpClient.execute(outgoing, timeout: self.timeout)
        let body = try await response.body.collect(upTo: self.maximumBodySize)
        return TesseraHTTPResponse(status: response.status, headers: response.headers, body: body)
    }
}
