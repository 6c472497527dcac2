import Foundation
import Testing
import TesseraTestSupport
import TesseraUpstream

@Suite(.heavy) struct FormTokenTests {
    @Test(arguments: [
        (#"<input type="hidden" name="_token" value="abc123">"#, "abc123"),
        (#"<INPUT value='q&amp;r' NAME='_token' type=hidden/>"#, "q&r"),
        (#"<input name=_token value=plain>"#, "plain"),
        (#"<meta name="_token" content="from-meta">"#, "from-meta"),
        (#"<input name="other" value="no"><input name="_token" value="second">"#, "second"),
    ])
    func theTokenIsReadFromAnInputOrMetaTag(html: String, expected: String) {
        #expect(FormTokenReader.value(named: "_token", in: "<html><form>\(html)</form></html>") == expected)
    }

    @Test func aPageWithoutTheTokenHasNone() {
        #expect(FormTokenReader.value(named: "_token", in: #"<input name="_tokens" value="x"><p>_token</p>"#) == nil)
        #expect(FormTokenReader.value(named: "_token", in: "<input name=\"_token\" value=\"unterminated") == nil)
    }

    @Test func aLoginFormWithAOneTimeTokenNeedsTheRecipeToFetchIt() async throws {
        try await PoolFixture.with { f in
            f.fake.requireFormToken = true
            await #expect {
                try await f.get("/api/items/1")
            } throws: { error in
                "\(error)".contains("the login answer was 419")
            }
        }
        try await PoolFixture.with(configure: {
            var configuration = fakeConfiguration(baseURL: $0)
            configuration.login.formToken = .init(field: "_token")
            return configuration
        }) { f in
            f.fake.requireFormToken = true
            let response = try await f.get("/api/items/1")
            #expect(response.status == 200)
            // A second login fetches a new token: each is good once.
            f.fake.expireAllSessions()
            #expect(try await f.get("/api/items/2").status == 200)
            #expect(f.fake.stats.logins == 2)
        }
    }
}
