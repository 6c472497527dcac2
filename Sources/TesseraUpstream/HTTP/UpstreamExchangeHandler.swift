import NIOCore
import NIOHTTP1
import NIOSSL

/// The start of a site's answer: its head, the first bytes of its body, and the rest as the site
/// sends it.
struct UpstreamAnswerStart: Sendable {
    /// The status and fields.
    var answer: UpstreamResponse
    /// The body's first bytes: all of it when ``rest`` is `nil`.
    var prefix: ByteBuffer
    /// The rest of the body, read from the connection only as fast as it is consumed.
    var rest: UpstreamExchangeHandler.Rest?
}

/// Why an exchange with a site failed.
enum UpstreamExchangeFailure: Error, CustomStringConvertible {
    /// The site closed the connection, before its answer's head or after it.
    case closed(answerBegun: Bool)
    /// No answer head within the request timeout.
    case headTimeout
    /// No body byte within the read timeout while the body was being read.
    case readTimeout
    /// The connection failed: a malformed answer, a reset, a TLS failure.
    case failed(String, answerBegun: Bool, handshake: Bool)

    var description: String {
        switch self {
        case .closed(let begun): begun ? "the site closed the connection during the answer" : "the site closed the connection before answering"
        case .headTimeout: "the site did not answer within the request timeout"
        case .readTimeout: "the site sent no byte of the answer within the read timeout"
        case .failed(let reason, _, _): reason
        }
    }

}

/// One request and its answer at a time on one connection to a site, on the connection's event
/// loop: writes the request, hands over the answer's head with the first bytes of its body in
/// one piece (a small answer arrives whole, with no further hop between threads), then streams
/// the rest with back-pressure: the connection is read only while the consumer wants more.
///
/// Deadlines: the answer's head is due by the request's deadline; after it, a body that sends
/// nothing for the read timeout while it is being read fails. A consumer that stops reading is
/// not the site's fault and is never timed out. One timer per connection re-checks the current
/// deadline when it fires, so a request schedules no timer of its own.
///
/// When an answer ends and the connection can carry another request, ``onReusable`` is called;
/// otherwise the connection is closed.
final class UpstreamExchangeHandler: ChannelDuplexHandler {
    typealias InboundIn = HTTPClientResponsePart
    typealias OutboundIn = HTTPClientRequestPart
    typealias OutboundOut = HTTPClientRequestPart
    typealias Rest = NIOThrowingAsyncSequenceProducer<
        ByteBuffer, any Error, NIOAsyncSequenceProducerBackPressureStrategies.HighLowWatermark, RestDelegate
    >

    struct Exchange {
        let id: UInt64
        let promise: EventLoopPromise<UpstreamAnswerStart>
        /// How many of the body's first bytes to collect before handing the answer over.
        let wanted: @Sendable (UpstreamResponse) -> Int
        let headDeadline: NIODeadline
        let readTimeout: TimeAmount
    }

    enum State {
        case idle
        case awaitingHead(Exchange)
        case collecting(Exchange, UpstreamResponse, keepAlive: Bool, prefix: ByteBuffer, wanted: Int)
        case streaming(Exchange, Rest.Source, keepAlive: Bool)
        case closed
    }

    private var state = State.idle
    private var context: ChannelHandlerContext?
    private var nextID: UInt64 = 0
    /// Whether the request's `.end` has been written: a connection is reused only after it.
    private var requestEnded = true
    /// Whether the consumer of a streaming body wants more; reads are held back while not.
    private var demand = true
    private var heldRead = false
    /// When the last byte of an answer arrived, or the consumer last asked for more.
    private var lastProgress = NIODeadline.uptimeNanoseconds(0)
    private var timer: (deadline: NIODeadline, generation: UInt64)?
    private var timerGeneration: UInt64 = 0
    /// The first failure seen on the connection, reported when it closes.
    private var failure: UpstreamExchangeFailure?

    /// Called on the event loop when an answer has ended and the connection can carry another.
    var onReusable: (() -> Void)?

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        self.fail(self.failure ?? .closed(answerBegun: false))
        self.context = nil
        // It holds the connection, which holds this handler.
        self.onReusable = nil
    }

    // MARK: Requests

    /// Writes a request (its head, the body when it is held whole, and its end unless the body
    /// streams after it) and arms the head's deadline; `promise` gets the answer's start.
    func start(
        head: HTTPRequestHead,
        body: ByteBuffer?,
        endsRequest: Bool,
        wanted: @escaping @Sendable (UpstreamResponse) -> Int,
        headTimeout: TimeAmount,
        readTimeout: TimeAmount,
        promise: EventLoopPromise<UpstreamAnswerStart>
    ) {
        guard case .idle = self.state, let context = self.context, context.channel.isActive else {
            promise.fail(self.failure ?? UpstreamExchangeFailure.closed(answerBegun: false))
            return
        }
        self.nextID &+= 1
        let exchange = Exchange(
            id: self.nextID,
            promise: promise,
            wanted: wanted,
            headDeadline: context.eventLoop.now + headTimeout,
            readTimeout: readTimeout
        )
        self.state = .awaitingHead(exchange)
        self.requestEnded = false
        self.demand = true
        context.write(self.wrapOutboundOut(.head(head)), promise: nil)
        if let body, body.readableBytes > 0 {
            context.write(self.wrapOutboundOut(.body(.byteBuffer(body))), promise: nil)
        }
        if endsRequest {
            self.requestEnded = true
            context.write(self.wrapOutboundOut(.end(nil)), promise: nil)
        }
        context.flush()
        self.ensureTimer(by: exchange.headDeadline)
    }

    /// A streamed request body's parts pass here on their way out; the end is noted.
    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        if case .end = self.unwrapOutboundIn(data) { self.requestEnded = true }
        context.write(data, promise: promise)
    }

    // MARK: Answers

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch self.unwrapInboundIn(data) {
        case .head(let head):
            guard case .awaitingHead(let exchange) = self.state else {
                return self.failAndClose(context, .failed("the site answered without a request", answerBegun: true, handshake: false))
            }
            self.lastProgress = context.eventLoop.now
            // The fields are converted once, here, for the verdict and for the reader.
            let answer = UpstreamResponse(status: Int(head.status.code), headers: head.headers.map { (name: $0.name, value: $0.value) })
            self.state = .collecting(exchange, answer, keepAlive: head.isKeepAlive, prefix: ByteBuffer(), wanted: exchange.wanted(answer))
        case .body(let chunk):
            self.lastProgress = context.eventLoop.now
            switch self.state {
            case .collecting(let exchange, let answer, let keepAlive, var prefix, let wanted):
                self.state = .idle  // no second reference to the prefix while it grows
                if prefix.readableBytes == 0 {
                    prefix = chunk
                } else {
                    var chunk = chunk
                    prefix.writeBuffer(&chunk)
                }
                self.state = .collecting(exchange, answer, keepAlive: keepAlive, prefix: prefix, wanted: wanted)
            case .streaming(_, let source, _):
                switch source.yield(chunk) {
                case .produceMore: break
                case .stopProducing: self.demand = false
                case .dropped: context.close(promise: nil)
                }
            case .idle, .awaitingHead, .closed:
                self.failAndClose(context, .failed("the site sent a body without a head", answerBegun: true, handshake: false))
            }
        case .end:
            switch self.state {
            // The connection is back in its pool before the answer's reader hears of the end,
            // so that the reader's next request finds it there.
            case .collecting(let exchange, let answer, let keepAlive, let prefix, _):
                self.answerEnded(context, keepAlive: keepAlive)
                exchange.promise.succeed(UpstreamAnswerStart(answer: answer, prefix: prefix, rest: nil))
            case .streaming(_, let source, let keepAlive):
                self.answerEnded(context, keepAlive: keepAlive)
                source.finish()
            case .idle, .awaitingHead, .closed:
                self.failAndClose(context, .failed("the site ended an answer it had not begun", answerBegun: true, handshake: false))
            }
        }
    }

    /// At the end of a read: an answer whose wanted first bytes are in is handed over with a
    /// stream for the rest.
    func channelReadComplete(context: ChannelHandlerContext) {
        if case .collecting(let exchange, let answer, let keepAlive, let prefix, let wanted) = self.state, prefix.readableBytes >= wanted {
            let delegate = RestDelegate(handler: NIOLoopBound(self, eventLoop: context.eventLoop), id: exchange.id)
            let rest = Rest.makeSequence(
                backPressureStrategy: .init(lowWatermark: 1, highWatermark: 2),
                finishOnDeinit: false,
                delegate: delegate
            )
            self.state = .streaming(exchange, rest.source, keepAlive: keepAlive)
            exchange.promise.succeed(UpstreamAnswerStart(answer: answer, prefix: prefix, rest: rest.sequence))
        }
        context.fireChannelReadComplete()
    }

    private func answerEnded(_ context: ChannelHandlerContext, keepAlive: Bool) {
        self.state = .idle
        self.demand = true
        if self.heldRead {
            self.heldRead = false
            context.read()
        }
        if keepAlive, self.requestEnded, context.channel.isActive, let onReusable = self.onReusable {
            onReusable()
        } else {
            context.close(promise: nil)
        }
    }

    // MARK: Back-pressure

    func read(context: ChannelHandlerContext) {
        if case .streaming = self.state, !self.demand {
            self.heldRead = true
            return
        }
        context.read()
    }

    /// The consumer of exchange `id`'s body wants more.
    func produceMore(id: UInt64) {
        guard case .streaming(let exchange, _, _) = self.state, exchange.id == id, let context = self.context else { return }
        self.demand = true
        self.lastProgress = context.eventLoop.now
        if self.heldRead {
            self.heldRead = false
            context.read()
        }
    }

    /// The consumer of exchange `id`'s body dropped it before its end: the rest is not read, so
    /// the connection cannot carry another request.
    func restTerminated(id: UInt64) {
        guard case .streaming(let exchange, _, _) = self.state, exchange.id == id, let context = self.context else { return }
        context.close(promise: nil)
    }

    // MARK: Failures

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        let handshake = error is NIOSSLError
        self.failAndClose(context, .failed("the connection failed: \(error)", answerBegun: self.answerBegun, handshake: handshake))
    }

    func channelInactive(context: ChannelHandlerContext) {
        self.fail(self.failure ?? .closed(answerBegun: self.answerBegun))
        context.fireChannelInactive()
    }

    private var answerBegun: Bool {
        switch self.state {
        case .collecting, .streaming: true
        case .idle, .awaitingHead, .closed: false
        }
    }

    private func failAndClose(_ context: ChannelHandlerContext, _ failure: UpstreamExchangeFailure) {
        if self.failure == nil { self.failure = failure }
        context.close(promise: nil)
    }

    /// Ends the exchange in progress with `failure`; the connection carries no more.
    private func fail(_ failure: UpstreamExchangeFailure) {
        let state = self.state
        self.state = .closed
        switch state {
        case .awaitingHead(let exchange), .collecting(let exchange, _, _, _, _):
            exchange.promise.fail(failure)
        case .streaming(_, let source, _):
            source.finish(failure)
        case .idle, .closed:
            break
        }
    }

    // MARK: Deadlines

    /// Makes sure the timer fires by `due`.
    private func ensureTimer(by due: NIODeadline) {
        if let timer = self.timer, timer.deadline <= due { return }
        guard let context = self.context else { return }
        self.timerGeneration &+= 1
        let generation = self.timerGeneration
        self.timer = (due, generation)
        context.eventLoop.assumeIsolated().scheduleTask(deadline: due) { self.timerFired(generation) }
    }

    private func timerFired(_ generation: UInt64) {
        guard self.timer?.generation == generation, let context = self.context else { return }
        self.timer = nil
        let now = context.eventLoop.now
        switch self.state {
        case .awaitingHead(let exchange):
            guard now < exchange.headDeadline else { return self.failAndClose(context, .headTimeout) }
            self.ensureTimer(by: exchange.headDeadline)
        case .collecting(let exchange, _, _, _, _), .streaming(let exchange, _, _):
            // A consumer that reads nothing holds the site back; only a site that sends nothing
            // while it is being read is late.
            let waitingForSite: Bool
            if case .streaming = self.state { waitingForSite = self.demand } else { waitingForSite = true }
            let due = (waitingForSite ? self.lastProgress : now) + exchange.readTimeout
            guard now < due else { return self.failAndClose(context, .readTimeout) }
            self.ensureTimer(by: due)
        case .idle, .closed:
            break
        }
    }
}

/// Passes the consumer's demand for more of a body, and its end, to the connection's event loop.
struct RestDelegate: NIOAsyncSequenceProducerDelegate {
    let handler: NIOLoopBound<UpstreamExchangeHandler>
    let id: UInt64

    func produceMore() {
        let (handler, id) = (self.handler, self.id)
        handler.eventLoop.execute { handler.value.produceMore(id: id) }
    }

    func didTerminate() {
        let (handler, id) = (self.handler, self.id)
        handler.eventLoop.execute { handler.value.restTerminated(id: id) }
    }
}
