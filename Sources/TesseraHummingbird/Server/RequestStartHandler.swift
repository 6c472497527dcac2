import NIOCore

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
