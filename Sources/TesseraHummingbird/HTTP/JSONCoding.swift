package import Foundation
package import Hummingbird
package import NIOCore
import Tessera

/// JSON encoding and decoding with Tessera's conventions: dates in ISO 8601 with milliseconds
/// (deadlines are exact), and safe, specific messages for malformed bodies.
package enum JSONCoding {
    package static func encoder() -> JSONEncoder {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        encoder.dateEncodingStrategy = .custom { date, encoder in
            var container = encoder.singleValueContainer()
            try container.encode(JSONWriter.iso8601(date))
        }
        return encoder
    }

    package static func encode(_ value: some Encodable) -> ByteBuffer {
        // Tessera's response types always encode; a failure here is a programming error.
        let data = try! Self.encoder().encode(value)
        return ByteBuffer(bytes: data)
    }

    /// Decodes a request body of at most `limit` bytes.
    ///
    /// - Throws: `REQ_1002` when the body is larger, `REQ_1001` with the offending field when it
    ///   is not the expected JSON.
    package static func decode<T: Decodable>(_ type: T.Type, from request: Request, limit: Int) async throws -> T {
        let buffer = try await Self.body(of: request, limit: limit)
        do {
            return try JSONDecoder().decode(T.self, from: Data(buffer.readableBytesView))
        } catch let error as DecodingError {
            throw TesseraError.malformedBody(Self.message(for: error))
        } catch let error as TesseraError {
            throw error
        } catch {
            throw TesseraError.malformedBody()
        }
    }

    /// The request body, of at most `limit` bytes.
    /// - Throws: `REQ_1002` when the body is larger.
    package static func body(of request: Request, limit: Int) async throws -> ByteBuffer {
        var request = request
        do {
            return try await request.collectBody(upTo: limit)
        } catch is NIOTooManyBytesError {
            throw TesseraError.bodyTooLarge(limit: limit)
        }
    }

    static func message(for error: DecodingError) -> String {
        func path(_ codingPath: [any CodingKey], _ key: (any CodingKey)? = nil) -> String {
            (codingPath + (key.map { [$0] } ?? [])).map(\.stringValue).joined(separator: ".")
        }
        switch error {
        case .keyNotFound(let key, let context):
            return "The field '\(path(context.codingPath, key))' is missing."
        case .typeMismatch(_, let context), .valueNotFound(_, let context):
            if context.codingPath.isEmpty { return "The request body must be a JSON object." }
            return "The field '\(path(context.codingPath))' has the wrong type."
        case .dataCorrupted(let context):
            if context.codingPath.isEmpty { return "The request body is not valid JSON." }
            return "The field '\(path(context.codingPath))' has an invalid value."
        @unknown default:
            return "The request body is not valid JSON for this operation."
        }
    }
}

extension Response {
    /// A JSON response that must not be cached.
    package static func json(_ value: some Encodable, status: HTTPResponse.Status = .ok, headers: HTTPFields = [:]) -> Response {
        var allHeaders = headers
        allHeaders[.contentType] = "application/json; charset=utf-8"
        allHeaders[.cacheControl] = "no-store"
        return Response(status: status, headers: allHeaders, body: .init(byteBuffer: JSONCoding.encode(value)))
    }
}
