import Benchmark
import NIOCore
import Tessera
import TesseraUpstream

/// A logged-in session that answers every request at once with the same page: what it costs is
/// the baseline; what `UpstreamPool.send` adds on top is the pool's own work per request
/// (borrow, verdict, give back: two actor hops and a scan of the body for expiry phrases).
struct ImmediateSession: UpstreamSessionConnection {
    let page: UpstreamResponse

    func send(_ request: UpstreamRequest) async throws -> UpstreamResponse { self.page }
    func cookies() -> [UpstreamCookie] { [] }
    func close() async {}
}

struct ImmediateFactory: UpstreamSessionFactory {
    let session: ImmediateSession

    func logIn(account: UpstreamConfiguration.Account) async throws -> any UpstreamSessionConnection { self.session }
}

/// A 20 KiB HTML page without any expiry phrase: the whole body is scanned, as for a real page.
func page(bytes: Int) -> UpstreamResponse {
    var html = "<html><head><title>Bookings</title></head><body>"
    while html.utf8.count < bytes - 20 { html += "<tr><td>Booking 4711</td><td>Confirmed for Tuesday</td></tr>" }
    html += "</body></html>"
    return UpstreamResponse(status: 200, headers: [("Content-Type", "text/html; charset=utf-8")], body: ByteBuffer(string: html))
}

let benchmarks: @Sendable () -> Void = {
    let configuration = Benchmark.Configuration(
        metrics: [.wallClock, .throughput, .mallocCountTotal],
        scalingFactor: .kilo,
        maxDuration: .seconds(3)
    )
    let session = ImmediateSession(page: page(bytes: 20 * 1024))
    let upstream = UpstreamConfiguration(name: "bench", baseURL: "https://bench.example", login: .init(path: "/login"), healthFreshness: 3600)
    let pool = UpstreamPool(configuration: upstream, factory: ImmediateFactory(session: session))
    let reader = UpstreamVerdictReader(configuration: upstream)
    let request = UpstreamRequest(method: "GET", pathAndQuery: "/bookings/4711")

    Benchmark("Upstream: session alone (baseline)", configuration: configuration) { benchmark in
        for _ in benchmark.scaledIterations {
            blackHole(try? await session.send(request))
        }
    }

    Benchmark("Upstream: verdict on a 20 KiB page", configuration: configuration) { benchmark in
        for _ in benchmark.scaledIterations {
            blackHole(reader.verdict(on: session.page))
        }
    }

    // The first call logs in (at once); the percentiles are of the calls after it.
    Benchmark("Upstream: pool.send (borrow, verdict, give back)", configuration: configuration) { benchmark in
        for _ in benchmark.scaledIterations {
            blackHole(try? await pool.send(request))
        }
    }
}
