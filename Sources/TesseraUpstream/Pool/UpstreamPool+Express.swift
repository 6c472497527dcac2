import Foundation
public import NIOCore
import Tessera

/// What ``UpstreamPool/forwardExpress(_:)`` came to.
public enum UpstreamExpressOutcome: Sendable {
    /// The upstream's sessions are a browser's, the body streams, or (without `orForward`) no
    /// session could be lent at once: nothing was sent. Forward the request with
    /// ``UpstreamPool/forward(_:)``.
    case declined
    /// The answer, as ``UpstreamPool/forward(_:)`` would have returned it.
    case answered(UpstreamStreamedResponse)
    /// The error ``UpstreamPool/forward(_:)`` would have thrown.
    case failed(any Error)
}

/// Requests forwarded without a task.
extension UpstreamPool {
    /// ``forward(_:)`` without a task, when a session can be lent at once: an idle one seen
    /// logged in within `healthFreshness`. The session is lent on the pool's event loop, the
    /// request goes out from there, and the answer is judged there; when it is fine (the common
    /// case) the session is taken back and the answer returned with no task at all. Anything
    /// else (an ended session, a failure) is judged and retried as ``forward(_:)`` does, in a
    /// task. When no session can be lent at once, nothing is sent:
    /// ``UpstreamExpressOutcome/declined`` (unless `orForward`).
    ///
    /// For requests whose body, if any, is held whole; one that streams is declined.
    ///
    /// - Parameter orForward: when no session can be lent at once, forward the request as
    ///   ``forward(_:)`` does (probing a session, waiting for one, logging one in), in a task
    ///   started from the pool's loop, instead of declining: the caller need not come back.
    public nonisolated func forwardExpress(_ request: UpstreamRequest, orForward: Bool = false) -> EventLoopFuture<UpstreamExpressOutcome> {
        if self.eventLoop.inEventLoop {
            return self.assumeIsolated { $0.startExpress(request, orForward: orForward) }
        }
        return self.eventLoop.flatSubmit { self.assumeIsolated { $0.startExpress(request, orForward: orForward) } }
    }

    private func startExpress(_ request: UpstreamRequest, orForward: Bool) -> EventLoopFuture<UpstreamExpressOutcome> {
        let now = self.clock.now
        guard self.servesExpress, request.bodyStream == nil else { return self.eventLoop.makeSucceededFuture(.declined) }
        let scanBytes = self.scanBytes
        guard !self.isShutDown, self.rateLimitedUntil.map({ $0 <= now }) ?? true,
            let id = self.pickIdle(now: now),
            let index = self.slots.index(forKey: id),
            now.timeIntervalSince(Self.peek(&self.slots.values[index]) { $0.lastCheckedAt }) <= self.configuration.healthFreshness,
            let session = Self.peek(&self.slots.values[index], { $0.connection as? HTTPUpstreamSession }),
            let lease = self.lendSlot(id, now: now)
        else {
            guard orForward else { return self.eventLoop.makeSucceededFuture(.declined) }
            let promise = self.eventLoop.makePromise(of: UpstreamExpressOutcome.self)
            self.forwardInTask(request, scanBytes: scanBytes, first: nil, promise: promise)
            return promise.futureResult
        }
        let promise = self.eventLoop.makePromise(of: UpstreamExpressOutcome.self)
        session.streamNow(request, scanBytes: scanBytes, on: self.eventLoop)
            .hop(to: self.eventLoop)
            .whenComplete { result in
                self.assumeIsolated { $0.settleExpress(result, lease: lease, request: request, scanBytes: scanBytes, promise: promise) }
            }
        return promise.futureResult
    }

    private func settleExpress(
        _ result: Result<UpstreamStreamedResponse, any Error>,
        lease: UpstreamLease,
        request: UpstreamRequest,
        scanBytes: @escaping @Sendable (UpstreamResponse) -> Int,
        promise: EventLoopPromise<UpstreamExpressOutcome>
    ) {
        if case .success(let response) = result, case .ok = self.reader.verdict(on: response.prefix) {
            self.finish(lease, verdict: .ok)
            promise.succeed(.answered(response))
            return
        }
        // An ended session, a transient answer, a failure: the retry rule of forward(_:), with
        // this attempt as its first.
        self.forwardInTask(request, scanBytes: scanBytes, first: (lease, result), promise: promise)
    }

    /// Completes `promise` with what ``forward(_:)``'s retry loop comes to, in a task.
    private func forwardInTask(
        _ request: UpstreamRequest,
        scanBytes: @escaping @Sendable (UpstreamResponse) -> Int,
        first: (lease: UpstreamLease, outcome: Result<UpstreamStreamedResponse, any Error>)?,
        promise: EventLoopPromise<UpstreamExpressOutcome>
    ) {
        promise.completeWithTask {
            do {
                return .answered(try await self.forward(request, scanBytes: scanBytes, first: first))
            } catch {
                return .failed(error)
            }
        }
    }
}
