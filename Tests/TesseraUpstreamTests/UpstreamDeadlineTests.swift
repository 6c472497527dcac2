import NIOCore
import NIOEmbedded
import NIOHTTP1
@testable import TesseraUpstream
import Testing

/// The deadlines of an exchange on a connection, on a testing event loop whose time moves only
/// when the test moves it: the answer's head is due by the request timeout, a body that sends
/// nothing while it is read fails after the read timeout, and a reader that pauses is never
/// blamed on the site.
@Suite struct UpstreamDeadlineTests {
    struct Exchange: Sendable {
        let channel: NIOAsyncTestingChannel
        let answer: EventLoopFuture<UpstreamAnswerStart>
    }

    /// A connection with an exchange started: `GET /`, the head due in 5 s, a read timeout of 3 s.
    static func start(wanted: Int = 0) async throws -> Exchange {
        let channel = NIOAsyncTestingChannel()
        try await channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 8080))
        let promise = channel.eventLoop.makePromise(of: UpstreamAnswerStart.self)
        try await channel.testingEventLoop.executeInContext {
            let handler = UpstreamExchangeHandler()
            try channel.pipeline.syncOperations.addHandler(handler)
            // Reusable connections stay open (a pool would take this one back).
            handler.onReusable = {}
            handler.start(
                head: HTTPRequestHead(version: .http1_1, method: .GET, uri: "/"),
                body: nil,
                endsRequest: true,
                wanted: { _ in wanted },
                headTimeout: .seconds(5),
                readTimeout: .seconds(3),
                promise: promise
            )
        }
        return Exchange(channel: channel, answer: promise.futureResult)
    }

    /// Whether `future` has its value or error now, read on its event loop.
    static func isFulfilled(_ future: EventLoopFuture<UpstreamAnswerStart>, on channel: NIOAsyncTestingChannel) async throws -> Bool {
        try await channel.testingEventLoop.executeInContext {
            final class Flag: @unchecked Sendable { var value = false }
            let done = Flag()
            future.whenComplete { _ in done.value = true }
            return done.value
        }
    }

    static func head(length: Int) -> HTTPClientResponsePart {
        .head(HTTPResponseHead(version: .http1_1, status: .ok, headers: ["content-length": "\(length)"]))
    }

    @Test func anAnswerHeadThatDoesNotComeFailsAtTheRequestDeadline() async throws {
        let exchange = try await Self.start()
        #expect(try await exchange.channel.readOutbound(as: HTTPClientRequestPart.self) == .head(HTTPRequestHead(version: .http1_1, method: .GET, uri: "/")))
        await exchange.channel.testingEventLoop.advanceTime(by: .milliseconds(4999))
        #expect(exchange.channel.isActive)
        await exchange.channel.testingEventLoop.advanceTime(by: .milliseconds(1))
        await #expect {
            try await exchange.answer.get()
        } throws: { error in
            if case .headTimeout = error as? UpstreamExchangeFailure { return true }
            return false
        }
        #expect(!exchange.channel.isActive)
    }

    @Test func aBodyThatStopsFailsAfterTheReadTimeoutWhileItIsRead() async throws {
        let exchange = try await Self.start()
        try await exchange.channel.writeInbound(Self.head(length: 100))
        let start = try await exchange.answer.get()
        let iterator = try #require(start.rest).makeAsyncIterator()
        // Each byte that comes moves the deadline: the last came at 4 s, so it is 7 s.
        await exchange.channel.testingEventLoop.advanceTime(by: .seconds(2))
        try await exchange.channel.writeInbound(HTTPClientResponsePart.body(ByteBuffer(string: "first")))
        await exchange.channel.testingEventLoop.advanceTime(by: .seconds(2))
        try await exchange.channel.writeInbound(HTTPClientResponsePart.body(ByteBuffer(string: "second")))
        #expect(try await iterator.next().map { String(buffer: $0) } == "first")
        #expect(try await iterator.next().map { String(buffer: $0) } == "second")
        await exchange.channel.testingEventLoop.advanceTime(by: .milliseconds(2999))
        #expect(exchange.channel.isActive)
        await exchange.channel.testingEventLoop.advanceTime(by: .milliseconds(1))
        #expect(!exchange.channel.isActive)
        await #expect {
            _ = try await iterator.next()
        } throws: { error in
            if case .readTimeout = error as? UpstreamExchangeFailure { return true }
            return false
        }
    }

    /// A reader that stops taking the body holds the site back (reads are held) and is never
    /// timed out; when it reads again, the held read goes out and the body resumes.
    @Test func aReaderThatPausesHoldsTheSiteBackAndIsNeverTimedOut() async throws {
        let exchange = try await Self.start()
        try await exchange.channel.writeInbound(Self.head(length: 1_000_000))
        let start = try await exchange.answer.get()
        let rest = try #require(start.rest)
        for index in 0..<3 {
            try await exchange.channel.writeInbound(HTTPClientResponsePart.body(ByteBuffer(string: "chunk \(index)")))
        }
        // Past the high watermark: the connection's next read is held back.
        let channel = exchange.channel
        try await channel.testingEventLoop.executeInContext {
            channel.read()
        }
        await exchange.channel.testingEventLoop.advanceTime(by: .seconds(60))
        #expect(exchange.channel.isActive)

        let iterator = rest.makeAsyncIterator()
        #expect(try await iterator.next().map { String(buffer: $0) } == "chunk 0")
        #expect(try await iterator.next().map { String(buffer: $0) } == "chunk 1")
        #expect(try await iterator.next().map { String(buffer: $0) } == "chunk 2")
        try await exchange.channel.writeInbound(HTTPClientResponsePart.end(nil))
        #expect(try await iterator.next() == nil)
        #expect(exchange.channel.isActive)
    }

    /// An answer whose first bytes are wanted is handed over once they are in, with the rest to
    /// stream; one that ends first is handed over whole.
    @Test func theWantedFirstBytesComeWithTheHead() async throws {
        let exchange = try await Self.start(wanted: 8)
        try await exchange.channel.writeInbound(Self.head(length: 12))
        try await exchange.channel.writeInbound(HTTPClientResponsePart.body(ByteBuffer(string: "abcd")))
        #expect(try await !Self.isFulfilled(exchange.answer, on: exchange.channel))
        try await exchange.channel.writeInbound(HTTPClientResponsePart.body(ByteBuffer(string: "efghij")))
        let start = try await exchange.answer.get()
        #expect(String(buffer: start.prefix) == "abcdefghij")
        #expect(start.rest != nil)

        let whole = try await Self.start(wanted: 100)
        try await whole.channel.writeInbound(Self.head(length: 4))
        try await whole.channel.writeInbound(HTTPClientResponsePart.body(ByteBuffer(string: "tiny")))
        try await whole.channel.writeInbound(HTTPClientResponsePart.end(nil))
        let ended = try await whole.answer.get()
        #expect(String(buffer: ended.prefix) == "tiny")
        #expect(ended.rest == nil)
    }
}
