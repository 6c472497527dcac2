import Foundation
import Logging
import NIOCore
import NIOHTTP1

extension TesseraClient {
    /// Starts the one shared refresh, unless backing off or past the limit.
    func startRefresh() throws -> UInt64 {
        guard let current = self.current else { throw self.noSessionError() }
        let now = self.clock.now
        if let remaining = self.backoff.remaining(at: now) {
            throw TesseraClientError(
                .refreshUnavailable,
                "the last refresh failed for a passing reason; the next is tried in \(remaining)",
                retryAfter: remaining
            )
        }
        // A refresh that is due (the token is within its margin, or expired) is one of at most two
        // per lifetime, and is not counted; one asked for earlier (a `401` to the current token,
        // `refresh()`) is.
        let due = now >= current.refreshAt
        if !due {
            guard self.limiter.allows(at: now) else { throw self.refreshLimitExceeded(at: now) }
            self.limiter.record(at: now)
            self.limitReported = false
        }
        self.lastFlightID += 1
        let id = self.lastFlightID
        let generation = self.generation
        let presented = current.credentials
        // Unstructured and owned by the client: a caller's cancellation never reaches it, only a
        // sign-out does.
        let task = Task { await self.performRefresh(flightID: id, generation: generation, presented: presented, due: due) }
        self.flight = Flight(id: id, task: task)
        return id
    }

    /// The error of a refresh past the limit; the first of a run is logged as a warning.
    func refreshLimitExceeded(at now: MonotonicInstant) -> TesseraClientError {
        let metadata: Logger.Metadata = ["maximum": "\(self.limiter.maximum)", "window": "\(self.limiter.window)"]
        if self.limitReported {
            self.logger.debug("refresh limit reached", metadata: metadata)
        } else {
            self.limitReported = true
            self.logger.warning("refresh limit reached", metadata: metadata)
        }
        return TesseraClientError(
            .refreshLimitExceeded,
            "more than \(self.limiter.maximum) refreshes that were not due, in \(self.limiter.window)",
            retryAfter: now.duration(to: self.limiter.nextAdmission(after: now))
        )
    }

    func performRefresh(flightID: UInt64, generation: UInt64, presented: TesseraCredentials, due: Bool) async {
        let sentAt = self.clock.now
        let sentDate = self.clock.date
        let outcome: RefreshOutcome
        do {
            let request = try TesseraHTTPRequest(method: .POST, path: "/v1/token/refresh", json: RefreshBody(refreshToken: presented.refreshToken))
            outcome = RefreshOutcome.classify(try await self.transport.send(request))
        } catch {
            outcome = .transient(
                TesseraClientError(.refreshUnavailable, "the refresh got no answer: \(error); the session is kept", underlyingError: error)
            )
        }
        // Signed out (or signed in anew) meanwhile: the answer belongs to a session this client
        // no longer holds, and is never written back.
        guard generation == self.generation, self.flight?.id == flightID else {
            self.logger.debug("a refresh finished after the session it was for ended; discarded")
            return
        }
        switch outcome {
        case .refreshed(let tokens):
            self.backoff.reset()
            let credentials = tokens.credentials(receivedAt: sentDate, previous: presented)
            self.save(credentials)
            let credential = self.takeOn(credentials, expiresAt: sentAt.advanced(by: credentials.lifetime))
            if credentials.lifetime < Configuration.shortestLifetime {
                // Shorter than the service ever issues (an expired one included): of little or no
                // use, so it counts against the limit even when due, and a service that answers
                // only such tokens would have the client refresh without end: a few in a row end
                // the session.
                if due { self.limiter.record(at: sentAt) }
                self.shortLivedInARow += 1
                self.logger.warning(
                    "the refresh was answered with a token shorter than the service issues",
                    metadata: ["lifetime": "\(credentials.lifetime)"]
                )
                if self.shortLivedInARow >= self.configuration.maximumRefreshes {
                    self.end(.refreshLoop, serverError: nil)
                    return
                }
            } else {
                self.shortLivedInARow = 0
            }
            self.logger.debug("refreshed", metadata: ["session": "\(credentials.sessionID)"])
            self.hub.emit(.credentialsRefreshed(sessionID: credentials.sessionID))
            self.finishFlight(.success(credential))
        case .alreadyUsed(let serverError):
            // Another process sharing the store may have rotated the token: if the store holds
            // another one, it is the successor, and this is no theft.
            if self.adoptStoredCredentials(unlessRefreshToken: presented.refreshToken), let current = self.current {
                self.finishFlight(.success(current.credential))
            } else {
                self.end(.refreshTokenReused, serverError: serverError)
            }
        case .terminal(let reason, let serverError):
            self.end(reason, serverError: serverError)
        case .transient(var error):
            let now = self.clock.now
            error.retryAfter = self.backoff.fail(at: now, retryAfter: error.retryAfter)
            self.logger.notice("refresh failed; the session is kept", metadata: ["error": "\(error)"])
            self.finishFlight(.failure(error))
            self.scheduleTimer(at: self.backoff.until)
        }
    }

    func finishFlight(_ result: Result<Credential, TesseraClientError>) {
        guard let flight = self.flight else { return }
        self.flight = nil
        for waiter in flight.waiters.values { waiter.resume(with: result.mapError { $0 as any Error }) }
    }

    /// Waits for the refresh `flightID`; the caller's cancellation ends the wait, not the refresh.
    func wait(for flightID: UInt64) async throws -> Credential {
        self.lastWaiterID += 1
        let waiterID = self.lastWaiterID
        return try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Credential, any Error>) in
                if Task.isCancelled {
                    continuation.resume(throwing: CancellationError())
                } else if self.flight?.id == flightID {
                    self.flight?.waiters[waiterID] = continuation
                } else if let current = self.current {
                    continuation.resume(returning: current.credential)
                } else {
                    continuation.resume(throwing: self.noSessionError())
                }
            }
        } onCancel: {
            Task { await self.cancelWait(waiterID, of: flightID) }
        }
    }

    func cancelWait(_ waiterID: UInt64, of flightID: UInt64) {
        guard self.flight?.id == flightID, let waiter = self.flight?.waiters.removeValue(forKey: waiterID) else { return }
        waiter.resume(throwing: CancellationError())
    }

    /// Starts a refresh with no request waiting, if one is due and allowed; otherwise arms the
    /// timer for when it will be.
    func refreshInBackground() {
        guard let current = self.current, self.flight == nil else { return }
        let now = self.clock.now
        if self.adoptStoredCredentials(unlessRefreshToken: current.credentials.refreshToken), let adopted = self.current, now < adopted.refreshAt {
            return
        }
        guard let current = self.current else { return }
        guard now >= current.refreshAt else {
            self.scheduleTimer(at: current.refreshAt)
            return
        }
        if let until = self.backoff.until, now < until {
            self.scheduleTimer(at: until)
            return
        }
        do {
            _ = try self.startRefresh()
        } catch {
            self.scheduleTimer(at: self.limiter.nextAdmission(after: now))
        }
    }

    /// Arms the refresh timer for `deadline` on the monotonic clock, replacing the previous one.
    func scheduleTimer(at deadline: MonotonicInstant?) {
        self.timer?.cancel()
        self.timer = nil
        guard self.configuration.automaticRefresh, let deadline, self.current != nil else { return }
        self.timerID += 1
        let id = self.timerID
        let clock = self.clock
        self.timer = Task { [weak self] in
            do {
                try await clock.sleep(until: deadline)
            } catch {
                return
            }
            await self?.timerFired(id)
        }
    }

    func timerFired(_ id: UInt64) {
        guard id == self.timerID else { return }
        self.timer = nil
        self.refreshInBackground()
    }
}
