import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1
import Synchronization

/// A client of a server-sent event stream over real HTTP: parses `id:`, `event:` and `data:`
/// lines into events as they arrive. ``close()`` ends the connection.
final class EventStreamReader: Sendable {
    struct Event: Sendable, Hashable {
        var id: String?
        var event: String?
        var data: String
    }

    struct State {
        var status: Int?
        var events: [Event] = []
        var comments = 0
        var ended = false
        var failure: String?
    }

    let state = Mutex(State())
    let task = Mutex<Task<Void, Never>?>(nil)

    /// Opens the stream and returns once the answer's head has arrived.
    static func open(_ url: String, headers: [(String, String)] = []) async throws -> EventStreamReader {
        let reader = EventStreamReader()
        var request = HTTPClientRequest(url: url)
        for (name, value) in headers { request.headers.add(name: name, value: value) }
        let task = Task {
            do {
                let response = try await HTTPClient.shared.execute(request, timeout: .seconds(600))
                reader.state.withLock { $0.status = Int(response.status.code) }
                var pending = ""
                for try await buffer in response.body {
                    pending += String(buffer: buffer)
                    while let end = pending.range(of: "\n\n") {
                        let block = String(pending[..<end.lowerBound])
                        pending = String(pending[end.upperBound...])
                        reader.take(block)
                    }
                }
                reader.state.withLock { $0.ended = true }
            } catch {
                reader.state.withLock {
                    $0.ended = true
                    $0.failure = "\(error)"
                }
            }
        }
        reader.task.withLock { $0 = task }
        for _ in 0..<500 where reader.state.withLock({ $0.status == nil && !$0.ended }) {
            try await Task.sleep(for: .milliseconds(10))
        }
        return reader
    }

    func take(_ block: String) {
        var event = Event(data: "")
        var isEvent = false
        for line in block.split(separator: "\n", omittingEmptySubsequences: false) {
            if line.hasPrefix(":") {
                self.state.withLock { $0.comments += 1 }
            } else if line.hasPrefix("id: ") {
                event.id = String(line.dropFirst(4))
            } else if line.hasPrefix("event: ") {
                event.event = String(line.dropFirst(7))
                isEvent = true
            } else if line.hasPrefix("data: ") {
                event.data += String(line.dropFirst(6))
                isEvent = true
            }
        }
        if isEvent { self.state.withLock { $0.events.append(event) } }
    }

    var status: Int? { self.state.withLock { $0.status } }
    var events: [Event] { self.state.withLock { $0.events } }
    var comments: Int { self.state.withLock { $0.comments } }
    var ended: Bool { self.state.withLock { $0.ended } }

    /// Waits (bounded) until `condition` holds of the reader.
    func wait(upTo limit: Duration = .seconds(30), until condition: (EventStreamReader) -> Bool) async throws -> Bool {
        let deadline = ContinuousClock.now + limit
        while ContinuousClock.now < deadline {
            if condition(self) { return true }
            try await Task.sleep(for: .milliseconds(20))
        }
        return condition(self)
    }

    func close() async {
        let task = self.task.withLock { $0 }
        task?.cancel()
        await task?.value
    }
}
