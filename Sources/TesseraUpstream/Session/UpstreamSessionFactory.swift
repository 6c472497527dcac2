import Foundation
import NIOCore

/// Makes logged-in sessions with one upstream site. The pool knows nothing of how: the HTTP
/// kind (``HTTPUpstreamSessionFactory``) posts a login form and keeps a cookie jar; a
/// browser-driven kind (WebDriver) would drive a login page and keep a browser, behind the
/// same two protocols, without a change to the pool.
public protocol UpstreamSessionFactory: Sendable {
    /// Logs in as `account` and returns the session, or throws ``UpstreamLoginError`` when the
    /// site refuses or cannot be reached.
    func logIn(account: UpstreamConfiguration.Account) async throws -> any UpstreamSessionConnection
    /// Ends what the factory holds for its sessions (connections to the site), once its pool has
    /// closed them.
    func shutdown() async
}

extension UpstreamSessionFactory {
    public func shutdown() async {}
}

/// One logged-in session with an upstream site.
public protocol UpstreamSessionConnection: Sendable {
    /// Sends a request in the session and returns the answer. Cookies the answer sets are kept.
    /// Throws ``UpstreamTransportError`` when no answer came.
    func send(_ request: UpstreamRequest) async throws -> UpstreamResponse
    /// Sends a request and returns the answer once its head and the first `scanBytes(head)`
    /// bytes of its body are in (0: none); the rest streams from ``UpstreamStreamedResponse/rest``.
    /// Cookies the answer sets are kept. Throws ``UpstreamTransportError`` when no answer came.
    func stream(_ request: UpstreamRequest, scanBytes: @escaping @Sendable (UpstreamResponse) -> Int) async throws -> UpstreamStreamedResponse
    /// The session's cookies now, for lending them to a client that drives the site itself.
    func cookies() -> [UpstreamCookie]
    /// Ends the session's local resources (not a logout at the site).
    func close() async
    /// The keep-alive probe, and the check before lending: by default `request` sent and its
    /// answer judged; a browser session visits the page in its browser and judges the page.
    /// Returns the verdict, and what failed when no answer came (a transient verdict).
    func probe(_ request: UpstreamRequest, reader: UpstreamVerdictReader) async -> (UpstreamVerdict, String?)
    /// Whether the session asks to be replaced although it is logged in (a browser past its
    /// memory limit): the pool logs a replacement in first, as for the maximum age.
    var wantsReplacement: Bool { get }
}

extension UpstreamSessionConnection {
    /// A session that cannot stream (a browser's) sends the request whole and answers whole.
    public func stream(_ request: UpstreamRequest, scanBytes: @escaping @Sendable (UpstreamResponse) -> Int) async throws -> UpstreamStreamedResponse {
        var request = request
        if let stream = request.bodyStream {
            // The client's body throws its own errors (past its limit: a 413), as they are.
            var body = ByteBuffer()
            for try await var chunk in stream.chunks { body.writeBuffer(&chunk) }
            request.body = body
            request.bodyStream = nil
        }
        let answer = try await self.send(request)
        return UpstreamStreamedResponse(status: answer.status, headers: answer.headers, head: answer.body, rest: nil, scannedBytes: scanBytes(answer))
    }

    public func probe(_ request: UpstreamRequest, reader: UpstreamVerdictReader) async -> (UpstreamVerdict, String?) {
        do {
            return (reader.verdict(on: try await self.send(request)), nil)
        } catch {
            return (.transient, "\(error)")
        }
    }

    public var wantsReplacement: Bool { false }
}

/// A login the site refused, or could not answer. Its text names the reason, never a credential.
public struct UpstreamLoginError: Error, Sendable, CustomStringConvertible {
    public enum Kind: Sendable, Equatable {
        /// The site answered, but not with a successful login (wrong status, no cookie, …).
        case refused
        /// The site asked for fewer requests (`429`).
        case rateLimited(retryAfter: Double?)
        /// No answer: connection failure, timeout, `502`/`503`/`504`.
        case unreachable
    }

    public var kind: Kind
    public var reason: String

    public init(_ kind: Kind, reason: String) {
        self.kind = kind
        self.reason = reason
    }

    public var description: String { self.reason }
}

/// No answer came from the site: the connection failed or timed out. `requestSent` says
/// whether the site may have received the request (and so may have acted on it).
public struct UpstreamTransportError: Error, Sendable, CustomStringConvertible {
    public var reason: String
    public var requestSent: Bool

    public init(reason: String, requestSent: Bool) {
        self.reason = reason
        self.requestSent = requestSent
    }

    public var description: String { self.reason }
}
