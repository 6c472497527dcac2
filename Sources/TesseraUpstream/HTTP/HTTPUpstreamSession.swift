import NIOCore
import NIOHTTP1
import Synchronization
import Tessera

/// One HTTP session: the upstream's shared connections and its own cookie jar.
final class HTTPUpstreamSession: UpstreamSessionConnection {
    let factory: HTTPUpstreamSessionFactory
    let jar = Mutex(CookieJar())

    /// An answer whose declared length is at most this is read whole before it is handed over,
    /// so that a small answer costs no streaming.
    static let smallAnswerBytes = 16 * 1024

    /// Request fields the session sets itself.
    static let ownFields = ["host", "cookie", "traceparent", "content-length", "transfer-encoding", "connection"]

    init(factory: HTTPUpstreamSessionFactory) {
        self.factory = factory
    }

    func send(_ request: UpstreamRequest) async throws -> UpstreamResponse {
        let limit = self.factory.configuration.maxBodyBytes
        // The whole body is read (for the verdict, a login's phrases), up to the limit.
        let answer = try await self.stream(request) { _ in limit + 1 }
        return try await answer.collected(upTo: limit)
    }

    func stream(_ request: UpstreamRequest, scanBytes: @escaping @Sendable (UpstreamResponse) -> Int) async throws -> UpstreamStreamedResponse {
        let (wire, path) = try self.wireRequest(for: request)
        let timeout = self.requestTimeout
        let start: UpstreamAnswerStart
        do {
            start = try await self.factory.connections.send(
                wire,
                wanted: Self.wanted(scanning: scanBytes),
                headTimeout: timeout,
                readTimeout: timeout
            )
        } catch {
            throw Self.transportError(error)
        }
        return self.response(from: start, path: path, scanBytes: scanBytes)
    }

    /// ``stream(_:scanBytes:)`` without a task, for a request whose body is held whole: the
    /// answer once its head and first bytes are in, on its connection's event loop. A new
    /// connection opens on `eventLoop`.
    func streamNow(
        _ request: UpstreamRequest,
        scanBytes: @escaping @Sendable (UpstreamResponse) -> Int,
        on eventLoop: any EventLoop
    ) -> EventLoopFuture<UpstreamStreamedResponse> {
        let wire: UpstreamConnectionPool.WireRequest
        let path: String
        do {
            (wire, path) = try self.wireRequest(for: request)
        } catch {
            return eventLoop.makeFailedFuture(error)
        }
        let timeout = self.requestTimeout
        return self.factory.connections.sendNow(
            wire,
            wanted: Self.wanted(scanning: scanBytes),
            headTimeout: timeout,
            readTimeout: timeout,
            on: eventLoop
        )
        .flatMapErrorThrowing { throw Self.transportError($0) }
        .map { self.response(from: $0, path: path, scanBytes: scanBytes) }
    }

    /// The deadline of an answer's head; a body that sends nothing for as long fails.
    private var requestTimeout: TimeAmount {
        TimeAmount.milliseconds(Int64(self.factory.configuration.requestTimeout * 1000))
    }

    /// `request` as it goes on the wire, with the session's cookies, and the path they were
    /// chosen for.
    private func wireRequest(for request: UpstreamRequest) throws -> (UpstreamConnectionPool.WireRequest, path: String) {
        // The factory's fields are read where they are: a copy of it retains its every reference.
        let origin = self.factory.origin
        let target = self.factory.basePath + request.pathAndQuery
        guard Self.isRequestTarget(target) else {
            throw UpstreamTransportError(reason: "the request path is not a valid URL", requestSent: false)
        }
        var headers = HTTPHeaders()
        headers.reserveCapacity(request.headers.count + 4)
        headers.add(name: "host", value: origin.authority)
        for (name, value) in request.headers where !Self.isOwnField(name) {
            headers.add(name: name, value: value)
        }
        // The request served now belongs to a caller's trace: this call is a child in it.
        if let trace = request.trace ?? TraceContext.current {
            headers.add(name: "traceparent", value: trace.child())
        }
        let path = target.firstIndex(of: "?").map { String(target[..<$0]) } ?? target
        let now = self.factory.clock.now
        if let cookie = self.jar.withLock({ $0.header(host: origin.host, path: path, secure: origin.tls, now: now) }) {
            headers.add(name: "cookie", value: cookie)
        }
        if let stream = request.bodyStream {
            if let length = stream.length {
                headers.add(name: "content-length", value: String(length))
            } else {
                headers.add(name: "transfer-encoding", value: "chunked")
            }
        } else if let body = request.body {
            headers.add(name: "content-length", value: String(body.readableBytes))
        } else if ["POST", "PUT", "PATCH"].contains(request.method) {
            headers.add(name: "content-length", value: "0")
        }
        let wire = UpstreamConnectionPool.WireRequest(
            head: HTTPRequestHead(version: .http1_1, method: HTTPMethod(rawValue: request.method), uri: target, headers: headers),
            body: request.body,
            bodyStream: request.bodyStream,
            isIdempotent: request.isIdempotent
        )
        return (wire, path)
    }

    /// What a failed exchange means for the pool: the client's own error as it is, or whether
    /// the request may have reached the site.
    private static func transportError(_ error: any Error) -> any Error {
        switch error {
        case let error as TesseraError:
            // The client's streamed body failed (past its limit): its error, as it is.
            return error
        case let failure as UpstreamExchangeFailure:
            let sent: Bool
            if case .failed(_, _, let handshake) = failure, handshake { sent = false } else { sent = true }
            return UpstreamTransportError(reason: failure.description, requestSent: sent)
        default:
            // The connection could not be opened: nothing was sent.
            return UpstreamTransportError(reason: "the site could not be reached: \(error)", requestSent: false)
        }
    }

    /// The answer's start as the pool's answer; its cookies go into the jar.
    private func response(from start: UpstreamAnswerStart, path: String, scanBytes: (UpstreamResponse) -> Int) -> UpstreamStreamedResponse {
        let origin = self.factory.origin
        let answer = start.answer
        let setCookie = answer.headers("set-cookie")
        if !setCookie.isEmpty {
            self.jar.withLock { $0.store(setCookie: setCookie, host: origin.host, path: path, secure: origin.tls, now: self.factory.clock.now) }
        }
        let rest = start.rest.map { sequence in
            let iterator = sequence.makeAsyncIterator()
            return UpstreamBodyRest { try await iterator.next() }
        }
        return UpstreamStreamedResponse(status: answer.status, headers: answer.headers, head: start.prefix, rest: rest, scannedBytes: scanBytes(answer))
    }

    /// How many of an answer's first bytes to have before it is handed over: what the verdict
    /// reads, or a small answer whole.
    static func wanted(scanning scanBytes: @escaping @Sendable (UpstreamResponse) -> Int) -> @Sendable (UpstreamResponse) -> Int {
        { answer in max(scanBytes(answer), Self.smallLength(of: answer)) }
    }

    /// The declared length of a small answer, or 0.
    static func smallLength(of answer: UpstreamResponse) -> Int {
        guard let declared = answer.contentLength, declared <= Self.smallAnswerBytes else { return 0 }
        return declared
    }

    static func isOwnField(_ name: String) -> Bool {
        Self.ownFields.contains { asciiCaseInsensitiveEquals($0, name) }
    }

    /// Whether `target` is an origin-form request target: `/`, then visible ASCII only (no
    /// space, no control character, no `#`).
    static func isRequestTarget(_ target: String) -> Bool {
        target.utf8.first == UInt8(ascii: "/") && target.utf8.allSatisfy { $0 > 0x20 && $0 < 0x7F && $0 != UInt8(ascii: "#") }
    }

    func cookies() -> [UpstreamCookie] {
        self.jar.withLock { $0.all(now: self.factory.clock.now) }
    }

    func close() async {
        self.jar.withLock { $0 = CookieJar() }
    }
}
