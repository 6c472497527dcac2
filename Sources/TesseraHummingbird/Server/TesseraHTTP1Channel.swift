public import HummingbirdCore
public import Logging
public import NIOCore
import NIOHTTP1
public import NIOHTTPTypes

/// Hummingbird's HTTP/1.1 server channel with Tessera's connection guard: the pipeline of
/// `HTTP1Channel`, with ``RequestBoundaryHandler`` in place of its conversion to HTTP types, so
/// that deadlines, body limits, HTTP/1.0 and parser errors are handled before any route runs,
/// and parser errors are answered in the one JSON error shape; and the number of connections
/// open, in all and per client, is bounded (``ConnectionLimiter``).
///
/// ```swift
/// let app = Application(router: router, server: .tessera(limits: HTTPLimits()))
/// ```
public struct TesseraHTTP1Channel: ServerChildChannel, HTTPChannelHandler {
    public typealias Value = NIOAsyncChannel<HTTPRequestPart, HTTPResponsePart>

    public let responder: HTTPChannelHandler.Responder
    public let limits: HTTPLimits
    /// The proxy's express path, served below the router (``UpstreamExpressHandler``).
    public let express: UpstreamExpressLane?
    /// Who-am-I's express path, served below the router (``SessionExpressHandler``).
    public let sessions: SessionExpressLane?
    /// The server's connection count, shared by its connections.
    let limiter: ConnectionLimiter

    public init(
        responder: @escaping HTTPChannelHandler.Responder,
        limits: HTTPLimits,
        express: UpstreamExpressLane? = nil,
        sessions: SessionExpressLane? = nil
    ) {
        self.responder = responder
        self.limits = limits
        self.express = express
        self.sessions = sessions
        self.limiter = ConnectionLimiter(maxConnections: limits.maxConnections, maxPerClient: limits.maxConnectionsPerClient)
    }

    public func setup(channel: any Channel, logger: Logger) -> EventLoopFuture<Value> {
        channel.eventLoop.makeCompletedFuture {
            let boundary = RequestBoundaryHandler(limits: self.limits, logger: logger)
            let bound = NIOLoopBound(boundary, eventLoop: channel.eventLoop)
            // Refused (the server full, every connection busy), the connection is closed as soon
            // as it is active, before a byte is read.
            boundary.admission = self.limiter.admit(channel, closeIfIdle: { bound.value.closeIfIdle() })
            let start = RequestStartHandler(boundary: boundary)
            let operations = channel.pipeline.syncOperations
            try operations.addHandler(start)
            var decoderLimits = NIOHTTPDecoderLimitConfiguration()
            decoderLimits.maxHeaderListSize = self.limits.maxHeaderBytes
            decoderLimits.maxHeaderFieldSize = self.limits.maxHeaderBytes
            try operations.configureHTTPServerPipeline(
                withPipeliningAssistance: false,
                // Parser errors are answered by the boundary handler, in the one JSON shape.
                withErrorHandling: false,
                withOutboundHeaderValidation: false,
                withEncoderConfiguration: .init(),
                withDecoderLimitConfiguration: decoderLimits
            )
            try operations.addHandler(boundary)
            start.boundaryContext = try operations.context(handler: boundary)
            try operations.addHandler(HTTPConnectionStateHandler(idleTimeout: nil, logger: logger))
            // After the connection's state handler, which then sees express answers as the
            // router's (a graceful shutdown waits for them). Who-am-I's first: it sees the
            // proxy's express answers go out as the router's, and so keeps their order.
            if let sessions = self.sessions {
                try operations.addHandler(SessionExpressHandler(lane: sessions))
            }
            if let express = self.express {
                try operations.addHandler(UpstreamExpressHandler(lane: express))
            }
            return try NIOAsyncChannel(wrappingChannelSynchronously: channel, configuration: .init(isOutboundHalfClosureEnabled: true))
        }
    }

    public func handle(value asyncChannel: Value, logger: Logger) async {
        await self.handleHTTP(asyncChannel: asyncChannel, logger: logger)
    }
}

extension HTTPServerBuilder {
    /// An HTTP/1.1 server guarded by ``TesseraHTTP1Channel``, with the proxy's express path
    /// when `express` is given (``TesseraHTTPService/upstreamExpressLane(serverName:logger:)``)
    /// and who-am-I's when `sessions` is (``TesseraHTTPService/sessionExpressLane(serverName:logger:)``).
    public static func tessera(
        limits: HTTPLimits = .init(),
        express: UpstreamExpressLane? = nil,
        sessions: SessionExpressLane? = nil
    ) -> HTTPServerBuilder {
        .init { responder in TesseraHTTP1Channel(responder: responder, limits: limits, express: express, sessions: sessions) }
    }
}
