// The Cookie field: CredentialSyntax.cookie(named:in:).
//
// The input is a Cookie field value, read for the two names the service uses
// (`tessera_session`, `__Host-tessera_session`); an input with a NUL byte is `name NUL value`,
// read for that name. Properties:
// - the result is what a plain reference reader finds: the first `;`-separated piece that,
//   without its leading spaces and tabs, starts with `name=`, its value without the spaces and
//   tabs around it;
// - a returned value holds no `;` and starts and ends in no space or tab;
// - `name=value` placed first in a fresh field, before anything, reads back as that value;
// - a field without `name=` anywhere gives no value.
import FuzzSupport

func isSpace(_ byte: UInt8) -> Bool { byte == 0x20 || byte == 0x09 }

/// The reference reader.
func reference(name: [UInt8], in field: [UInt8]) -> String? {
    for piece in field.split(separator: UInt8(ascii: ";"), omittingEmptySubsequences: false) {
        let pair = piece.drop(while: isSpace)
        guard pair.starts(with: name + [UInt8(ascii: "=")]) else { continue }
        var value = pair.dropFirst(name.count + 1).drop(while: isSpace)
        while let last = value.last, isSpace(last) { value = value.dropLast() }
        return String(decoding: value, as: UTF8.self)
    }
    return nil
}

func read(_ name: [UInt8], _ field: [UInt8]) -> String? {
    field.withUnsafeBufferPointer { CredentialSyntax.cookie(named: name, in: $0) }
}

func check(name: [UInt8], field: [UInt8]) {
    let value = read(name, field)
    let expected = reference(name: name, in: field)
    require(value == expected, "cookie(named: \(show(name)), in: \(show(field))) is \(value.map { show($0.utf8) } ?? "nil"), expected \(expected.map { show($0.utf8) } ?? "nil")")
    guard let value else {
        require(!field.starts(with: name + [UInt8(ascii: "=")]), "a field that starts with name= gave no value")
        return
    }
    let bytes = Array(value.utf8)
    require(!bytes.contains(UInt8(ascii: ";")), "the value \(show(bytes)) holds a ';'")
    require(!(bytes.last.map(isSpace) ?? false) && !(bytes.first.map(isSpace) ?? false), "the value \(show(bytes)) starts or ends in a space or tab")
    for rest in [[], field, Array("; other=1".utf8)] {
        let fresh = name + [UInt8(ascii: "=")] + bytes + (rest.isEmpty ? [] : Array("; ".utf8) + rest)
        let again = read(name, fresh)
        require(again == value, "name=value first in \(show(fresh)) read back as \(again.map { show($0.utf8) } ?? "nil"), not \(show(bytes))")
    }
}

let names = [Array("tessera_session".utf8), Array("__Host-tessera_session".utf8)]

runFuzzer { input in
    let bytes = Array(input)
    if let separator = bytes.firstIndex(of: 0) {
        // A name of the input's choosing: cookie names are tokens, without '=', ';' or spaces.
        let name = Array(bytes[..<separator])
        if !name.isEmpty, !name.contains(where: { $0 == UInt8(ascii: "=") || $0 == UInt8(ascii: ";") || isSpace($0) }) {
            check(name: name, field: Array(bytes[(separator + 1)...]))
        }
    }
    for name in names {
        check(name: name, field: bytes)
    }
}
