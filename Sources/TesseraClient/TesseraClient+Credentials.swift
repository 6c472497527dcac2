import Foundation
import Logging
import NIOCore
import NIOHTTP1

extension TesseraClient {
    func loadIfNeeded() {
        guard !self.loaded else { return }
        self.loaded = true
        do {
            guard let stored = try self.store.load() else { return }
            self.takeOn(stored, expiresAt: self.rebase(stored))
        } catch {
            self.logger.warning("the stored credentials could not be read", metadata: ["error": "\(error)"])
        }
    }

    /// The expiry of stored credentials on the monotonic clock: what remained of their lifetime
    /// on the wall clock, counted from now.
    func rebase(_ credentials: TesseraCredentials) -> MonotonicInstant {
        let remaining = credentials.expiresAt.timeIntervalSince(self.clock.date)
        return self.clock.now.advanced(by: .milliseconds(Int64((remaining * 1000).rounded(.down))))
    }

    @discardableResult
    func takeOn(_ credentials: TesseraCredentials, expiresAt: MonotonicInstant) -> Credential {
        self.lastVersion += 1
        let margin = min(self.configuration.refreshMargin, credentials.lifetime / 2)
        let current = Current(
            credentials: credentials,
            version: self.lastVersion,
            expiresAt: expiresAt,
            refreshAt: expiresAt.advanced(by: .zero - margin)
        )
        self.current = current
        self.scheduleTimer(at: current.refreshAt)
        return current.credential
    }

    /// Takes on the stored credentials if the store holds another refresh token than
    /// `refreshToken`: another process sharing the store has rotated it.
    func adoptStoredCredentials(unlessRefreshToken refreshToken: String) -> Bool {
        let stored: TesseraCredentials?
        do {
            stored = try self.store.load()
        } catch {
            self.logger.warning("the stored credentials could not be read", metadata: ["error": "\(error)"])
            return false
        }
        guard let stored, stored.refreshToken != refreshToken else { return false }
        self.takeOn(stored, expiresAt: self.rebase(stored))
        self.logger.debug("took on the credentials another process stored", metadata: ["session": "\(stored.sessionID)"])
        self.hub.emit(.credentialsRefreshed(sessionID: stored.sessionID))
        return true
    }

    func save(_ credentials: TesseraCredentials) {
        do {
            try self.store.save(credentials)
        } catch {
            self.logger.error("the credentials could not be stored", metadata: ["error": "\(error)"])
        }
    }

    func noSessionError() -> TesseraClientError {
        if let reason = self.lastSignOutReason { return .signedOut(reason) }
        return TesseraClientError(.notSignedIn, "the client holds no credentials; sign in first")
    }

    /// Ends the session locally: clears the credentials, discards and fails any refresh, emits
    /// the one `signedOut` event. Does nothing when already signed out.
    func end(_ reason: SignOutReason, serverError: TesseraServerError?) {
        guard self.current != nil else { return }
        self.generation += 1
        self.current = nil
        self.lastSignOutReason = reason
        self.timer?.cancel()
        self.timer = nil
        self.backoff.reset()
        self.shortLivedInARow = 0
        do {
            try self.store.clear()
        } catch {
            self.logger.error("the stored credentials could not be cleared", metadata: ["error": "\(error)"])
        }
        let flight = self.flight
        self.flight = nil
        // Only a sign-out cancels a shared refresh; when the refresh itself ended the session,
        // this cancels a task that is finishing anyway.
        flight?.task.cancel()
        var error = TesseraClientError.signedOut(reason)
        error.serverError = serverError
        for waiter in flight?.waiters.values ?? [:].values { waiter.resume(throwing: error) }
        self.logger.notice("signed out", metadata: ["reason": "\(reason)"])
        self.hub.emit(.signedOut(reason))
    }
}
