public import Logging
public import ServiceLifecycle

/// A `Service` that rereads the signing-keys file every few seconds, so that a key added by
/// `tessera keys rotate` signs within that time. A file that cannot be read keeps the keys held.
public struct SigningKeysReloader: Service {
    public let keys: SigningKeys
    public let interval: Duration
    public let logger: Logger

    public init(keys: SigningKeys, interval: Duration = .seconds(5), logger: Logger) {
        self.keys = keys
        self.interval = interval
        self.logger = logger
    }

    public func run() async throws {
        do {
            // Ends at once on graceful shutdown, not after the rest of the interval.
            try await cancelWhenGracefulShutdown {
                while !Task.isCancelled {
                    try await Task.sleep(for: self.interval)
                    do {
                        if try await self.keys.reloadIfChanged() {
                            self.logger.info("Reloaded signing keys", metadata: ["signing_key_id": .string(self.keys.signingKeyID)])
                        }
                    } catch {
                        self.logger.error("Cannot reload signing keys; keeping the current ones", metadata: ["error": "\(error)"])
                    }
                }
            }
        } catch is CancellationError {
            // Shutting down is the expected end of this service.
        }
    }
}
