import HTTPTypes
import Logging
import NIOCore
import NIOHTTP1
import NIOHTTPTypes
import NIOHTTPTypesHTTP1
import Tessera

/// Converts HTTP/1 parts to HTTP types and back, as `HTTP1ToHTTPServerCodec` does, and guards
/// each connection while it does: deadlines for the header and the body, the largest body any
/// route takes, HTTP/1.0 and `Connection: close`, and an answer in the one JSON error shape for
/// what the parser refuses. (One handler, not a guard beside the codec: every hop of a part
/// through the pipeline casts it out of `NIOAny` and boxes it again, which a profile of
/// who-am-I showed costing more than everything the guard does.)
///
/// - A request the parser refuses before its head is complete (two `Content-Length`s, a NUL in
///   a field, an unknown method, …) is answered `400 REQ_1001` (`431 REQ_1010` for an oversized
///   header) with a correlation id, and the connection is closed. Once a head has gone up to the
///   router, a parser error fails the request's body instead, the route answers it (the error
///   middleware maps it to `400`), and the connection is closed after that answer.
/// - A silent connection is closed after ``HTTPLimits/idleTimeout``; a header or a body that
///   does not arrive within its deadline is answered `408 REQ_1009` (when no answer has begun)
///   and the connection is closed.
/// - A declared `Content-Length` over ``HTTPLimits/maxBodyBytes`` is answered `413 REQ_1002` at
///   once; the head never reaches a route.
/// - On a connection accepted past its client's limit (``ConnectionLimiter``), the request is
///   answered `429 REQ_1011` and the connection closed.
/// - An HTTP/1.0 request is answered in HTTP/1.0, and, like any request that does not keep the
///   connection alive, with `Connection: close` and a close after the answer.
final class RequestBoundaryHandler: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias InboundOut = HTTPRequestPart
    typealias OutboundIn = HTTPResponsePart
    typealias OutboundOut = HTTPServerResponsePart

    /// Where the request being read is.
    enum Reading {
        /// Between requests: nothing of the next one has arrived.
        case idle
        /// Bytes of a head have arrived; the head is not complete.
        case head
        /// The head went up; the body is arriving (`bytes` so far).
        case body(bytes: Int)
        /// The request was read to its end.
        case done
        /// The request was refused here: its remaining parts are dropped.
        case refused
    }

    /// When a phase's time runs out, and whether it is a lingering close's.
    struct Deadline {
        var tick: Int
        var linger: Bool
    }

    /// What the answer to one request needs to know of it.
    struct Exchange {
        var keepAlive: Bool
        var version: HTTPVersion
    }

    let limits: HTTPLimits
    let logger: Logger
    private var reading = Reading.idle
    /// Requests whose heads went up and whose answers have not ended, oldest first (a client may
    /// pipeline); the first is the one being answered.
    private var unanswered = CircularBuffer<Exchange>()
    /// Whether a response head was written and its end not yet.
    private var responding = false
    /// Close once the answers in progress have ended.
    private var closeAfterResponse = false
    private var closing = false
    private var lastVersion = HTTPVersion.http1_1
    /// The tick at which the current phase's time runs out, and what happens then.
    private var deadline: Deadline?
    /// Ticks since the connection started: deadlines are counted in them, so that a request
    /// reads no clock.
    private var ticks = 0
    /// Checks ``deadline`` at a fixed interval. Requests only move the deadline (a store), so the
    /// request path schedules and cancels no timer.
    private var tickTask: Scheduled<Void>?
    private var started = false
    /// What ``ConnectionLimiter`` made of the connection: over its client's limit, its request
    /// is answered `429 REQ_1011` (and the connection waits for it no longer than for a
    /// header); refused, it is closed as soon as it is active, before a byte is read.
    var admission = ConnectionLimiter.Admission.admitted
    /// This handler's context while it is in the pipeline, for ``closeIfIdle()``.
    private var context: ChannelHandlerContext?

    /// The deadlines in ticks, worked out once: `Duration` arithmetic is not cheap enough for
    /// every request.
    private let idleTicks: Int
    private let headerTicks: Int
    private let bodyTicks: Int
    private let lingerTicks: Int
    private let lingerLimitTicks: Int
    private let tick: TimeAmount
    /// The tick by which a lingering close ends, however long the client goes on sending.
    private var lingerEnd = 0

    init(limits: HTTPLimits, logger: Logger) {
        self.limits = limits
        self.logger = logger
        let tick = Self.tickInterval(for: limits)
        self.tick = TimeAmount(tick)
        func ticks(_ timeout: Duration) -> Int { Int((timeout / tick).rounded(.up)) }
        self.idleTicks = ticks(limits.idleTimeout)
        self.headerTicks = ticks(limits.headerTimeout)
        self.bodyTicks = ticks(limits.bodyTimeout)
        self.lingerTicks = ticks(Self.linger)
        self.lingerLimitTicks = ticks(Self.lingerLimit)
    }

    /// Whether an answer is owed or being written.
    private var outstanding: Bool { self.responding || !self.unanswered.isEmpty }

    // MARK: Lifecycle

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        if context.channel.isActive { self.start(context: context) }
    }

    func channelActive(context: ChannelHandlerContext) {
        self.start(context: context)
        context.fireChannelActive()
    }

    func channelInactive(context: ChannelHandlerContext) {
        self.stop()
        context.fireChannelInactive()
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        self.context = nil
        self.stop()
    }

    /// Closes the connection if it is between requests with nothing owed (nothing of a request
    /// read, no answer owed or being written), for ``ConnectionLimiter`` making room; says whether
    /// it did.
    func closeIfIdle() -> Bool {
        guard !self.closing, case .idle = self.reading, !self.outstanding, let context = self.context else { return false }
        self.closing = true
        self.disarm()
        context.close(promise: nil)
        return true
    }

    /// Starts the connection's deadlines: the first is the keep-alive one.
    private func start(context: ChannelHandlerContext) {
        guard !self.started else { return }
        self.started = true
        if self.admission == .refused {
            self.closing = true
            context.close(promise: nil)
            return
        }
        self.arm(self.admission == .overClientLimit ? self.headerTicks : self.idleTicks)
        self.scheduleTick(context: context)
    }

    private func scheduleTick(context: ChannelHandlerContext) {
        self.tickTask = context.eventLoop.assumeIsolatedUnsafeUnchecked().scheduleTask(in: self.tick) {
            guard self.tickTask != nil else { return }
            self.checkDeadline(context: context)
            if self.tickTask != nil { self.scheduleTick(context: context) }
        }
    }

    private func stop() {
        self.tickTask?.cancel()
        self.tickTask = nil
        self.deadline = nil
    }

    /// How often deadlines are checked: a quarter of the shortest, at most a second, so that a
    /// deadline is kept to within a quarter of itself (and a second).
    static func tickInterval(for limits: HTTPLimits) -> Duration {
        max(.milliseconds(10), min(.seconds(1), min(limits.idleTimeout, limits.headerTimeout, limits.bodyTimeout) / 4))
    }

    /// Called by ``RequestStartHandler`` when bytes arrive: the first byte of a request starts
    /// its header deadline.
    func bytesArrived(context: ChannelHandlerContext) {
        if self.closing {
            self.lingerOn()
            return
        }
        guard case .idle = self.reading else { return }
        self.reading = .head
        self.arm(self.headerTicks)
    }

    // MARK: Inbound

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard !self.closing else { return }
        switch self.unwrapInboundIn(data) {
        case .head(let head):
            self.lastVersion = head.version
            if self.admission == .overClientLimit {
                self.reading = .refused
                self.refuse(.tooManyConnections, head: head, context: context)
                return
            }
            let declared = head.headers.first(name: "content-length").flatMap { Int($0.trimmingWhitespace()) }
            if let declared, declared > self.limits.maxBodyBytes {
                self.reading = .refused
                self.refuse(.bodyTooLarge(limit: self.limits.maxBodyBytes), head: head, context: context)
                return
            }
            let request: HTTPRequest
            do {
                request = try HTTPRequest(head, secure: false, splitCookie: false)
            } catch {
                self.reading = .refused
                self.refuse(.malformedRequest("The request's method is not one HTTP knows."), head: head, context: context)
                return
            }
            self.unanswered.append(Exchange(keepAlive: head.isKeepAlive, version: head.version))
            self.reading = .body(bytes: 0)
            self.arm(self.bodyTicks)
            context.fireChannelRead(self.wrapInboundOut(.head(request)))
        case .body(let buffer):
            guard case .body(let bytes) = self.reading else { return }
            let total = bytes + buffer.readableBytes
            guard total <= self.limits.maxBodyBytes else {
                self.reading = .refused
                if self.unanswered.isEmpty {
                    // Answered already: the rest of this body was only being drained.
                    self.closing = true
                    context.close(promise: nil)
                } else {
                    // A route reads this body: the error fails its read, it answers `413`, and
                    // the connection closes after that answer.
                    self.closeAfterResponse = true
                    context.fireErrorCaught(TesseraError.bodyTooLarge(limit: self.limits.maxBodyBytes))
                }
                return
            }
            self.reading = .body(bytes: total)
            context.fireChannelRead(self.wrapInboundOut(.body(buffer)))
        case .end(let trailers):
            guard case .body = self.reading else { return }
            self.reading = .done
            if self.outstanding {
                // The route's answer is its own business; the idle deadline starts after it.
                self.disarm()
            } else {
                self.becomeIdle(context: context)
            }
            context.fireChannelRead(self.wrapInboundOut(.end(trailers.map { HTTPFields($0, splitCookie: false) })))
        }
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        guard let parserError = error as? HTTPParserError else {
            context.fireErrorCaught(error)
            return
        }
        switch self.reading {
        case .body where !self.unanswered.isEmpty:
            // A route is reading this body: the error fails it, the route answers, and the
            // connection closes after that answer.
            self.closeAfterResponse = true
            context.fireErrorCaught(error)
        case .body:
            // Answered already: the rest of this body was only being drained.
            self.closing = true
            context.close(promise: nil)
        case .idle, .head, .done, .refused:
            let refusal: TesseraError =
                parserError == .headerOverflow
                ? .headerFieldsTooLarge(limit: self.limits.maxHeaderBytes) : .malformedRequest(Self.sentence(for: parserError))
            self.refuse(refusal, head: nil, context: context)
        }
    }

    // MARK: Outbound

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        guard !self.closing else {
            promise?.fail(ChannelError.ioOnClosedChannel)
            return
        }
        switch self.unwrapOutboundIn(data) {
        case .head(let response):
            var head = HTTPResponseHead(response)
            self.responding = true
            let exchange = self.unanswered.first ?? Exchange(keepAlive: false, version: self.lastVersion)
            if !exchange.keepAlive || self.closeAfterResponse {
                head.headers.replaceOrAdd(name: "connection", value: "close")
            } else if exchange.version.minor == 0 {
                head.headers.replaceOrAdd(name: "connection", value: "keep-alive")
            }
            if exchange.version == .http1_0 { head.version = .http1_0 }
            context.write(self.wrapOutboundOut(.head(head)), promise: promise)
        case .body(let buffer):
            context.write(self.wrapOutboundOut(.body(.byteBuffer(buffer))), promise: promise)
        case .end(let trailers):
            let end = self.wrapOutboundOut(.end(trailers.map(HTTPHeaders.init)))
            self.responding = false
            let exchange = self.unanswered.popFirst()
            if exchange?.keepAlive != true || self.closeAfterResponse {
                self.closing = true
                self.disarm()
                let written = promise ?? context.eventLoop.makePromise()
                context.writeAndFlush(end, promise: written)
                written.futureResult.whenComplete { _ in context.close(promise: nil) }
                return
            }
            context.write(end, promise: promise)
            if case .done = self.reading, !self.outstanding { self.becomeIdle(context: context) }
        }
    }

    // MARK: Helpers

    /// Every request read was answered: wait for the next one.
    private func becomeIdle(context: ChannelHandlerContext) {
        self.reading = .idle
        self.arm(self.idleTicks)
    }

    /// Answers `error` in the one JSON shape and closes; when an earlier request's answer is
    /// owed, closes after it instead (its client learns nothing of a request it sent after).
    private func refuse(_ error: TesseraError, head: HTTPRequestHead?, context: ChannelHandlerContext) {
        guard !self.closing else { return }
        let correlationID = head?.headers.first(name: "x-correlation-id").flatMap(CorrelationIDs.usable) ?? makeCorrelationID()
        self.logger.debug("Request refused before routing", metadata: ["code": .string(error.code), "correlation_id": .string(correlationID)])
        guard !self.outstanding else {
            self.closeAfterResponse = true
            return
        }
        self.closing = true
        self.disarm()
        let body = error.body(correlationID: correlationID)
        var headers = HTTPHeaders()
        headers.add(name: "content-type", value: "application/json; charset=utf-8")
        headers.add(name: "cache-control", value: "no-store")
        headers.add(name: "x-correlation-id", value: correlationID)
        headers.add(name: "content-length", value: String(body.readableBytes))
        headers.add(name: "connection", value: "close")
        if let retryAfter = error.retryAfter { headers.add(name: "retry-after", value: String(retryAfter)) }
        let version: HTTPVersion = self.lastVersion == .http1_0 ? .http1_0 : .http1_1
        let status = HTTPResponseStatus(statusCode: error.statusCode)
        context.write(self.wrapOutboundOut(.head(HTTPResponseHead(version: version, status: status, headers: headers))), promise: nil)
        context.write(self.wrapOutboundOut(.body(.byteBuffer(body))), promise: nil)
        context.writeAndFlush(self.wrapOutboundOut(.end(nil))).whenComplete { _ in
            // A lingering close: stop writing, but read (and drop) what the client is still
            // sending for a moment, so that the answer reaches it instead of a reset.
            context.close(mode: .output, promise: nil)
            self.lingerEnd = self.ticks + self.lingerLimitTicks + 1
            self.arm(self.lingerTicks, linger: true)
        }
    }

    /// How long a refused connection reads on after the client last sent something, before it
    /// closes. A client still sending when the connection closes would get a reset, and a reset
    /// can discard the answer before the client reads it.
    static let linger = Duration.seconds(2)
    /// How long a lingering close lasts at most, however long the client goes on sending.
    static let lingerLimit = Duration.seconds(10)

    /// The client sent more during a lingering close: linger on, within the limit.
    private func lingerOn() {
        guard let deadline = self.deadline, deadline.linger else { return }
        self.deadline = Deadline(tick: min(self.ticks + self.lingerTicks + 1, self.lingerEnd), linger: true)
    }

    /// Sets the current phase's deadline `ticks` from now (a lingering close's, with `linger`):
    /// it passes between that time and one tick later, never earlier.
    private func arm(_ ticks: Int, linger: Bool = false) {
        self.deadline = Deadline(tick: self.ticks + ticks + 1, linger: linger)
    }

    private func disarm() {
        self.deadline = nil
    }

    private func checkDeadline(context: ChannelHandlerContext) {
        self.ticks += 1
        guard let deadline = self.deadline, self.ticks >= deadline.tick else { return }
        self.deadline = nil
        if deadline.linger {
            context.close(promise: nil)
        } else {
            self.timedOut(context: context)
        }
    }

    private func timedOut(context: ChannelHandlerContext) {
        guard !self.closing else { return }
        switch self.reading {
        case .idle, .done, .refused:
            // Nothing was asked: close quietly.
            guard !self.outstanding else { return }
            self.closing = true
            context.close(promise: nil)
        case .head, .body:
            if self.responding || (self.unanswered.isEmpty && !self.isReadingHead) {
                // Answered already (a body drained after its answer), or answering: just close.
                self.closing = true
                context.close(promise: nil)
            } else {
                // A route may still wait for this body; the 408 goes first, and its later
                // writes meet a closed connection.
                self.unanswered.removeAll()
                self.refuse(.requestTimeout, head: nil, context: context)
            }
        }
    }

    /// What was wrong, for the answer's message.
    static func sentence(for error: HTTPParserError) -> String {
        switch error {
        case .invalidMethod: return "The request's method is not one HTTP/1.1 knows."
        case .invalidURL, .invalidPath, .invalidQueryString, .invalidFragment, .invalidHost, .invalidPort:
            return "The request's target is not a valid URL path."
        case .invalidHeaderToken, .invalidCharactersUsed:
            return "A header field of the request has a character HTTP/1.1 does not allow."
        case .invalidContentLength, .unexpectedContentLength:
            return "The request's Content-Length is not valid, or conflicts with another framing header."
        case .invalidChunkSize, .invalidConstant:
            return "The request's chunked body is not valid."
        case .invalidVersion: return "The request's HTTP version is not supported."
        default: return "The request is not valid HTTP/1.1."
        }
    }

    private var isReadingHead: Bool {
        if case .head = self.reading { return true }
        return false
    }
}

/// Sits before the HTTP decoder and tells the ``RequestBoundaryHandler`` when bytes arrive, so
/// that a request's header deadline runs from its first byte.
final class RequestStartHandler: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer

    let boundary: RequestBoundaryHandler
    /// The boundary handler's context, on the same channel and event loop.
    var boundaryContext: ChannelHandlerContext?

    init(boundary: RequestBoundaryHandler) {
        self.boundary = boundary
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        if let boundaryContext = self.boundaryContext {
            self.boundary.bytesArrived(context: boundaryContext)
        }
        context.fireChannelRead(data)
    }
}

extension String {
    fileprivate func trimmingWhitespace() -> Substring {
        var text = Substring(self)
        while let first = text.first, first == " " || first == "\t" { text.removeFirst() }
        while let last = text.last, last == " " || last == "\t" { text.removeLast() }
        return text
    }
}
