public import AsyncHTTPClient
public import NIOCore
import NIOHTTP1
import Synchronization

/// The ``TesseraTransport`` on AsyncHTTPClient.
///
/// Every request has a deadline (``timeout``, 10 seconds by default) that covers connecting,
/// sending and the whole response; connecting has its own, shorter one (3 seconds by default), so
/// that a service that is down fails a request in seconds rather than being retried for as long
/// as the request may take. The SDK's own client opens up to 64 connections to the service; a
/// request that finds none free waits for one, and that wait counts against the connect timeout.
public struct HTTPClientTransport: TesseraTransport {
    /// The service's base URL, without a trailing slash, such as `https://auth.example.com`.
    public let baseURL: String
    /// The client that sends the requests; not shut down by the transport.
    public let httpClient: HTTPClient
    /// How long a request may take, from sending (connecting included) to the last byte of the
    /// response.
    public let timeout: TimeAmount
    /// The largest response body accepted, in bytes.
    public let maximumBodySize: Int

    /// Creates a transport on an HTTP client of the SDK's own, shared by every transport with the
    /// same `connectTimeout`: it follows no redirect and never decompresses (an answer of the
    /// service is small and never redirected; a redirect would carry the `Authorization` field
    /// elsewhere).
    ///
    /// - Parameters:
    ///   - baseURL: the service's base URL, such as `https://auth.example.com`
    ///   - connectTimeout: how long establishing a connection may take, retries of a refused or
    ///     failed attempt included (default 3 seconds)
    ///   - timeout: the deadline of each request, connecting included (default 10 seconds)
    ///   - maximumBodySize: the largest response body accepted (default 4 MiB)
    public init(
        baseURL: String,
        connectTimeout: TimeAmount = .seconds(3),
        timeout: TimeAmount = .seconds(10),
        maximumBodySize: Int = 4 * 1024 * 1024
    ) {
        self.init(
            baseURL: baseURL,
            httpClient: SharedHTTPClients.client(connectTimeout: connectTimeout),
            timeout: timeout,
            maximumBodySize: maximumBodySize
        )
    }

    /// Creates a transport on `httpClient`, whose configuration decides how long connecting may
    /// take (`HTTPClient.shared`'s allows 90 seconds; requests are still held to `timeout`).
    ///
    /// - Parameters:
    ///   - baseURL: the service's base URL, such as `https://auth.example.com`
    ///   - httpClient: the client to send with
    ///   - timeout: the deadline of each request, connecting included (default 10 seconds)
    ///   - maximumBodySize: the largest response body accepted (default 4 MiB)
    public init(
        baseURL: String,
        httpClient: HTTPClient,
        timeout: TimeAmount = .seconds(10),
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
        // One deadline for the whole exchange: the head and the body's last byte.
        let deadline = NIODeadline.now() + self.timeout
        let response = try await self.httpClient.execute(outgoing, deadline: deadline)
        let body = try await response.body.collect(upTo: self.maximumBodySize)
        return TesseraHTTPResponse(status: response.status, headers: response.headers, body: body)
    }
}

/// The SDK's HTTP clients, one per connect timeout, made on first use and kept for the life of
/// the process (as `HTTPClient.shared` is), so that transports share their connections.
enum SharedHTTPClients {
    /// How many connections a client opens to one service at most, before requests queue.
    static let connectionsPerHost = 64
    private static let clients = Mutex<[TimeAmount: HTTPClient]>([:])

    static func client(connectTimeout: TimeAmount) -> HTTPClient {
        self.clients.withLock { clients in
            if let client = clients[connectTimeout] { return client }
            var configuration = HTTPClient.Configuration(
                redirectConfiguration: .disallow,
                timeout: .init(connect: connectTimeout),
                decompression: .disabled
            )
            configuration.connectionPool.idleTimeout = .seconds(60)
            // A request that waits for a connection is held to the connect timeout too: enough
            // connections that a burst does not wait behind the first eight.
            configuration.connectionPool.concurrentHTTP1ConnectionsPerHostSoftLimit = Self.connectionsPerHost
            let client = HTTPClient(eventLoopGroup: HTTPClient.defaultEventLoopGroup, configuration: configuration)
            clients[connectTimeout] = client
            return client
        }
    }
}
