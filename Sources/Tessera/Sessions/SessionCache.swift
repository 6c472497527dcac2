public import Foundation
import Synchronization

/// A bounded in-process cache of sessions read from the store, keyed by token hash, so that
/// validating a token usually costs no store read.
///
/// The cache never weakens revocation beyond an explicit bound:
///
/// - A revocation or data update made through this node drops the entry at once.
/// - Writes made anywhere else (another node, the `tessera` command) reach the cache through
///   the store's change feed, which a ``SessionChangeFeed`` reads every
///   ``Configuration/pollInterval`` (and at once when the store announces a change).
/// - The cache serves entries only while the feed is current: when the last successful read of
///   the feed began more than ``Configuration/stalenessBound`` ago (the store is down, the feed
///   failed), every validation reads the store, exactly as without a cache. So a write made
///   anywhere is refused everywhere within the staleness bound.
/// - What the cache holds never ends a session early: a cached session that looks idle is read
///   again from the store (another node may have seen activity) before it is refused.
///
/// A cache that nobody feeds (no ``SessionChangeFeed`` is running) is never current, so it
/// never serves an entry.
public final class SessionCache: Sendable {
    /// Size and freshness settings.
    public struct Configuration: Sendable {
        /// The most sessions kept (default 100,000). The oldest entries are dropped first.
        public var capacity: Int
        /// The longest a cached session may be served after the last successful read of the
        /// change feed began (default 1 s): the bound on how late a write made elsewhere is seen.
        public var stalenessBound: Duration
        /// Time between reads of the change feed (default 250 ms).
        public var pollInterval: Duration

        public init(capacity: Int = 100_000, stalenessBound: Duration = .seconds(1), pollInterval: Duration = .milliseconds(250)) {
            self.capacity = max(0, capacity)
            self.stalenessBound = stalenessBound
            self.pollInterval = pollInterval
        }
    }

    /// Counters for metrics.
    public struct Statistics: Sendable, Hashable {
        public var hits: Int
        public var misses: Int
        public var invalidations: Int
        public var count: Int
    }

    private struct Shard {
        var entries: [TokenHash: Session] = [:]
        var hashBySessionID: [String: TokenHash] = [:]
        /// Insertion order, oldest first from `head`, for dropping the oldest entry. It may name
        /// entries that were invalidated since; those are skipped.
        var order: [TokenHash] = []
        var head = 0
        /// Counted under the shard's lock, which a lookup holds anyway: one shared atomic counter
        /// would be written by every request on every core.
        var hits = 0
        var misses = 0

        /// Adds `session`. - Returns: whether it is a new entry.
        mutating func insert(_ session: Session) -> Bool {
            if self.entries.updateValue(session, forKey: session.tokenHash) != nil { return false }
            self.hashBySessionID[session.id] = session.tokenHash
            self.order.append(session.tokenHash)
            self.compactIfSparse()
            return true
        }

        /// Drops every entry; the counters are the cache's, not its contents', and stay.
        mutating func removeAllEntries() {
            self = Shard(hits: self.hits, misses: self.misses)
        }

        /// Drops this shard's oldest entry. - Returns: whether there was one.
        mutating func evictOldest() -> Bool {
            while self.head < self.order.count {
                let hash = self.order[self.head]
                self.head += 1
                if let session = self.entries.removeValue(forKey: hash) {
                    self.hashBySessionID[session.id] = nil
                    return true
                }
            }
            return false
        }

        mutating func remove(sessionID: String) -> Bool {
            guard let hash = self.hashBySessionID.removeValue(forKey: sessionID) else { return false }
            self.entries[hash] = nil
            return true
        }

        mutating func remove(userID: String) -> Int {
            let doomed = self.entries.values.filter { $0.userID == userID }
            for session in doomed {
                self.entries[session.tokenHash] = nil
                self.hashBySessionID[session.id] = nil
            }
            return doomed.count
        }

        /// Keeps `order` within twice the live entries (plus some slack).
        private mutating func compactIfSparse() {
            guard self.order.count - self.head > 2 * self.entries.count + 64 else { return }
            var seen = Set<TokenHash>()
            var kept: [TokenHash] = []
            // The last occurrence of a hash is its current insertion.
            for hash in self.order[self.head...].reversed() where self.entries[hash] != nil && seen.insert(hash).inserted {
                kept.append(hash)
            }
            self.order = kept.reversed()
            self.head = 0
        }
    }

    public let configuration: Configuration
    let clock: any WallClock
    private final class LockedShard: Sendable {
        let mutex = Mutex(Shard())
        func withLock<T: Sendable>(_ body: (inout sending Shard) throws -> sending T) rethrows -> T {
            try self.mutex.withLock(body)
        }
    }

    private let shards: [LockedShard]
    /// Bumped by every invalidation, so that a session read from the store while an
    /// invalidation ran is not put in the cache (it may predate the write).
    private let generation = Atomic<UInt64>(0)
    /// When the last successful read of the change feed began, in milliseconds since 1970 on
    /// ``clock``; `Int64.min` before the first.
    private let currentAsOf = Atomic<Int64>(.min)
    private let invalidations = Atomic<Int>(0)
    /// Live entries across all shards, kept at or under the capacity.
    private let count = Atomic<Int>(0)

    /// - Parameters:
    ///   - configuration: size and freshness
    ///   - clock: the clock the staleness bound is measured on (inject a ``ManualClock`` in tests)
    public init(configuration: Configuration = .init(), clock: any WallClock = SystemClock()) {
        self.configuration = configuration
        self.clock = clock
        let shardCount = configuration.capacity >= 1024 ? 16 : 1
        self.shards = (0..<shardCount).map { _ in LockedShard() }
    }

    private func shard(for hash: TokenHash) -> LockedShard {
        self.shards[Int(hash.spread % UInt64(self.shards.count))]
    }

    /// Whether the change feed was read successfully within the staleness bound.
    public var isCurrent: Bool {
        let asOf = self.currentAsOf.load(ordering: .acquiring)
        guard asOf != .min else { return false }
        let bound = Int64(self.configuration.stalenessBound.timeInterval * 1000)
        return self.clock.now.millisecondsSince1970 - asOf <= bound
    }

    /// When the last successful read of the change feed began; `nil` before the first.
    public var lastFeedReadAt: Date? {
        let asOf = self.currentAsOf.load(ordering: .acquiring)
        return asOf == .min ? nil : Date(millisecondsSince1970: asOf)
    }

    /// The cached session for `hash`, when the cache is current.
    ///
    /// - Parameter countingMiss: count a miss in ``statistics`` (a caller that will ask again
    ///   on a miss passes `false`, so that the miss counts once)
    public func session(tokenHash hash: TokenHash, countingMiss: Bool = true) -> Session? {
        guard self.isCurrent else { return nil }
        let session = self.shard(for: hash).withLock { shard in
            let session = shard.entries[hash]
            if session != nil { shard.hits += 1 } else if countingMiss { shard.misses += 1 }
            return session
        }
        return session
    }

    /// A marker to take before reading a session from the store and to pass to
    /// ``insert(_:readAt:)``.
    public var readMarker: UInt64 { self.generation.load(ordering: .acquiring) }

    /// Keeps `session`, read from the store after ``readMarker`` returned `marker`, unless an
    /// invalidation happened since (the read may predate the write it announced).
    public func insert(_ session: Session, readAt marker: UInt64) {
        guard self.configuration.capacity > 0, self.isCurrent else { return }
        self.shard(for: session.tokenHash).withLock { shard in
            guard self.generation.load(ordering: .acquiring) == marker, shard.insert(session) else { return }
            // The capacity is shared by the shards, however unevenly tokens spread over them:
            // the shard that grows drops its own oldest entry.
            if self.count.add(1, ordering: .relaxed).newValue > self.configuration.capacity, shard.evictOldest() {
                self.count.subtract(1, ordering: .relaxed)
            }
        }
    }

    /// Moves a cached session's activity forward (never back), after this node slid it.
    public func recordActivity(tokenHash hash: TokenHash, lastSeenAt: Date, idleExpiresAt: Date) {
        self.shard(for: hash).withLock { shard in
            // In place: no copy of the session (and of its strings' references).
            guard let index = shard.entries.index(forKey: hash) else { return }
            shard.entries.values[index].lastSeenAt = max(shard.entries.values[index].lastSeenAt, lastSeenAt)
            shard.entries.values[index].idleExpiresAt = max(shard.entries.values[index].idleExpiresAt, idleExpiresAt)
        }
    }

    /// Drops what the cache holds about `subject`.
    public func invalidate(_ subject: SessionChange.Subject) {
        self.generation.add(1, ordering: .acquiringAndReleasing)
        var dropped = 0
        for shard in self.shards {
            let removed: Int
            switch subject {
            case .session(let id):
                removed = shard.withLock { $0.remove(sessionID: id) ? 1 : 0 }
            case .user(let id):
                removed = shard.withLock { $0.remove(userID: id) }
            }
            if removed > 0 {
                self.count.subtract(removed, ordering: .relaxed)
                dropped += removed
            }
        }
        self.invalidations.add(dropped, ordering: .relaxed)
    }

    /// Drops everything, for example when changes may have been missed.
    public func removeAll() {
        self.generation.add(1, ordering: .acquiringAndReleasing)
        for shard in self.shards {
            let removed = shard.withLock { shard in
                let removed = shard.entries.count
                shard.removeAllEntries()
                return removed
            }
            self.count.subtract(removed, ordering: .relaxed)
        }
    }

    /// Records that a read of the change feed that began at `start` succeeded and its changes
    /// were applied.
    public func markCurrent(asOf start: Date) {
        let milliseconds = start.millisecondsSince1970
        var current = self.currentAsOf.load(ordering: .acquiring)
        while current < milliseconds {
            let (exchanged, original) = self.currentAsOf.compareExchange(
                expected: current,
                desired: milliseconds,
                ordering: .acquiringAndReleasing
            )
            if exchanged { return }
            current = original
        }
    }

    /// Hit, miss and invalidation counts and the number of cached sessions.
    public var statistics: Statistics {
        Statistics(
            hits: self.shards.reduce(0) { $0 + $1.withLock { $0.hits } },
            misses: self.shards.reduce(0) { $0 + $1.withLock { $0.misses } },
            invalidations: self.invalidations.load(ordering: .relaxed),
            count: self.shards.reduce(0) { $0 + $1.withLock { $0.entries.count } }
        )
    }
}
