import Foundation
import NIOCore
import Testing
import Tessera
@testable import TesseraHummingbird

/// The hand-written JSON of the hot path must be byte for byte what `JSONEncoder` writes.
@Suite struct JSONWriterTests {
    static let awkwardStrings = [
        "", "plain", "quote \" and backslash \\", "new\nline\ttab\rreturn", "\u{01}\u{08}\u{0C}\u{1F}",
        "slash / stays", "ünïcödé ✓ 🎉", "\u{2028}\u{2029}", "</script>",
    ]

    static let awkwardNumbers: [Double] = [0, -0.0, 1, -1, 2.5, 0.1, 1e-7, 123_456_789_012, 1e21, -3.25e-10, 9_007_199_254_740_993]

    func encoderBytes(_ value: some Encodable) throws -> [UInt8] {
        Array(try JSONCoding.encoder().encode(value))
    }

    func session(data: [String: JSONValue], metadata: SessionMetadata, at milliseconds: Int64) -> Session {
        let date = Date(millisecondsSince1970: milliseconds)
        return Session(
            id: "ses_x",
            tokenHash: SessionToken.generate().hash,
            userID: "usr_\"odd\"",
            createdAt: date,
            lastSeenAt: date.addingTimeInterval(0.001),
            idleExpiresAt: date.addingTimeInterval(899.999),
            absoluteExpiresAt: date.addingTimeInterval(86_400 * 400),
            data: data,
            dataVersion: 7,
            metadata: metadata,
            csrfToken: "c"
        )
    }

    @Test func datesAreWrittenToTheirMillisecondAndReadBackByFoundation() throws {
        let parser = Date.ISO8601FormatStyle(includingFractionalSeconds: true)
        // From 1900 on: before 1582 Foundation switches to the Julian calendar, while ISO 8601
        // (and this writer) stays Gregorian.
        var instants = Array(stride(from: Int64(-2_208_988_800_000), to: 253_402_300_800_000, by: 99_999_999_977))  // 1900…9999
        instants += stride(from: Int64(1_704_067_200_123), to: 1_893_456_000_000, by: 86_400_001)  // 2024…2029, daily
        for milliseconds in instants {
            let text = JSONWriter.iso8601(Date(millisecondsSince1970: milliseconds))
            let parsed = try parser.parse(text)
            #expect(Int64((parsed.timeIntervalSince1970 * 1000).rounded()) == milliseconds, "\(text)")
            #expect(text.count == 24 && text.hasSuffix("Z"), "\(text)")
        }
        #expect(instants.count > 4000)
        #expect(JSONWriter.iso8601(Date(millisecondsSince1970: 1_800_000_000_123)) == "2027-01-15T08:00:00.123Z")
        #expect(JSONWriter.iso8601(Date(millisecondsSince1970: 951_782_400_000)) == "2000-02-29T00:00:00.000Z")
        #expect(JSONWriter.iso8601(Date(millisecondsSince1970: -1)) == "1969-12-31T23:59:59.999Z")
        // Past four-digit years, the year simply grows.
        #expect(JSONWriter.iso8601(Date(millisecondsSince1970: 253_402_300_800_001)) == "10000-01-01T00:00:00.001Z")
    }

    @Test func sessionsAreWrittenExactlyAsTheEncoderWritesThem() throws {
        let data: [String: JSONValue] = [
            "strings": .array(Self.awkwardStrings.map { .string($0) }),
            "numbers": .array(Self.awkwardNumbers.map { .number($0) }),
            "nested": .object(["b": .bool(true), "a": .null, "z": .object([:]), "é": .array([])]),
            "\u{1}key": .string("v"),
        ]
        let instants: [Int64] = [
            0, 1, 951_782_400_000, 1_800_000_000_123, 4_102_444_799_999, 253_402_300_799_999, 1_709_251_199_999, -1, -86_400_001,
        ]
        let metadatas = [
            SessionMetadata(),
            SessionMetadata(ipAddress: "127.0.0.1", userAgent: "curl/8 \"x\"", label: "laptop\n"),
            SessionMetadata(ipAddress: nil, userAgent: nil, label: "only a label"),
        ]
        for instant in instants {
            for metadata in metadatas {
                for current in [nil, true, false] as [Bool?] {
                    let session = self.session(data: data, metadata: metadata, at: instant)
                    var writer = JSONWriter()
                    writer.session(session, current: current)
                    let written = Array(writer.buffer.readableBytesView)
                    let expected = try self.encoderBytes(SessionBody(session, current: current))
                    let difference =
                        zip(written, expected).enumerated().first { $0.element.0 != $0.element.1 }?.offset ?? min(written.count, expected.count)
                    #expect(
                        written == expected,
                        "at \(instant): \(String(decoding: written.dropFirst(max(0, difference - 40)).prefix(80), as: UTF8.self)) vs \(String(decoding: expected.dropFirst(max(0, difference - 40)).prefix(80), as: UTF8.self))"
                    )
                }
            }
        }
    }
}
