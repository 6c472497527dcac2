public import AsyncHTTPClient
public import NIOCore
import Foundation
import NIOHTTP1
import Synchronization

/// The ``TesseraTransport`` on AsyncHTTPClient.
///
/// Every request has a deadline (``timeout``, 10 seconds by default) that covers connecting,
/// sending and the whole response; connecting has its own, shorter one (3 seconds by default), so
/// that a service that is down fails a request in seconds rather than being retried for as long
/// as the request may take. The SDK's own client sends at most 16 requests at once (as many as
/// it keeps connections); the others wait their turn within their deadline.
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
    /// Keeps the SDK's own client within its connections (`nil` with a client of the app's).
    let gate: RequestGate?

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
        let shared = SharedHTTPClients.client(connectTimeout: connectTimeout, baseURL: baseURL)
        self.init(baseURL: baseURL, httpClient: shared.client, gate: shared.gate, timeout: timeout, maximumBodySize: maximumBodySize)
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
        self.init(baseURL: baseURL, httpClient: httpClient, gate: nil, timeout: timeout, maximumBodySize: maximumBodySize)
    }

    init(baseURL: String, httpClient: HTTPClient, gate: RequestGate?, timeout: TimeAmount, maximumBodySize: Int) {
        self.baseURL = baseURL.hasSuffix("/") ? String(baseURL.dropLast()) : baseURL
        self.httpClient = httpClient
        self.gate = gate
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
        // One deadline for the whole exchange: a wait for a turn, the head and the body's last byte.
        let deadline = NIODeadline.now() + self.timeout
        if let gate = self.gate {
            try await gate.enter(until: .now.advanced(by: .nanoseconds(self.timeout.nanoseconds)))
        }
        defer { self.gate?.leave() }
        let response = try await self.httpClient.execute(outgoing, deadline: deadline)
        let body = try await response.body.collect(upTo: self.maximumBodySize)
        return TesseraHTTPResponse(status: response.status, headers: response.headers, body: body)
    }
}

/// The SDK's HTTP clients, one per connect timeout, made on first use and kept for the life of
/// the process (as `HTTPClient.shared` is), so that transports share their connections; and the
/// gates that keep each service's requests within the connections kept to it.
enum SharedHTTPClients {
    /// How many requests go to one service at once, on as many connections.
    static let connectionsPerHost = 16

    private struct Registry {
        var clients: [TimeAmount: HTTPClient] = [:]
        /// By connect timeout and service (scheme, host and port, as AsyncHTTPClient pools).
        var gates: [String: RequestGate] = [:]
    }

    private static let registry = Mutex(Registry())

    static func client(connectTimeout: TimeAmount, baseURL: String) -> (client: HTTPClient, gate: RequestGate) {
        self.registry.withLock { registry in
            let client: HTTPClient
            if let existing = registry.clients[connectTimeout] {
                client = existing
            } else {
                var configuration = HTTPClient.Configuration(
                    redirectConfiguration: .disallow,
                    timeout: .init(connect: connectTimeout),
                    decompression: .disabled
                )
                configuration.connectionPool.idleTimeout = .seconds(60)
                // AsyncHTTPClient holds a request waiting in its own queue to the connect
                // timeout: the gates let no more requests through to a service than the client
                // keeps connections to it, so that none waits there.
                configuration.connectionPool.concurrentHTTP1ConnectionsPerHostSoftLimit = Self.connectionsPerHost
                client = HTTPClient(eventLoopGroup: HTTPClient.defaultEventLoopGroup, configuration: configuration)
                registry.clients[connectTimeout] = client
            }
            let key = "\(connectTimeout.nanoseconds) \(Self.origin(of: baseURL))"
            if let gate = registry.gates[key] { return (client, gate) }
            let gate = RequestGate(limit: Self.connectionsPerHost)
            registry.gates[key] = gate
            return (client, gate)
        }
    }

    /// `scheme://host:port` of a URL (the whole URL if it has no path).
    static func origin(of url: String) -> String {
        guard let schemeEnd = url.range(of: "://") else { return url }
        let rest = url[schemeEnd.upperBound...]
        let authority = rest.prefix { $0 != "/" && $0 != "?" && $0 != "#" }
        return url[..<schemeEnd.upperBound].lowercased() + authority.lowercased()
    }
}
