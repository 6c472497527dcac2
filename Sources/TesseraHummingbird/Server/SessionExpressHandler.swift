import HTTPTypes
import NIOCore
import NIOHTTPTypes

/// Serves who-am-I's express path (``SessionExpressLane``) on the connection's event loop,
/// below the router: the answer is made and written while the request's end is read, with no
/// task. What the lane does not answer goes up to the router as if it had just arrived.
///
/// Answers go out in the order their requests came: the lane answers a request only when the
/// router owes no answer on the connection.
final class SessionExpressHandler: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPRequestPart
    typealias InboundOut = HTTPRequestPart
    typealias OutboundIn = HTTPResponsePart
    typealias OutboundOut = HTTPResponsePart

    let lane: SessionExpressLane
    /// A request the lane may answer, whose end has not arrived.
    private var held: (head: HTTPRequest, started: ContinuousClock.Instant)?
    /// Requests passed up to the router whose answers have not ended.
    private var routed = 0
    private var date = HTTPDateField()

    init(lane: SessionExpressLane) {
        self.lane = lane
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let part = self.unwrapInboundIn(data)
        switch part {
        case .head(let head):
            if self.routed == 0, self.lane.takes(head) {
                self.held = (head, ContinuousClock.now)
                return
            }
            self.routed += 1
            context.fireChannelRead(data)
        case .body:
            // The lane takes no request that declares a body; should one come, the router reads it.
            self.passHeldHead(context: context)
            context.fireChannelRead(data)
        case .end:
            guard let (head, started) = self.held.take() else { return context.fireChannelRead(data) }
            guard let (response, body) = self.lane.answer(to: head, started: started, date: self.date.current()) else {
                self.routed += 1
                context.fireChannelRead(self.wrapInboundOut(.head(head)))
                return context.fireChannelRead(data)
            }
            context.write(self.wrapOutboundOut(.head(response)), promise: nil)
            context.write(self.wrapOutboundOut(.body(body)), promise: nil)
            context.writeAndFlush(self.wrapOutboundOut(.end(nil)), promise: nil)
        }
    }

    /// An error while a request the lane holds was being read goes to the router with the
    /// request, which answers in the one shape.
    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        if self.passHeldHead(context: context) { context.fireChannelReadComplete() }
        context.fireErrorCaught(error)
    }

    /// Passes the held request's head up to the router. - Returns: whether there was one.
    @discardableResult
    private func passHeldHead(context: ChannelHandlerContext) -> Bool {
        guard let (head, _) = self.held.take() else { return false }
        self.routed += 1
        context.fireChannelRead(self.wrapInboundOut(.head(head)))
        return true
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        if case .end = self.unwrapOutboundIn(data), self.routed > 0 {
            self.routed -= 1
        }
        context.write(data, promise: promise)
    }
}
