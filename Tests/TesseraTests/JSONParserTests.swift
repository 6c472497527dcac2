import Foundation
import Testing

@testable import Tessera

/// The parser every JSON body and all stored session data go through.
@Suite struct JSONParserTests {
    func parse(_ text: String, _ limits: JSONLimits = .stored) throws -> JSONValue {
        try JSONParser.parse(Array(text.utf8), limits: limits)
    }

    func refusal(_ text: String, _ limits: JSONLimits = .stored) -> JSONParseError? {
        do {
            _ = try self.parse(text, limits)
            return nil
        } catch {
            return error as? JSONParseError
        }
    }

    @Test func readsEveryKindOfValue() throws {
        let value = try self.parse(#" {"s":"a\"\\\/\b\f\n\r\t\u00e9\ud83c\udf89","n":-12.5e3,"z":0,"t":true,"f":false,"x":null,"a":[1,[],{}]} "#)
        #expect(
            value
                == .object([
                    "s": .string("a\"\\/\u{08}\u{0C}\n\r\té🎉"), "n": .number(-12_500), "z": .number(0), "t": .bool(true), "f": .bool(false),
                    "x": .null, "a": .array([.number(1), .array([]), .object([:])]),
                ])
        )
        #expect(try self.parse("\"plain ✓\"") == .string("plain ✓"))
        #expect(try self.parse("  7 ") == .number(7))
    }

    @Test(arguments: [
        "", " ", "{", "}", "[1,]", "{\"a\":1,}", "{\"a\" 1}", "{a:1}", "[1 2]", "01", "1.", ".5", "-", "+1", "1e", "NaN", "Infinity",
        "tru", "nul", "\"unterminated", "\"bad \\x escape\"", "\"\\u12\"", "[1] [2]", "{} x", "\u{FEFF}{}",
        "\"tab\tinside\"", "\"new\nline\"",
    ])
    func refusesWhatIsNotJSON(text: String) {
        let error = self.refusal(text)
        #expect(error?.kind == .syntax, "\(text.debugDescription): \(String(describing: error))")
        #expect(error?.isLimit == false)
    }

    @Test func refusesWhatJSONLeavesOpenToGuesswork() {
        #expect(self.refusal(#"{"a":1,"a":2}"#)?.kind == .duplicateKey)
        #expect(self.refusal(#""\ud800""#)?.kind == .syntax)
        #expect(self.refusal(#""\udc00\ud800""#)?.kind == .syntax)
        #expect(self.refusal(#""\ud800\u0041""#)?.kind == .syntax)
        #expect(self.refusal("1e999")?.kind == .numberOutOfRange)
        #expect(self.refusal("-1e400")?.kind == .numberOutOfRange)
        // Invalid UTF-8 inside a string, and outside one.
        #expect(throws: JSONParseError.self) { try JSONParser.parse([0x22, 0xFF, 0x22], limits: .stored) }
        #expect(throws: JSONParseError.self) { try JSONParser.parse([0x22, 0xC3, 0x22], limits: .stored) }
        #expect(throws: JSONParseError.self) { try JSONParser.parse([0xFF], limits: .stored) }
    }

    @Test func limitsHoldAtTheirBoundary() throws {
        let limits = JSONLimits(maxBytes: 1000, maxDepth: 3, maxMembers: 2, maxElements: 3)
        #expect(try self.parse(#"{"a":[{"b":1}]}"#, limits) != .null)
        #expect(self.refusal(#"{"a":[{"b":[]}]}"#, limits)?.kind == .tooDeep)
        #expect(self.refusal(#"{"a":[{"b":{}}]}"#, limits)?.limit == 3)
        #expect(try self.parse(#"{"a":1,"b":2}"#, limits) != .null)
        #expect(self.refusal(#"{"a":1,"b":2,"c":3}"#, limits)?.kind == .tooManyMembers)
        #expect(try self.parse("[1,2,3]", limits) != .null)
        #expect(self.refusal("[1,2,3,4]", limits)?.kind == .tooManyElements)
        #expect(self.refusal(String(repeating: " ", count: 1001) + "1", limits)?.kind == .tooLarge)
        #expect(self.refusal("[[[[1]]]]", limits)?.isLimit == true)
    }

    @Test func nestingPastAnyLimitCostsNoStack() throws {
        // A million levels: refused at the limit, after reading only that far.
        let deep = String(repeating: "[", count: 1_000_000) + String(repeating: "]", count: 1_000_000)
        let error = self.refusal(deep)
        #expect(error?.kind == .tooDeep)
        #expect(error?.offset == JSONLimits.stored.maxDepth)
        // The stored limit's own depth parses, writes and checks without recursion trouble.
        let stored = String(repeating: #"{"a":"#, count: 1024) + "1" + String(repeating: "}", count: 1024)
        let value = try self.parse(stored)
        var writer = JSONWriter()
        writer.value(value)
        #expect(String(decoding: writer.bytes, as: UTF8.self) == stored)
        #expect(throws: JSONParseError.self) { try JSONLimits.sessionData.check(value) }
    }

    @Test func whatIsParsedWritesBackToTheSameValue() throws {
        let documents = [
            #"{"b":[1,2.5,-0.001,1e21,true,null],"a":{"nested":"x\"y"},"c":"\u0001\u001f"}"#, #"[]"#, #"{"":""}"#,
            #"{"emoji":"🎉","rtl":"\u202e"}"#, #"[123456789012345678901234567890]"#,
        ]
        for document in documents {
            let value = try self.parse(document)
            var writer = JSONWriter()
            writer.value(value)
            #expect(try JSONParser.parse(writer.bytes, limits: .stored) == value, "\(document)")
        }
    }

    @Test func checkingABuiltValueAgreesWithParsingIt() throws {
        let limits = JSONLimits.sessionData
        let atLimit = String(repeating: #"{"a":"#, count: 32) + "1" + String(repeating: "}", count: 32)
        try limits.check(try self.parse(atLimit))
        let pastLimit = String(repeating: #"{"a":"#, count: 33) + "1" + String(repeating: "}", count: 33)
        #expect(throws: JSONParseError.self) { try limits.check(try self.parse(pastLimit)) }
        #expect(self.refusal(pastLimit, limits)?.kind == .tooDeep)
        let members = JSONValue.object(Dictionary(uniqueKeysWithValues: (0..<257).map { ("k\($0)", JSONValue.number(1)) }))
        do {
            try limits.check(members)
            Issue.record("257 members passed the check")
        } catch {
            #expect(error.kind == .tooManyMembers)
        }
        let large = JSONValue.object(["text": .string(String(repeating: "x", count: 16 * 1024))])
        do {
            try limits.check(large)
            Issue.record("more than 16 KiB passed the check")
        } catch {
            #expect(error.kind == .tooLarge)
        }
    }

    @Test func storedDataReadsBackAndAnUnreadableRowIsAStoredDataError() throws {
        let data: [String: JSONValue] = ["cart": .array([.number(1), .string("two")]), "theme": .string("dark")]
        #expect(try [String: JSONValue](storedJSON: data.storedJSON) == data)
        #expect(data.storedJSON == #"{"cart":[1,"two"],"theme":"dark"}"#)
        #expect(throws: StoredDataError.self) { try [String: JSONValue](storedJSON: #"{"a":"#) }
        #expect(throws: StoredDataError.self) { try [String: JSONValue](storedJSON: "[1]") }
    }

    @Test func messagesSayWhatAndWhereButNeverQuoteTheDocument() {
        let secret = "tss_SECRETSECRETSECRET"
        for text in [#"{"token":"\#(secret)","#, #"{"\#(secret)":1,"\#(secret)":2}"#, #"["\#(secret)" 1]"#] {
            let error = self.refusal(text)
            #expect(error != nil)
            #expect(error?.message.contains(secret) == false, "\(String(describing: error?.message))")
            #expect(error?.message.contains("at byte") == true)
        }
    }
}
