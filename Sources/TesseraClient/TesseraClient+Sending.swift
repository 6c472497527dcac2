import Foundation
import Logging
import NIOCore
import NIOHTTP1

extension TesseraClient {
    func transmit(_ request: TesseraHTTPRequest) async throws -> TesseraHTTPResponse {
        do {
            return try await self.transport.send(request)
        } catch {
            if Task.isCancelled || error is CancellationError { throw CancellationError() }
            throw TesseraClientError(.transport, "no response to \(request.method) \(request.path): \(error)", underlyingError: error)
        }
    }

    /// A credential to send a request with: the current one, or after a refresh when it has expired.
    func usableCredential() async throws -> Credential {
        self.loadIfNeeded()
        guard let current = self.current else { throw self.noSessionError() }
        let now = self.clock.now
        if now < current.refreshAt {
            return current.credential
        }
        if now < current.expiresAt {
            // Within the margin: still valid, so send with it while a refresh runs in the background.
            self.refreshInBackground()
            guard let current = self.current else { throw self.noSessionError() }
            return current.credential
        }
        return try await self.newerCredential(than: current.version)
    }

    /// A credential to retry with after a request sent with credential `version` was refused.
    func credential(after version: UInt64) async throws -> Credential {
        guard let current = self.current else { throw self.noSessionError() }
        if current.version > version {
            // Replaced while the request was out: retry with the current one, no refresh.
            return try await self.usableCredential()
        }
        return try await self.newerCredential(than: version)
    }

    /// A credential newer than `version`: from the refresh in progress, from the store if another
    /// process refreshed, or from a refresh started now.
    func newerCredential(than version: UInt64) async throws -> Credential {
        if let flight = self.flight {
            return try await self.wait(for: flight.id)
        }
        guard let current = self.current else { throw self.noSessionError() }
        if self.adoptStoredCredentials(unlessRefreshToken: current.credentials.refreshToken) {
            return try await self.usableCredential()
        }
        let flightID = try self.startRefresh()
        return try await self.wait(for: flightID)
    }
}
