package import Foundation
package import Hummingbird
package import NIOCore
package import Tessera

/// JSON in and out of the API, with the limits checked in one place.
///
/// Every JSON request body is read here: its media type checked (`415 REQ_1008` otherwise), its
/// size bounded while it is collected (`413 REQ_1002`), and its shape bounded while it is
/// parsed by ``JSONParser`` with ``JSONLimits/requestBody(maxBytes:)`` (`422 REQ_1007` for too
/// deep, too many members or elements; `400 REQ_1001` for what is not JSON), before any handler
/// sees a field of it.
package enum JSONCoding {
    /// The encoder of the responses that carry no session: dates in ISO 8601 with milliseconds,
    /// keys sorted, slashes unescaped. Responses that carry sessions are written with
    /// ``JSONWriter``, which cannot fail.
    package static func encoder() -> JSONEncoder {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        encoder.dateEncodingStrategy = .custom { date, encoder in
            var container = encoder.singleValueContainer()
            try container.encode(JSONWriter.iso8601(date))
        }
        return encoder
    }

    /// Encodes a response value.
    /// - Throws: ``ResponseEncodingError`` (which names the type, never the value).
    package static func encode(_ value: some Encodable) throws -> ByteBuffer {
        do {
            return ByteBuffer(bytes: try Self.encoder().encode(value))
        } catch {
            throw ResponseEncodingError(type: String(describing: type(of: value)))
        }
    }

    /// The media type of JSON bodies.
    package static let json = "application/json"

    /// A JSON object body of at most `limit` bytes, sent as one of `mediaTypes`.
    package static func object(from request: Request, limit: Int, mediaTypes: [String] = [Self.json]) async throws -> JSONFields {
        try Self.requireMediaType(of: request, in: mediaTypes)
        let buffer = try await Self.body(of: request, limit: limit)
        do {
            return JSONFields(try JSONParser.parseObject(buffer.readableBytesView, limits: .requestBody(maxBytes: limit)))
        } catch let error as JSONParseError {
            if error.isLimit { throw TesseraError.jsonLimitExceeded("The request body is past its limits: \(error.message)") }
            guard buffer.readableBytes > 0 else { throw TesseraError.malformedBody("The request body is empty; it must be a JSON object.") }
            throw TesseraError.malformedBody("The request body is not a JSON object: \(error.message)")
        }
    }

    /// Refuses a request whose `Content-Type` is not one of `mediaTypes` (parameters such as
    /// `charset` aside), with `415 REQ_1008`.
    package static func requireMediaType(of request: Request, in mediaTypes: [String]) throws {
        guard let contentType = request.headers[.contentType], mediaTypes.contains(Self.mediaType(contentType)) else {
            throw TesseraError.unsupportedMediaType(mediaTypes.joined(separator: " or "))
        }
    }

    /// The media type of a `Content-Type` value, lower-cased, without its parameters.
    package static func mediaType(_ contentType: String) -> String {
        let type = contentType.split(separator: ";", maxSplits: 1, omittingEmptySubsequences: false).first ?? ""
        return type.trimmingCharacters(in: .whitespaces).lowercased()
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
}

/// The members of a JSON object body, read with specific errors: a missing or mistyped field
/// is `400 REQ_1001` naming the field. Members the operation does not know are ignored.
package struct JSONFields: Sendable {
    package let members: [String: JSONValue]

    package init(_ members: [String: JSONValue]) {
        self.members = members
    }

    /// The string `key`.
    package func string(_ key: String) throws -> String {
        guard let value = self.members[key] else { throw TesseraError.malformedBody("The field '\(key)' is missing.") }
        guard case .string(let text) = value else { throw Self.wrongType(key) }
        return text
    }

    /// The string `key`, or `nil` when it is absent or `null`.
    package func optionalString(_ key: String) throws -> String? {
        switch self.members[key] {
        case nil, .null: return nil
        case .string(let text): return text
        default: throw Self.wrongType(key)
        }
    }

    /// The object `key`, or `nil` when it is absent or `null`.
    package func optionalObject(_ key: String) throws -> [String: JSONValue]? {
        switch self.members[key] {
        case nil, .null: return nil
        case .object(let object): return object
        default: throw Self.wrongType(key)
        }
    }

    /// The Boolean `key`, or `nil` when it is absent or `null`.
    package func optionalBool(_ key: String) throws -> Bool? {
        switch self.members[key] {
        case nil, .null: return nil
        case .bool(let value): return value
        default: throw Self.wrongType(key)
        }
    }

    static func wrongType(_ key: String) -> TesseraError {
        .malformedBody("The field '\(key)' has the wrong type.")
    }
}

/// A response value that `JSONEncoder` refused (a number JSON cannot spell, say). The service
/// answers `500 SRV_1000`; the log names the type alone, never the value, which may hold secrets.
package struct ResponseEncodingError: LoggableError {
    package var type: String
    package var description: String { "A \(self.type) response could not be encoded as JSON." }
}

/// A response body written with ``JSONWriter``: it cannot fail, whatever the session data holds.
package protocol JSONWritable {
    func write(to writer: inout JSONWriter)
}

extension Response {
    /// A JSON response that must not be cached.
    package static func json(_ value: some JSONWritable, status: HTTPResponse.Status = .ok, headers: HTTPFields = [:]) -> Response {
        var writer = JSONWriter()
        value.write(to: &writer)
        return Response(status: status, headers: Self.jsonHeaders(headers), body: .init(byteBuffer: writer.buffer))
    }

    /// A JSON response that must not be cached, encoded by `JSONEncoder`.
    /// - Throws: ``ResponseEncodingError``.
    package static func json(_ value: some Encodable, status: HTTPResponse.Status = .ok, headers: HTTPFields = [:]) throws -> Response {
        Response(status: status, headers: Self.jsonHeaders(headers), body: .init(byteBuffer: try JSONCoding.encode(value)))
    }

    private static func jsonHeaders(_ headers: HTTPFields) -> HTTPFields {
        var allHeaders = headers
        allHeaders[.contentType] = "application/json; charset=utf-8"
        allHeaders[.cacheControl] = "no-store"
        return allHeaders
    }
}
