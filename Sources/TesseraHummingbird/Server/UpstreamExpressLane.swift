import Foundation
public import HTTPTypes
import Hummingbird
import HummingbirdCore
public import Logging
public import Tessera
public import TesseraUpstream

/// What the proxy's express path needs of the service: which requests it may take, and how the
/// router would have answered them (the service key, the request metrics, the server's name).
///
/// A request to `…/v1/upstreams/{name}/proxy/{path}` with the service key and a body held whole
/// (none, or declared at up to ``TesseraHTTPService/replayableBodyBytes``), to an upstream whose
/// sessions speak HTTP, is served on the connection's event loop by ``UpstreamExpressHandler``
/// instead of the router: with no task when a session can be lent at once, else through the
/// pool's ordinary forwarding in a task; a caller's `traceparent` goes on to the site as the
/// router passes it. Everything else (HEAD, a body that streams, a wrong key, a browser
/// upstream) goes to the router as before. The answer is the one the router would give.
public struct UpstreamExpressLane: Sendable {
    let upstreams: UpstreamPools
    let serviceKey: ServiceAPIKey
    let metrics: HTTPMetricSeries?
    let serverName: String?
    let logger: Logger
    /// How many requests the express path answered, and how many the pool declined and it
    /// handed to the router.
    let counts = ExpressCounts()

    /// The route the router names the proxy by, for the request metrics.
    static let route = "/v1/upstreams/{name}/proxy/**"
    static let prefix = "/v1/upstreams/"

    /// A request the express path takes, ready to send.
    struct Express: Sendable {
        var pool: UpstreamPool
        var head: HTTPRequest
        var request: UpstreamRequest
        /// The body as it arrives (declared, at most ``TesseraHTTPService/replayableBodyBytes``).
        var body: ByteBuffer?
        var correlationID: String
        var started: ContinuousClock.Instant
    }

    /// The methods the express path forwards: the proxy's but HEAD (which the router answers
    /// as GET without a body).
    static let methods: [HTTPRequest.Method] = TesseraHTTPService.proxiedMethods.filter { $0 != .head }

    /// `head` as an express request, or `nil` when the router is to serve it.
    func express(for head: HTTPRequest) -> Express? {
        guard Self.methods.contains(head.method), let path = head.path, path.utf8.starts(with: Self.prefix.utf8) else { return nil }
        let afterPrefix = path.utf8.index(path.utf8.startIndex, offsetBy: Self.prefix.utf8.count)
        guard let slash = path.utf8[afterPrefix...].firstIndex(of: UInt8(ascii: "/")),
            path.utf8[slash...].starts(with: "/proxy/".utf8),
            let pool = self.upstreams.pool(named: String(path[afterPrefix..<slash])),
            pool.servesExpress
        else { return nil }
        let fields = head.headerFields
        // A body that streams (chunked, or declared larger than a replayable one) or an
        // expectation: the router's. (The parser has checked the length's syntax.)
        if let length = fields[.contentLength] {
            guard let declared = Int(length), declared <= min(TesseraHTTPService.replayableBodyBytes, pool.configuration.maxBodyBytes) else { return nil }
        }
        if fields[.transferEncoding] != nil || fields[.expect] != nil { return nil }
        guard let token = fields.bearerToken, self.serviceKey.matches(token) else { return nil }
        let uri = URI(path)
        // A path with nothing below the prefix (`…/proxy/`) is the router's to judge.
        guard let segments = UpstreamPath.segments(of: uri.path, after: TesseraHTTPService.proxyPrefixSegments),
            segments.contains(where: { !$0.isEmpty }),
            var request = try? TesseraHTTPService.upstreamRequest(method: head.method, segments: segments, query: uri.query, fields: fields)
        else { return nil }
        // A caller's trace: the call to the site joins it, and an error's log line names it.
        request.trace = fields[.traceparent].flatMap { TraceContext(traceparent: $0) }
        return Express(
            pool: pool,
            head: head,
            request: request,
            body: nil,
            correlationID: fields.usableCorrelationID ?? makeCorrelationID(),
            started: ContinuousClock.now
        )
    }
}

extension TesseraHTTPService {
    /// The proxy's express path for this service, or `nil` when it has none to serve: no
    /// upstream whose sessions speak HTTP, no service key, or request lines that `logger` would
    /// write (the express path writes none).
    ///
    /// ```swift
    /// let app = Application(
    ///     router: service.buildRouter(),
    ///     server: .tessera(limits: limits, express: service.upstreamExpressLane(serverName: "Tessera", logger: logger))
    /// )
    /// ```
    public func upstreamExpressLane(serverName: String?, logger: Logger) -> UpstreamExpressLane? {
        guard !self.logsRequestLines(to: logger), let serviceKey = self.serviceKey, self.upstreams.ordered.contains(where: \.servesExpress) else { return nil }
        return UpstreamExpressLane(
            upstreams: self.upstreams,
            serviceKey: serviceKey,
            metrics: self.requestMetricSeries,
            serverName: serverName,
            logger: logger
        )
    }
}
