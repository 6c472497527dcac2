import HTTPTypes
import Testing

@testable import TesseraHummingbird

@Suite struct HTTPFieldTests {
    @Test(arguments: [
        ("Bearer tss_abc", "tss_abc"),
        ("bearer tss_abc", "tss_abc"),
        ("BEARER   tss_abc  ", "tss_abc"),
        ("Bearer \ttss_abc\t", "tss_abc"),
        ("Bearer tss_a b", "tss_a b"),
    ])
    func bearerTokensAreRead(header: String, token: String) {
        #expect(HTTPFields([HTTPField(name: .authorization, value: header)]).bearerToken == token)
    }

    @Test(arguments: ["Basic dXNlcjpwdw==", "Bearer", "Bearer ", "Bearer   ", "Bearertss_abc", "Bearer\ttss_abc", "Bear tss", "", "Bearer🙂 x"])
    func otherAuthorizationsAreNotBearerTokens(header: String) {
        #expect(HTTPFields([HTTPField(name: .authorization, value: header)]).bearerToken == nil)
    }

    @Test func correlationIDsAreUniqueAndPrintable() {
        let ids = (0..<10_000).map { _ in makeCorrelationID() }
        #expect(Set(ids).count == ids.count)
        for id in ids.prefix(100) {
            #expect(HTTPFields([HTTPField(name: .correlationID, value: id)]).usableCorrelationID == id)
        }
    }
}
