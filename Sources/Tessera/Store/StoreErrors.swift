/// An error whose description is safe to log: it says what failed in words of the program's
/// own, and never holds a secret, a stored value or a value a request sent. The service logs
/// the description of these errors only; of any other error, its type.
public protocol LoggableError: Error, Sendable, CustomStringConvertible {}

/// An error a store raises when it cannot be reached or fails transiently. The service maps it
/// to `503 STORE_UNAVAILABLE`.
public struct StoreUnavailableError: LoggableError {
    /// What failed, for the log (never sent to clients).
    public var underlying: String

    public init(underlying: String) {
        self.underlying = underlying
    }

    public var description: String { "store unavailable: \(self.underlying)" }
}

/// A store's answer that is no transient failure: a constraint, a statement the store refused.
/// It is that request's error alone and never counts toward the circuit breaker.
public struct StoreError: LoggableError {
    /// What failed, such as `SQLite error 19: UNIQUE constraint failed: users.username` (the
    /// store's own words, never a value).
    public var reason: String
    /// Whether a unique constraint refused the write.
    public var isUniqueViolation: Bool

    public init(reason: String, isUniqueViolation: Bool = false) {
        self.reason = reason
        self.isUniqueViolation = isUniqueViolation
    }

    public var description: String { "The store refused the operation: \(self.reason)" }
}

/// A stored value that cannot be read back. It says nothing about the store's availability: the
/// store answered, and the same row will fail the same way, so it is that request's error alone.
public struct StoredDataError: LoggableError {
    /// What could not be read, such as `session data`.
    public var what: String
    /// Why, never the stored value itself.
    public var reason: String

    public init(what: String, reason: String) {
        self.what = what
        self.reason = reason
    }

    public var description: String { "The stored \(self.what) cannot be read: \(self.reason)" }
}
