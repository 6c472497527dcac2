// If-Match: CredentialSyntax.dataVersion(ifMatch:).
//
// Properties: a returned version `v` is ≥ 0 and below 10^18; `"v"`, `W/"v"`, `v` and ` "v" `
// read back as `v`; the input is, without its spaces and tabs, one of those spellings of 1 to
// 18 decimal digits (leading zeros allowed); anything else (a list, `*`, a sign, a 19th digit)
// gives nothing.
import FuzzSupport

func isSpace(_ byte: UInt8) -> Bool { byte == 0x20 || byte == 0x09 }

func read(_ bytes: [UInt8]) -> Int? {
    bytes.withUnsafeBufferPointer { CredentialSyntax.dataVersion(ifMatch: $0) }
}

/// The reference: the digits of the accepted spellings, decoded by the standard library.
func reference(_ bytes: [UInt8]) -> Int? {
    var text = ArraySlice(bytes).drop(while: isSpace)
    while let last = text.last, isSpace(last) { text = text.dropLast() }
    if text.count >= 2, text.starts(with: Array("W/".utf8)) { text = text.dropFirst(2) }
    if text.count >= 2, text.first == UInt8(ascii: "\""), text.last == UInt8(ascii: "\"") { text = text.dropFirst().dropLast() }
    guard (1...18).contains(text.count), text.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }) else { return nil }
    return Int(String(decoding: text, as: UTF8.self))
}

runFuzzer { input in
    let bytes = Array(input)
    let version = read(bytes)
    let expected = reference(bytes)
    require(version == expected, "dataVersion(ifMatch: \(show(bytes))) is \(version.map(String.init) ?? "nil"), expected \(expected.map(String.init) ?? "nil")")
    guard let version else { return }
    require(version >= 0 && version < 1_000_000_000_000_000_000, "version \(version) out of range")
    for spelling in ["\"\(version)\"", "W/\"\(version)\"", "\(version)", " \t\"\(version)\" "] {
        let again = read(Array(spelling.utf8))
        require(again == version, "\(spelling) reads as \(again.map(String.init) ?? "nil"), not \(version)")
    }
    for spelling in ["\"\(version)\", \"\(version)\"", "*", "-\(version)", "+\(version)", "\"\(version)", "\(version)\"", "\"\(version)0000000000000000000\""] {
        require(read(Array(spelling.utf8)) == nil, "\(spelling) reads as a version")
    }
}
