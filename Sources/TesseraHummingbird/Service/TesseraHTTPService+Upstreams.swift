import Foundation
import HTTPTypes
import Hummingbird
import Logging
import NIOCore
import Tessera
import TesseraUpstream

/// The upstream pool's operations (service API key): report, lend a session, forward through one.
extension TesseraHTTPService {
    /// The segments of `/v1/upstreams/{name}/proxy` before the proxied path.
    static let proxyPrefixSegments = 4

    /// The methods `…/proxy/{path}` forwards.
    static let proxiedMethods: [HTTPRequest.Method] = [.get, .head, .post, .put, .patch, .delete, .options]

    func addUpstreamRoutes(to router: Router<TesseraRequestContext>) {
        let group = router.group("/v1/upstreams").add(middleware: ServiceKeyMiddleware(key: self.serviceKey))
        group.get(use: self.listUpstreams)
        group.post("/{name}/session", use: self.lendUpstreamSession)
        group.delete("/{name}/session/{lease}", use: self.returnUpstreamSession)
        group.post("/{name}/actions", use: self.performUpstreamActions)
        for method in Self.proxiedMethods {
            group.on("/{name}/proxy/**", method: method, use: self.proxyUpstream)
        }
    }

    struct UpstreamListResponse: Encodable {
        var upstreams: [UpstreamPoolSnapshot]
    }

    struct LentSessionResponse: Encodable {
        struct Cookie: Encodable {
            var name: String
            var value: String
            var domain: String
            var hostOnly: Bool
            var path: String
            var expires: Date?
            var secure: Bool
            var httpOnly: Bool
        }

        var upstream: String
        var baseURL: String
        var lease: String
        var cookies: [Cookie]
        /// The `Cookie` header for a request to the base URL.
        var cookieHeader: String
        var expiresAt: Date
        var expiresIn: Int
    }

    func pool(_ context: TesseraRequestContext) throws -> UpstreamPool {
        let name = context.parameters.get("name") ?? ""
        guard let pool = self.upstreams.pool(named: name) else {
            throw TesseraError.notFound("No upstream is named '\(name.prefix(64))'.")
        }
        return pool
    }

    @Sendable func listUpstreams(_ request: Request, context: TesseraRequestContext) async throws -> Response {
        var snapshots: [UpstreamPoolSnapshot] = []
        for pool in self.upstreams.ordered {
            snapshots.append(await pool.snapshot())
        }
        return try Response.json(UpstreamListResponse(upstreams: snapshots))
    }

    @Sendable func lendUpstreamSession(_ request: Request, context: TesseraRequestContext) async throws -> Response {
        let pool = try self.pool(context)
        let lent = try await pool.lend()
        let now = self.sessions.clock.now
        let cookies = lent.cookies.map {
            LentSessionResponse.Cookie(
                name: $0.name,
                value: $0.value,
                domain: $0.domain,
                hostOnly: $0.hostOnly,
                path: $0.path,
                expires: $0.expires,
                secure: $0.secure,
                httpOnly: $0.httpOnly
            )
        }
        context.logger.info("Lent an upstream session", metadata: ["upstream": .string(pool.name), "lease": .stringConvertible(lent.lease.leaseID)])
        return try Response.json(
            LentSessionResponse(
                upstream: pool.name,
                baseURL: pool.configuration.baseURL,
                lease: String(lent.lease.leaseID),
                cookies: cookies,
                cookieHeader: lent.cookies.map { "\($0.name)=\($0.value)" }.joined(separator: "; "),
                expiresAt: lent.expiresAt,
                expiresIn: max(0, Int(lent.expiresAt.timeIntervalSince(now).rounded(.down)))
            )
        )
    }

    @Sendable func returnUpstreamSession(_ request: Request, context: TesseraRequestContext) async throws -> Response {
        let pool = try self.pool(context)
        guard let lease = context.parameters.get("lease").flatMap(UInt64.init) else {
            throw TesseraError.notFound("No such lease.")
        }
        await pool.giveBack(leaseID: lease)
        return Response(status: .noContent)
    }
}
