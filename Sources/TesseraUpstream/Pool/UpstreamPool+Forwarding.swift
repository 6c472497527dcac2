import Tessera

/// Requests forwarded through pooled sessions.
extension UpstreamPool {
    /// Sends `request` through a pooled session and returns the site's answer, with the
    /// session's expiry hidden, once its verdict is known: the head and, for a text answer when
    /// phrases are configured, its first `scanBytes` bytes. The rest of the body streams from
    /// ``UpstreamStreamedResponse/rest`` as fast as it is read; a binary answer is never scanned.
    /// The session goes back to the pool when the verdict is known, before the body is read.
    ///
    /// The retry rule: a request is sent at most twice.
    /// - An answer that shows the session had ended (an expiry status, phrase or redirect to the
    ///   login page) is retried once on a fresh session, whatever the method: such an answer is
    ///   the site's refusal to serve the request as the user, so it did not act on it.
    /// - A transient failure (`502`, `503`, `504`, or a connection that broke after the request
    ///   was sent) is retried only for idempotent methods (GET, HEAD, OPTIONS, TRACE, PUT,
    ///   DELETE); the site may have acted on a POST or PATCH, so those get the answer as it came
    ///   (or `502 UPSTREAM_UNAVAILABLE`).
    /// - A connection that failed before the request was sent is retried for every method.
    /// - A request whose body streamed (``UpstreamRequest/bodyStream``) is sent once: an ended
    ///   session is `UPSTREAM_SESSION_LOST`, a transient answer is passed on.
    /// - `429` is passed on, and the pool stops sending until its `Retry-After`.
    ///
    /// Throws ``TesseraError`` values: `UPSTREAM_LOGIN_FAILED`, `UPSTREAM_EXHAUSTED`,
    /// `UPSTREAM_UNAVAILABLE`, `UPSTREAM_RATE_LIMITED`, `UPSTREAM_SESSION_LOST`, `UPSTREAM_BLOCKED`,
    /// and the streamed body's own error (past its limit).
    public nonisolated func forward(_ request: UpstreamRequest) async throws -> UpstreamStreamedResponse {
        try await self.forward(request, scanBytes: self.scanBytes)
    }

    /// How many of an answer's first bytes the verdict reads (`scanBytes` at most; none of a
    /// binary answer).
    nonisolated var scanBytes: @Sendable (UpstreamResponse) -> Int {
        let reader = self.reader
        let limit = self.configuration.scanBytes
        return { reader.bytesToScan(of: $0, upTo: limit) }
    }

    /// ``forward(_:)`` with the whole answer read (up to `maxBodyBytes`) and judged.
    public nonisolated func send(_ request: UpstreamRequest) async throws -> UpstreamResponse {
        let limit = self.configuration.maxBodyBytes
        let answer = try await self.forward(request) { _ in limit + 1 }
        do {
            return try await answer.collected(upTo: limit)
        } catch {
            throw TesseraError.upstreamUnavailable(upstream: self.name)
        }
    }

    /// The retry loop of ``forward(_:)``. `first`, when given, is the first attempt, already
    /// made (by ``forwardExpress(_:)``) and not yet judged: its lease is still lent.
    nonisolated func forward(
        _ request: UpstreamRequest,
        scanBytes: @escaping @Sendable (UpstreamResponse) -> Int,
        first: (lease: UpstreamLease, outcome: Result<UpstreamStreamedResponse, any Error>)? = nil
    ) async throws -> UpstreamStreamedResponse {
        var attempt = 0
        var first = first
        while true {
            attempt += 1
            let mayRetry = attempt < 2 && request.isReplayable
            let lease: UpstreamLease
            let outcome: Result<UpstreamStreamedResponse, any Error>
            if let made = first.take() {
                (lease, outcome) = made
            } else {
                // A retry goes to a session seen logged in at this instant: just logged in, or
                // probed now. Another session may have ended unnoticed at the same moment as the
                // first.
                lease = try await self.borrow(freshness: attempt == 1 ? self.configuration.healthFreshness : 0)
                do {
                    outcome = .success(try await lease.connection.stream(request, scanBytes: scanBytes))
                } catch {
                    outcome = .failure(error)
                }
            }
            switch outcome {
            case .success(let response):
                let verdict = self.reader.verdict(on: response.prefix)
                await self.finish(lease, verdict: verdict)
                switch verdict {
                case .ok:
                    return response
                case .expired:
                    guard mayRetry else { throw TesseraError.upstreamSessionLost(upstream: self.name) }
                    await self.count {
                        $0.expiredHidden += 1
                        $0.retries += 1
                    }
                case .transient:
                    guard mayRetry, request.isIdempotent else { return response }
                    await self.count { $0.retries += 1 }
                case .rateLimited:
                    return response
                case .blocked:
                    throw TesseraError.upstreamBlocked(upstream: self.name)
                }
            case .failure(let error as TesseraError):
                // The client's streamed body failed (past its limit): not the session's fault.
                await self.finish(lease, verdict: .ok)
                throw error
            case .failure(let error):
                let sent = (error as? UpstreamTransportError)?.requestSent ?? true
                await self.finish(lease, verdict: .transient, error: "\(error)")
                guard mayRetry, request.isIdempotent || !sent else {
                    throw TesseraError.upstreamUnavailable(upstream: self.name)
                }
                await self.count { $0.retries += 1 }
            }
        }
    }
}
