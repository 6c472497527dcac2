import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1
import TesseraTestSupport
import Testing

/// `tessera serve` serves the SDK from a stable path, revalidated by `ETag`, and the pages of
/// `--static-dir` where the API has no operation, never a file outside the folder.
@Suite(.heavy) struct SDKServingTests {
    static let source = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Clients/js")

    @Test func theModuleIsServedAsJavaScriptWithAnETagAndRevalidated() async throws {
        let server = try await PageServer()
        for (path, type, file) in [
            ("/sdk/tessera.js", "text/javascript; charset=utf-8", "tessera.js"),
            ("/sdk/tessera.d.ts", "application/typescript; charset=utf-8", "tessera.d.ts"),
        ] {
            let first = try await Self.get(server.baseURL + path)
            #expect(first.status == .ok)
            #expect(first.headers["content-type"] == [type])
            #expect(first.headers["cache-control"] == ["no-cache"])
            #expect(first.body == (try String(contentsOf: Self.source.appendingPathComponent(file), encoding: .utf8)))
            let etag = try #require(first.headers.first(name: "etag"))
            let again = try await Self.get(server.baseURL + path, headers: ["If-None-Match": etag])
            #expect(again.status == .notModified)
            #expect(again.body.isEmpty)
        }
    }

    @Test func staticFilesAreServedWhereTheAPIHasNoOperationAndNeverOutsideTheFolder() async throws {
        let server = try await PageServer()
        let page = try await Self.get(server.baseURL + "/app.html")
        #expect(page.status == .ok)
        #expect(page.body.contains("tessera"))
        // The API is not shadowed.
        let api = try await Self.get(server.baseURL + "/v1/session")
        #expect(api.status == .unauthorized)
        // Nothing outside the folder, however the path is spelled.
        for path in ["/../Package.swift", "/%2e%2e/Package.swift", "/..%2fPackage.swift", "/%2e%2e%2f%2e%2e%2fPackage.swift"] {
            let answer = try await RawHTTP.exchange(port: server.process.port, "GET \(path) HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            #expect(answer.status == 400 || answer.status == 404, "\(path): \(answer.status ?? 0)")
            #expect(!answer.text.contains("PackageDescription"), "\(path)")
        }
        let log = server.process.standardOutput + server.process.standardError
        #expect(!log.contains(" error "), "\(log.suffix(2000))")
    }

    static func get(_ url: String, headers: HTTPHeaders = [:]) async throws -> (status: HTTPResponseStatus, headers: HTTPHeaders, body: String) {
        var request = HTTPClientRequest(url: url)
        request.headers = headers
        let response = try await HTTPClient.shared.execute(request, timeout: .seconds(10))
        let body = try await response.body.collect(upTo: 4 * 1024 * 1024)
        return (response.status, response.headers, String(buffer: body))
    }
}
