public import Foundation
import NIOCore
import NIOPosix
import Synchronization

/// A client that writes raw bytes to a server, for requests no HTTP client would send: broken
/// framing, a header a byte at a time, a body that never ends.
public enum RawHTTP {
    /// What the server did: the bytes it answered, and whether and when it closed the connection.
    public struct Answer: Sendable {
        public var bytes: [UInt8]
        /// Whether the server closed the connection (rather than the wait ending).
        public var closedByServer: Bool
        /// From the first byte sent until the server closed the connection, or the wait ended.
        public var elapsed: Duration

        public init(bytes: [UInt8], closedByServer: Bool, elapsed: Duration) {
            self.bytes = bytes
            self.closedByServer = closedByServer
            self.elapsed = elapsed
        }

        public var text: String { String(decoding: self.bytes, as: UTF8.self) }

        /// The first response's status line, such as `HTTP/1.1 400 Bad Request`.
        public var statusLine: String? { self.text.components(separatedBy: "\r\n").first.flatMap { $0.isEmpty ? nil : $0 } }

        /// The first response's status code.
        public var status: Int? {
            self.statusLine.flatMap { line in line.split(separator: " ").dropFirst().first.flatMap { Int($0) } }
        }

        /// The first response's header fields, names lower-cased.
        public var headers: [String: String] {
            guard let head = self.text.components(separatedBy: "\r\n\r\n").first else { return [:] }
            var fields: [String: String] = [:]
            for line in head.components(separatedBy: "\r\n").dropFirst() {
                guard let colon = line.firstIndex(of: ":") else { continue }
                fields[line[..<colon].lowercased()] = line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
            }
            return fields
        }

        /// The first response's body (by its `Content-Length`, else everything after the head).
        public var body: String {
            guard let range = self.text.range(of: "\r\n\r\n") else { return "" }
            let rest = self.text[range.upperBound...]
            guard let length = self.headers["content-length"].flatMap(Int.init) else { return String(rest) }
            return String(decoding: Array(rest.utf8).prefix(length), as: UTF8.self)
        }

        /// The body parsed as a JSON object.
        public var json: [String: Any]? {
            try? JSONSerialization.jsonObject(with: Data(self.body.utf8)) as? [String: Any]
        }

        /// `error.code` of an error body.
        public var errorCode: String? { (self.json?["error"] as? [String: Any])?["code"] as? String }

        /// How many responses the bytes hold (status lines at the start of a response).
        public var responseCount: Int { self.text.components(separatedBy: "HTTP/1.").count - 1 }
    }

    /// Sends `pieces` to `port` on 127.0.0.1, each after its delay, and collects what the server
    /// answers until it closes the connection or `wait` has passed since the first piece.
    public static func exchange(
        port: Int,
        pieces: [(delay: Duration, bytes: [UInt8])],
        wait: Duration = .seconds(10),
        closeAfterSending: Bool = false
    ) async throws -> Answer {
        let channel = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .connect(host: "127.0.0.1", port: port) { channel in
                channel.eventLoop.makeCompletedFuture {
                    try NIOAsyncChannel<ByteBuffer, ByteBuffer>(
                        wrappingChannelSynchronously: channel,
                        configuration: .init(isOutboundHalfClosureEnabled: true)
                    )
                }
            }
        let start = ContinuousClock.now
        let received = Received()
        return try await channel.executeThenClose { inbound, outbound in
            // What is due at once is written before anything else is scheduled: on a loaded
            // machine a task may start seconds late, and the server's keep-alive deadline would
            // then close a connection that was never silent.
            let due = pieces.prefix { $0.delay == .zero }
            var sent = true
            for piece in due where sent {
                do { try await outbound.write(ByteBuffer(bytes: piece.bytes)) } catch { sent = false }
            }
            let later = sent ? Array(pieces.dropFirst(due.count)) : []
            return try await withThrowingTaskGroup(of: Answer?.self) { group in
                group.addTask {
                    for piece in later {
                        if piece.delay > .zero { try await Task.sleep(for: piece.delay) }
                        do {
                            try await outbound.write(ByteBuffer(bytes: piece.bytes))
                        } catch {
                            // The server closed the connection: what it said is read below.
                            return nil
                        }
                    }
                    if closeAfterSending { outbound.finish() }
                    return nil
                }
                group.addTask {
                    do {
                        for try await buffer in inbound { received.bytes.withLock { $0 += buffer.readableBytesView } }
                    } catch {
                        // A reset after the answer: the answer still counts.
                    }
                    return Answer(bytes: received.bytes.withLock { $0 }, closedByServer: true, elapsed: ContinuousClock.now - start)
                }
                group.addTask {
                    try await Task.sleep(for: wait)
                    return Answer(bytes: received.bytes.withLock { $0 }, closedByServer: false, elapsed: ContinuousClock.now - start)
                }
                while let result = try await group.next() {
                    guard let answer = result else { continue }
                    group.cancelAll()
                    return answer
                }
                return Answer(bytes: received.bytes.withLock { $0 }, closedByServer: false, elapsed: ContinuousClock.now - start)
            }
        }
    }

    /// Sends `request` at once and collects the answer, as ``exchange(port:pieces:wait:closeAfterSending:)``.
    public static func exchange(port: Int, _ request: String, wait: Duration = .seconds(10)) async throws -> Answer {
        try await Self.exchange(port: port, pieces: [(.zero, Array(request.utf8))], wait: wait)
    }

    /// Sends `request` at once and collects the answer, as ``exchange(port:pieces:wait:closeAfterSending:)``.
    public static func exchange(port: Int, bytes: [UInt8], wait: Duration = .seconds(10)) async throws -> Answer {
        try await Self.exchange(port: port, pieces: [(.zero, bytes)], wait: wait)
    }
}

/// The bytes a server answered so far, shared by the reading task and the timer.
private final class Received: Sendable {
    let bytes = Mutex<[UInt8]>([])
}

extension RawHTTP {
    /// Sends `pieces` to `port`, each after its delay, whatever the server answers or whether it
    /// has stopped writing, and tells when a write first failed (the server closed the connection
    /// and reset it), from the first byte; `nil` when every piece was written.
    public static func sendingOn(port: Int, pieces: [(delay: Duration, bytes: [UInt8])]) async throws -> Duration? {
        let channel = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .channelOption(.allowRemoteHalfClosure, value: true)
            .connect(host: "127.0.0.1", port: port) { channel in
                channel.eventLoop.makeCompletedFuture {
                    try NIOAsyncChannel<ByteBuffer, ByteBuffer>(
                        wrappingChannelSynchronously: channel,
                        configuration: .init(isOutboundHalfClosureEnabled: true)
                    )
                }
            }
        let start = ContinuousClock.now
        return try await channel.executeThenClose { inbound, outbound in
            try await withThrowingTaskGroup(of: Duration?.self) { group in
                // What the server answers is read and dropped, so that it never waits on us.
                group.addTask {
                    do { for try await _ in inbound {} } catch {}
                    return nil
                }
                var failed: Duration?
                for piece in pieces where failed == nil {
                    if piece.delay > .zero { try await Task.sleep(for: piece.delay) }
                    do {
                        try await outbound.write(ByteBuffer(bytes: piece.bytes))
                    } catch {
                        failed = ContinuousClock.now - start
                    }
                }
                group.cancelAll()
                return failed
            }
        }
    }
}
