import Foundation
public import HTTPTypes
import Hummingbird
public import Logging
import NIOCore
public import Tessera
import TesseraTokens

/// Who-am-I's express path: `GET /v1/session` answered on the connection's event loop, below
/// the router, when this node can validate the credential from memory alone.
///
/// It takes a request to exactly `/v1/session` with no body, and answers it when the session
/// is cached, alive and its activity is buffered (``SessionManager/authenticateNow(tokenHash:)``;
/// for an access token, one verified before: ``TokenService/authenticateNow(accessToken:)``) and
/// its user's name is known. The answer is the router's, field for field (`Content-Type`,
/// `ETag`, `Cache-Control: no-store`, `X-Correlation-ID`, `Date`, `Server`), counted in the same
/// request and validation metrics. Everything else — a cache miss, a session that looks idle or
/// has ended, an unknown token, a refusal of any kind — goes to the router, which validates it
/// as before; nothing is recorded twice.
public struct SessionExpressLane: Sendable {
    let service: TesseraHTTPService
    let metrics: HTTPMetricSeries?
    let serverName: String?
    /// How many requests the lane answered, and how many it took and handed to the router.
    let counts = ExpressCounts()

    /// The path, and the route the router counts it by.
    static let path = "/v1/session"

    /// Whether the lane may answer `head`: `GET /v1/session`, no query, no body.
    func takes(_ head: HTTPRequest) -> Bool {
        guard head.method == .get, head.path == Self.path else { return false }
        let fields = head.headerFields
        if let length = fields[.contentLength], length != "0" { return false }
        return fields[.transferEncoding] == nil
    }

    /// The router's answer to `head`, when the credential validates from memory; `nil` when
    /// the router is to serve the request (nothing was recorded then, or nothing that the
    /// router would record again).
    func answer(to head: HTTPRequest, started: ContinuousClock.Instant, date: String) -> (HTTPResponse, ByteBuffer)? {
        let fields = head.headerFields
        guard let (session, credential) = self.validate(fields),
            let username = self.service.usernames.cached(session.userID)
        else {
            self.counts.countDeclined()
            return nil
        }
        self.service.sessions.metrics.validated(.ok)
        let body = TesseraHTTPService.whoAmIBody(AuthenticatedSession(session: session, credential: credential), username: username)
        var answer = HTTPFields()
        answer.reserveCapacity(7)
        answer[.contentType] = TesseraHTTPService.whoAmIContentType
        answer[.eTag] = TesseraHTTPService.eTag(session.dataVersion)
        answer[.contentLength] = String(body.readableBytes)
        answer[.cacheControl] = "no-store"
        answer[.correlationID] = fields.usableCorrelationID ?? makeCorrelationID()
        answer[.date] = date
        if let serverName = self.serverName { answer[.server] = serverName }
        self.counts.countAnswered()
        self.metrics?.record(route: Self.path, method: .get, status: 200, since: started)
        return (HTTPResponse(status: .ok, headerFields: answer), body)
    }

    /// The session the request's credential names, validated from memory, as
    /// ``TesseraAuthenticator`` takes the credential: the bearer token when there is one, else
    /// the session cookie.
    private func validate(_ fields: HTTPFields) -> (Session, CredentialSource)? {
        if let token = fields.bearerToken {
            if let tokens = self.service.tokens, TokenService.isAccessToken(token) {
                return tokens.authenticateNow(accessToken: token).map { ($0, .bearer) }
            }
            guard let token = SessionToken(token) else { return nil }
            return self.service.sessions.authenticateNow(tokenHash: token.hash).map { ($0, .bearer) }
        }
        guard let token = self.service.configuration.cookie.token(in: fields).flatMap(SessionToken.init) else { return nil }
        return self.service.sessions.authenticateNow(tokenHash: token.hash).map { ($0, .cookie) }
    }
}

extension TesseraHTTPService {
    /// Who-am-I's express path for this service, or `nil` when it would never answer: sessions
    /// without a cache or with activity written at once, or request lines that `logger` would
    /// write (the express path writes none).
    ///
    /// ```swift
    /// let app = Application(
    ///     router: service.buildRouter(),
    ///     server: .tessera(limits: limits, sessions: service.sessionExpressLane(serverName: "Tessera", logger: logger))
    /// )
    /// ```
    public func sessionExpressLane(serverName: String?, logger: Logger) -> SessionExpressLane? {
        guard !self.logsRequestLines(to: logger), self.sessions.cache != nil, self.sessions.activityBuffer != nil else { return nil }
        return SessionExpressLane(service: self, metrics: self.requestMetricSeries, serverName: serverName)
    }

    /// Whether the router writes a line for each request to `logger` (which the express paths,
    /// writing none, must then leave to it).
    func logsRequestLines(to logger: Logger) -> Bool {
        guard let level = self.configuration.requestLogLevel else { return false }
        return logger.logLevel <= level
    }
}
