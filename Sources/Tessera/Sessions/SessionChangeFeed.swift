public import Foundation
public import Logging
public import ServiceLifecycle
import Synchronization

/// Keeps a ``SessionCache`` current: reads the store's change feed every
/// ``SessionCache/Configuration/pollInterval`` (and at once when a ``SessionChangeNotifier``
/// announces a change), drops every cached session the changes name, and marks the cache
/// current.
///
/// When a read fails the cache stops being current once its staleness bound passes, and
/// validations read the store until a read succeeds again.
public final class SessionChangeFeed: Service {
    public let cache: SessionCache
    public let store: any SessionStore
    public let notifier: (any SessionChangeNotifier)?
    let logger: Logger
    /// Where the next read starts, and when a read last succeeded; `nil` until the first read
    /// found the newest change.
    private let position = Mutex<(cursor: Int64, confirmedAt: Date)?>(nil)

    /// The longest a feed may go unread and still be read on from its cursor after it recovers.
    /// Longer lapses start over from an empty cache, because the sweeper may have deleted
    /// changes the node never saw (it keeps them for ``SessionSweeper/changeRetention``).
    public static let maximumLapse = Duration.seconds(1800)

    /// How many changes one read asks for.
    static let pageSize = 1000

    /// - Parameters:
    ///   - cache: the cache to keep current
    ///   - store: whose change feed to read
    ///   - notifier: announces changes as they commit (PostgreSQL's `LISTEN`), so that other
    ///     nodes' writes are seen in milliseconds rather than at the next poll
    public init(cache: SessionCache, store: any SessionStore, notifier: (any SessionChangeNotifier)? = nil, logger: Logger) {
        self.cache = cache
        self.store = store
        self.notifier = notifier
        self.logger = logger
    }

    /// Reads the feed once and applies what it finds.
    ///
    /// The first read only finds where the feed ends: the cache is empty then, so nothing older
    /// can be stale in it. After a lapse (reads failed for longer than the staleness bound, so
    /// the cache served nothing meanwhile), the feed is read on from its cursor and the cache
    /// keeps its entries; only after a lapse longer than ``maximumLapse`` does the cache start
    /// over empty. Emptying it at every lapse would turn a slow moment into a storm of store
    /// reads.
    /// - Returns: how many changes were applied.
    @discardableResult
    public func poll() async throws -> Int {
        let started = self.cache.clock.now
        let current = self.position.withLock { $0 }
        guard let current, started.timeIntervalSince(current.confirmedAt) <= Self.maximumLapse.timeInterval else {
            let latest = try await self.store.latestSessionChange()
            if current != nil {
                self.logger.notice("The session change feed went unread too long; the cache starts over")
            }
            self.cache.removeAll()
            self.position.withLock { $0 = (latest, started) }
            self.cache.markCurrent(asOf: started)
            return 0
        }
        var cursor = current.cursor
        var applied = 0
        while true {
            let changes = try await self.store.sessionChanges(after: cursor, limit: Self.pageSize)
            for change in changes {
                self.cache.invalidate(change.subject)
                cursor = max(cursor, change.sequence)
            }
            applied += changes.count
            if changes.count < Self.pageSize { break }
        }
        self.position.withLock { $0 = (cursor, started) }
        self.cache.markCurrent(asOf: started)
        return applied
    }

    public func run() async throws {
        let (wakeups, wake) = AsyncStream.makeStream(of: Void.self, bufferingPolicy: .bufferingNewest(1))
        do {
            try await cancelWhenGracefulShutdown {
                try await withThrowingDiscardingTaskGroup { group in
                    group.addTask {
                        while !Task.isCancelled {
                            wake.yield()
                            try await Task.sleep(for: self.cache.configuration.pollInterval)
                        }
                    }
                    if let notifier = self.notifier {
                        group.addTask { await self.listen(notifier, wake: wake) }
                    }
                    for await _ in wakeups {
                        do {
                            try await self.poll()
                        } catch is CancellationError {
                            return
                        } catch {
                            self.logger.warning(
                                "Reading the session change feed failed; the cache is bypassed until a read succeeds",
                                metadata: ["error": "\(error)"]
                            )
                        }
                    }
                    group.cancelAll()
                }
            }
        } catch is CancellationError {
            // Stopping is expected.
        }
    }

    /// Listens for announcements until cancelled, reconnecting after a lost connection.
    private func listen(_ notifier: any SessionChangeNotifier, wake: AsyncStream<Void>.Continuation) async {
        var delay = Duration.milliseconds(100)
        while !Task.isCancelled {
            do {
                try await notifier.listenForSessionChanges { wake.yield() }
                delay = .milliseconds(100)
            } catch {
                if Task.isCancelled { return }
                self.logger.debug("Listening for session changes failed; polling meanwhile", metadata: ["error": "\(error)"])
            }
            try? await Task.sleep(for: delay)
            delay = min(delay * 2, .seconds(5))
        }
    }
}
