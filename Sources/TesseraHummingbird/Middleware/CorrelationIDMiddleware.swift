import Foundation
public import Logging
public import Hummingbird
import Tessera

/// Gives every request a correlation id: the client's `X-Correlation-ID` when it is short and
/// printable, a new one otherwise. The id goes into the context, onto every log line of the
/// request (`correlation_id`), and back on the response.
///
/// Mount it first, before ``ErrorMiddleware``.
///
/// How the id reaches the log lines is ``CorrelationIDLogging``: by default it is set on the request's
/// logger, which copies the logger's metadata once per request. A service that installs
/// ``CorrelationID/metadataProvider`` on its loggers can use ``CorrelationIDLogging/metadataProvider``
/// instead, which costs nothing until a line is written (`tessera serve` does):
///
/// ```swift
/// LoggingSystem.bootstrap(
///     { label, provider in StreamLogHandler.standardError(label: label, metadataProvider: provider) },
///     metadataProvider: CorrelationID.metadataProvider
/// )
/// router.add(middleware: CorrelationIDMiddleware(logging: .metadataProvider))
/// ```
public struct CorrelationIDMiddleware<Context: CorrelatedRequestContext>: RouterMiddleware {
    public let logging: CorrelationIDLogging
    /// For a request no route matched: the methods its path is served with (an `Allow` value),
    /// when it is, so that it is answered `405` rather than `404`. Only a request that found no
    /// route asks it.
    let allowedMethods: (@Sendable (String) -> String?)?
    /// Where the service counts its requests by route: here, where every answer is final,
    /// rather than in a middleware of its own (a layer more per request).
    let requestMetrics: HTTPMetricSeries?

    public init(logging: CorrelationIDLogging = .loggerMetadata) {
        self.logging = logging
        self.allowedMethods = nil
        self.requestMetrics = nil
    }

    init(logging: CorrelationIDLogging, allowedMethods: @escaping @Sendable (String) -> String?, requestMetrics: HTTPMetricSeries?) {
        self.logging = logging
        self.allowedMethods = allowedMethods
        self.requestMetrics = requestMetrics
    }

    public func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        let id = request.headers.usableCorrelationID ?? makeCorrelationID()
        var context = context
        context.correlationID = id
        // A caller's trace: its ids on the log lines, and passed on to upstream calls. A request
        // without one pays only the header lookup.
        if let trace = request.headers[.traceparent].flatMap({ TraceContext(traceparent: $0) }) {
            if self.logging == .loggerMetadata {
                context.logger[metadataKey: "trace_id"] = .string(trace.traceID)
                context.logger[metadataKey: "parent_span_id"] = .string(trace.parentID)
            }
            let traced = context
            return try await TraceContext.$current.withValue(trace) {
                try await self.logged(request, context: traced, id: id, next: next)
            }
        }
        return try await self.logged(request, context: context, id: id, next: next)
    }

    @inline(__always)
    private func logged(_ request: Request, context: Context, id: String, next: (Request, Context) async throws -> Response) async throws -> Response {
        switch self.logging {
        case .loggerMetadata:
            var context = context
            context.logger[metadataKey: "correlation_id"] = .string(id)
            return try await self.respond(request, context: context, id: id, next: next)
        case .metadataProvider:
            return try await CorrelationID.$current.withValue(id) {
                try await self.respond(request, context: context, id: id, next: next)
            }
        }
    }

    private func respond(
        _ request: Request,
        context: Context,
        id: String,
        next: (Request, Context) async throws -> Response
    ) async throws -> Response {
        let started = self.requestMetrics == nil ? nil : ContinuousClock.now
        var response: Response
        do {
            response = try await next(request, context)
        } catch let error as HTTPError where error.status == .notFound && self.allowedMethods != nil {
            // No route: a served path with a method no route names (`QUERY`, an extension).
            if let allow = self.allowedMethods?(request.uri.path) {
                response = TesseraError.methodNotAllowed.response(correlationID: id)
                response.headers[.allow] = allow
            } else {
                response = try ErrorMiddleware<Context>.response(for: error, correlationID: id, logger: context.logger)
            }
        } catch {
            // Without an ErrorMiddleware inside, errors still leave with the id.
            response = try ErrorMiddleware<Context>.response(for: error, correlationID: id, logger: context.logger)
        }
        response.headers[.correlationID] = id
        if let started, let metrics = self.requestMetrics {
            metrics.record(route: context.endpointPath, method: request.method, status: response.status.code, since: started)
        }
        return response
    }
}

/// How ``CorrelationIDMiddleware`` puts the correlation id on a request's log lines.
public enum CorrelationIDLogging: Sendable {
    /// Set as `correlation_id` metadata on the request's logger.
    case loggerMetadata
    /// Kept in ``CorrelationID/current`` while the request is served, for
    /// ``CorrelationID/metadataProvider`` to add to each line written.
    case metadataProvider
}

/// The correlation id of the request being served, for log lines, when
/// ``CorrelationIDMiddleware`` runs with ``CorrelationIDLogging/metadataProvider``.
public enum CorrelationID {
    /// The id of the request the current task serves, if any.
    @TaskLocal public static var current: String?

    /// Adds `correlation_id` to every line written while a request is served (and `trace_id`
    /// and `parent_span_id` when the request carried a W3C `traceparent`); nothing otherwise.
    public static let metadataProvider = Logger.MetadataProvider {
        guard let id = CorrelationID.current else { return [:] }
        guard let trace = TraceContext.current else { return ["correlation_id": .string(id)] }
        return ["correlation_id": .string(id), "trace_id": .string(trace.traceID), "parent_span_id": .string(trace.parentID)]
    }
}
