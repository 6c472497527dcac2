import Foundation
import NIOCore
import NIOPosix
import NIOSSL
import Synchronization

/// A site on a loopback port that answers each request by its path, byte by byte as written
/// here, so that the upstream connections meet what real servers do to them: keep-alive and
/// `Connection: close`, a keep-alive connection closed as a request arrives, chunked and
/// close-delimited bodies, and bytes that are not HTTP. With a TLS context it speaks HTTPS.
/// (Deadlines are tested on a testing event loop instead: `UpstreamDeadlineTests`.)
///
/// Paths:
/// - `/ok`: 200, `ok`, kept alive.
/// - `/close`: 200, `bye`, `Connection: close`, then closes.
/// - `/drop-next`: 200, `ok`, kept alive; the next request on the connection is read and the
///   connection closed without an answer (the race of a keep-alive timeout).
/// - `/chunked`: 200, `one-two-three` in three chunks.
/// - `/until-close`: 200 with no length, `to the end`, then closes.
/// - `/garbage`: bytes that are not an answer.
/// - `/echo`: 200, the request's body, kept alive.
/// - any path with a `/target/` segment: 200, the request target as the site received it.
final class ScriptedSite: Sendable {
    struct Stats: Sendable, Equatable {
        var connections = 0
        var requests = 0
    }

    let port: Int
    private let channel: any Channel
    private let stats: SharedStats

    private init(port: Int, channel: any Channel, stats: SharedStats) {
        self.port = port
        self.channel = channel
        self.stats = stats
    }

    var counts: Stats { self.stats.stats.withLock { $0 } }

    static func start(tls: NIOSSLContext? = nil) async throws -> ScriptedSite {
        let shared = SharedStats()
        let channel = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { channel in
                shared.connected()
                return channel.eventLoop.makeCompletedFuture {
                    if let tls { try channel.pipeline.syncOperations.addHandler(NIOSSLServerHandler(context: tls)) }
                    try channel.pipeline.syncOperations.addHandler(ScriptHandler(stats: shared))
                }
            }
            .bind(host: "127.0.0.1", port: 0)
            .get()
        guard let port = channel.localAddress?.port else { throw SiteError("the site has no port") }
        return ScriptedSite(port: port, channel: channel, stats: shared)
    }

    func stop() async {
        try? await self.channel.close()
    }

    struct SiteError: Error, CustomStringConvertible {
        var description: String
        init(_ description: String) { self.description = description }
    }
}

/// The counters, shared with the connections' handlers.
final class SharedStats: Sendable {
    let stats = Mutex(ScriptedSite.Stats())
    func connected() { self.stats.withLock { $0.connections += 1 } }
    func requested() { self.stats.withLock { $0.requests += 1 } }
}

/// Reads requests (head, and a body of `Content-Length` bytes) and answers each by its path.
final class ScriptHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    let stats: SharedStats
    var buffer = ByteBuffer()
    var dropNext = false

    init(stats: SharedStats) {
        self.stats = stats
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var chunk = self.unwrapInboundIn(data)
        self.buffer.writeBuffer(&chunk)
        while let (path, body) = self.nextRequest() {
            self.stats.requested()
            if self.dropNext {
                context.close(promise: nil)
                return
            }
            self.answer(path: path, body: body, context: context)
        }
    }

    /// The next whole request in the buffer: its path and body.
    func nextRequest() -> (String, String)? {
        let text = String(buffer: self.buffer)
        guard let end = text.range(of: "\r\n\r\n") else { return nil }
        let head = text[..<end.lowerBound]
        let lines = head.split(separator: "\r\n")
        let target = lines.first?.split(separator: " ").dropFirst().first.map(String.init) ?? "/"
        let length = lines.dropFirst().compactMap { line -> Int? in
            let parts = line.split(separator: ":", maxSplits: 1)
            guard parts.count == 2, parts[0].lowercased() == "content-length" else { return nil }
            return Int(parts[1].trimmingCharacters(in: .whitespaces))
        }.first ?? 0
        let headBytes = head.utf8.count + 4
        guard self.buffer.readableBytes >= headBytes + length else { return nil }
        self.buffer.moveReaderIndex(forwardBy: headBytes)
        let body = self.buffer.readString(length: length) ?? ""
        self.buffer.discardReadBytes()
        return (target, body)
    }

    func answer(path: String, body: String, context: ChannelHandlerContext) {
        func write(_ text: String, thenClose: Bool = false) {
            let future = context.writeAndFlush(self.wrapOutboundOut(ByteBuffer(string: text)))
            if thenClose { future.whenComplete { _ in context.close(promise: nil) } }
        }
        switch path {
        case "/ok":
            write("HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Type: text/plain\r\n\r\nok")
        case "/close":
            write("HTTP/1.1 200 OK\r\nContent-Length: 3\r\nConnection: close\r\n\r\nbye", thenClose: true)
        case "/drop-next":
            self.dropNext = true
            write("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
        case "/chunked":
            write("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\none\r\n")
            write("4\r\n-two\r\n")
            write("6\r\n-three\r\n0\r\n\r\n")
        case "/until-close":
            write("HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nto the end", thenClose: true)
        case "/garbage":
            write("SURPRISE\r\n\r\n")
        case "/echo":
            write("HTTP/1.1 200 OK\r\nContent-Length: \(body.utf8.count)\r\n\r\n\(body)")
        case _ where path.contains("/target/"):
            write("HTTP/1.1 200 OK\r\nContent-Length: \(path.utf8.count)\r\n\r\n\(path)")
        default:
            write("HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n")
        }
    }
}
