import Crypto
import Foundation
import HTTPTypes
import Hummingbird
import NIOCore

/// `tessera.js`, the browser SDK (`Clients/js/`), built into the service and served at a stable
/// path: `no-cache` with a strong `ETag`, so a browser revalidates (a `304` without a body) and
/// always runs the module the service it talks to ships.
struct BrowserSDK: Sendable {
    struct File: Sendable {
        var body: ByteBuffer
        var etag: String
        var contentType: String
    }

    let module: File
    let types: File

    static let shared = BrowserSDK()
    static let contentTypeOptions = HTTPField.Name("X-Content-Type-Options")

    init() {
        self.module = Self.file(PackageResources.tessera_js, contentType: "text/javascript; charset=utf-8")
        self.types = Self.file(PackageResources.tessera_d_ts, contentType: "application/typescript; charset=utf-8")
    }

    static func file(_ bytes: [UInt8], contentType: String) -> File {
        let digest = SHA256.hash(data: bytes).prefix(12).map { byte in
            let hex = String(byte, radix: 16)
            return byte < 16 ? "0" + hex : hex
        }.joined()
        return File(body: ByteBuffer(bytes: bytes), etag: "\"\(digest)\"", contentType: contentType)
    }

    /// The answer to a `GET` of `file`: `304` when `If-None-Match` names its `ETag`.
    static func response(for file: File, request: Request) -> Response {
        var headers: HTTPFields = [.contentType: file.contentType, .cacheControl: "no-cache", .eTag: file.etag]
        if let nosniff = Self.contentTypeOptions { headers[nosniff] = "nosniff" }
        let matches = request.headers[values: .ifNoneMatch].contains { value in
            value.split(separator: ",").contains { candidate in
                let tag = candidate.trimmingCharacters(in: .whitespaces)
                return tag == "*" || tag == file.etag || tag == "W/" + file.etag
            }
        }
        if matches {
            return Response(status: .notModified, headers: headers)
        }
        headers[.contentLength] = String(file.body.readableBytes)
        return Response(status: .ok, headers: headers, body: .init(byteBuffer: file.body))
    }
}
