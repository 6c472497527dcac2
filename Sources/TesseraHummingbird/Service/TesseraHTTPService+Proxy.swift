import HTTPTypes
import Hummingbird
import HummingbirdCore
import NIOCore
import Tessera
import TesseraUpstream

/// `…/v1/upstreams/{name}/proxy/{path}`: a request forwarded through a pooled session, its
/// bodies streamed both ways.
extension TesseraHTTPService {
    /// Request fields that are not forwarded: hop-by-hop fields, the service's own credential,
    /// the client's cookies (the pooled session brings its own), what the HTTP client computes,
    /// and `Accept-Encoding`.
    static let unforwardedRequestFields: Set<String> = [
        "connection", "keep-alive", "proxy-authorization", "proxy-connection", "te", "trailer", "transfer-encoding", "upgrade",
        "host", "authorization", "cookie", "content-length", "x-correlation-id", "expect",
        // The pool reads answers for expiry phrases, so it asks for them uncompressed.
        "accept-encoding",
    ]

    /// Answer fields that are not passed back: hop-by-hop fields, the session's cookies (they
    /// stay in the pool) and what Hummingbird computes.
    static let unforwardedResponseFields: Set<String> = [
        "connection", "keep-alive", "proxy-authenticate", "te", "trailer", "transfer-encoding", "upgrade", "set-cookie",
        "content-length", "date", "server",
    ]

    /// How much of a streamed answer is handed to the client's connection before the handler
    /// waits for the connection's event loop to have taken it.
    static let unconfirmedWriteBytes = 256 * 1024

    /// Request bodies up to this size are read whole, so that a request that met an ended
    /// session can be sent again on another; larger or chunked bodies stream, and are sent once.
    static let replayableBodyBytes = 64 * 1024

    @Sendable func proxyUpstream(_ request: Request, context: TesseraRequestContext) async throws -> Response {
        let pool = try self.pool(context)
        var upstreamRequest = try Self.upstreamRequest(method: request.method, uri: request.uri, fields: request.headers)
        try await Self.attachBody(of: request, to: &upstreamRequest, limit: pool.configuration.maxBodyBytes)

        let answer = try await Self.forward(upstreamRequest, through: pool)
        let fields = Self.responseFields(of: answer)
        let status = HTTPResponse.Status(code: answer.status)
        guard let rest = answer.rest else {
            return Response(status: status, headers: fields, body: .init(byteBuffer: answer.head))
        }
        // The rest streams: each chunk is read from the site when the client's connection has
        // taken the one before. The writer waits while the connection is not writable, but it
        // learns so from the connection's event loop, which may not have taken the chunks
        // handed to it yet: every `unconfirmedWriteBytes`, the handler waits for the loop to
        // take them, so that a fast site and a slow client cannot pile chunks up in between.
        let head = answer.head
        let eventLoop = context.channel.eventLoop
        let body = ResponseBody(contentLength: answer.contentLength) { writer in
            var unconfirmed = head.readableBytes
            if head.readableBytes > 0 { try await writer.write(head) }
            while let chunk = try await rest.next() {
                if unconfirmed >= Self.unconfirmedWriteBytes {
                    try await eventLoop.submit {}.get()
                    unconfirmed = 0
                }
                unconfirmed += chunk.readableBytes
                try await writer.write(chunk)
            }
            try await writer.finish(nil)
        }
        return Response(status: status, headers: fields, body: body)
    }

    /// Forwards `request` through `pool`: on the pool's event loop when it can be, from lending
    /// the session to taking it back (two hops between threads instead of one per step), else
    /// the ordinary way. The caller's trace, if any, goes with the request either way.
    static func forward(_ request: UpstreamRequest, through pool: UpstreamPool) async throws -> UpstreamStreamedResponse {
        var request = request
        if request.trace == nil { request.trace = TraceContext.current }
        if request.bodyStream == nil, pool.servesExpress {
            switch try await pool.forwardExpress(request, orForward: true).get() {
            case .answered(let answer): return answer
            case .failed(let error): throw error
            case .declined: break
            }
        }
        return try await pool.forward(request)
    }

    /// The request to send below the upstream's base URL, without its body: the path from the
    /// raw request target, never the router's decoded parameters, checked so that it stays below
    /// the base URL (``UpstreamPath``), and the fields that are forwarded.
    static func upstreamRequest(method: HTTPRequest.Method, uri: URI, fields: HTTPFields) throws -> UpstreamRequest {
        let segments = UpstreamPath.segments(of: uri.path, after: Self.proxyPrefixSegments) ?? []
        return try Self.upstreamRequest(method: method, segments: segments, query: uri.query, fields: fields)
    }

    /// ``upstreamRequest(method:uri:fields:)`` with the path's segments below the proxy's prefix.
    static func upstreamRequest(method: HTTPRequest.Method, segments: [Substring], query: String?, fields: HTTPFields) throws -> UpstreamRequest {
        let pathAndQuery: String
        do {
            pathAndQuery = try UpstreamPath(basePath: "", segments: segments, query: query.map { Substring($0) }).pathAndQuery
        } catch let error as UpstreamPathError {
            throw TesseraError.invalidField(error.description)
        }
        var headers: [(name: String, value: String)] = []
        for field in fields where !Self.unforwardedRequestFields.contains(field.name.canonicalName) {
            headers.append((field.name.canonicalName, field.value))
        }
        return UpstreamRequest(method: method.rawValue, pathAndQuery: pathAndQuery, headers: headers)
    }

    /// The answer's fields as passed back: without hop-by-hop fields and the session's cookies,
    /// and never to be cached.
    static func responseFields(of answer: UpstreamStreamedResponse) -> HTTPFields {
        var fields = HTTPFields()
        for (name, value) in answer.headers {
            guard let fieldName = HTTPField.Name(name), !Self.unforwardedResponseFields.contains(fieldName.canonicalName) else { continue }
            fields.append(HTTPField(name: fieldName, value: value))
        }
        fields[.cacheControl] = "no-store"
        return fields
    }

    /// Gives `upstreamRequest` the client's body: none, read whole when it is declared small
    /// (replayable), or streamed (declared large, or chunked) within `limit`.
    static func attachBody(of request: Request, to upstreamRequest: inout UpstreamRequest, limit: Int) async throws {
        let declared = request.headers[.contentLength].flatMap { Int($0) }
        if let declared, declared > limit { throw TesseraError.bodyTooLarge(limit: limit) }
        if let declared, declared <= Self.replayableBodyBytes {
            let body = try await JSONCoding.body(of: request, limit: limit)
            upstreamRequest.body = body.readableBytes > 0 ? body : nil
        } else if declared != nil || request.headers[.transferEncoding] != nil {
            upstreamRequest.bodyStream = UpstreamBodyStream(LimitedBody(request.body, limit: limit), length: declared)
        }
    }
}

/// A request body that throws `413 REQ_1002` once it grows past `limit` bytes.
struct LimitedBody<Base: AsyncSequence & Sendable>: AsyncSequence, Sendable where Base.Element == ByteBuffer {
    typealias Element = ByteBuffer
    let base: Base
    let limit: Int

    init(_ base: Base, limit: Int) {
        self.base = base
        self.limit = limit
    }

    func makeAsyncIterator() -> Iterator {
        Iterator(base: self.base.makeAsyncIterator(), limit: self.limit)
    }

    struct Iterator: AsyncIteratorProtocol {
        var base: Base.AsyncIterator
        let limit: Int
        var seen = 0

        mutating func next() async throws -> ByteBuffer? {
            guard let chunk = try await self.base.next() else { return nil }
            self.seen += chunk.readableBytes
            guard self.seen <= self.limit else { throw TesseraError.bodyTooLarge(limit: self.limit) }
            return chunk
        }
    }
}
