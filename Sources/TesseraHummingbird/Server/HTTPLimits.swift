/// What one connection may ask of the server, enforced below the router, before any route
/// runs: a slow, silent or oversized client is answered and disconnected, and never holds a
/// connection (or the memory of one) for longer than these allow.
public struct HTTPLimits: Sendable, Hashable {
    /// How long a new or kept-alive connection may stay silent before its next request begins
    /// (default 60 s). Closed without an answer: there is no request to answer.
    public var idleTimeout: Duration
    /// How long a request's header may take from its first byte to its blank line (default
    /// 10 s). A client that sends it a byte at a time is answered `408 REQ_1009` and closed.
    public var headerTimeout: Duration
    /// How long a request's body may take from the end of its header to its last byte (default
    /// 30 s), whether a route reads it or it is drained after the answer.
    public var bodyTimeout: Duration
    /// The largest header accepted, all fields together (default 32 KiB); larger gets
    /// `431 REQ_1010`.
    public var maxHeaderBytes: Int
    /// The largest body any route accepts (default 1 MiB). A `Content-Length` above it is
    /// answered `413 REQ_1002` at once, before a byte of the body is read; a chunked body that
    /// grows past it is cut off the same way. Routes have smaller limits of their own.
    public var maxBodyBytes: Int
    /// The most connections the server keeps open at once (default
    /// ``defaultMaxConnections``). Past it, a new connection is still served, and the
    /// longest-open idle connection (one between requests) is closed to make room; a sixteenth
    /// more, which only connections all busy can reach, and a new connection is closed at once.
    public var maxConnections: Int
    /// The most connections open at once from one client address, an IPv6 client counted by its
    /// /64 (default `Int.max`: no limit). A connection past it has its request answered
    /// `429 REQ_1011` and is closed. Set it when clients connect directly; behind a proxy every
    /// connection comes from the proxy's address.
    public var maxConnectionsPerClient: Int

    public init(
        idleTimeout: Duration = .seconds(60),
        headerTimeout: Duration = .seconds(10),
        bodyTimeout: Duration = .seconds(30),
        maxHeaderBytes: Int = 32 * 1024,
        maxBodyBytes: Int = 1024 * 1024,
        maxConnections: Int = HTTPLimits.defaultMaxConnections,
        maxConnectionsPerClient: Int = .max
    ) {
        self.idleTimeout = idleTimeout
        self.headerTimeout = headerTimeout
        self.bodyTimeout = bodyTimeout
        self.maxHeaderBytes = maxHeaderBytes
        self.maxBodyBytes = maxBodyBytes
        self.maxConnections = max(1, maxConnections)
        self.maxConnectionsPerClient = max(1, maxConnectionsPerClient)
    }

    /// Half the process's open-file limit, less 256 for the store, the logs and the rest, and
    /// 64 at least: a proxied request holds a connection to its site as well as its client's.
    public static var defaultMaxConnections: Int {
        guard let open = OpenFileLimit.current else { return 1024 }
        return max(64, (min(open, 1_048_576) - 256) / 2)
    }
}
