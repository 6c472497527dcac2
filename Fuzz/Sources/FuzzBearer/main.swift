// The Authorization field: CredentialSyntax.bearerToken(in:).
//
// Properties: a returned token is non-empty, has no leading or trailing space or tab, and the
// input starts with `bearer` in any case followed by a space; the token is the input after that
// with the spaces and tabs around it removed; `nil` otherwise. `Bearer <token>` reads back as
// the token; another scheme, or the scheme without its space, gives nothing.
import FuzzSupport

func isSpace(_ byte: UInt8) -> Bool { byte == 0x20 || byte == 0x09 }

func read(_ bytes: [UInt8]) -> String? {
    bytes.withUnsafeBufferPointer { CredentialSyntax.bearerToken(in: $0) }
}

func reference(_ bytes: [UInt8]) -> String? {
    guard bytes.count > 6, String(decoding: bytes[..<6], as: UTF8.self).lowercased() == "bearer",
        bytes[..<6].allSatisfy({ $0 < 0x80 }), bytes[6] == 0x20
    else { return nil }
    var token = bytes[7...].drop(while: isSpace)
    while let last = token.last, isSpace(last) { token = token.dropLast() }
    return token.isEmpty ? nil : String(decoding: token, as: UTF8.self)
}

runFuzzer { input in
    let bytes = Array(input)
    let token = read(bytes)
    let expected = reference(bytes)
    require(token == expected, "bearerToken(\(show(bytes))) is \(token.map { show($0.utf8) } ?? "nil"), expected \(expected.map { show($0.utf8) } ?? "nil")")
    if let token {
        let tokenBytes = Array(token.utf8)
        require(!tokenBytes.isEmpty, "an empty token")
        require(!isSpace(tokenBytes.first!) && !isSpace(tokenBytes.last!), "the token \(show(tokenBytes)) has a space or tab at an end")
        require(bytes.count > 6 && bytes[6] == 0x20, "a token from a field without 'bearer ': \(show(bytes))")
        require(String(decoding: bytes[..<6], as: UTF8.self).lowercased() == "bearer", "a token from a field without 'bearer': \(show(bytes))")
        for scheme in ["Bearer ", "bearer  ", "BEARER \t"] {
            let again = read(Array(scheme.utf8) + tokenBytes + Array(" \t".utf8))
            require(again == token, "\(scheme)<token> reads as \(again.map { show($0.utf8) } ?? "nil"), not \(show(tokenBytes))")
        }
        require(read(Array("Basic ".utf8) + tokenBytes) == nil, "Basic <token> reads as a bearer token")
        require(read(Array("Bearer\t".utf8) + tokenBytes) == nil, "Bearer<tab><token> reads as a bearer token")
        require(read(Array("Bearer".utf8) + tokenBytes) == nil, "Bearer<token> without a space reads as a token")
    }
}
