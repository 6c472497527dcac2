// Session-data JSON: JSONParser (with the limits the service uses), JSONWriter, JSONLimits.check.
//
// The input is one JSON document. Properties:
// - a document that parses writes back with JSONWriter and re-parses to an equal value, and the
//   written form is canonical (writing the re-parsed value gives the same bytes);
// - limits are monotone: whatever parses under tighter limits parses to the same value under
//   `.stored`; an error that is not a passed limit (syntax, duplicate key, number out of range)
//   is the same error, at the same offset, under `.stored`; a passed limit is found no later
//   than `.stored` fails;
// - the parser and `JSONLimits.check` agree with the value's measured shape: under limits `L`
//   the document parses if and only if it fits `maxBytes` and its depth, members and elements
//   fit, and otherwise fails with one of the limits it passes; `check` of the value passes if
//   and only if its shape fits and its *written* size fits `maxBytes`, and returns the bytes
//   JSONWriter writes;
// - parse of a non-contiguous sequence and parseObject agree with parse of the buffer;
// - JSONWriter writes the bytes JSONEncoder writes for the value (as its documentation says);
// - once per process: long arrays and objects parse in linear time (see checkLinearTime);
// - differential: what the parser accepts, Foundation's JSONSerialization accepts as the same
//   value, and what JSONSerialization accepts the parser accepts too, except for the documented
//   differences (duplicate keys, lone surrogates, numbers out of range, a BOM or another
//   encoding than UTF-8, nesting past Foundation's own limit).
import Foundation
import FuzzSupport

/// Limits to parse every input under, each within `.stored`. `tight` makes the limits reachable
/// by the small inputs libFuzzer writes.
let limitSets: [(name: String, limits: JSONLimits)] = [
    ("sessionData", .sessionData),
    ("requestBody(maxBytes: 1024)", .requestBody(maxBytes: 1024)),
    ("requestBody(maxBytes: 65536)", .requestBody(maxBytes: 65536)),
    ("tight", JSONLimits(maxBytes: 1 << 20, maxDepth: 3, maxMembers: 3, maxElements: 3)),
    ("scalar only", JSONLimits(maxBytes: 64, maxDepth: 0, maxMembers: 0, maxElements: 0)),
]

typealias Outcome = Result<JSONValue, JSONParseError>

func parse(_ bytes: some Sequence<UInt8>, _ limits: JSONLimits) -> Outcome {
    do {
        return .success(try JSONParser.parse(bytes, limits: limits))
    } catch let error as JSONParseError {
        return .failure(error)
    } catch {
        fail("JSONParser threw something else than a JSONParseError: \(error)")
    }
}

let structuralKinds: Set<JSONParseError.Kind> = [.tooDeep, .tooManyMembers, .tooManyElements]

/// The measures the limits bound, computed independently of the parser.
struct Shape {
    var depth = 0
    var members = 0
    var elements = 0

    init(_ value: JSONValue) {
        switch value {
        case .null, .bool, .number, .string:
            break
        case .array(let items):
            self.elements = items.count
            var deepest = 0
            for item in items {
                let inner = Shape(item)
                deepest = max(deepest, inner.depth)
                self.members = max(self.members, inner.members)
                self.elements = max(self.elements, inner.elements)
            }
            self.depth = deepest + 1
        case .object(let items):
            self.members = items.count
            var deepest = 0
            for item in items.values {
                let inner = Shape(item)
                deepest = max(deepest, inner.depth)
                self.members = max(self.members, inner.members)
                self.elements = max(self.elements, inner.elements)
            }
            self.depth = deepest + 1
        }
    }

    /// The structural limits of `limits` this shape passes.
    func violations(of limits: JSONLimits) -> Set<JSONParseError.Kind> {
        var kinds: Set<JSONParseError.Kind> = []
        if self.depth > limits.maxDepth { kinds.insert(.tooDeep) }
        if self.members > limits.maxMembers { kinds.insert(.tooManyMembers) }
        if self.elements > limits.maxElements { kinds.insert(.tooManyElements) }
        return kinds
    }
}

func written(_ value: JSONValue) -> [UInt8] {
    var writer = JSONWriter()
    writer.value(value)
    return writer.bytes
}

func describe(_ outcome: Outcome) -> String {
    switch outcome {
    case .success(let value): return "success(\(show(written(value))))"
    case .failure(let error): return "failure(\(error.kind), offset \(error.offset.map(String.init) ?? "nil"): \(error.detail))"
    }
}

// MARK: Properties

func checkRoundTrip(_ value: JSONValue, input: UnsafeBufferPointer<UInt8>) {
    let bytes = written(value)
    require(String(validating: bytes, as: UTF8.self) != nil, "JSONWriter wrote invalid UTF-8: \(show(bytes))")
    switch parse(bytes, .stored) {
    case .success(let back):
        require(back == value, "the written JSON \(show(bytes)) re-parses to another value")
        let again = written(back)
        require(again == bytes, "JSONWriter is not canonical: \(show(bytes)) then \(show(again))")
    case .failure(let error):
        fail("the written JSON \(show(bytes)) does not re-parse: \(error.kind) \(error.detail) at \(error.offset ?? -1)")
    }
    if case .object(let members) = value {
        var writer = JSONWriter()
        writer.object(members)
        require(writer.bytes == bytes, "JSONWriter.object and JSONWriter.value differ")
    }
}

func checkLimits(_ value: JSONValue, input: UnsafeBufferPointer<UInt8>, under limits: JSONLimits, named name: String) {
    let shape = Shape(value)
    let violations = shape.violations(of: limits)
    let outcome = parse(input, limits)
    // The parser: the input's size first, then the shape.
    if input.count > limits.maxBytes {
        guard case .failure(let error) = outcome, error.kind == .tooLarge else {
            fail("\(name): \(input.count) bytes over maxBytes \(limits.maxBytes) gave \(describe(outcome))")
        }
    } else if violations.isEmpty {
        guard case .success(let parsed) = outcome, parsed == value else {
            fail("\(name): a document within the limits (shape \(shape)) gave \(describe(outcome)), .stored parsed it")
        }
    } else {
        guard case .failure(let error) = outcome, violations.contains(error.kind) else {
            fail("\(name): a document passing \(violations) (shape \(shape)) gave \(describe(outcome))")
        }
        require(error.isLimit, "\(name): a passed limit is not isLimit")
        require(error.limit != nil, "\(name): a passed limit does not say which")
    }
    // check: the shape first, then the written size.
    let bytes = written(value)
    do {
        let checked = try limits.check(value)
        require(violations.isEmpty, "\(name): check passed a value that passes \(violations) (shape \(shape))")
        require(bytes.count <= limits.maxBytes, "\(name): check passed a value written in \(bytes.count) bytes, over \(limits.maxBytes)")
        require(checked == bytes, "\(name): check returned other bytes than JSONWriter writes")
    } catch {
        if violations.isEmpty {
            require(
                error.kind == .tooLarge && bytes.count > limits.maxBytes,
                "\(name): check refused a value of shape \(shape), written in \(bytes.count) bytes, with \(error.kind)"
            )
        } else {
            require(violations.contains(error.kind), "\(name): check refused a value passing \(violations) with \(error.kind)")
        }
        require(error.offset == nil, "\(name): check gave an offset")
    }
}

/// `tighter` is within `.stored`; `stored` is the outcome under `.stored`.
func checkMonotone(input: UnsafeBufferPointer<UInt8>, stored: Outcome, tighter limits: JSONLimits, named name: String) {
    let outcome = parse(input, limits)
    switch outcome {
    case .success(let value):
        guard case .success(let storedValue) = stored, storedValue == value else {
            fail("\(name): parsed, but .stored gave \(describe(stored))")
        }
    case .failure(let error) where error.kind == .tooLarge:
        require(input.count > limits.maxBytes, "\(name): tooLarge for \(input.count) bytes, maxBytes \(limits.maxBytes)")
    case .failure(let error) where structuralKinds.contains(error.kind):
        require(error.offset != nil, "\(name): a limit passed while reading has no offset")
        if case .failure(let storedError) = stored {
            require(
                (storedError.offset ?? .max) >= error.offset!,
                "\(name): \(error.kind) at \(error.offset!), but .stored fails earlier: \(describe(stored))"
            )
        }
    case .failure(let error):
        guard case .failure(let storedError) = stored, storedError.kind == error.kind, storedError.offset == error.offset else {
            fail("\(name): \(describe(outcome)), but .stored gave \(describe(stored))")
        }
    }
}

// MARK: Foundation

/// Whether Foundation's value is the same JSON value.
func same(_ any: Any, _ value: JSONValue) -> Bool {
    switch value {
    case .null:
        return any is NSNull
    case .bool(let bool):
        guard let number = any as? NSNumber, isBoolean(number) else { return false }
        return number.boolValue == bool
    case .number(let double):
        guard let number = any as? NSNumber, !isBoolean(number) else { return false }
        if number.doubleValue == double { return true }
        // Foundation reads large integers into Int64/UInt64 or Decimal; allow their rounding,
        // which grows with the magnitude past 64 bits (a 106-digit integer: 1.1e-15 relative).
        let tolerance = abs(double) < 1e19 ? 1e-15 : 1e-12
        return abs(number.doubleValue - double) <= abs(double) * tolerance
    case .string(let string):
        guard let other = any as? String else { return false }
        return other == string
    case .array(let items):
        guard let others = any as? [Any], others.count == items.count else { return false }
        return zip(others, items).allSatisfy { same($0, $1) }
    case .object(let members):
        guard let others = any as? [String: Any], others.count == members.count else { return false }
        return members.allSatisfy { key, member in others[key].map { same($0, member) } ?? false }
    }
}


/// JSONSerialization reads `true` and `false` as boolean NSNumbers (`objCType` `c`).
func isBoolean(_ number: NSNumber) -> Bool {
    String(cString: number.objCType) == "c"
}

/// Whether the parser's error is at a `]` or `}` that follows a `,`: JSONSerialization accepts
/// a trailing comma.
func isTrailingComma(_ error: JSONParseError, in input: UnsafeBufferPointer<UInt8>) -> Bool {
    guard var index = error.offset, index < input.count, input[index] == UInt8(ascii: "]") || input[index] == UInt8(ascii: "}") else {
        return false
    }
    while index > 0 {
        index -= 1
        switch input[index] {
        case 0x20, 0x0A, 0x0D, 0x09: continue
        case UInt8(ascii: ","): return true
        default: return false
        }
    }
    return false
}

func foundationParse(_ input: UnsafeBufferPointer<UInt8>) -> Any? {
    try? JSONSerialization.jsonObject(with: Data(input), options: [.fragmentsAllowed])
}

func checkFoundation(input: UnsafeBufferPointer<UInt8>, stored: Outcome) {
    // Foundation guesses UTF-16 and UTF-32 from NUL bytes and BOMs; the parser reads UTF-8 only.
    // And it drops a U+FEFF (EF BB BF) that starts a string or follows an escape in one, taking
    // it for a byte-order mark; the parser keeps it, as JSON says.
    if input.contains(0) || input.starts(with: [0xFE, 0xFF]) || input.starts(with: [0xFF, 0xFE])
        || input.indices.dropLast(2).contains(where: { input[$0] == 0xEF && input[$0 + 1] == 0xBB && input[$0 + 2] == 0xBF })
    {
        return
    }
    let foundation = foundationParse(input)
    switch stored {
    case .success(let value):
        // Foundation refuses nesting past 512 levels.
        guard Shape(value).depth <= 500 else { return }
        guard let foundation else {
            fail("the parser accepts \(show(input)) as \(show(written(value))), JSONSerialization refuses it")
        }
        require(same(foundation, value), "the parser and JSONSerialization read \(show(input)) differently: \(show(written(value))) and \(foundation)")
    case .failure(let error):
        guard let foundation else { return }
        switch error.kind {
        case .duplicateKey, .numberOutOfRange, .tooDeep, .tooLarge, .tooManyMembers, .tooManyElements:
            return
        case .syntax where error.detail.contains("surrogate") || isTrailingComma(error, in: input):
            return
        case .syntax:
            fail("JSONSerialization accepts \(show(input)) as \(foundation), the parser refuses it: \(error.detail) at \(error.offset ?? -1)")
        }
    }
}

/// JSONWriter's claim: it writes what the service's JSONEncoder writes (`.sortedKeys`,
/// `.withoutEscapingSlashes`; JSONValue encodes whole numbers as integers).
func checkEncoder(_ value: JSONValue) {
    guard Shape(value).depth <= 100 else { return }
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
    guard let encoded = try? encoder.encode(value) else { fail("JSONEncoder refuses \(show(written(value)))") }
    let bytes = written(value)
    require(Array(encoded) == bytes, "JSONWriter wrote \(show(bytes)), JSONEncoder \(show(encoded))")
}

/// The parser reads in time linear in the input, whatever its shape: long arrays and objects
/// (as `.stored` lets through) take milliseconds, not the minutes of a copy per element. Run
/// once per process, as libFuzzer's inputs are too short to show it.
func checkLinearTime() {
    let documents: [(String, [UInt8])] = [
        ("an array of 100,000 elements", Array(("[" + Array(repeating: "1", count: 100_000).joined(separator: ",") + "]").utf8)),
        ("an object of 50,000 members", Array(("{" + (0..<50_000).map { "\"k\($0)\":[]" }.joined(separator: ",") + "}").utf8)),
        ("an array of 50,000 objects", Array(("[" + Array(repeating: "{\"a\":1}", count: 50_000).joined(separator: ",") + "]").utf8)),
    ]
    for (name, bytes) in documents {
        let start = ContinuousClock.now
        guard case .success(let value) = parse(bytes, .stored) else { fail("\(name) does not parse") }
        _ = written(value)
        let elapsed = ContinuousClock.now - start
        require(elapsed < .seconds(2), "reading and writing \(name) (\(bytes.count) bytes) took \(elapsed)")
    }
}

nonisolated(unsafe) var checkedLinearTime = false

runFuzzer { input in
    if !checkedLinearTime {
        checkedLinearTime = true
        checkLinearTime()
    }
    let stored = parse(input, .stored)
    // The sequence path (copied into an array) reads as the buffer does.
    let viaSequence = parse(input.lazy.map { $0 }, .stored)
    require(describe(viaSequence) == describe(stored), "parse of a sequence gave \(describe(viaSequence)), of a buffer \(describe(stored))")

    if case .success(let value) = stored {
        checkRoundTrip(value, input: input)
        checkEncoder(value)
        for (name, limits) in limitSets {
            checkLimits(value, input: input, under: limits, named: name)
        }
        checkLimits(value, input: input, under: .stored, named: "stored")
    }
    for (name, limits) in limitSets {
        checkMonotone(input: input, stored: stored, tighter: limits, named: name)
    }
    // parseObject: the same outcome for objects, a syntax error at 0 for other values.
    do {
        let members = try JSONParser.parseObject(input, limits: .sessionData)
        guard case .success(.object(let expected)) = parse(input, .sessionData), expected == members else {
            fail("parseObject returned an object that parse does not")
        }
    } catch let error as JSONParseError {
        switch parse(input, .sessionData) {
        case .success(.object):
            fail("parseObject refused an object that parse reads: \(error.detail)")
        case .success:
            require(error.kind == .syntax && error.offset == 0, "parseObject of a non-object gave \(error.kind) at \(error.offset ?? -1)")
        case .failure(let parseError):
            require(parseError == error, "parseObject and parse fail differently")
        }
    } catch {
        fail("parseObject threw \(error)")
    }
    checkFoundation(input: input, stored: stored)
}
