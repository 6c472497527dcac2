import Foundation
import HTTPTypes
import Logging
import NIOCore
import NIOHTTPTypes
import Tessera
import TesseraUpstream

/// Serves the proxy's express requests (``UpstreamExpressLane``) on the connection's event loop,
/// below the router: the request goes to the pool from here, and the answer is written from
/// here, with no task in between when a session can be lent at once and the answer is fine.
/// When none can be, the pool forwards the request as the router's handler would (probing a
/// session, waiting for one, logging one in) in a task, and the answer is written from here
/// all the same. What the pool declines (an upstream that cannot be served so) goes up to the
/// router as if it had just arrived; everything the lane does not take goes up untouched.
///
/// Answers go out in the order their requests came: a request is taken only when the router
/// owes no answer on the connection, and while an express answer is being made, what the
/// client sends next waits here (and no more is read).
final class UpstreamExpressHandler: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPRequestPart
    typealias InboundOut = HTTPRequestPart
    typealias OutboundIn = HTTPResponsePart
    typealias OutboundOut = HTTPResponsePart

    enum State {
        /// Passing parts up to the router.
        case routing
        /// An express request's head arrived; its end has not.
        case reading(UpstreamExpressLane.Express)
        /// An express request is being answered.
        case answering
    }

    let lane: UpstreamExpressLane
    private var state = State.routing
    /// Requests passed up to the router whose answers have not ended.
    private var routed = 0
    /// Parts that arrived while an express answer was being made: a pipelining client's.
    private var waiting = CircularBuffer<HTTPRequestPart>()
    /// Whether a read was asked for while an express answer was being made.
    private var readAsked = false
    private var date = HTTPDateField()

    init(lane: UpstreamExpressLane) {
        self.lane = lane
    }

    // MARK: Inbound

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let part = self.unwrapInboundIn(data)
        if self.isAnswering {
            self.waiting.append(part)
            return
        }
        self.take(part, context: context)
    }

    private var isAnswering: Bool {
        if case .answering = self.state { return true }
        return false
    }

    private func take(_ part: HTTPRequestPart, context: ChannelHandlerContext) {
        switch part {
        case .head(let head):
            if self.routed == 0, let express = self.lane.express(for: head) {
                self.state = .reading(express)
                return
            }
            self.routed += 1
            context.fireChannelRead(self.wrapInboundOut(part))
        case .body(let buffer):
            guard case .reading(var express) = self.state else {
                context.fireChannelRead(self.wrapInboundOut(part))
                return
            }
            // Declared, and at most `replayableBodyBytes`: the parser holds the body to it.
            if var body = express.body.take() {
                body.writeImmutableBuffer(buffer)
                express.body = body
            } else {
                express.body = buffer
            }
            self.state = .reading(express)
        case .end:
            guard case .reading(var express) = self.state else {
                context.fireChannelRead(self.wrapInboundOut(part))
                return
            }
            if let body = express.body, body.readableBytes > 0 { express.request.body = body }
            self.state = .answering
            self.forward(express, context: context)
        }
    }

    /// An error while an express request's body was arriving goes to the router with the
    /// request, whose reading of the body fails with it and which answers in the one shape.
    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        if case .reading(let express) = self.state {
            self.state = .routing
            self.routed += 1
            context.fireChannelRead(self.wrapInboundOut(.head(express.head)))
            if let body = express.body { context.fireChannelRead(self.wrapInboundOut(.body(body))) }
            context.fireChannelReadComplete()
        }
        context.fireErrorCaught(error)
    }

    /// Takes the parts that waited, in order, until one starts another express answer; then
    /// reads on.
    private func resume(context: ChannelHandlerContext) {
        self.state = .routing
        guard context.channel.isActive else {
            self.waiting.removeAll()
            return
        }
        let hadWaiting = !self.waiting.isEmpty
        while !self.isAnswering, let part = self.waiting.popFirst() {
            self.take(part, context: context)
        }
        if hadWaiting { context.fireChannelReadComplete() }
        if self.isAnswering { return }
        if self.readAsked {
            self.readAsked = false
            context.read()
        }
    }

    // MARK: Outbound

    func read(context: ChannelHandlerContext) {
        if self.isAnswering {
            self.readAsked = true
        } else {
            context.read()
        }
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        if case .end = self.unwrapOutboundIn(data), self.routed > 0 {
            self.routed -= 1
        }
        context.write(data, promise: promise)
    }

    // MARK: Answering

    private func forward(_ express: UpstreamExpressLane.Express, context: ChannelHandlerContext) {
        let bound = NIOLoopBound((handler: self, context: context), eventLoop: context.eventLoop)
        express.pool.forwardExpress(express.request, orForward: true)
            .hop(to: context.eventLoop)
            .whenComplete { result in
                let (handler, context) = bound.value
                switch result {
                case .success(.declined):
                    handler.lane.counts.countDeclined()
                    handler.route(express, context: context)
                case .success(.answered(let answer)):
                    handler.write(answer, for: express, context: context)
                case .success(.failed(let error)), .failure(let error):
                    handler.write(error, for: express, context: context)
                }
            }
    }

    /// No session could be lent at once: the router serves the request, as if it had just come.
    private func route(_ express: UpstreamExpressLane.Express, context: ChannelHandlerContext) {
        self.routed += 1
        context.fireChannelRead(self.wrapInboundOut(.head(express.head)))
        if let body = express.body { context.fireChannelRead(self.wrapInboundOut(.body(body))) }
        context.fireChannelRead(self.wrapInboundOut(.end(nil)))
        context.fireChannelReadComplete()
        self.resume(context: context)
    }

    private func write(_ answer: UpstreamStreamedResponse, for express: UpstreamExpressLane.Express, context: ChannelHandlerContext) {
        var fields = TesseraHTTPService.responseFields(of: answer)
        // A whole answer's length is what it holds; a streamed one's, what the site declared.
        if let length = answer.rest == nil ? answer.head.readableBytes : answer.contentLength {
            fields[.contentLength] = String(length)
        }
        self.writeHead(HTTPResponse.Status(code: answer.status), fields: &fields, for: express, context: context)
        if answer.head.readableBytes > 0 { context.write(self.wrapOutboundOut(.body(answer.head)), promise: nil) }
        guard let rest = answer.rest else { return self.end(context: context) }
        context.flush()
        // The rest streams from a task, each chunk read from the site once the connection has
        // taken enough of the ones before (as the router's proxy handler bounds it).
        let bound = NIOLoopBound((handler: self, context: context), eventLoop: context.eventLoop)
        let eventLoop = context.eventLoop
        let first = answer.head.readableBytes
        Task {
            var unconfirmed = first
            do {
                while let chunk = try await rest.next() {
                    let written = eventLoop.flatSubmit {
                        let (handler, context) = bound.value
                        return context.writeAndFlush(handler.wrapOutboundOut(.body(chunk)))
                    }
                    unconfirmed += chunk.readableBytes
                    if unconfirmed >= TesseraHTTPService.unconfirmedWriteBytes {
                        try await written.get()
                        unconfirmed = 0
                    }
                }
                eventLoop.execute {
                    let (handler, context) = bound.value
                    handler.end(context: context)
                }
            } catch {
                // The site or the client broke off mid-answer: the client cannot be told in
                // the answer, so the connection closes.
                eventLoop.execute {
                    let (handler, context) = bound.value
                    context.close(promise: nil)
                    handler.resume(context: context)
                }
            }
        }
    }

    private func write(_ error: any Error, for express: UpstreamExpressLane.Express, context: ChannelHandlerContext) {
        var logger = self.lane.logger
        logger[metadataKey: "correlation_id"] = .string(express.correlationID)
        if let trace = express.request.trace {
            logger[metadataKey: "trace_id"] = .string(trace.traceID)
            logger[metadataKey: "parent_span_id"] = .string(trace.parentID)
        }
        let tesseraError = ErrorMiddleware<TesseraRequestContext>.logged(error, logger: logger)
        let body = tesseraError.body(correlationID: express.correlationID)
        var fields = tesseraError.headerFields
        fields[.contentLength] = String(body.readableBytes)
        let status = HTTPResponse.Status(code: tesseraError.statusCode)
        self.writeHead(status, fields: &fields, for: express, context: context)
        context.write(self.wrapOutboundOut(.body(body)), promise: nil)
        self.end(context: context)
    }

    /// Writes the answer's head. The request is counted here, as the router counts it when its
    /// response is ready to be written (a streamed body's time is not counted).
    private func writeHead(_ status: HTTPResponse.Status, fields: inout HTTPFields, for express: UpstreamExpressLane.Express, context: ChannelHandlerContext) {
        self.lane.counts.countAnswered()
        self.lane.metrics?.record(route: UpstreamExpressLane.route, method: express.head.method, status: status.code, since: express.started)
        fields[.correlationID] = express.correlationID
        fields[.date] = self.date.current()
        if let serverName = self.lane.serverName { fields[.server] = serverName }
        context.write(self.wrapOutboundOut(.head(HTTPResponse(status: status, headerFields: fields))), promise: nil)
    }

    private func end(context: ChannelHandlerContext) {
        context.writeAndFlush(self.wrapOutboundOut(.end(nil)), promise: nil)
        self.resume(context: context)
    }
}
