public import Foundation

/// Something that happened to a session, recorded by the store in the same transaction as the
/// change it reports: a change acknowledged to a client always has its event.
///
/// Events carry ids and reasons only, never a token, a CSRF secret or session data.
public struct SessionEvent: Sendable, Hashable {
    /// What happened.
    public enum Kind: String, Sendable, Hashable, CaseIterable {
        /// A session began (a login, a service-created session, token mode).
        case sessionCreated = "session.created"
        /// A session was revoked; ``SessionEvent/reason`` says why (see ``RevocationReason``).
        case sessionRevoked = "session.revoked"
        /// The sweeper saw a session's deadline pass; ``SessionEvent/reason`` is `idle` or
        /// `absolute`.
        case sessionExpired = "session.expired"
        /// A session's data changed; ``SessionEvent/dataVersion`` is the new version.
        case sessionDataChanged = "session.data_changed"
        /// Sessions of a user were revoked at once ("sign out everywhere", "all but this one");
        /// each also has its own `session.revoked`. ``SessionEvent/count`` says how many.
        case userSessionsRevoked = "user.sessions_revoked"
    }

    /// What a cache must stop serving once this event happened: the session that ended or whose
    /// data changed, or the user whose sessions were revoked; `nil` for a new session.
    var changedSubject: SessionChange.Subject? {
        switch self.kind {
        case .sessionCreated: nil
        case .sessionRevoked, .sessionExpired, .sessionDataChanged: self.sessionID.map { .session(id: $0) }
        case .userSessionsRevoked: .user(id: self.userID)
        }
    }

    /// The event's place in the store's outbox: grows with every event, never reused. Streams
    /// resume after it (`Last-Event-ID`).
    public var sequence: Int64
    /// A unique id, sortable by time (`evt_` and a ULID); the same on every delivery of the event.
    public var id: String
    public var kind: Kind
    /// When the change was made.
    public var time: Date
    /// The session concerned (`nil` for ``Kind/userSessionsRevoked``).
    public var sessionID: String?
    public var userID: String
    /// Why a session ended: a ``RevocationReason`` or `idle`/`absolute`.
    public var reason: String?
    /// The Tessera node (or `tessera` command) that made the change.
    public var node: String
    /// The new data version, for ``Kind/sessionDataChanged``.
    public var dataVersion: Int?
    /// How many sessions were revoked, for ``Kind/userSessionsRevoked``.
    public var count: Int?
    /// The deadline that passed, for ``Kind/sessionExpired``.
    public var expiredAt: Date?

    public init(
        sequence: Int64,
        id: String,
        kind: Kind,
        time: Date,
        sessionID: String?,
        userID: String,
        reason: String? = nil,
        node: String,
        dataVersion: Int? = nil,
        count: Int? = nil,
        expiredAt: Date? = nil
    ) {
        self.sequence = sequence
        self.id = id
        self.kind = kind
        self.time = time
        self.sessionID = sessionID
        self.userID = userID
        self.reason = reason
        self.node = node
        self.dataVersion = dataVersion
        self.count = count
        self.expiredAt = expiredAt
    }

    /// A new event id: `evt_` and a ULID (48 bits of milliseconds, 80 random bits, Crockford
    /// base32), so that ids sort by time across nodes.
    public static func makeID(at time: Date) -> String {
        let milliseconds = UInt64(max(0, time.timeIntervalSince1970 * 1000).rounded(.down))
        let random = secureRandomBytes(count: 10)
        var bits: [UInt8] = []
        bits.reserveCapacity(16)
        for shift in stride(from: 40, through: 0, by: -8) { bits.append(UInt8(truncatingIfNeeded: milliseconds >> UInt64(shift))) }
        bits.append(contentsOf: random)
        // 128 bits as 26 base32 digits, the first holding the top 3 bits.
        let alphabet = Array("0123456789ABCDEFGHJKMNPQRSTVWXYZ".utf8)
        var digits = [UInt8](repeating: 0, count: 26)
        var value = (high: UInt64(0), low: UInt64(0))
        for byte in bits[0..<8] { value.high = value.high << 8 | UInt64(byte) }
        for byte in bits[8..<16] { value.low = value.low << 8 | UInt64(byte) }
        for index in stride(from: 25, through: 0, by: -1) {
            digits[index] = alphabet[Int(value.low & 31)]
            value.low = value.low >> 5 | (value.high & 31) << 59
            value.high >>= 5
        }
        return "evt_" + String(decoding: digits, as: UTF8.self)
    }

    /// The default name of this node in events: the host name.
    public static var defaultNode: String {
        let host = ProcessInfo.processInfo.hostName
        return host.isEmpty ? "tessera" : String(host.prefix(64))
    }
}

extension SessionEvent.Kind {
    /// Every kind's name, for messages: `session.created, session.revoked, …`.
    public static var names: String { Self.allCases.map(\.rawValue).joined(separator: ", ") }

    /// The kinds `names` name (whitespace around a name is ignored).
    /// - Throws: ``UnknownEventKind`` with the first name that names none.
    public static func named(_ names: some Sequence<some StringProtocol>) throws(UnknownEventKind) -> Set<Self> {
        var kinds = Set<Self>()
        for name in names {
            let trimmed = name.trimmingCharacters(in: .whitespaces)
            guard let kind = Self(rawValue: trimmed) else { throw UnknownEventKind(name: trimmed) }
            kinds.insert(kind)
        }
        return kinds
    }
}

/// A name that is no ``SessionEvent/Kind``.
public struct UnknownEventKind: Error, Sendable, Hashable {
    /// The name, as given.
    public var name: String
}

/// Why a session was revoked, as events and stores say it.
public enum RevocationReason: String, Sendable, Hashable, CaseIterable {
    /// The holder logged out.
    case logout
    /// The user revoked it from their list of sessions (or revoked all of theirs).
    case user
    /// The user revoked every session but the one they were using.
    case others
    /// An operator revoked it (the `tessera` command, the admin API).
    case admin
    /// A refresh token of the session was used twice: the family is revoked.
    case refreshReuse = "refresh_reuse"
}

/// Which events a reader wants.
public struct SessionEventFilter: Sendable, Hashable {
    /// Only this session's events.
    public var sessionID: String?
    /// Only this user's events.
    public var userID: String?
    /// Only these kinds; `nil` for all.
    public var kinds: Set<SessionEvent.Kind>?

    public init(sessionID: String? = nil, userID: String? = nil, kinds: Set<SessionEvent.Kind>? = nil) {
        self.sessionID = sessionID
        self.userID = userID
        self.kinds = kinds
    }

    public static let all = SessionEventFilter()

    /// Whether `event` passes the filter.
    public func matches(_ event: SessionEvent) -> Bool {
        if let sessionID, event.sessionID != sessionID { return false }
        if let userID, event.userID != userID { return false }
        if let kinds, !kinds.contains(event.kind) { return false }
        return true
    }
}

/// An event a store is about to record, before it has a sequence number.
package struct PendingEvent: Sendable {
    package var kind: SessionEvent.Kind
    package var sessionID: String?
    package var userID: String
    package var reason: String?
    package var dataVersion: Int?
    package var count: Int?
    package var expiredAt: Date?

    package init(
        _ kind: SessionEvent.Kind,
        sessionID: String?,
        userID: String,
        reason: String? = nil,
        dataVersion: Int? = nil,
        count: Int? = nil,
        expiredAt: Date? = nil
    ) {
        self.kind = kind
        self.sessionID = sessionID
        self.userID = userID
        self.reason = reason
        self.dataVersion = dataVersion
        self.count = count
        self.expiredAt = expiredAt
    }

    /// The key that orders deliveries: events of one session (or, without one, of one user)
    /// are delivered in order.
    package var orderKey: String { self.sessionID ?? "user:" + self.userID }

    /// The event's type-specific fields as stored: a small JSON object, or `nil`.
    package var detail: String? {
        var writer = JSONWriter(capacity: 64)
        writer.beginObject()
        var any = false
        if let dataVersion { writer.key("dataVersion"); writer.integer(dataVersion); any = true }
        if let count { writer.key("count"); writer.integer(count); any = true }
        if let expiredAt { writer.key("expiredAt"); writer.integer(Int(expiredAt.millisecondsSince1970)); any = true }
        writer.endObject()
        return any ? String(decoding: writer.bytes, as: UTF8.self) : nil
    }
}

extension SessionEvent {
    /// The event as a store reads it back: `detail` is what ``PendingEvent/detail`` wrote.
    package init(
        sequence: Int64,
        id: String,
        type: String,
        time: Date,
        sessionID: String?,
        userID: String,
        reason: String?,
        node: String,
        detail: String?
    ) throws {
        guard let kind = Kind(rawValue: type) else {
            throw StoredDataError(what: "event", reason: "its type is not one this version of Tessera knows")
        }
        self.init(sequence: sequence, id: id, kind: kind, time: time, sessionID: sessionID, userID: userID, reason: reason, node: node)
        if let detail {
            let fields: [String: JSONValue]
            do {
                fields = try JSONParser.parseObject(Array(detail.utf8), limits: .sessionData)
            } catch {
                throw StoredDataError(what: "event", reason: "its detail is not a JSON object")
            }
            if case .number(let version)? = fields["dataVersion"] { self.dataVersion = Int(exactly: version) }
            if case .number(let count)? = fields["count"] { self.count = Int(exactly: count) }
            if case .number(let at)? = fields["expiredAt"], let ms = Int64(exactly: at) { self.expiredAt = Date(millisecondsSince1970: ms) }
        }
    }
}

extension PendingEvent {
    /// The events of revoking `sessionIDs` of one user at once: a `session.revoked` for each, and
    /// one `user.sessions_revoked` with the count.
    package static func revocations(of sessionIDs: [String], userID: String, reason: String) -> [PendingEvent] {
        sessionIDs.map { PendingEvent(.sessionRevoked, sessionID: $0, userID: userID, reason: reason) }
            + [PendingEvent(.userSessionsRevoked, sessionID: nil, userID: userID, reason: reason, count: sessionIDs.count)]
    }

    /// Expiry events in the order their deadlines passed (ties by session id), as a store
    /// records them.
    package static func inDeadlineOrder(_ events: [PendingEvent]) -> [PendingEvent] {
        events.sorted { ($0.expiredAt ?? .distantPast, $0.sessionID ?? "") < ($1.expiredAt ?? .distantPast, $1.sessionID ?? "") }
    }

    /// The event of a session found expired: `absolute` when its idle deadline is its absolute one.
    package static func expiry(sessionID: String, userID: String, idleExpiresAt: Date, absoluteExpiresAt: Date) -> PendingEvent {
        PendingEvent(
            .sessionExpired,
            sessionID: sessionID,
            userID: userID,
            reason: idleExpiresAt >= absoluteExpiresAt ? SessionEndReason.absolute.rawValue : SessionEndReason.idle.rawValue,
            expiredAt: idleExpiresAt
        )
    }
}
