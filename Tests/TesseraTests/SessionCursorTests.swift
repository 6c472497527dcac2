import Foundation
import Testing
import Tessera

/// The admin API's page cursor: what it gives back reads back, and nothing a client makes up
/// gets past parsing into a time that cannot be converted back.
@Suite struct SessionCursorTests {
    @Test func aCursorReadsBack() throws {
        let cursor = SessionCursor(createdAt: Date(millisecondsSince1970: 1_800_000_000_123), id: "ses_abc")
        #expect(SessionCursor(token: cursor.token) == cursor)
    }

    @Test(arguments: [
        "9223372036854775296:x", "9223372036854775807:x", "-1:x", "253402300800000:x", "12:", ":x", "x:y", "",
        String(repeating: "9", count: 300) + ":x",
    ])
    func aMadeUpCursorIsRefused(text: String) {
        let token = Data(text.utf8).base64EncodedString().replacingOccurrences(of: "+", with: "-")
            .replacingOccurrences(of: "/", with: "_").replacingOccurrences(of: "=", with: "")
        #expect(SessionCursor(token: token) == nil)
    }

    @Test func theLatestTimeStillConvertsBack() throws {
        let token = Data("253402300799999:ses_x".utf8).base64EncodedString().replacingOccurrences(of: "=", with: "")
        let cursor = try #require(SessionCursor(token: token))
        #expect(cursor.createdAt.millisecondsSince1970 == 253_402_300_799_999)
    }
}
