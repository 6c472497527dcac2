import Foundation
import HTTPTypes
import Hummingbird
import Tessera

/// A served path with a method it does not serve: `405 REQ_1006` with `Allow`.
extension TesseraHTTPService {
    /// The methods a client may send that some path does not serve.
    static let knownMethods: [HTTPRequest.Method] = [.get, .head, .post, .put, .patch, .delete, .options, .trace]

    /// The methods each served path serves (HEAD wherever GET is), in the order the operations
    /// list them, by the path as the router spells it.
    static var servedMethods: [(path: String, methods: [String])] {
        var paths: [(path: String, methods: [String])] = []
        for operation in Self.operations {
            let methods = operation.method == "GET" ? ["GET", "HEAD"] : [operation.method]
            if let index = paths.firstIndex(where: { $0.path == operation.path }) {
                paths[index].methods += methods.filter { !paths[index].methods.contains($0) }
            } else {
                paths.append((operation.path, methods))
            }
        }
        return paths
    }

    /// The `Allow` value of the served path `path` matches (`{…}` one segment, the proxy's
    /// `{path}` the rest), or `nil`: for requests whose method no route names.
    static let allowedMethods: @Sendable (String) -> String? = {
        let templates = Self.servedMethods.map { served in
            (segments: served.path.split(separator: "/").map(String.init), allow: served.methods.joined(separator: ", "))
        }
        return { path in
            let segments = path.split(separator: "/", omittingEmptySubsequences: false).dropFirst()
            return templates.first { Self.matches($0.segments, segments) }?.allow
        }
    }()

    static func matches(_ template: [String], _ segments: ArraySlice<Substring>) -> Bool {
        var rest = segments
        for (position, part) in template.enumerated() {
            if part == "{path}", position == template.count - 1 { return !rest.isEmpty }
            guard let segment = rest.first else { return false }
            if part.hasPrefix("{") ? segment.isEmpty : segment != part { return false }
            rest = rest.dropFirst()
        }
        return rest.isEmpty
    }

    /// Routes every method a served path does not serve to a `405` that names the ones it does.
    /// They are routes like any other, so a request to a served method pays nothing for them.
    func addMethodNotAllowedRoutes(to router: Router<TesseraRequestContext>) {
        for (path, methods) in Self.servedMethods {
            let allow = methods.joined(separator: ", ")
            // The proxy's `{path}` is the router's catch-all.
            let routerPath = path.replacingOccurrences(of: "{path}", with: "**")
            for method in Self.knownMethods where !methods.contains(method.rawValue) {
                router.on(RouterPath(routerPath), method: method) { _, context in
                    var response = TesseraError.methodNotAllowed.response(correlationID: context.correlationID)
                    response.headers[.allow] = allow
                    return response
                }
            }
        }
    }
}
