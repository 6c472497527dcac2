import Foundation
import Logging
public import Hummingbird
import Tessera

/// Gives every request a correlation id: the client's `X-Correlation-ID` when it is short and
/// printable, a new one otherwise. The id goes into the context, onto every log line of the
/// request (`correlation_id`), and back on the response.
///
/// Mount it first, before ``ErrorMiddleware``.
public struct CorrelationIDMiddleware<Context: CorrelatedRequestContext>: RouterMiddleware {
    public init() {}

    public func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        let id = request.headers.usableCorrelationID ?? makeCorrelationID()
        var context = context
        context.correlationID = id
        context.logger[metadataKey: "correlation_id"] = .string(id)
        do {
            var response = try await next(request, context)
            response.headers[.correlationID] = id
            return response
        } catch {
            // Without an ErrorMiddleware inside, errors still leave with the id.
            var response = try ErrorMiddleware<Context>.response(for: error, correlationID: id, logger: context.logger)
            response.headers[.correlationID] = id
            return response
        }
    }
}
