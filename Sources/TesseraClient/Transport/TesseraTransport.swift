public import Foundation
public import NIOCore
public import NIOHTTP1

/// Sends one HTTP request to the Tessera service (or to an API that accepts its access tokens)
/// and returns the whole response.
///
/// ``HTTPClientTransport`` is the implementation on AsyncHTTPClient. Tests and benchmarks wrap
/// it (to count, delay or fail calls) or replace it.
public protocol TesseraTransport: Sendable {
    /// Sends `request` and returns the response, whatever its status.
    ///
    /// Throws only when no response arrived: a network error, a timeout, a cancellation.
    func send(_ request: TesseraHTTPRequest) async throws -> TesseraHTTPResponse
}

/// An HTTP request, addressed by its path relative to the transport's base URL.
public struct TesseraHTTPRequest: Sendable {
    /// The method.
    public var method: HTTPMethod
    /// The path and query, starting with `/`, appended to the transport's base URL.
    public var path: String
    /// The header fields. ``TesseraClient`` sets `Authorization` on authenticated requests.
    public var headers: HTTPHeaders
    /// The body, if any.
    public var body: ByteBuffer?

    /// Creates a request.
    public init(method: HTTPMethod = .GET, path: String, headers: HTTPHeaders = [:], body: ByteBuffer? = nil) {
        self.method = method
        self.path = path
        self.headers = headers
        self.body = body
    }

    /// Creates a request whose body is `value` encoded as JSON, with `Content-Type: application/json`.
    public init(
        method: HTTPMethod,
        path: String,
        json value: some Encodable,
        headers: HTTPHeaders = [:],
        encoder: JSONEncoder = JSONEncoder()
    ) throws {
        var headers = headers
        headers.replaceOrAdd(name: "Content-Type", value: "application/json")
        self.init(method: method, path: path, headers: headers, body: ByteBuffer(bytes: try encoder.encode(value)))
    }

    /// A `GET` request.
    public static func get(_ path: String, headers: HTTPHeaders = [:]) -> TesseraHTTPRequest {
        TesseraHTTPRequest(method: .GET, path: path, headers: headers)
    }
}

/// An HTTP response with its whole body.
public struct TesseraHTTPResponse: Sendable {
    /// The status.
    public var status: HTTPResponseStatus
    /// The header fields.
    public var headers: HTTPHeaders
    /// The body (empty when there is none).
    public var body: ByteBuffer

    /// Creates a response.
    public init(status: HTTPResponseStatus, headers: HTTPHeaders = [:], body: ByteBuffer = ByteBuffer()) {
        self.status = status
        self.headers = headers
        self.body = body
    }

    /// The body's bytes.
    public var data: Data { Data(self.body.readableBytesView) }

    /// Decodes the body as JSON.
    public func decode<Value: Decodable>(_ type: Value.Type, decoder: JSONDecoder = JSONDecoder()) throws -> Value {
        try decoder.decode(type, from: self.data)
    }

    /// The error Tessera described in the body (`{"error":{"code":…}}`), if the body is one.
    public var serverError: TesseraServerError? {
        (try? JSONDecoder().decode(ErrorEnvelope.self, from: self.data))?.error
    }
}

struct ErrorEnvelope: Decodable {
    var error: TesseraServerError
}
