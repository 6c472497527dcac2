import Foundation
public import NIOCore
public import Tessera

/// A request the pool sends to an upstream site through one of its sessions.
public struct UpstreamRequest: Sendable {
    /// The method, uppercased (`GET`, `POST`, …).
    public var method: String
    /// The path and query, relative to the upstream's base URL; starts with `/`.
    public var pathAndQuery: String
    /// Header fields to send. The session adds its own `Cookie` header.
    public var headers: [(name: String, value: String)]
    /// A body held whole: a retry on another session sends it again.
    public var body: ByteBuffer?
    /// A body that streams as the client sends it (instead of ``body``): the request is sent once.
    public var bodyStream: UpstreamBodyStream?
    /// The caller's trace, which the call to the site joins as a child (a `traceparent` of the
    /// same trace); `nil` takes ``TraceContext/current`` when the request is sent.
    public var trace: TraceContext?

    public init(
        method: String,
        pathAndQuery: String,
        headers: [(name: String, value: String)] = [],
        body: ByteBuffer? = nil,
        bodyStream: UpstreamBodyStream? = nil,
        trace: TraceContext? = nil
    ) {
        self.method = method.uppercased()
        self.pathAndQuery = pathAndQuery
        self.headers = headers
        self.body = body
        self.bodyStream = bodyStream
        self.trace = trace
    }

    /// Whether the request can be sent again: its body, if any, is held whole.
    public var isReplayable: Bool { self.bodyStream == nil }

    /// Whether the method is idempotent (RFC 9110 §9.2.2): sending it twice has the effect of
    /// sending it once.
    public var isIdempotent: Bool {
        ["GET", "HEAD", "OPTIONS", "TRACE", "PUT", "DELETE"].contains(self.method)
    }
}

/// An upstream site's answer, read whole (up to the pool's body limit).
public struct UpstreamResponse: Sendable {
    public var status: Int
    public var headers: [(name: String, value: String)]
    public var body: ByteBuffer

    public init(status: Int, headers: [(name: String, value: String)] = [], body: ByteBuffer = ByteBuffer()) {
        self.status = status
        self.headers = headers
        self.body = body
    }

    /// The first value of a header field, by case-insensitive name.
    public func header(_ name: String) -> String? {
        Self.header(name, in: self.headers)
    }

    /// The first value of the field `name` among `headers`, by case-insensitive name.
    static func header(_ name: String, in headers: [(name: String, value: String)]) -> String? {
        headers.first { asciiCaseInsensitiveEquals($0.name, name) }?.value
    }

    /// The body's length when the site declared it.
    public var contentLength: Int? { Self.contentLength(in: self.headers) }

    /// The length `headers` declare, if any.
    static func contentLength(in headers: [(name: String, value: String)]) -> Int? {
        guard let value = Self.header("content-length", in: headers) else { return nil }
        // Digits between optional spaces and tabs, read on the bytes.
        var text = Substring(value)
        while let first = text.utf8.first, first == UInt8(ascii: " ") || first == UInt8(ascii: "\t") { text = text.dropFirst() }
        while let last = text.utf8.last, last == UInt8(ascii: " ") || last == UInt8(ascii: "\t") { text = text.dropLast() }
        guard !text.isEmpty, text.utf8.allSatisfy({ (UInt8(ascii: "0")...UInt8(ascii: "9")).contains($0) }) else { return nil }
        return Int(text)
    }

    /// Every value of a header field, by case-insensitive name.
    public func headers(_ name: String) -> [String] {
        self.headers.filter { asciiCaseInsensitiveEquals($0.name, name) }.map(\.value)
    }
}

/// A request body that streams to the site as the client sends it, never held whole. A request
/// with such a body is sent once: it cannot be replayed on another session.
public struct UpstreamBodyStream: Sendable {
    /// The body, chunk by chunk; it throws when the client's body fails or grows past its limit.
    public var chunks: AnyAsyncSequence<ByteBuffer>
    /// The body's length when the client declared it.
    public var length: Int?

    public init<Chunks: AsyncSequence & Sendable>(_ chunks: Chunks, length: Int?) where Chunks.Element == ByteBuffer {
        self.chunks = AnyAsyncSequence(chunks)
        self.length = length
    }
}

/// An answer whose body streams: the head, the first bytes (read for the verdict) and the rest,
/// read from the site only as fast as it is passed on.
public struct UpstreamStreamedResponse: Sendable {
    public var status: Int
    public var headers: [(name: String, value: String)]
    /// The body's first bytes: all of it when ``rest`` is `nil`.
    public var head: ByteBuffer
    /// The rest of the body, or `nil` when ``head`` is the whole body.
    public var rest: UpstreamBodyRest?
    /// How many of the first bytes the verdict reads (``head`` may hold more: a chunk is read whole).
    public var scannedBytes: Int

    public init(status: Int, headers: [(name: String, value: String)], head: ByteBuffer, rest: UpstreamBodyRest?, scannedBytes: Int) {
        self.status = status
        self.headers = headers
        self.head = head
        self.rest = rest
        self.scannedBytes = scannedBytes
    }

    /// The head and the scanned first bytes as an answer, for the verdict.
    var prefix: UpstreamResponse {
        let scanned = self.head.getSlice(at: self.head.readerIndex, length: min(self.scannedBytes, self.head.readableBytes)) ?? ByteBuffer()
        return UpstreamResponse(status: self.status, headers: self.headers, body: scanned)
    }

    /// The body's length when the site declared it.
    public var contentLength: Int? { UpstreamResponse.contentLength(in: self.headers) }

    /// The whole answer, reading the rest up to `limit` bytes; throws ``UpstreamTransportError``
    /// past it.
    func collected(upTo limit: Int) async throws -> UpstreamResponse {
        var body = self.head
        if let rest = self.rest {
            while let chunk = try await rest.next() {
                guard body.readableBytes + chunk.readableBytes <= limit else {
                    throw UpstreamTransportError(reason: "the answer body exceeded the limit of \(limit) bytes", requestSent: true)
                }
                var chunk = chunk
                body.writeBuffer(&chunk)
            }
        }
        return UpstreamResponse(status: self.status, headers: self.headers, body: body)
    }
}

/// The rest of an answer's body after its first bytes, read once, chunk by chunk, by one task at
/// a time (the proxy's response writer). Reading pulls from the site's connection, so a slow
/// client slows the site's sending instead of filling memory; dropping it before the end closes
/// that connection.
public final class UpstreamBodyRest: @unchecked Sendable {
    // Only one task reads, one chunk at a time: the closure is never called concurrently.
    private let read: () async throws -> ByteBuffer?

    init(read: @escaping () async throws -> ByteBuffer?) {
        self.read = read
    }

    /// The next chunk, or `nil` at the end of the body. Throws ``UpstreamTransportError`` when
    /// the site's connection fails or falls silent for the request timeout.
    public func next() async throws -> ByteBuffer? {
        do {
            return try await self.read()
        } catch let error as UpstreamTransportError {
            throw error
        } catch {
            throw UpstreamTransportError(reason: "the answer body failed: \(error)", requestSent: true)
        }
    }
}

/// A type-erased `AsyncSequence` of one element type.
public struct AnyAsyncSequence<Element: Sendable>: AsyncSequence, Sendable {
    private let make: @Sendable () -> AsyncIterator

    public init<Base: AsyncSequence & Sendable>(_ base: Base) where Base.Element == Element {
        self.make = {
            var iterator = base.makeAsyncIterator()
            return AsyncIterator { try await iterator.next() }
        }
    }

    public func makeAsyncIterator() -> AsyncIterator { self.make() }

    public struct AsyncIterator: AsyncIteratorProtocol {
        let nextElement: () async throws -> Element?

        public mutating func next() async throws -> Element? {
            try await self.nextElement()
        }
    }
}

/// Whether two field names are equal ignoring the case of ASCII letters (field names are ASCII),
/// byte by byte: no Foundation string comparison, which looks up a locale.
func asciiCaseInsensitiveEquals(_ a: String, _ b: String) -> Bool {
    a.utf8.count == b.utf8.count
        && zip(a.utf8, b.utf8).allSatisfy { x, y in
            x == y || (x | 0x20 == y | 0x20 && (0x61...0x7A).contains(x | 0x20))
        }
}
