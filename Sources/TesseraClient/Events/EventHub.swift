import Foundation

/// Hands every event to every subscriber's stream.
final class EventHub: @unchecked Sendable {
    // Sendable: `subscribers` and `nextID` are read and written only while `lock` is held;
    // `AsyncStream.Continuation` is itself Sendable and is yielded to outside the lock.
    private let lock = NSLock()
    private var subscribers: [UInt64: AsyncStream<TesseraClientEvent>.Continuation] = [:]
    private var nextID: UInt64 = 0

    func subscribe() -> AsyncStream<TesseraClientEvent> {
        let (stream, continuation) = AsyncStream.makeStream(of: TesseraClientEvent.self, bufferingPolicy: .unbounded)
        let id = self.lock.withLock { () -> UInt64 in
            self.nextID += 1
            self.subscribers[self.nextID] = continuation
            return self.nextID
        }
        continuation.onTermination = { [weak self] _ in
            guard let self else { return }
            _ = self.lock.withLock { self.subscribers.removeValue(forKey: id) }
        }
        return stream
    }

    func emit(_ event: TesseraClientEvent) {
        let subscribers = self.lock.withLock { Array(self.subscribers.values) }
        for subscriber in subscribers { subscriber.yield(event) }
    }

    func finish() {
        let subscribers = self.lock.withLock { () -> [AsyncStream<TesseraClientEvent>.Continuation] in
            defer { self.subscribers = [:] }
            return Array(self.subscribers.values)
        }
        for subscriber in subscribers { subscriber.finish() }
    }
}
