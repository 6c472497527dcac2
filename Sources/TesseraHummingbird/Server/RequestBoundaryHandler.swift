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
    var reading = Reading.idle
    /// Requests whose heads went up and whose answers have not ended, oldest first (a client may
    /// pipeline); the first is the one being answered.
    var unanswered = CircularBuffer<Exchange>()
    /// Whether a response head was written and its end not yet.
    var responding = false
    /// Close once the answers in progress have ended.
    var closeAfterResponse = false
    var closing = false
    var lastVersion = HTTPVersion.http1_1
    /// The tick at which the current phase's time runs out, and what happens then.
    var deadline: Deadline?
    /// Ticks since the connection started: deadlines are counted in them, so that a request
    /// reads no clock.
    var ticks = 0
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
    let lingerTicks: Int
    let lingerLimitTicks: Int
    private let tick: TimeAmount
    /// The tick by which a lingering close ends, however long the client goes on sending.
    var lingerEnd = 0

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
    var outstanding: Bool { self.responding || !self.unanswered.isEmpty }

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

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        // The client's end closes the connection in two cases. A lingering close reads until the
        // client has sent everything: it has. Or the client stopped sending while an answer
        // streams to it, with nothing of a request unread and no other answer owed: it has gone
        // (a browser leaving a page closes its event stream's connection so); closed now rather
        // than at the stream's next write, which for a quiet event stream is its keep-alive,
        // seconds away, while the stream and the connection keep their places.
        if let event = event as? ChannelEvent, event == .inputClosed, self.deadline?.linger == true || self.clientLeftAStream {
            self.closing = true
            self.disarm()
            context.close(promise: nil)
            return
        }
        context.fireUserInboundEventTriggered(event)
    }

    /// Whether an answer is being written, the request it answers has been read whole, and no
    /// other request waits for its answer.
    private var clientLeftAStream: Bool {
        guard self.responding, !self.closing, self.unanswered.count <= 1 else { return false }
        switch self.reading {
        case .done, .idle: return true
        case .head, .body, .refused: return false
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
}

extension String {
    fileprivate func trimmingWhitespace() -> Substring {
        var text = Substring(self)
        while let first = text.first, first == " " || first == "\t" { text.removeFirst() }
        while let last = text.last, last == " " || last == "\t" { text.removeLast() }
        return text
    }
}
