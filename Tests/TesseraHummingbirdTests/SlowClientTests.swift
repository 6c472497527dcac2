import Foundation
import Testing
import TesseraTestSupport

/// Slow, silent and refused clients against the real process, cut off at their deadlines. They
/// assert wall-clock bounds, so they run while no heavy suite loads the cores (a client task
/// scheduled seconds late would otherwise look like a silent client).
@Suite(.timed) struct SlowClientTests {
    static let shortDeadlines = HostileConnectionTests.shortDeadlines

    @Test func slowAndSilentClientsAreCutOffAtTheirDeadlines() async throws {
        let server = try await HostileServer(arguments: Self.shortDeadlines)
        // A header a byte every 300 ms: answered 408 two seconds after its first byte, and the
        // answer arrives although the client goes on sending (the server lingers while it does).
        let header = Array("GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n\r\n".utf8)
        let trickle = try await RawHTTP.exchange(
            port: server.port,
            pieces: header.enumerated().map { ($0.offset == 0 ? .zero : .milliseconds(300), [$0.element]) },
            wait: .seconds(8)
        )
        #expect(trickle.status == 408, "\(trickle.text)")
        #expect(trickle.errorCode == "REQ_1009")
        #expect(trickle.closedByServer)
        #expect(trickle.elapsed < .seconds(5))

        // A connection that says nothing is closed after the keep-alive deadline, without a word.
        let silent = try await RawHTTP.exchange(port: server.port, pieces: [], wait: .seconds(8))
        #expect(silent.closedByServer)
        #expect(silent.bytes.isEmpty)
        #expect(silent.elapsed < .seconds(5))

        // A body that stops coming: 408 when its deadline passes.
        let stalled = try await RawHTTP.exchange(
            port: server.port,
            pieces: [(.zero, Array("POST /v1/login HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 50\r\n\r\n{\"u".utf8))],
            wait: .seconds(8)
        )
        #expect(stalled.status == 408, "\(stalled.text)")
        #expect(stalled.closedByServer)
        #expect(stalled.elapsed < .seconds(5))
        #expect(try await server.stillServes())
    }

    @Test func aRefusedClientThatGoesOnSendingIsReadOnAndThenCutOff() async throws {
        let server = try await HostileServer(arguments: Self.shortDeadlines)
        // A header a byte every 250 ms for 8 s: refused 408 after 2 s, then the server reads on
        // while the client sends (a close now would reset the connection, and a reset can
        // discard the 408 before the client reads it) ...
        let header = Array("GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: ".utf8) + Array(repeating: UInt8(ascii: "a"), count: 200)
        let pieces = header.enumerated().map { ($0.offset == 0 ? Duration.zero : .milliseconds(250), [$0.element]) }
        let steady = try await RawHTTP.sendingOn(port: server.port, pieces: Array(pieces.prefix(32)))
        #expect(steady == nil, "a write failed after \(steady.map { "\($0)" } ?? "")")
        // ... but for 10 s at most: a client sending forever is cut off.
        let endless = try await RawHTTP.sendingOn(port: server.port, pieces: pieces)
        #expect(endless != nil)
        #expect(endless.map { $0 < .seconds(20) } == true, "\(String(describing: endless))")
        #expect(try await server.stillServes())
    }
}
