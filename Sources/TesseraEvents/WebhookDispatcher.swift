public import AsyncHTTPClient
public import Foundation
public import Logging
import NIOCore
import NIOHTTP1
public import ServiceLifecycle
import Synchronization
public import Tessera

/// Delivers the outbox's events to webhook endpoints: at least once, in order per session,
/// signed as Standard Webhooks 1.0 says, retried with growing delays for a bounded time, then
/// dead until `tessera events retry`. An endpoint answering `410 Gone` is disabled.
///
/// Any number of nodes may run one for the same endpoints: the store gives each delivery to one
/// node at a time (a lease), so an event reaches an endpoint once unless a node dies between
/// the receiver's answer and recording it.
public final class WebhookDispatcher: Service {
    public struct Configuration: Sendable {
        /// How often the outbox is looked at when it had nothing new.
        public var pollInterval: Duration
        /// Deliveries claimed (and sent concurrently) per endpoint per pass.
        public var batchSize: Int

        public init(pollInterval: Duration = .milliseconds(250), batchSize: Int = 64) {
            self.pollInterval = pollInterval
            self.batchSize = batchSize
        }
    }

    /// What a dispatcher has done since it started.
    public struct Statistics: Sendable, Hashable {
        public var delivered = 0
        public var failedAttempts = 0
        public var dead = 0
        public var disabled = 0
    }

    public let endpoints: [WebhookEndpoint]
    /// Where the events are and their deliveries' state is.
    let store: any WebhookDeliveryStore & SessionStore
    let clock: any WallClock
    let configuration: Configuration
    let logger: Logger
    let client: HTTPClient
    let counters = Mutex(Statistics())
    /// Per endpoint: the newest event sequence this node has fanned out, to skip a write
    /// transaction when nothing is new.
    let fannedOut = Mutex<[String: Int64]>([:])

    /// - Parameters:
    ///   - store: the store the events are written to, where delivery state lives too
    public init(
        store: any WebhookDeliveryStore & SessionStore,
        endpoints: [WebhookEndpoint],
        clock: any WallClock = SystemClock(),
        configuration: Configuration = .init(),
        logger: Logger
    ) {
        self.store = store
        self.endpoints = endpoints
        self.clock = clock
        self.configuration = configuration
        self.logger = logger
        var client = HTTPClient.Configuration()
        client.redirectConfiguration = .disallow
        client.decompression = .disabled
        self.client = HTTPClient(eventLoopGroupProvider: .singleton, configuration: client)
    }

    public var statistics: Statistics { self.counters.withLock { $0 } }

    /// Delivers until graceful shutdown or cancellation; then waits for attempts in flight.
    public func run() async throws {
        do {
            try await cancelWhenGracefulShutdown {
                try await self.register()
                while !Task.isCancelled {
                    var busy = false
                    do {
                        busy = try await self.deliverDue() > 0
                    } catch is CancellationError {
                        return
                    } catch {
                        self.logger.warning("Webhook delivery pass failed; will try again", metadata: ["error": "\(Self.describe(error))"])
                    }
                    if !busy { try await Task.sleep(for: self.configuration.pollInterval) }
                }
            }
        } catch is CancellationError {
            // Shutting down is the expected end of this service.
        }
        await self.shutdown()
    }

    /// Closes the dispatcher's HTTP client; ``run()`` does it when it returns. A dispatcher used
    /// without ``run()`` (``deliverDue()`` alone) must be shut down.
    public func shutdown() async {
        try? await self.client.shutdown()
    }

    /// Creates each endpoint's delivery state if it has none.
    public func register() async throws {
        for endpoint in self.endpoints {
            let state = try await self.store.registerWebhookEndpoint(endpoint.name, at: self.clock.now)
            if let disabled = state.disabledAt {
                self.logger.warning(
                    "Webhook endpoint is disabled; `tessera events enable` resumes it",
                    metadata: ["endpoint": "\(endpoint.name)", "since": "\(disabled)", "reason": "\(state.disabledReason ?? "")"]
                )
            }
        }
    }

    /// One pass: hands every new event to each endpoint's deliveries and makes the attempts due.
    /// - Returns: how many attempts were made.
    @discardableResult
    public func deliverDue() async throws -> Int {
        let latest = try await self.store.latestSessionEvent()
        var attempts = 0
        for endpoint in self.endpoints {
            if self.fannedOut.withLock({ $0[endpoint.name] ?? -1 }) < latest {
                var moved = 0
                var batch = 0
                repeat {
                    batch = try await self.store.fanOutWebhookDeliveries(endpoint: endpoint.name, kinds: endpoint.kinds, at: self.clock.now, limit: 1000)
                    moved += batch
                } while batch == 1000
                // Nothing moved: another node fanned out, or the endpoint is disabled (and may be
                // enabled from elsewhere); look again next pass.
                if moved > 0 { self.fannedOut.withLock { $0[endpoint.name] = latest } }
            }
            attempts += try await self.attemptDue(endpoint)
        }
        return attempts
    }

    /// Claims the endpoint's due deliveries and attempts them concurrently (one per session at a
    /// time: the claim holds back a session's later events while an earlier one is pending).
    func attemptDue(_ endpoint: WebhookEndpoint) async throws -> Int {
        let now = self.clock.now
        let lease = now.addingTimeInterval(endpoint.timeout.timeInterval * 2 + 5)
        let due = try await self.store.claimWebhookDeliveries(endpoint: endpoint.name, at: now, leaseUntil: lease, limit: self.configuration.batchSize)
        guard !due.isEmpty else { return 0 }
        // After a 410 the endpoint is disabled; attempts already in flight end on their own.
        let delivered = await withTaskGroup(of: Int64?.self) { group in
            for delivery in due {
                group.addTask { await self.attempt(delivery, to: endpoint) ? delivery.event.sequence : nil }
            }
            var delivered: [Int64] = []
            for await sequence in group {
                if let sequence { delivered.append(sequence) }
            }
            return delivered
        }
        do {
            try await self.store.recordWebhookDelivered(endpoint: endpoint.name, sequences: delivered, at: self.clock.now)
            self.counters.withLock { $0.delivered += delivered.count }
        } catch {
            // The leases run out and the events are delivered again: at least once.
            self.logger.warning("Cannot record webhook deliveries", metadata: ["endpoint": "\(endpoint.name)", "error": "\(Self.describe(error))"])
        }
        return due.count
    }

    /// Sends one delivery and records what came of it, but for a success, which the caller
    /// records with the pass's others.
    /// - Returns: whether the receiver took the event.
    func attempt(_ delivery: WebhookDelivery, to endpoint: WebhookEndpoint) async -> Bool {
        let event = delivery.event
        let (status, failure) = await self.send(event, to: endpoint)
        let now = self.clock.now
        do {
            if let status, (200..<300).contains(status) { return true }
            if status == 410 {
                try await self.store.disableWebhookEndpoint(endpoint.name, at: now, reason: "the receiver answered 410 Gone")
                self.counters.withLock { $0.disabled += 1 }
                self.logger.error(
                    "Webhook endpoint answered 410 Gone and is disabled; `tessera events enable` resumes it",
                    metadata: ["endpoint": "\(endpoint.name)"]
                )
                return false
            }
            let error = failure ?? "the receiver answered \(status ?? 0)"
            let next = endpoint.retry.nextAttempt(after: delivery.attempts + 1, at: now, eventTime: event.time, random: .random(in: 0...1))
            try await self.store.recordWebhookAttemptFailed(
                endpoint: endpoint.name,
                sequence: event.sequence,
                at: now,
                nextAttemptAt: next,
                status: status,
                error: error
            )
            self.counters.withLock {
                $0.failedAttempts += 1
                if next == nil { $0.dead += 1 }
            }
            self.logger.log(
                level: next == nil ? .error : .warning,
                next == nil ? "Webhook delivery is dead; `tessera events retry` tries it again" : "Webhook delivery failed; will retry",
                metadata: [
                    "endpoint": "\(endpoint.name)", "event": "\(event.id)", "attempt": "\(delivery.attempts + 1)", "error": "\(error)",
                ]
            )
        } catch {
            // The lease runs out and the delivery is attempted again: at least once.
            self.logger.warning("Cannot record a webhook attempt", metadata: ["endpoint": "\(endpoint.name)", "error": "\(Self.describe(error))"])
        }
        return false
    }

    /// Posts the event: the status the receiver answered, or why there was none.
    func send(_ event: SessionEvent, to endpoint: WebhookEndpoint) async -> (status: Int?, failure: String?) {
        let body = event.json
        let timestamp = Int64(self.clock.now.timeIntervalSince1970)
        var request = HTTPClientRequest(url: endpoint.url.absoluteString)
        request.method = .POST
        request.headers.add(name: "content-type", value: "application/json")
        request.headers.add(name: "user-agent", value: "Tessera-Webhooks/1")
        request.headers.add(name: "webhook-id", value: event.id)
        request.headers.add(name: "webhook-timestamp", value: "\(timestamp)")
        request.headers.add(
            name: "webhook-signature",
            value: WebhookSignature.header(id: event.id, timestamp: timestamp, body: body, secrets: endpoint.secrets)
        )
        request.body = .bytes(ByteBuffer(bytes: body))
        do {
            let response = try await self.client.execute(request, timeout: .init(endpoint.timeout))
            // The answer's body is not needed; read a little of it so the connection can be reused.
            _ = try? await response.body.collect(upTo: 64 * 1024)
            return (Int(response.status.code), nil)
        } catch {
            return (nil, Self.describe(error))
        }
    }

    /// Words for an error that never carry a secret or a URL's credentials.
    static func describe(_ error: any Error) -> String {
        switch error {
        case let error as any LoggableError: return error.description
        case let error as HTTPClientError where error == .deadlineExceeded || error == .readTimeout || error == .connectTimeout:
            return "the attempt timed out"
        case is HTTPClientError: return "the request failed (\(type(of: error)))"
        default:
            let text = "\(error)"
            if text.contains("refused") { return "connection refused" }
            return "the request failed (\(type(of: error)))"
        }
    }
}
