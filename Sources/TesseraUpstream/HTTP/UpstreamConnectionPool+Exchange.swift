import NIOCore
import NIOHTTP1

/// Requests over the pool's connections.
extension UpstreamConnectionPool {
    /// A request as it goes on the wire.
    struct WireRequest: Sendable {
        var head: HTTPRequestHead
        /// A body held whole.
        var body: ByteBuffer?
        /// A body that streams after the head (instead of ``body``).
        var bodyStream: UpstreamBodyStream?
        /// Whether sending the request twice has the effect of sending it once.
        var isIdempotent: Bool
    }

    /// Sends `request` and returns the start of its answer, once the answer's head and its first
    /// `wanted(answer)` body bytes are in.
    ///
    /// A reused connection the site had closed (its keep-alive ended as the request went out)
    /// fails before any answer; such a request is sent once more on a new connection when that
    /// is safe: its body is held whole and its method idempotent (RFC 9112 §9.3.1).
    ///
    /// Throws ``UpstreamExchangeFailure``, the error of a connection that could not be opened, or
    /// the streamed body's own error.
    func send(
        _ request: WireRequest,
        wanted: @escaping @Sendable (UpstreamResponse) -> Int,
        headTimeout: TimeAmount,
        readTimeout: TimeAmount
    ) async throws -> UpstreamAnswerStart {
        let (connection, reused) = try await self.connection()
        do {
            return try await connection.exchange(request, wanted: wanted, headTimeout: headTimeout, readTimeout: readTimeout)
        } catch let failure as UpstreamExchangeFailure where reused && failure.isStaleConnection && request.bodyStream == nil && request.isIdempotent {
            let (fresh, _) = try await self.connection(fresh: true)
            return try await fresh.exchange(request, wanted: wanted, headTimeout: headTimeout, readTimeout: readTimeout)
        }
    }

    /// ``send(_:wanted:headTimeout:readTimeout:)`` without a task, for a request whose body is
    /// held whole (never one with a ``WireRequest/bodyStream``): the start of the answer,
    /// completed on the connection's event loop. A new connection opens on `eventLoop`.
    func sendNow(
        _ request: WireRequest,
        wanted: @escaping @Sendable (UpstreamResponse) -> Int,
        headTimeout: TimeAmount,
        readTimeout: TimeAmount,
        on eventLoop: any EventLoop
    ) -> EventLoopFuture<UpstreamAnswerStart> {
        let start: @Sendable (UpstreamConnection) -> EventLoopFuture<UpstreamAnswerStart> = { connection in
            connection.start(request, endsRequest: true, wanted: wanted, headTimeout: headTimeout, readTimeout: readTimeout)
        }
        let idle: UpstreamConnection?
        do {
            idle = try self.takeIdle(preferring: eventLoop)
        } catch {
            return eventLoop.makeFailedFuture(error)
        }
        guard let idle else { return self.connect(on: eventLoop).flatMap(start) }
        return start(idle).flatMapError { error in
            guard let failure = error as? UpstreamExchangeFailure, failure.isStaleConnection, request.isIdempotent else {
                return idle.channel.eventLoop.makeFailedFuture(error)
            }
            return self.connect(on: eventLoop).flatMap(start)
        }
    }
}

extension UpstreamExchangeFailure {
    /// Whether the failure is that of a connection that had ended before the answer began.
    var isStaleConnection: Bool {
        switch self {
        case .closed(let begun), .failed(_, let begun, _): !begun
        case .headTimeout, .readTimeout: false
        }
    }
}

extension UpstreamConnection {
    /// One request and the start of its answer on this connection.
    func exchange(
        _ request: UpstreamConnectionPool.WireRequest,
        wanted: @escaping @Sendable (UpstreamResponse) -> Int,
        headTimeout: TimeAmount,
        readTimeout: TimeAmount
    ) async throws -> UpstreamAnswerStart {
        let channel = self.channel
        let answer = self.start(request, endsRequest: request.bodyStream == nil, wanted: wanted, headTimeout: headTimeout, readTimeout: readTimeout)
        return try await withTaskCancellationHandler {
            if let stream = request.bodyStream {
                try await self.upload(stream)
            }
            return try await answer.get()
        } onCancel: {
            channel.close(promise: nil)
        }
    }

    /// Writes `request`'s head (and its body held whole, and its end when `endsRequest`) and
    /// returns the start of the answer, completed on the connection's event loop.
    func start(
        _ request: UpstreamConnectionPool.WireRequest,
        endsRequest: Bool,
        wanted: @escaping @Sendable (UpstreamResponse) -> Int,
        headTimeout: TimeAmount,
        readTimeout: TimeAmount
    ) -> EventLoopFuture<UpstreamAnswerStart> {
        let handler = self.handler
        let eventLoop = self.channel.eventLoop
        let promise = eventLoop.makePromise(of: UpstreamAnswerStart.self)
        let start = {
            handler.value.start(
                head: request.head,
                body: request.body,
                endsRequest: endsRequest,
                wanted: wanted,
                headTimeout: headTimeout,
                readTimeout: readTimeout,
                promise: promise
            )
        }
        if eventLoop.inEventLoop {
            start()
        } else {
            eventLoop.execute(start)
        }
        return promise.futureResult
    }

    /// Writes a streamed body as it comes, each chunk once the connection has taken the one
    /// before. The client's body failing (past its limit, say) ends the connection and throws
    /// its error as it is; the connection failing stops the upload, and the answer tells why
    /// (or is the site's early answer, a `413` say).
    private func upload(_ stream: UpstreamBodyStream) async throws {
        var chunks = stream.chunks.makeAsyncIterator()
        while true {
            let chunk: ByteBuffer?
            do {
                chunk = try await chunks.next()
            } catch {
                self.channel.close(promise: nil)
                throw error
            }
            do {
                guard let chunk else {
                    try await self.channel.writeAndFlush(HTTPClientRequestPart.end(nil))
                    return
                }
                if chunk.readableBytes > 0 {
                    try await self.channel.writeAndFlush(HTTPClientRequestPart.body(.byteBuffer(chunk)))
                }
            } catch {
                return
            }
        }
    }
}
