public import Hummingbird
public import NIOCore
public import Tessera

/// How a request presented its session token.
public enum CredentialSource: Sendable, Hashable {
    /// The session cookie: unsafe methods need the CSRF token as well.
    case cookie
    /// `Authorization: Bearer tss_…`: not sent by browsers on their own, so no CSRF check.
    case bearer
}

/// A validated session and how the request presented it.
///
/// The session is kept in one shared box, so that copying a request context (every middleware
/// does) costs one reference count rather than one per field of the session.
public struct AuthenticatedSession: Sendable {
    private final class Box: Sendable {
        let session: Session
        init(_ session: Session) { self.session = session }
    }

    private let box: Box
    /// Where the token came from.
    public let credential: CredentialSource

    public init(session: Session, credential: CredentialSource) {
        self.box = Box(session)
        self.credential = credential
    }

    /// The session, with the deadlines the store now holds.
    public var session: Session {
        // Lent rather than copied: a copy retains every field of the session.
        _read { yield self.box.session }
    }
}

/// A request context that carries a correlation id.
public protocol CorrelatedRequestContext: RequestContext {
    /// The request's correlation id: the client's `X-Correlation-ID` when it sent a usable one.
    var correlationID: String { get set }
}

/// A request context that can carry a Tessera session. Mount ``TesseraAuthenticator`` and read
/// ``authenticatedSession`` (or call ``requireSession()``) in handlers.
public protocol SessionRequestContext: CorrelatedRequestContext {
    /// The session the authenticator validated, if any.
    var authenticatedSession: AuthenticatedSession? { get set }
    /// The address of the peer, if known.
    var remoteAddress: SocketAddress? { get }
}

extension SessionRequestContext {
    /// The validated session; throws `AUTH_1004` when the route was not authenticated.
    public func requireSession() throws -> AuthenticatedSession {
        guard let session = self.authenticatedSession else { throw TesseraError.tokenMissing }
        return session
    }
}

/// The request context of the Tessera service, usable as is by applications that mount the
/// middleware.
public struct TesseraRequestContext: SessionRequestContext {
    public var coreContext: CoreRequestContextStorage
    public var correlationID: String
    public var authenticatedSession: AuthenticatedSession?
    let channel: any Channel

    public init(source: ApplicationRequestContextSource) {
        self.coreContext = .init(source: source)
        self.correlationID = ""
        self.authenticatedSession = nil
        self.channel = source.channel
    }

    /// The address of the peer, read when asked for (most requests never ask).
    public var remoteAddress: SocketAddress? { self.channel.remoteAddress }

    /// Request bodies are read explicitly with per-route limits; this bounds anything else.
    public var maxUploadSize: Int { 64 * 1024 }
}
