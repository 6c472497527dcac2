import Foundation
import Testing

@testable import Tessera

@Suite struct ErrorTableTests {
    @Test func codesAreUniqueAndStatusesMatchTheirKind() {
        let table = TesseraError.table
        #expect(Set(table.map(\.code)).count == table.count)
        for error in table {
            switch error.code.prefix(4) {
            case "AUTH": #expect([401, 403, 429].contains(error.statusCode), "\(error.code)")
            case "REQ_": #expect((400..<500).contains(error.statusCode), "\(error.code)")
            case "DATA": #expect((400..<500).contains(error.statusCode), "\(error.code)")
            // Browser actions a client wrote that the upstream's page does not allow, or asked
            // of an upstream that is not a browser: the request's fault, not the upstream's.
            case "UPST" where ["UPSTREAM_ACTION_FAILED", "UPSTREAM_NOT_BROWSER"].contains(error.code):
                #expect([409, 422].contains(error.statusCode), "\(error.code)")
            // The admin API's conflicts over users.
            case "USER": #expect(error.statusCode == 409, "\(error.code)")
            default: #expect(error.statusCode >= 500, "\(error.code)")
            }
        }
    }

    @Test func everyCodeIsDocumented() throws {
        let docs = URL(fileURLWithPath: #filePath)
            .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("docs/errors.md")
        let text = try String(contentsOf: docs, encoding: .utf8)
        for error in TesseraError.table {
            #expect(text.contains("`\(error.code)`"), "docs/errors.md does not document \(error.code)")
        }
    }

    @Test func expiryCarriesItsReason() {
        #expect(TesseraError.sessionExpired(.idle).reason == "idle")
        #expect(TesseraError.sessionExpired(.absolute).reason == "absolute")
        #expect(TesseraError.sessionExpired(.revoked).reason == "revoked")
        #expect(TesseraError.throttled(retryAfter: 0).retryAfter == 1)
    }
}
