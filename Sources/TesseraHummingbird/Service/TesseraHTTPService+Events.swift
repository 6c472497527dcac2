import Foundation
import HTTPTypes
import Hummingbird
import Logging
import NIOCore
import ServiceLifecycle
import Synchronization
import Tessera

/// Server-sent event streams of session events: every event for services (`GET /v1/events`),
/// and a signed-in session's own end for its holder (`GET /v1/session/events`).
extension TesseraHTTPService {
    /// `GET /v1/events` (service key): every event after `Last-Event-ID` (or `after`), or from now.
    @Sendable func streamEvents(_ request: Request, context: TesseraRequestContext) async throws -> Response {
        let hub = try self.eventHub()
        var filter = SessionEventFilter()
        if let types = request.uri.queryParameters["types"].map(String.init) {
            filter.kinds = try Self.kinds(types)
        }
        if let user = request.uri.queryParameters["userId"].map(String.init) {
            guard !user.isEmpty, user.unicodeScalars.count <= 128 else { throw TesseraError.invalidField("userId must be 1 to 128 characters.") }
            filter.userID = user
        }
        let cursor = try await self.cursor(request)
        return try self.stream(hub, from: cursor, filter: filter, connection: context.channel, logger: context.logger) { _ in false }
    }

    /// `GET /v1/session/events`: the caller's session's revocation, expiry and data changes
    /// (`scope=user`: every event of the caller's user); the stream ends after the session's end.
    @Sendable func streamSessionEvents(_ request: Request, context: TesseraRequestContext) async throws -> Response {
        let hub = try self.eventHub()
        let session = try context.requireSession().session
        let filter: SessionEventFilter
        switch request.uri.queryParameters["scope"].map(String.init) {
        case nil, "session":
            filter = SessionEventFilter(sessionID: session.id, kinds: [.sessionRevoked, .sessionExpired, .sessionDataChanged])
        case "user":
            filter = SessionEventFilter(userID: session.userID)
        default:
            throw TesseraError.invalidField("The scope parameter must be 'session' or 'user'.")
        }
        let cursor = try await self.cursor(request)
        // The session may have ended between its authentication and the cursor (whose event the
        // stream would then miss): answer as a request of the ended session is answered.
        if let stored = try await self.sessions.store.session(id: session.id), let reason = stored.endReason(at: self.sessions.now) {
            throw TesseraError.sessionExpired(reason)
        }
        let id = session.id
        return try self.stream(hub, from: cursor, filter: filter, owner: session.id, connection: context.channel, logger: context.logger) { event in
            event.sessionID == id && (event.kind == .sessionRevoked || event.kind == .sessionExpired)
        }
    }

    func eventHub() throws -> SessionEventHub {
        guard let hub = self.events else { throw TesseraError.notFound("This node serves no event streams.") }
        return hub
    }

    /// Where a stream starts: after `Last-Event-ID` or `after` when given, else after the newest event.
    func cursor(_ request: Request) async throws -> Int64 {
        let given = request.headers[.lastEventID] ?? request.uri.queryParameters["after"].map(String.init)
        if let given {
            guard let cursor = Int64(given), cursor >= 0 else {
                throw TesseraError.invalidField("Last-Event-ID (or after) must be the id of an event received, a number.")
            }
            return cursor
        }
        return try await self.sessions.store.latestSessionEvent()
    }

    static func kinds(_ list: String) throws -> Set<SessionEvent.Kind> {
        do {
            return try SessionEvent.Kind.named(list.split(separator: ",", omittingEmptySubsequences: false))
        } catch {
            throw TesseraError.invalidField("types must be a comma-separated list of \(SessionEvent.Kind.names).")
        }
    }

    /// A `text/event-stream` answer: each event as `id:`, `event:` and `data:` lines, a comment
    /// every ``Configuration/eventKeepAlive`` while nothing happens, ended by `isLast`, by the
    /// node's shutdown or by a failing store (the client resumes with `Last-Event-ID`), and by
    /// the `connection`'s close: a client that left gives its stream's place back at once, not
    /// at the stream's next write.
    func stream(
        _ hub: SessionEventHub,
        from start: Int64,
        filter: SessionEventFilter,
        owner: String? = nil,
        connection: (any Channel)? = nil,
        logger: Logger,
        isLast: @escaping @Sendable (SessionEvent) -> Bool
    ) throws -> Response {
        let configuration = self.configuration
        guard let stream = hub.beginStream(limit: configuration.eventStreamLimit, owner: owner, ownerLimit: configuration.eventStreamsPerSession)
        else { throw TesseraError.tooManyStreams() }
        let keepAlive = self.configuration.eventKeepAlive
        let ended = StreamEnd()
        connection?.closeFuture.whenComplete { _ in ended.interrupt(stream, of: hub) }
        let body = ResponseBody { writer in
            defer { ended.end(stream, of: hub) }
            var cursor = start
            var lastWrite = ContinuousClock.now
            do {
                try await writer.write(ByteBuffer(string: "retry: 2000\n: connected\n\n"))
                try await withGracefulShutdownHandler {
                    while !Task.isCancelled {
                        let (events, through) = try await hub.events(after: cursor, filter: filter, limit: 500)
                        if !events.isEmpty {
                            var text = ""
                            for event in events {
                                text += "id: \(event.sequence)\nevent: \(event.kind.rawValue)\ndata: "
                                text += String(decoding: event.json, as: UTF8.self) + "\n\n"
                            }
                            try await writer.write(ByteBuffer(string: text))
                            lastWrite = .now
                        } else if ContinuousClock.now - lastWrite >= keepAlive {
                            try await writer.write(ByteBuffer(string: ": keep-alive\n\n"))
                            lastWrite = .now
                        }
                        cursor = through
                        if events.contains(where: isLast) { return }
                        if events.count == 500 { continue }
                        let quiet = keepAlive - (ContinuousClock.now - lastWrite)
                        guard await hub.wait(after: cursor, timeout: max(quiet, .milliseconds(1)), stream: stream) else { return }
                    }
                } onGracefulShutdown: {
                    hub.interrupt(stream: stream)
                }
            } catch is CancellationError {
                // The client went away.
            } catch where ended.connectionClosed {
                // The client went away as a write was made.
            } catch {
                logger.info("Event stream ended by a failure; the client resumes", metadata: ["error": "\(type(of: error))"])
            }
            // A connection the client closed takes no end.
            guard !ended.connectionClosed else { return }
            try await writer.finish(nil)
        }
        return Response(
            status: .ok,
            headers: [.contentType: "text/event-stream; charset=utf-8", .cacheControl: "no-store", .accelBuffering: "no"],
            body: body
        )
    }
}

/// Whether a stream has ended, and whether its connection closed first: a close interrupts a
/// stream that has not ended, and never one that has (the hub would keep its id for good).
final class StreamEnd: Sendable {
    private let state = Mutex((ended: false, connectionClosed: false))

    var connectionClosed: Bool { self.state.withLock { $0.connectionClosed } }

    func interrupt(_ stream: UInt64, of hub: SessionEventHub) {
        self.state.withLock { state in
            state.connectionClosed = true
            if !state.ended { hub.interrupt(stream: stream) }
        }
    }

    func end(_ stream: UInt64, of hub: SessionEventHub) {
        self.state.withLock { $0.ended = true }
        hub.endStream(stream)
    }
}
