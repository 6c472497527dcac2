import Foundation
import NIOCore
import NIOPosix
import Synchronization
import Testing
import TesseraTestSupport

@testable import TesseraHummingbird

/// The connection limits against the real process: a client holding many connections, idle or
/// busy, never locks other clients out. Loopback has every address of 127.0.0.0/8, so
/// connections bound to 127.0.0.2 are another client's.
@Suite struct ConnectionLimitTests {
    static let request = "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"

    @Test func aClientsConnectionsPastItsLimitAreAnswered429AndOtherClientsAreServed() async throws {
        let server = try await HostileServer(arguments: ["--max-connections", "64", "--max-connections-per-client", "4"])
        #expect(server.output.contains("max_connections=64 max_per_client=4"))
        var held: [HeldConnection] = []
        for _ in 0..<4 {
            let connection = try await HeldConnection.open(port: server.port, from: "127.0.0.1")
            try await connection.send(Self.request)
            #expect(try await connection.answer().status == 200)
            held.append(connection)
        }
        // The fifth from the same address: its request is refused in the one error shape, and
        // the connection closed.
        let fifth = try await HeldConnection.open(port: server.port, from: "127.0.0.1")
        try await fifth.send(Self.request)
        let refused = try await fifth.answer()
        #expect(refused.status == 429, "\(refused.text)")
        #expect(refused.errorCode == "REQ_1011")
        #expect(refused.headers["retry-after"] == "1" && refused.headers["connection"] == "close")
        #expect(refused.headers["x-correlation-id"]?.hasPrefix("req_") == true)
        #expect(try await fifth.closed())
        // Another address is served, and the four held connections still are.
        let other = try await HeldConnection.open(port: server.port, from: "127.0.0.2")
        try await other.send(Self.request)
        #expect(try await other.answer().status == 200)
        for connection in held {
            try await connection.send(Self.request)
            #expect(try await connection.answer().status == 200)
        }
        // A connection closed gives its place back.
        await held.removeFirst().close()
        try await waitUntil(timeout: .seconds(30), "a connection from 127.0.0.1 is served again") {
            (try? await Self.served(port: server.port, from: "127.0.0.1")) == true
        }
        for connection in held { await connection.close() }
        await other.close()
        // Once the server has seen them closed.
        try await waitUntil(timeout: .seconds(30), "the server serves 127.0.0.1 again") { (try? await server.stillServes()) == true }
    }

    @Test func pastTheLimitTheLongestOpenIdleConnectionMakesRoomAndBusyOnesAreKept() async throws {
        let server = try await HostileServer(arguments: ["--max-connections", "4", "--max-connections-per-client", "0"])
        #expect(server.output.contains("max_connections=4 max_per_client=none"))
        // The longest open is busy: an event stream, answered and open.
        let busy = try await Self.openStream(server)
        var idle: [HeldConnection] = []
        for _ in 0..<3 {
            let connection = try await HeldConnection.open(port: server.port, from: "127.0.0.1")
            try await connection.send(Self.request)
            #expect(try await connection.answer().status == 200)
            idle.append(connection)
        }
        // A fifth connection is served; the longest-open idle one is closed to make room, without
        // a word.
        let fifth = try await HeldConnection.open(port: server.port, from: "127.0.0.2")
        try await fifth.send(Self.request)
        #expect(try await fifth.answer().status == 200)
        #expect(try await idle[0].closed())
        #expect(try await idle[0].received().isEmpty)
        // The stream was not cut; the other idle connections still serve.
        #expect(busy.channel.isActive)
        for connection in idle.dropFirst() {
            try await connection.send(Self.request)
            #expect(try await connection.answer().status == 200)
        }
        #expect(busy.channel.isActive)
        for connection in idle + [busy, fifth] { await connection.close() }
        #expect(try await server.stillServes())
    }

    @Test func whenEveryConnectionIsBusyPastTheLimitANewOneIsClosedAtOnce() async throws {
        // At most 4, and a sixteenth more (one): five event streams fill the server.
        let server = try await HostileServer(arguments: ["--max-connections", "4", "--max-connections-per-client", "0"])
        var busy: [HeldConnection] = []
        for _ in 0..<5 { busy.append(try await Self.openStream(server)) }
        // Accepted by the kernel, closed by the server before reading a byte.
        let sixth = try await HeldConnection.open(port: server.port, from: "127.0.0.2")
        #expect(try await sixth.closed())
        #expect(try await sixth.received().isEmpty)
        // The streams were not touched.
        #expect(busy.allSatisfy { $0.channel.isActive })
        for connection in busy { await connection.close() }
        // Room again once the server has seen them closed.
        try await waitUntil(timeout: .seconds(30), "a connection is served again") {
            (try? await Self.served(port: server.port, from: "127.0.0.2")) == true
        }
        #expect(try await server.stillServes())
    }

    /// Whether a request on a new connection from `source` is answered `200`. The connection is
    /// closed before this returns: one refused and left open would count against its client
    /// while the next attempt is made.
    static func served(port: Int, from source: String) async throws -> Bool {
        let connection = try await HeldConnection.open(port: port, from: source)
        let status: Int?
        do {
            try await connection.send(Self.request)
            status = try await connection.answer().status
        } catch {
            status = nil
        }
        await connection.close()
        return status == 200
    }

    /// An event stream whose answer has begun: a connection the server is busy with.
    static func openStream(_ server: HostileServer) async throws -> HeldConnection {
        let connection = try await HeldConnection.open(port: server.port, from: "127.0.0.1")
        try await connection.send("GET /v1/events HTTP/1.1\r\nHost: x\r\nAccept: text/event-stream\r\nAuthorization: Bearer \(server.serviceKey)\r\n\r\n")
        let deadline = ContinuousClock.now + .seconds(30)
        while ContinuousClock.now < deadline {
            let head = String(decoding: try await connection.received(), as: UTF8.self)
            if head.contains("\r\n\r\n") {
                guard head.hasPrefix("HTTP/1.1 200") else { throw HarnessError("the stream was refused: \(head)") }
                return connection
            }
            try await Task.sleep(for: .milliseconds(20))
        }
        throw HarnessError("the stream's answer did not begin within 30 s")
    }

    @Test func aClientLeavingAnEventStreamGivesItsPlaceBackAtOnce() async throws {
        let server = try await HostileServer(arguments: ["--max-connections-per-client", "1"])
        let stream = try await Self.openStream(server)
        // The client's one connection is the stream's.
        #expect(try await !Self.served(port: server.port, from: "127.0.0.1"))
        // It leaves: the server closes the stream when it sees the client's end, not at the
        // stream's next write (its keep-alive, 15 s away; the write after that fails, 30 s).
        await stream.close()
        try await waitUntil(timeout: .seconds(10), "the stream's place is given back") {
            (try? await Self.served(port: server.port, from: "127.0.0.1")) == true
        }
    }

    @Test func clientsAreCountedByAddressAndIPv6ByItsSlash64() throws {
        func key(_ address: String) throws -> ClientKey? { ClientKey(try SocketAddress(ipAddress: address, port: 1)) }
        #expect(try key("127.0.0.1") == key("127.0.0.1"))
        #expect(try key("127.0.0.1") != key("127.0.0.2"))
        #expect(try key("2001:db8:1:2::1") == key("2001:db8:1:2:ffff::9"))
        #expect(try key("2001:db8:1:2::1") != key("2001:db8:1:3::1"))
        #expect(try key("::ffff:10.0.0.1") == key("10.0.0.1"))
        #expect(try key("::ffff:10.0.0.1") != key("10.0.0.2"))
        #expect(try key("::1") != key("0.0.0.1"))
        #expect(ClientKey(try SocketAddress(unixDomainSocketPath: "/tmp/x")) == nil)
    }

    /// By default: half the open-file limit less 256 (64 at least), and no limit per client.
    @Test func theLimitsDefaults() {
        #expect(HTTPLimits().maxConnections == HTTPLimits.defaultMaxConnections)
        #expect(HTTPLimits.defaultMaxConnections >= 64)
        #expect(HTTPLimits().maxConnectionsPerClient == .max)
        #expect(HTTPLimits(maxConnections: 0, maxConnectionsPerClient: 0).maxConnections == 1)
        #expect(HTTPLimits(maxConnections: 0, maxConnectionsPerClient: 0).maxConnectionsPerClient == 1)
    }
}

/// A client connection held open, from a chosen local address, that sends when told and keeps
/// what the server answers.
final class HeldConnection: Sendable {
    let channel: any Channel
    let collector: Collector

    final class Collector: ChannelInboundHandler, Sendable {
        typealias InboundIn = ByteBuffer
        let bytes = Mutex<[UInt8]>([])

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            let buffer = Self.unwrapInboundIn(data)
            self.bytes.withLock { $0 += buffer.readableBytesView }
        }

        func errorCaught(context: ChannelHandlerContext, error: any Error) {
            context.close(promise: nil)
        }
    }

    private init(channel: any Channel, collector: Collector) {
        self.channel = channel
        self.collector = collector
    }

    static func open(port: Int, from source: String) async throws -> HeldConnection {
        let collector = Collector()
        let channel = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .bind(to: try SocketAddress(ipAddress: source, port: 0))
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture { try channel.pipeline.syncOperations.addHandler(collector) }
            }
            .connect(host: "127.0.0.1", port: port)
            .get()
        return HeldConnection(channel: channel, collector: collector)
    }

    func send(_ text: String) async throws {
        try await self.channel.writeAndFlush(ByteBuffer(string: text))
    }

    func received() async throws -> [UInt8] { self.collector.bytes.withLock { $0 } }

    /// The next whole answer (head and `Content-Length` body), taken from what was received; fails
    /// if none is whole within 30 s.
    func answer() async throws -> RawHTTP.Answer {
        let deadline = ContinuousClock.now + .seconds(30)
        while ContinuousClock.now < deadline {
            let taken: [UInt8]? = self.collector.bytes.withLock { bytes in
                guard let length = Self.wholeAnswerLength(bytes) else { return nil }
                defer { bytes.removeFirst(length) }
                return Array(bytes.prefix(length))
            }
            if let taken { return RawHTTP.Answer(bytes: taken, closedByServer: !self.channel.isActive, elapsed: .zero) }
            try await Task.sleep(for: .milliseconds(20))
        }
        throw HarnessError("no whole answer within 30 s; received \(String(decoding: try await self.received(), as: UTF8.self))")
    }

    /// Whether the server closed the connection within 10 s.
    func closed() async throws -> Bool {
        let deadline = ContinuousClock.now + .seconds(10)
        while ContinuousClock.now < deadline {
            if !self.channel.isActive { return true }
            try await Task.sleep(for: .milliseconds(20))
        }
        return false
    }

    /// Sends the end (a FIN) before closing: a child process another test started meanwhile may
    /// hold a copy of the socket, and a close alone ends the connection only when every copy
    /// is closed.
    func close() async {
        try? await self.channel.close(mode: .output)
        try? await self.channel.close()
    }

    /// The length of the first whole answer in `bytes`, if there is one.
    static func wholeAnswerLength(_ bytes: [UInt8]) -> Int? {
        let separator: [UInt8] = Array("\r\n\r\n".utf8)
        guard bytes.count >= 4, let end = (0...(bytes.count - 4)).first(where: { Array(bytes[$0..<($0 + 4)]) == separator }) else { return nil }
        let head = String(decoding: bytes[..<end], as: UTF8.self).lowercased()
        let length = head.components(separatedBy: "\r\n").first { $0.hasPrefix("content-length:") }
            .flatMap { Int($0.dropFirst("content-length:".count).trimmingCharacters(in: .whitespaces)) } ?? 0
        return bytes.count >= end + 4 + length ? end + 4 + length : nil
    }
}
