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
public struct AuthenticatedSession: Sendable {
    /// The session, with the deadlines the store now holds.
    public var session: Session
    /// Where the token came from.
    public var credential: CredentialSource
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
    public let remoteAddress: SocketAddress?

    public init(source: ApplicationRequestContextSource) {
        self.coreContext = .init(source: source)
        self.correlationID = ""
        self.authenticatedSession = nil
        self.remoteAddress = source.channel.remoteAddress
    }

    /// Request bodies are read explicitly with per-route limits; this bounds anything else.
    public var maxUploadSize: Int { 64 * 1024 }
}
