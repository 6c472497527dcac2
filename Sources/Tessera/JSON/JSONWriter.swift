package import Foundation

/// Writes JSON bytes: session data for the stores, and the responses that carry sessions, where
/// `JSONEncoder` would build a tree of boxes, format every date through Foundation, and refuse
/// values nested past its own limit.
///
/// It writes what the service's `JSONEncoder` would: keys sorted, dates in ISO 8601 UTC with
/// milliseconds, no escaped slashes. A test compares the two on many inputs. It cannot fail:
/// values are written with a work list rather than recursion, so no nesting exhausts the stack,
/// and a number that JSON cannot spell (infinity, NaN) is written as `null`.
package struct JSONWriter {
    /// The bytes are gathered in an array and copied into a `ByteBuffer` once, at the end: a
    /// `ByteBuffer` write per piece checks capacity, uniqueness and exclusive access each time,
    /// which cost more than the copy (a `perf` profile of who-am-I showed it).
    /// What was written.
    ///
    /// The writer's small methods are `@inlinable`: the responses that use it are written in
    /// another module, and a call per piece across it would cost more than the piece.
    package var bytes: [UInt8]
    @usableFromInline var needsComma = false

    @inlinable
    package init(capacity: Int = 512) {
        self.bytes = []
        self.bytes.reserveCapacity(capacity)
    }

    // MARK: Structure

    @inlinable
    package mutating func beginObject() {
        self.separate()
        self.append(UInt8(ascii: "{"))
        self.needsComma = false
    }

    @inlinable
    package mutating func endObject() {
        self.append(UInt8(ascii: "}"))
        self.needsComma = true
    }

    @inlinable
    package mutating func beginArray() {
        self.separate()
        self.append(UInt8(ascii: "["))
        self.needsComma = false
    }

    @inlinable
    package mutating func endArray() {
        self.append(UInt8(ascii: "]"))
        self.needsComma = true
    }

    /// Writes `"key":`; the value follows.
    /// A key the program spells, which needs no escaping (it is checked in debug builds).
    @inlinable
    package mutating func key(_ key: StaticString) {
        self.separate()
        assert(key.withUTF8Buffer { !$0.contains { $0 < 0x20 || $0 == UInt8(ascii: "\"") || $0 == UInt8(ascii: "\\") } })
        self.append(UInt8(ascii: "\""))
        self.append(key)
        self.append(UInt8(ascii: "\""))
        self.append(UInt8(ascii: ":"))
        self.needsComma = false
    }

    /// A key from data, escaped as needed.
    @inlinable
    package mutating func key(string key: String) {
        self.separate()
        self.writeQuoted(key)
        self.append(UInt8(ascii: ":"))
        self.needsComma = false
    }

    @inlinable
    mutating func append(_ byte: UInt8) {
        self.bytes.append(byte)
    }

    @inlinable
    mutating func append(_ text: StaticString) {
        text.withUTF8Buffer { self.bytes.append(contentsOf: $0) }
    }

    @inlinable
    mutating func append(_ text: String) {
        var text = text
        text.withUTF8 { self.bytes.append(contentsOf: $0) }
    }

    @inlinable
    mutating func separate() {
        if self.needsComma { self.append(UInt8(ascii: ",")) }
    }

    // MARK: Values

    @inlinable
    package mutating func string(_ value: String) {
        self.separate()
        self.writeQuoted(value)
        self.needsComma = true
    }

    @inlinable
    package mutating func integer(_ value: Int) {
        self.separate()
        self.append(String(value))
        self.needsComma = true
    }

    @inlinable
    package mutating func bool(_ value: Bool) {
        self.separate()
        self.append(value ? "true" : "false")
        self.needsComma = true
    }

    @inlinable
    package mutating func null() {
        self.separate()
        self.append("null")
        self.needsComma = true
    }

    /// A number as `JSONEncoder` writes a `Double`: whole numbers without a fraction; `null` for
    /// infinity and NaN, which JSON cannot spell (no parsed value is one).
    @inlinable
    package mutating func number(_ value: Double) {
        self.separate()
        if !value.isFinite {
            self.append("null")
        } else if value == 0 {
            self.append(UInt8(ascii: "0"))
        } else {
            let text = value.description
            self.append(text.hasSuffix(".0") ? String(text.dropLast(2)) : text)
        }
        self.needsComma = true
    }

    /// A date as `2027-01-15T08:00:00.123Z`: UTC, to the millisecond the date is nearest to.
    ///
    /// (Foundation's ISO 8601 format style truncates the binary fraction, so it prints `.122`
    /// for a date made from 1,800,000,000,123 ms; Tessera keeps times in whole milliseconds and
    /// prints the one it keeps.)
    @inlinable
    package mutating func date(_ date: Date) {
        self.separate()
        let milliseconds = Int64((date.timeIntervalSince1970 * 1000).rounded())
        var days = milliseconds >= 0 ? milliseconds / 86_400_000 : (milliseconds - 86_399_999) / 86_400_000
        let inDay = milliseconds - days * 86_400_000
        // Civil date from days since 1970 (Howard Hinnant's algorithm).
        days += 719_468
        let era = (days >= 0 ? days : days - 146_096) / 146_097
        let dayOfEra = days - era * 146_097
        let yearOfEra = (dayOfEra - dayOfEra / 1460 + dayOfEra / 36524 - dayOfEra / 146_096) / 365
        let dayOfYear = dayOfEra - (365 * yearOfEra + yearOfEra / 4 - yearOfEra / 100)
        let monthIndex = (5 * dayOfYear + 2) / 153
        let day = dayOfYear - (153 * monthIndex + 2) / 5 + 1
        let month = monthIndex < 10 ? monthIndex + 3 : monthIndex - 9
        let year = yearOfEra + era * 400 + (month <= 2 ? 1 : 0)

        // `"YYYY-MM-DDTHH:MM:SS.mmmZ"` (a longer or signed year outside 0…9999), built on the
        // stack and appended at once.
        var yearDigits = 4
        var yearLimit: UInt64 = 10_000
        while yearDigits < 19 && year.magnitude >= yearLimit {
            yearDigits += 1
            yearLimit *= 10
        }
        withUnsafeTemporaryAllocation(of: UInt8.self, capacity: 48) { text in
            var end = 0
            text[end] = UInt8(ascii: "\"")
            end += 1
            if year < 0 {
                text[end] = UInt8(ascii: "-")
                end += 1
            }
            Self.putDigits(year.magnitude, width: yearDigits, at: end, in: text)
            end += yearDigits
            // "-MM-DDTHH:MM:SS.mmmZ\"": fixed positions from here.
            text[end] = UInt8(ascii: "-")
            Self.putDigits(UInt64(month), width: 2, at: end + 1, in: text)
            text[end + 3] = UInt8(ascii: "-")
            Self.putDigits(UInt64(day), width: 2, at: end + 4, in: text)
            text[end + 6] = UInt8(ascii: "T")
            Self.putDigits(UInt64(inDay / 3_600_000), width: 2, at: end + 7, in: text)
            text[end + 9] = UInt8(ascii: ":")
            Self.putDigits(UInt64(inDay / 60_000 % 60), width: 2, at: end + 10, in: text)
            text[end + 12] = UInt8(ascii: ":")
            Self.putDigits(UInt64(inDay / 1000 % 60), width: 2, at: end + 13, in: text)
            text[end + 15] = UInt8(ascii: ".")
            Self.putDigits(UInt64(inDay % 1000), width: 3, at: end + 16, in: text)
            text[end + 19] = UInt8(ascii: "Z")
            text[end + 20] = UInt8(ascii: "\"")
            end += 21
            self.bytes.append(contentsOf: UnsafeBufferPointer(rebasing: text[..<end]))
        }
        self.needsComma = true
    }

    /// Writes `value` in `width` decimal digits, zero-padded, at `position`.
    @inlinable @inline(__always)
    static func putDigits(_ value: UInt64, width: Int, at position: Int, in text: UnsafeMutableBufferPointer<UInt8>) {
        var value = value
        var index = position + width - 1
        while index >= position {
            text[index] = UInt8(ascii: "0") &+ UInt8(truncatingIfNeeded: value % 10)
            value /= 10
            index -= 1
        }
    }

    /// Writes `value`, objects with their keys sorted.
    package mutating func value(_ value: JSONValue) {
        // A work list instead of recursion: the depth of a value costs heap, never stack.
        enum Step {
            case value(JSONValue)
            case key(String)
            case endObject
            case endArray
        }
        var steps: [Step] = [.value(value)]
        while let step = steps.popLast() {
            switch step {
            case .key(let key): self.key(string: key)
            case .endObject: self.endObject()
            case .endArray: self.endArray()
            case .value(.null): self.null()
            case .value(.bool(let bool)): self.bool(bool)
            case .value(.number(let number)): self.number(number)
            case .value(.string(let string)): self.string(string)
            case .value(.array(let elements)):
                self.beginArray()
                steps.append(.endArray)
                for element in elements.reversed() { steps.append(.value(element)) }
            case .value(.object(let members)):
                self.beginObject()
                steps.append(.endObject)
                // By UTF-8 bytes, as JSONEncoder's `.sortedKeys` sorts: `<` compares normalized
                // strings, which orders a key with a combining mark elsewhere.
                for (key, member) in members.sorted(by: { $0.key.utf8.lexicographicallyPrecedes($1.key.utf8) }).reversed() {
                    steps.append(.value(member))
                    steps.append(.key(key))
                }
            }
        }
    }

    /// Writes a JSON object, its keys sorted.
    @inlinable
    package mutating func object(_ object: [String: JSONValue]) {
        if object.isEmpty {
            // Most sessions hold no data: no work list for them.
            self.beginObject()
            self.endObject()
        } else {
            self.value(.object(object))
        }
    }

    // MARK: Bytes

    @inlinable
    mutating func writeQuoted(_ text: String) {
        self.append(UInt8(ascii: "\""))
        // Most strings need no escaping: scan their bytes in place, then copy them in one go.
        let plain =
            text.utf8.withContiguousStorageIfAvailable { bytes in
                !bytes.contains { $0 < 0x20 || $0 == UInt8(ascii: "\"") || $0 == UInt8(ascii: "\\") }
            } ?? !text.utf8.contains { $0 < 0x20 || $0 == UInt8(ascii: "\"") || $0 == UInt8(ascii: "\\") }
        if plain {
            self.append(text)
        } else {
            for byte in text.utf8 {
                switch byte {
                case UInt8(ascii: "\""): self.append("\\\"")
                case UInt8(ascii: "\\"): self.append("\\\\")
                case 0x0A: self.append("\\n")
                case 0x0D: self.append("\\r")
                case 0x09: self.append("\\t")
                case 0x08: self.append("\\b")
                case 0x0C: self.append("\\f")
                case ..<0x20:
                    self.append("\\u00")
                    self.append(Self.hexDigits[Int(byte >> 4)])
                    self.append(Self.hexDigits[Int(byte & 0x0F)])
                default: self.append(byte)
                }
            }
        }
        self.append(UInt8(ascii: "\""))
    }

    @usableFromInline static let hexDigits: [UInt8] = Array("0123456789abcdef".utf8)
}

extension JSONWriter {
    /// `date` as ``date(_:)`` writes it, without the quotes.
    package static func iso8601(_ date: Date) -> String {
        var writer = JSONWriter(capacity: 32)
        writer.date(date)
        return String(decoding: writer.bytes.dropFirst().dropLast(), as: UTF8.self)
    }
}
