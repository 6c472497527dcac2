import Foundation

/// Where a ``TesseraClient`` keeps its credentials between launches, and shares them with other
/// processes (an app extension, a second client) that use the same store.
///
/// The methods are synchronous on purpose: the client calls them inside its actor, so a save can
/// never land after a sign-out's clear.
public protocol CredentialStore: Sendable {
    /// The stored credentials, or `nil` when there are none.
    func load() throws -> TesseraCredentials?
    /// Replaces the stored credentials.
    func save(_ credentials: TesseraCredentials) throws
    /// Removes the stored credentials; does nothing when there are none.
    func clear() throws
}

/// Credentials kept in memory only: gone when the process ends. Share one instance between
/// clients to simulate processes sharing a store.
public final class InMemoryCredentialStore: CredentialStore, @unchecked Sendable {
    // Sendable: `credentials` is read and written only while `lock` is held.
    private let lock = NSLock()
    private var credentials: TesseraCredentials?

    /// Creates a store holding `credentials`.
    public init(_ credentials: TesseraCredentials? = nil) {
        self.credentials = credentials
    }

    public func load() -> TesseraCredentials? {
        self.lock.withLock { self.credentials }
    }

    public func save(_ credentials: TesseraCredentials) {
        self.lock.withLock { self.credentials = credentials }
    }

    public func clear() {
        self.lock.withLock { self.credentials = nil }
    }
}
