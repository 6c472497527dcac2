import Benchmark
import Foundation
import HTTPTypes
import Hummingbird
import Logging
import NIOCore
import Tessera
import TesseraHummingbird
import TesseraSQLite

/// Where the fixtures' databases live; removed when the benchmarks end.
let fixtureRoot = FileManager.default.temporaryDirectory.appendingPathComponent("tessera-benchmarks-\(getpid())")

/// A real SQLite store (WAL, synchronous = FULL) in a temporary directory, with `count` sessions
/// whose tokens are known.
struct Fixture {
    let store: SQLiteSessionStore
    let tokens: [SessionToken]

    init(count: Int) async throws {
        let directory = fixtureRoot.appendingPathComponent(UUID().uuidString)
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        self.store = try SQLiteSessionStore(path: directory.appendingPathComponent("tessera.sqlite").path)
        let sessions = SessionManager(store: self.store, groupCommit: true)
        self.tokens = try await withThrowingTaskGroup(of: SessionToken.self) { group in
            for index in 0..<count {
                group.addTask { try await sessions.createSession(userID: "user-\(index % 100)").token }
            }
            return try await group.reduce(into: []) { $0.append($1) }
        }
    }
}

let benchmarks: @Sendable () -> Void = {
    Benchmark.teardown = { try? FileManager.default.removeItem(at: fixtureRoot) }
    let fast = Benchmark.Configuration(
        metrics: [.wallClock, .throughput, .mallocCountTotal],
        scalingFactor: .kilo,
        maxDuration: .seconds(3)
    )
    let io = Benchmark.Configuration(metrics: [.wallClock, .throughput, .mallocCountTotal], maxDuration: .seconds(5))

    // MARK: Tokens and cookies

    Benchmark("Token: generate", configuration: fast) { benchmark in
        for _ in benchmark.scaledIterations {
            blackHole(SessionToken.generate())
        }
    }

    let token = SessionToken.generate()
    Benchmark("Token: SHA-256", configuration: fast) { benchmark in
        for _ in benchmark.scaledIterations {
            blackHole(token.hash)
        }
    }

    let presented = token.rawValue
    // A server sees a different token on every request: rotating over 1,000 keeps the branch
    // predictor from learning one token's characters.
    let presentedTokens = (0..<1000).map { _ in SessionToken.generate().rawValue }
    Benchmark("Token: parse (1,000 tokens rotated)", configuration: fast) { benchmark in
        for iteration in benchmark.scaledIterations {
            blackHole(SessionToken(presentedTokens[iteration % presentedTokens.count]))
        }
    }

    let cookie = SessionCookie()
    let request = Request(
        head: HTTPRequest(
            method: .get,
            scheme: "http",
            authority: "localhost",
            path: "/v1/session",
            headerFields: [.cookie: "theme=dark; tessera_session=\(presented); lang=en"]
        ),
        body: .init(buffer: ByteBuffer())
    )
    Benchmark("Cookie: read the session token", configuration: fast) { benchmark in
        for _ in benchmark.scaledIterations {
            blackHole(cookie.token(in: request))
        }
    }

    // MARK: Validation

    // The service's path: a warm cache kept current by the change feed, activity buffered.
    Benchmark("Validate: cached (1,000 sessions)", configuration: fast) { benchmark, fixture in
        let cache = SessionCache()
        let feed = SessionChangeFeed(cache: cache, store: fixture.store, logger: Logger(label: "bench"))
        try await feed.poll()
        let sessions = SessionManager(store: fixture.store, activityBuffer: ActivityBuffer(), cache: cache)
        for token in fixture.tokens { _ = try await sessions.authenticate(token: token.rawValue) }
        let raw = fixture.tokens.map(\.rawValue)
        benchmark.startMeasurement()
        for iteration in benchmark.scaledIterations {
            blackHole(try await sessions.authenticate(token: raw[iteration % raw.count]))
        }
        benchmark.stopMeasurement()
    } setup: {
        try await Fixture(count: 1000)
    }

    // Without the cache: one indexed SQLite read per validation.
    Benchmark("Validate: store read (1,000 sessions)", configuration: io) { benchmark, fixture in
        let sessions = SessionManager(store: fixture.store, activityBuffer: ActivityBuffer())
        let raw = fixture.tokens.map(\.rawValue)
        benchmark.startMeasurement()
        for iteration in benchmark.scaledIterations {
            blackHole(try await sessions.authenticate(token: raw[iteration % raw.count]))
        }
        benchmark.stopMeasurement()
    } setup: {
        try await Fixture(count: 1000)
    }

    // MARK: Creation

    Benchmark("Create: one durable session at a time", configuration: io) { benchmark, fixture in
        let sessions = SessionManager(store: fixture.store)
        benchmark.startMeasurement()
        for _ in benchmark.scaledIterations {
            blackHole(try await sessions.createSession(userID: "u"))
        }
        benchmark.stopMeasurement()
    } setup: {
        try await Fixture(count: 0)
    }

    Benchmark("Create: 64 concurrent, group commit (per batch of 64)", configuration: io) { benchmark, fixture in
        let sessions = SessionManager(store: fixture.store, groupCommit: true)
        benchmark.startMeasurement()
        for _ in benchmark.scaledIterations {
            try await withThrowingTaskGroup(of: Void.self) { group in
                for _ in 0..<64 {
                    group.addTask { blackHole(try await sessions.createSession(userID: "u")) }
                }
                try await group.waitForAll()
            }
        }
        benchmark.stopMeasurement()
    } setup: {
        try await Fixture(count: 0)
    }
}
