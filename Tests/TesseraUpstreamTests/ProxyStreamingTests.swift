import AsyncHTTPClient
import Crypto
import Foundation
import NIOCore
import NIOHTTP1
import TesseraTestSupport
import TesseraUpstream
import Testing

/// The proxy streams bodies both ways: answers are read from the site as fast as the client takes
/// them, text answers are read for phrases only in their first `scanBytes`, binary ones never, and
/// request bodies past the replayable size stream to the site as they come.
@Suite(.heavy) struct ProxyStreamingTests {
    /// Reads an answer chunk by chunk, checking each byte against `expected(offset)`, without
    /// holding the body: returns the status, fields and the number of bytes read.
    static func stream(
        _ client: HTTPClient,
        _ url: String,
        expected: (Int) -> UInt8
    ) async throws -> (status: Int, headers: HTTPHeaders, bytes: Int, mismatches: Int) {
        var request = HTTPClientRequest(url: url)
        request.headers.add(name: "authorization", value: "Bearer \(UpstreamHTTPTests.serviceKey)")
        let response = try await client.execute(request, timeout: .seconds(60))
        var offset = 0
        var mismatches = 0
        for try await chunk in response.body {
            chunk.withUnsafeReadableBytes { bytes in
                for (index, byte) in bytes.enumerated() where byte != expected(offset + index) { mismatches += 1 }
            }
            offset += chunk.readableBytes
        }
        return (Int(response.status.code), response.headers, offset, mismatches)
    }

    /// By the express path and by the router.
    @Test(arguments: [true, false]) func aLargeBinaryAnswerStreamsThroughWholeWithItsLength(express: Bool) async throws {
        try await PoolFixture.with { f in
            try await UpstreamHTTPTests.withService(f, express: express) { baseURL in
                let size = 24 << 20
                let answer = try await Self.stream(f.client, "\(baseURL)/v1/upstreams/fake/proxy/files/\(size)") { UInt8($0 % 251) }
                #expect(answer.status == 200)
                #expect(answer.bytes == size)
                #expect(answer.mismatches == 0)
                #expect(answer.headers["content-length"] == ["\(size)"])
                #expect(answer.headers["content-type"] == ["application/octet-stream"])
                #expect(answer.headers["cache-control"] == ["no-store"])
                // Answers stream whatever their size: maxBodyBytes (8 MiB) bounds what is read whole.
                #expect(size > f.pool.configuration.maxBodyBytes)
                #expect(await f.pool.snapshot().counters.retries == 0)
            }
        }
    }

    @Test func aPhraseInTheScannedPrefixEndsTheSessionOneFurtherInAndBinaryAnswersAreNotRead() async throws {
        try await PoolFixture.with(configure: {
            var configuration = fakeConfiguration(baseURL: $0)
            configuration.scanBytes = 4096
            return configuration
        }) { f in
            try await UpstreamHTTPTests.withService(f) { baseURL in
                let proxy = "\(baseURL)/v1/upstreams/fake/proxy"
                // In the first 4,096 bytes: the answer says the session ended, on both sessions tried.
                let early = try await UpstreamHTTPTests.request(f.client, "\(proxy)/text/100000?phraseAt=1000")
                #expect(early.status == 502)
                #expect(early.errorCode == "UPSTREAM_SESSION_LOST")
                #expect(await f.pool.snapshot().counters.expiredHidden == 1)

                // Past them: not read for phrases, passed on whole.
                let late = try await UpstreamHTTPTests.request(f.client, "\(proxy)/text/100000?phraseAt=50000")
                #expect(late.status == 200)
                #expect(late.body.utf8.count == 100_000)
                #expect(late.body.contains("your session has expired"))

                // Binary: never read for phrases, wherever they are.
                let binary = try await UpstreamHTTPTests.request(f.client, "\(proxy)/text/10000?phraseAt=10&type=application/octet-stream")
                #expect(binary.status == 200)
                #expect(binary.body.contains("your session has expired"))
                #expect(await f.pool.snapshot().counters.expiredHidden == 1)
            }
        }
    }

    /// By the express path and by the router.
    @Test(arguments: [true, false]) func aClientThatStopsReadingHoldsTheSiteBackInsteadOfFillingMemory(express: Bool) async throws {
        try await PoolFixture.with { f in
            try await UpstreamHTTPTests.withService(f, express: express) { baseURL in
                let size = 512 << 20
                var request = HTTPClientRequest(url: "\(baseURL)/v1/upstreams/fake/proxy/files/\(size)")
                request.headers.add(name: "authorization", value: "Bearer \(UpstreamHTTPTests.serviceKey)")
                let response = try await f.client.execute(request, timeout: .seconds(60))
                #expect(response.status == .ok)
                var iterator = response.body.makeAsyncIterator()
                let first = try await iterator.next()
                #expect((first?.readableBytes ?? 0) > 0)
                // The client reads no more. The site is let write until the buffers on the way
                // (sockets, the client's) are full, and then waits: it has written a small part.
                var streamed = f.fake.stats.bytesStreamed
                var unchanged = 0
                while unchanged < 10 {
                    try await Task.sleep(for: .milliseconds(100))
                    let now = f.fake.stats.bytesStreamed
                    unchanged = now == streamed ? unchanged + 1 : 0
                    streamed = now
                }
                print("a client that stopped reading: the site wrote \(streamed >> 20) MiB of \(size >> 20) MiB")
                #expect(streamed < 64 << 20)
                // Reading again resumes the stream.
                var more = 0
                while more < 8 << 20, let chunk = try await iterator.next() { more += chunk.readableBytes }
                #expect(more >= 8 << 20)
                #expect(f.fake.stats.bytesStreamed > streamed)
            }
        }
    }

    /// A body of `size` bytes sent in 64 KiB chunks, chunked (no length) unless `declared`.
    static func upload(_ size: Int, declared: Bool) -> (HTTPClientRequest.Body, String) {
        let bytes = (0..<size).map { UInt8(($0 * 7) % 256) }
        let digest = SHA256.hash(data: bytes).map { String(format: "%02x", $0) }.joined()
        let chunks = stride(from: 0, to: size, by: 65536).map { ByteBuffer(bytes: bytes[$0..<min($0 + 65536, size)]) }
        let sequence = AsyncStream<ByteBuffer> { continuation in
            for chunk in chunks { continuation.yield(chunk) }
            continuation.finish()
        }
        return (.stream(sequence, length: declared ? .known(Int64(size)) : .unknown), digest)
    }

    static func post(_ client: HTTPClient, _ url: String, _ body: HTTPClientRequest.Body) async throws -> UpstreamHTTPTests.Answer {
        var request = HTTPClientRequest(url: url)
        request.method = .POST
        request.headers.add(name: "authorization", value: "Bearer \(UpstreamHTTPTests.serviceKey)")
        request.headers.add(name: "content-type", value: "application/octet-stream")
        request.body = body
        let response = try await client.execute(request, timeout: .seconds(60))
        let buffer = try await response.body.collect(upTo: 1 << 20)
        return UpstreamHTTPTests.Answer(status: Int(response.status.code), headers: response.headers, body: String(buffer: buffer))
    }

    /// On Hummingbird's plain server, so that the route itself refuses the declared body past the
    /// limit (Tessera's server refuses it before routing, at once, and closes: an HTTP client
    /// still uploading may report the closed connection instead of the answer).
    @Test func largeAndChunkedUploadsStreamToTheSiteAndOneOverTheLimitIsRefused() async throws {
        try await PoolFixture.with { f in
            try await UpstreamHTTPTests.withService(f, express: false) { baseURL in
                let url = "\(baseURL)/v1/upstreams/fake/proxy/api/upload"
                for (size, declared) in [(3 << 20, false), (200_000, true), (1000, false)] {
                    let (body, digest) = Self.upload(size, declared: declared)
                    let answer = try await Self.post(f.client, url, body)
                    #expect(answer.status == 200, "\(size) bytes, declared \(declared): \(answer.body)")
                    #expect(answer.json?["bytes"] as? Int == size)
                    #expect(answer.json?["sha256"] as? String == digest)
                }
                // Past maxBodyBytes (8 MiB): chunked, cut off as it grows; declared, refused at once.
                for declared in [false, true] {
                    let (body, _) = Self.upload(9 << 20, declared: declared)
                    let answer = try await Self.post(f.client, url, body)
                    #expect(answer.status == 413, "declared \(declared)")
                    #expect(answer.errorCode == "REQ_1002", "declared \(declared): \(answer.body)")
                }
                #expect(f.fake.stats.actionsPerformed == 3)
                // The session was not blamed for the client's body.
                #expect(await f.pool.snapshot().counters.retirements.isEmpty)
            }
        }
    }

    @Test func aStreamedBodyThatMeetsAnEndedSessionIsNotSentAgain() async throws {
        try await PoolFixture.with { f in
            try await UpstreamHTTPTests.withService(f) { baseURL in
                await f.maintain()
                f.fake.expiredStyle = .redirectToLogin
                f.fake.expireAllSessions()
                let (body, _) = Self.upload(1 << 20, declared: true)
                let answer = try await Self.post(f.client, "\(baseURL)/v1/upstreams/fake/proxy/api/upload", body)
                #expect(answer.status == 502)
                #expect(answer.errorCode == "UPSTREAM_SESSION_LOST")
                #expect(f.fake.stats.actionsPerformed == 0)
                // The pool replaced the ended session: the next request is served.
                let (again, digest) = Self.upload(1 << 20, declared: true)
                let retried = try await Self.post(f.client, "\(baseURL)/v1/upstreams/fake/proxy/api/upload", again)
                #expect(retried.status == 200)
                #expect(retried.json?["sha256"] as? String == digest)
            }
        }
    }
}
