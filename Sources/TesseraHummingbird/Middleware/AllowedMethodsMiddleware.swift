public import Hummingbird
import Tessera

/// Answers a request to a served path with a method it does not serve `405 REQ_1006` with an
/// `Allow` field that lists the methods it does serve, rather than the router's `404`.
///
/// The paths and methods come from the service's ``TesseraHTTPService/operations``, the list
/// `openapi.yaml` is kept true against: `{name}` matches one segment, a last `{path}` any rest.
struct AllowedMethodsMiddleware<Context: CorrelatedRequestContext>: RouterMiddleware {
    /// The served paths' segments, with the methods each serves (HEAD wherever GET is).
    let routes: [(segments: [Substring], methods: [String])]

    init(operations: [TesseraHTTPService.Operation]) {
        var routes: [(segments: [Substring], methods: [String])] = []
        for operation in operations {
            let segments = operation.path.split(separator: "/", omittingEmptySubsequences: false).dropFirst().map { $0 }
            let methods = operation.method == "GET" ? ["GET", "HEAD"] : [operation.method]
            if let index = routes.firstIndex(where: { $0.segments == segments }) {
                routes[index].methods += methods.filter { !routes[index].methods.contains($0) }
            } else {
                routes.append((segments, methods))
            }
        }
        self.routes = routes
    }

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        do {
            return try await next(request, context)
        } catch let error as HTTPError where error.status == .notFound {
            let allowed = self.methods(for: request.uri.path)
            guard !allowed.isEmpty, !allowed.contains(request.method.rawValue) else { throw error }
            var response = TesseraError.methodNotAllowed.response(correlationID: context.correlationID)
            response.headers[.allow] = allowed.joined(separator: ", ")
            return response
        }
    }

    /// The methods served at `path`, in the order the operations list them.
    func methods(for path: String) -> [String] {
        let segments = path.split(separator: "/", omittingEmptySubsequences: false).dropFirst()
        var methods: [String] = []
        for route in self.routes where Self.matches(route.segments, segments) {
            methods += route.methods.filter { !methods.contains($0) }
        }
        return methods
    }

    static func matches(_ template: [Substring], _ segments: ArraySlice<Substring>) -> Bool {
        var segments = segments[...]
        for (index, part) in template.enumerated() {
            if part == "{path}", index == template.count - 1 { return true }
            guard let segment = segments.popFirst() else { return false }
            if part.hasPrefix("{") { continue }
            guard part == segment else { return false }
        }
        return segments.isEmpty
    }
}
