import Foundation
import Hummingbird
import NIOCore
import Tessera

/// The body of `POST /v1/introspect`: RFC 7662's form (`token=…&token_type_hint=…`) or JSON
/// (`{"token": "…"}`).
enum IntrospectionRequest {
    static let limit = 8 * 1024

    static let form = "application/x-www-form-urlencoded"

    /// The token to introspect.
    /// - Throws: `REQ_1002` for a body over 8 KiB, `REQ_1001` when there is no token, `REQ_1008`
    ///   for a body that is neither a form nor JSON.
    static func token(from request: Request) async throws -> String {
        try JSONCoding.requireMediaType(of: request, in: [Self.form, JSONCoding.json])
        let isForm = JSONCoding.mediaType(request.headers[.contentType] ?? "") == Self.form
        guard isForm else {
            return try await JSONCoding.object(from: request, limit: Self.limit).string("token")
        }
        let buffer = try await JSONCoding.body(of: request, limit: Self.limit)
        guard let token = Self.formValue(named: "token", in: String(buffer: buffer)) else {
            throw TesseraError.malformedBody("The field 'token' is missing.")
        }
        return token
    }

    /// The first value of `name` in a form-encoded body, decoded (`+` is a space).
    static func formValue(named name: String, in body: String) -> String? {
        for pair in body.split(separator: "&") {
            let parts = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            guard parts.count == 2, parts[0] == name else { continue }
            return String(parts[1]).replacingOccurrences(of: "+", with: " ").removingPercentEncoding
        }
        return nil
    }
}
