public import Foundation
import HTTPTypes
import Hummingbird
import Logging
import NIOCore
import ServiceLifecycle
import Synchronization

/// A webhook receiver for tests: a real HTTP server on a loopback port that records every
/// request to `POST /hook` (its Standard Webhooks headers and its exact body) and answers with
/// the status ``answer`` chooses, after ``delay``.
public final class WebhookReceiver: Sendable {
    /// One request as it arrived.
    public struct Request: Sendable {
        public var id: String
        public var timestamp: String
        public var signature: String
        public var body: [UInt8]
        /// The status it was answered.
        public var status: Int
        public var receivedAt: ContinuousClock.Instant
    }

    struct State {
        var requests: [Request] = []
        var answer: @Sendable (_ attempt: Int, _ id: String) -> Int = { _, _ in 200 }
        var delay: Duration = .zero
        var attempts: [String: Int] = [:]
    }

    let state = Mutex(State())
    let serviceGroup: ServiceGroup
    let task: Task<Void, any Error>
    public let port: Int
    public var url: URL { URL(string: "http://127.0.0.1:\(self.port)/hook")! }

    init(serviceGroup: ServiceGroup, task: Task<Void, any Error>, port: Int) {
        self.serviceGroup = serviceGroup
        self.task = task
        self.port = port
    }

    /// Every request so far, in arrival order.
    public var requests: [Request] { self.state.withLock { $0.requests } }

    /// The requests answered 2xx.
    public var accepted: [Request] { self.requests.filter { (200..<300).contains($0.status) } }

    /// Chooses the status of each request from how many times its `webhook-id` has arrived
    /// (1 for the first) and the id.
    public func answer(_ choose: @escaping @Sendable (_ attempt: Int, _ id: String) -> Int) {
        self.state.withLock { $0.answer = choose }
    }

    /// Answers every request with `status`.
    public func answer(_ status: Int) { self.answer { _, _ in status } }

    /// Waits this long before answering.
    public func delay(_ duration: Duration) { self.state.withLock { $0.delay = duration } }

    /// Starts the receiver on 127.0.0.1 with a free port and returns once it listens.
    public static func start() async throws -> WebhookReceiver {
        var logger = Logger(label: "webhook-receiver")
        logger.logLevel = .warning
        let (ports, portContinuation) = AsyncStream.makeStream(of: Int.self)
        let box = ReceiverBox()
        let router = Router()
        router.post("/hook") { request, _ -> Response in
            let body = try await request.body.collect(upTo: 1 << 20)
            guard let receiver = box.receiver.withLock({ $0 }) else { return Response(status: .serviceUnavailable) }
            return await receiver.record(request, body: Array(body.readableBytesView))
        }
        let app = Application(
            router: router,
            configuration: .init(address: .hostname("127.0.0.1", port: 0)),
            onServerRunning: { channel in portContinuation.yield(channel.localAddress?.port ?? 0) },
            logger: logger
        )
        let serviceGroup = ServiceGroup(configuration: .init(services: [app], logger: logger))
        let task = Task {
            defer { portContinuation.finish() }
            try await serviceGroup.run()
        }
        var iterator = ports.makeAsyncIterator()
        guard let port = await iterator.next(), port > 0 else {
            task.cancel()
            throw FixtureError("the webhook receiver did not start listening")
        }
        let receiver = WebhookReceiver(serviceGroup: serviceGroup, task: task, port: port)
        box.receiver.withLock { $0 = receiver }
        return receiver
    }

    func record(_ request: Hummingbird.Request, body: [UInt8]) async -> Response {
        let receivedAt = ContinuousClock.now
        let id = request.headers[HTTPField.Name("webhook-id")!] ?? ""
        let (status, delay) = self.state.withLock { state -> (Int, Duration) in
            state.attempts[id, default: 0] += 1
            return (state.answer(state.attempts[id]!, id), state.delay)
        }
        if delay > .zero { try? await Task.sleep(for: delay) }
        let recorded = Request(
            id: id,
            timestamp: request.headers[HTTPField.Name("webhook-timestamp")!] ?? "",
            signature: request.headers[HTTPField.Name("webhook-signature")!] ?? "",
            body: body,
            status: status,
            receivedAt: receivedAt
        )
        self.state.withLock { $0.requests.append(recorded) }
        return Response(status: .init(code: status))
    }

    /// Stops the server, cancelling it if open connections hold it up for more than 2 seconds.
    public func stop() async {
        await self.serviceGroup.triggerGracefulShutdown()
        let task = self.task
        let watchdog = Task {
            try? await Task.sleep(for: .seconds(2))
            task.cancel()
        }
        _ = await task.result
        watchdog.cancel()
    }
}

/// Lets the route reach the receiver made after the router.
final class ReceiverBox: Sendable {
    let receiver = Mutex<WebhookReceiver?>(nil)
}
