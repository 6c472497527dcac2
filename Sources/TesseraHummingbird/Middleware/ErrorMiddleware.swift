public import Hummingbird
import Logging
import NIOCore
import NIOHTTP1
public import Tessera

/// Turns every error into Tessera's one JSON error shape:
/// `{"error":{"code","message","reason"?,"correlationId"}}`.
///
/// Tessera's own errors keep their code and status; Hummingbird's HTTP errors map onto the
/// `REQ_…` codes; a store that cannot serve becomes `503 STORE_UNAVAILABLE` with `Retry-After`;
/// anything else is logged with its details and answered with a bare `500 SRV_1000`.
public struct ErrorMiddleware<Context: CorrelatedRequestContext>: RouterMiddleware {
    public init() {}

    public func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        do {
            return try await next(request, context)
        } catch {
            return try Self.response(for: error, correlationID: context.correlationID, logger: context.logger)
        }
    }

    static func response(for error: any Error, correlationID: String, logger: Logger) throws -> Response {
        Self.logged(error, logger: logger).response(correlationID: correlationID)
    }

    /// `error` as Tessera's error, logged as the service logs what it answers with it.
    static func logged(_ error: any Error, logger: Logger) -> TesseraError {
        let tesseraError = Self.tesseraError(for: error)
        if tesseraError.statusCode >= 500 {
            // Only errors that promise a safe description are described: others (a driver's, a
            // decoder's) can quote stored values or what the request sent.
            let described = (error as? any LoggableError).map(\.description) ?? "an error of type \(type(of: error))"
            let metadata: Logger.Metadata = ["code": .string(tesseraError.code), "error": .string(described)]
            // A failure of the service itself is an error; a store or an upstream site that
            // cannot serve now (502, 503) is the operator's warning, answered honestly already.
            if tesseraError.statusCode == 500 {
                logger.error("Request failed", metadata: metadata)
            } else {
                logger.warning("Request not served", metadata: metadata)
            }
        } else {
            logger.debug("Request refused", metadata: ["code": .string(tesseraError.code)])
        }
        return tesseraError
    }

    static func tesseraError(for error: any Error) -> TesseraError {
        switch error {
        case let error as TesseraError:
            return error
        case is StoreUnavailableError:
            return .storeUnavailable()
        case let error as HTTPParserError:
            // The body's framing broke (a bad chunk size, a connection closed mid-body): the
            // client's fault, and the connection closes after this answer.
            return .malformedRequest(RequestBoundaryHandler.sentence(for: error))
        case let error as ChannelError where error == .ioOnClosedChannel || error == .eof || error == .inputClosed:
            return .malformedRequest("The client closed the connection before its request was complete.")
        case let error as HTTPError:
            switch error.status {
            case .notFound: return .notFound("No such route.")
            case .methodNotAllowed: return .methodNotAllowed
            case .contentTooLarge: return .bodyTooLarge(limit: 64 * 1024)
            case .badRequest: return .malformedBody()
            default: return .internalError
            }
        default:
            return .internalError
        }
    }
}

extension TesseraError: HTTPResponseError {
    public var status: HTTPResponse.Status { .init(code: self.statusCode) }

    public func response(from request: Request, context: some RequestContext) throws -> Response {
        self.response(correlationID: request.headers.usableCorrelationID ?? makeCorrelationID())
    }

    /// The error as an HTTP response in the one JSON shape.
    public func response(correlationID: String) -> Response {
        Response(status: .init(code: self.statusCode), headers: self.headerFields, body: .init(byteBuffer: self.body(correlationID: correlationID)))
    }

    /// The fields of the error's response, but its length.
    var headerFields: HTTPFields {
        var headers: HTTPFields = [.contentType: "application/json; charset=utf-8", .cacheControl: "no-store"]
        if let retryAfter = self.retryAfter {
            headers[.retryAfter] = String(retryAfter)
        }
        if self.isAuthenticationFailure {
            headers[.wwwAuthenticate] =
                self.code == TesseraError.tokenMissing.code
                ? #"Bearer realm="tessera""#
                : #"Bearer realm="tessera", error="invalid_token""#
        }
        return headers
    }

    /// The error's JSON: `{"error":{"code","correlationId","message","reason"?}}`.
    func body(correlationID: String) -> ByteBuffer {
        var writer = JSONWriter(capacity: 160)
        writer.beginObject()
        writer.key("error")
        writer.beginObject()
        writer.key("code")
        writer.string(self.code)
        writer.key("correlationId")
        writer.string(correlationID)
        writer.key("message")
        writer.string(self.message)
        if let reason = self.reason {
            writer.key("reason")
            writer.string(reason)
        }
        writer.endObject()
        writer.endObject()
        return writer.buffer
    }
}
