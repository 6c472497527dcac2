import Foundation
import Logging
import NIOCore
import NIOEmbedded
import HTTPTypes
import NIOHTTP1
import NIOHTTPTypes
import Tessera
import Testing

@testable import TesseraHummingbird

/// The connection guard below the router, on an embedded channel whose clock the test moves:
/// deadlines pass in an instant. A deadline is checked every second here, so it passes between
/// its time and a second later.
@Suite struct RequestBoundaryTests {
    static let limits = HTTPLimits(
        idleTimeout: .seconds(60),
        headerTimeout: .seconds(10),
        bodyTimeout: .seconds(30),
        maxHeaderBytes: 1024,
        maxBodyBytes: 100
    )

    /// A channel with the guard's handlers and the HTTP codec, as `TesseraHTTP1Channel` sets it
    /// up; the test plays the router, on HTTP types' parts.
    func makeChannel() throws -> EmbeddedChannel {
        let channel = EmbeddedChannel()
        let boundary = RequestBoundaryHandler(limits: Self.limits, logger: Logger(label: "test"))
        let start = RequestStartHandler(boundary: boundary)
        try channel.pipeline.syncOperations.addHandler(start)
        var decoderLimits = NIOHTTPDecoderLimitConfiguration()
        decoderLimits.maxHeaderListSize = Self.limits.maxHeaderBytes
        decoderLimits.maxHeaderFieldSize = Self.limits.maxHeaderBytes
        try channel.pipeline.syncOperations.configureHTTPServerPipeline(
            withPipeliningAssistance: false,
            withErrorHandling: false,
            withOutboundHeaderValidation: false,
            withEncoderConfiguration: .init(),
            withDecoderLimitConfiguration: decoderLimits
        )
        try channel.pipeline.syncOperations.addHandler(boundary)
        start.boundaryContext = try channel.pipeline.syncOperations.context(handler: boundary)
        try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 1)).wait()
        return channel
    }

    func send(_ text: String, to channel: EmbeddedChannel) throws {
        try channel.writeInbound(ByteBuffer(string: text))
    }

    /// Everything written to the network so far.
    func written(_ channel: EmbeddedChannel) throws -> String {
        var text = ""
        while let buffer = try channel.readOutbound(as: ByteBuffer.self) { text += String(buffer: buffer) }
        return text
    }

    /// The request parts that went up to the router.
    func forwarded(_ channel: EmbeddedChannel) throws -> [HTTPRequestPart] {
        var parts: [HTTPRequestPart] = []
        while let part = try channel.readInbound(as: HTTPRequestPart.self) { parts.append(part) }
        return parts
    }

    func respond(_ channel: EmbeddedChannel, status: HTTPResponse.Status = .ok) throws {
        try channel.writeOutbound(HTTPResponsePart.head(HTTPResponse(status: status, headerFields: [.contentLength: "2"])))
        try channel.writeOutbound(HTTPResponsePart.body(ByteBuffer(string: "ok")))
        try channel.writeOutbound(HTTPResponsePart.end(nil))
    }

    @Test func aHeaderThatTakesTooLongIsAnswered408FromItsFirstByte() throws {
        let channel = try self.makeChannel()
        // Idle for 50 s (under the 60 s keep-alive), then a header that starts and never ends.
        channel.embeddedEventLoop.advanceTime(by: .seconds(50))
        try self.send("GET /healthz HTTP/1.1\r\nHost: x\r\n", to: channel)
        channel.embeddedEventLoop.advanceTime(by: .seconds(10))
        #expect(try self.written(channel).isEmpty)
        #expect(channel.isActive)
        channel.embeddedEventLoop.advanceTime(by: .seconds(1))
        let answer = try self.written(channel)
        #expect(answer.hasPrefix("HTTP/1.1 408 Request Timeout"), "\(answer)")
        #expect(answer.contains(#""code":"REQ_1009""#))
        #expect(answer.contains("connection: close"))
        #expect(try self.forwarded(channel).isEmpty)
        channel.embeddedEventLoop.advanceTime(by: TimeAmount(RequestBoundaryHandler.linger) + .seconds(1))
        #expect(!channel.isActive)
    }

    @Test func aSilentConnectionIsClosedWithoutAWord() throws {
        let channel = try self.makeChannel()
        channel.embeddedEventLoop.advanceTime(by: .seconds(60))
        #expect(channel.isActive)
        channel.embeddedEventLoop.advanceTime(by: .seconds(1))
        #expect(!channel.isActive)
        #expect(try self.written(channel).isEmpty)
    }

    @Test func aBodyThatStopsIsAnswered408AndAnAnsweredOneStartsTheIdleDeadline() throws {
        let channel = try self.makeChannel()
        try self.send("POST /v1/login HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\n{\"a\"", to: channel)
        #expect(try self.forwarded(channel).count == 2)  // head, and the body so far
        channel.embeddedEventLoop.advanceTime(by: .seconds(30))
        #expect(try self.written(channel).isEmpty)
        channel.embeddedEventLoop.advanceTime(by: .seconds(1))
        let answer = try self.written(channel)
        #expect(answer.hasPrefix("HTTP/1.1 408"), "\(answer)")

        // A complete request answered: the connection then waits 60 s for the next one.
        let kept = try self.makeChannel()
        try self.send("GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n", to: kept)
        #expect(try self.forwarded(kept).count == 2)
        kept.embeddedEventLoop.advanceTime(by: .seconds(45))
        try self.respond(kept)
        #expect(try self.written(kept).hasPrefix("HTTP/1.1 200 OK"))
        kept.embeddedEventLoop.advanceTime(by: .seconds(60))
        #expect(kept.isActive)
        kept.embeddedEventLoop.advanceTime(by: .seconds(1))
        #expect(!kept.isActive)
    }

    @Test func aDeclaredLengthOverTheLimitIsAnswered413BeforeTheRouterSeesIt() throws {
        let channel = try self.makeChannel()
        try self.send("POST /v1/login HTTP/1.1\r\nHost: x\r\nX-Correlation-ID: abc-1\r\nContent-Length: 1000000000000\r\n\r\n{}", to: channel)
        let answer = try self.written(channel)
        #expect(answer.hasPrefix("HTTP/1.1 413"), "\(answer)")
        #expect(answer.contains(#""code":"REQ_1002""#))
        #expect(answer.contains("x-correlation-id: abc-1"))
        #expect(try self.forwarded(channel).isEmpty)
    }

    @Test func aChunkedBodyThatGrowsPastTheLimitIsCutOff() throws {
        let channel = try self.makeChannel()
        try self.send("POST /v1/login HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n", to: channel)
        try self.send("40\r\n" + String(repeating: "a", count: 64) + "\r\n", to: channel)
        #expect(try self.written(channel).isEmpty)
        // The route reading this body gets the error; its answer ends the connection.
        #expect(throws: TesseraError.bodyTooLarge(limit: 100)) {
            try self.send("40\r\n" + String(repeating: "a", count: 64) + "\r\n", to: channel)
        }
        try self.respond(channel, status: .contentTooLarge)
        let answer = try self.written(channel)
        #expect(answer.hasPrefix("HTTP/1.1 413"), "\(answer)")
        #expect(answer.contains("connection: close"))
        #expect(!channel.isActive)
    }

    @Test func http10IsAnsweredInKindAndClosed() throws {
        let channel = try self.makeChannel()
        try self.send("GET /healthz HTTP/1.0\r\n\r\n", to: channel)
        #expect(try self.forwarded(channel).count == 2)
        try self.respond(channel)
        let answer = try self.written(channel)
        #expect(answer.hasPrefix("HTTP/1.0 200 OK"), "\(answer)")
        #expect(answer.lowercased().contains("connection: close"))
        #expect(!channel.isActive)
    }

    @Test func whatTheParserRefusesBeforeAHeadIsAnsweredInTheOneShape() throws {
        let channel = try self.makeChannel()
        try? self.send("GET /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n", to: channel)
        let answer = try self.written(channel)
        #expect(answer.hasPrefix("HTTP/1.1 400 Bad Request"), "\(answer)")
        #expect(answer.contains(#""code":"REQ_1001""#))
        #expect(answer.contains("x-correlation-id: req_"))

        let oversized = try self.makeChannel()
        try? self.send("GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: " + String(repeating: "b", count: 2000) + "\r\n\r\n", to: oversized)
        let refused = try self.written(oversized)
        #expect(refused.hasPrefix("HTTP/1.1 431"), "\(refused)")
        #expect(refused.contains(#""code":"REQ_1010""#))
    }
}
