import NIOCore
import NIOHTTP1
import NIOPosix
import NIOSSL
import Synchronization

/// Where an upstream's requests go: the scheme, host and port of its base URL.
struct UpstreamOrigin: Sendable, Hashable {
    var host: String
    var port: Int
    var tls: Bool

    /// The `Host` field: the host, and the port unless it is the scheme's default. An IPv6
    /// address is bracketed.
    var authority: String {
        let host = self.host.contains(":") ? "[\(self.host)]" : self.host
        return self.port == (self.tls ? 443 : 80) ? host : "\(host):\(self.port)"
    }

    /// Whether the host is an IP address rather than a name (no TLS server name is sent for one).
    var hostIsAddress: Bool {
        self.host.contains(":") || self.host.utf8.allSatisfy { $0 == UInt8(ascii: ".") || (UInt8(ascii: "0")...UInt8(ascii: "9")).contains($0) }
    }
}

/// HTTP/1.1 connections to one site, kept open between requests: a request takes an idle
/// connection (the most recently used, so that the fewest stay warm) or opens one, and the
/// connection comes back when its answer has ended, on its own event loop.
///
/// Idle connections are kept up to `maxIdle`, and for `idleTimeout` at most; one the site closed
/// is dropped when it is found. Connections in use are not limited here: the session pool bounds
/// the requests in flight, and a streamed answer holds its connection as long as its client
/// reads (one per client connection at a time, which the server's connection limit bounds).
final class UpstreamConnectionPool: Sendable {
    struct Idle {
        let connection: UpstreamConnection
        let since: NIODeadline
    }

    struct State {
        var idle: [Idle] = []
        var open: [ObjectIdentifier: any Channel] = [:]
        var isShutDown = false
    }

    let origin: UpstreamOrigin
    let group: any EventLoopGroup
    let sslContext: NIOSSLContext?
    let connectTimeout: TimeAmount
    let idleTimeout: TimeAmount
    let maxIdle: Int
    private let state = Mutex(State())

    init(
        origin: UpstreamOrigin,
        tlsConfiguration: TLSConfiguration?,
        group: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton,
        connectTimeout: TimeAmount = .seconds(5),
        idleTimeout: TimeAmount = .seconds(60),
        maxIdle: Int = 256
    ) throws {
        self.origin = origin
        self.group = group
        self.sslContext = origin.tls ? try NIOSSLContext(configuration: tlsConfiguration ?? .makeClientConfiguration()) : nil
        self.connectTimeout = connectTimeout
        self.idleTimeout = idleTimeout
        self.maxIdle = maxIdle
    }

    /// How many of the most recently used idle connections are searched for one on the loop
    /// asked for.
    static let preferenceDepth = 8

    static let shutDown = UpstreamExchangeFailure.failed("the upstream's connections are shut down", answerBegun: false, handshake: false)

    /// How many connections are open, and how many of them idle.
    var counts: (open: Int, idle: Int) {
        self.state.withLock { ($0.open.count, $0.idle.count) }
    }

    /// An idle connection that is still open, or a new one (always a new one when `fresh`).
    /// `reused` says which: a reused connection the site closed a moment ago fails before any
    /// answer.
    func connection(fresh: Bool = false) async throws -> (connection: UpstreamConnection, reused: Bool) {
        if !fresh, let idle = try self.takeIdle() { return (idle, true) }
        return (try await self.connect(on: nil).get(), false)
    }

    /// The most recently used idle connection that is still open, if any, one of
    /// `eventLoop` first when one of the last few is; closes the ones found expired on the way.
    func takeIdle(preferring eventLoop: (any EventLoop)? = nil) throws -> UpstreamConnection? {
        let now = NIODeadline.now()
        var expired: [UpstreamConnection] = []
        let idle: UpstreamConnection? = try self.state.withLock { state in
            guard !state.isShutDown else { throw Self.shutDown }
            func usable(_ idle: Idle) -> Bool { idle.connection.channel.isActive && now - idle.since < self.idleTimeout }
            if let eventLoop,
                let index = state.idle.suffix(Self.preferenceDepth).lastIndex(where: { $0.connection.channel.eventLoop === eventLoop })
            {
                let candidate = state.idle.remove(at: index)
                if usable(candidate) { return candidate.connection }
                expired.append(candidate.connection)
            }
            while let last = state.idle.popLast() {
                if usable(last) { return last.connection }
                expired.append(last.connection)
            }
            return nil
        }
        for connection in expired { connection.channel.close(promise: nil) }
        return idle
    }

    /// Opens a connection, on `eventLoop` when given (else on any of the group's loops).
    func connect(on eventLoop: (any EventLoop)?) -> EventLoopFuture<UpstreamConnection> {
        let sslContext = self.sslContext
        let serverName = self.origin.hostIsAddress ? nil : self.origin.host
        return ClientBootstrap(group: eventLoop ?? self.group)
            .connectTimeout(self.connectTimeout)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    if let sslContext {
                        try channel.pipeline.syncOperations.addHandler(try NIOSSLClientHandler(context: sslContext, serverHostname: serverName))
                    }
                    try channel.pipeline.syncOperations.addHTTPClientHandlers()
                    try channel.pipeline.syncOperations.addHandler(UpstreamExchangeHandler())
                }
            }
            .connect(host: self.origin.host, port: self.origin.port)
            .flatMapThrowing { channel in
                let handler = try channel.pipeline.syncOperations.handler(type: UpstreamExchangeHandler.self)
                let connection = UpstreamConnection(channel: channel, handler: NIOLoopBound(handler, eventLoop: channel.eventLoop))
                handler.onReusable = { [weak self] in self?.giveBack(connection) }
                try self.admit(connection)
                return connection
            }
    }

    /// Counts a new connection as open (so that ``shutdown()`` closes it), or closes it when the
    /// pool has shut down.
    private func admit(_ connection: UpstreamConnection) throws {
        let id = ObjectIdentifier(connection.channel)
        let admitted = self.state.withLock { state in
            guard !state.isShutDown else { return false }
            state.open[id] = connection.channel
            return true
        }
        guard admitted else {
            connection.channel.close(promise: nil)
            throw Self.shutDown
        }
        connection.channel.closeFuture.whenComplete { [weak self] _ in
            self?.state.withLock { _ = $0.open.removeValue(forKey: id) }
        }
    }

    /// Takes back a connection whose answer has ended (on its event loop).
    func giveBack(_ connection: UpstreamConnection) {
        let kept = self.state.withLock { state in
            guard !state.isShutDown, state.idle.count < self.maxIdle else { return false }
            state.idle.append(Idle(connection: connection, since: .now()))
            return true
        }
        if !kept { connection.channel.close(promise: nil) }
    }

    /// Closes every connection, idle or in use; requests after this fail.
    func shutdown() async {
        let channels = self.state.withLock { state in
            state.isShutDown = true
            state.idle = []
            defer { state.open = [:] }
            return Array(state.open.values)
        }
        for channel in channels {
            try? await channel.close()
        }
    }
}

/// One connection to a site and its exchange handler.
struct UpstreamConnection: Sendable {
    let channel: any Channel
    let handler: NIOLoopBound<UpstreamExchangeHandler>
}
