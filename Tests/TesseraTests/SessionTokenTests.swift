import Testing

@testable import Tessera

@Suite struct SessionTokenTests {
    @Test func generatedTokensHavePrefixAndThirtyTwoRandomBytes() {
        let token = SessionToken.generate()
        #expect(token.rawValue.hasPrefix("tss_"))
        #expect(token.rawValue.count == 4 + 43)
        #expect(Base64URL.decode(token.rawValue.dropFirst(4))?.count == 32)
        #expect(SessionToken(token.rawValue) == token)
    }

    @Test func generatedTokensDiffer() {
        let tokens = Set((0..<1000).map { _ in SessionToken.generate().rawValue })
        #expect(tokens.count == 1000)
    }

    @Test(arguments: [
        "", "tss_", "abc", "tss_short",
        "xyz_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
        "tss_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA+",
        "tss_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
        "tss_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=",
        // The last character carries bits beyond the 32 bytes: a second spelling of a token.
        "tss_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAB",
    ])
    func malformedTokensAreRejected(text: String) {
        #expect(SessionToken(text) == nil)
    }

    @Test func hashIsSHA256OfTheToken() {
        // SHA-256("abc"), the FIPS 180-2 test vector.
        let expected: [UInt8] = [
            0xba, 0x78, 0x16, 0xbf, 0x8f, 0x01, 0xcf, 0xea, 0x41, 0x41, 0x40, 0xde, 0x5d, 0xae, 0x22, 0x23,
            0xb0, 0x03, 0x61, 0xa3, 0x96, 0x17, 0x7a, 0x9c, 0xb4, 0x10, 0xff, 0x61, 0xf2, 0x00, 0x15, 0xad,
        ]
        #expect(TokenHash(hashing: "abc").bytes == expected)
        #expect(TokenHash(bytes: expected) == TokenHash(hashing: "abc"))
        #expect(TokenHash(bytes: expected).constantTimeEquals(TokenHash(hashing: "abc")))
    }

    @Test func hashesAsStoresKeepThemCompareByEveryByteAndTheLength() {
        let digest = TokenHash(hashing: "abc").bytes
        for index in digest.indices {
            var changed = digest
            changed[index] ^= 0x01
            #expect(TokenHash(bytes: changed) != TokenHash(bytes: digest))
            #expect(!TokenHash(bytes: changed).constantTimeEquals(TokenHash(bytes: digest)))
        }
        // A value of another length, such as a damaged row, equals no digest.
        let longer = TokenHash(bytes: digest + [0])
        #expect(longer != TokenHash(bytes: digest) && !longer.constantTimeEquals(TokenHash(bytes: digest)))
        #expect(TokenHash(bytes: digest.dropLast()) != TokenHash(bytes: digest))
        #expect(TokenHash(bytes: digest.dropLast()).bytes == Array(digest.dropLast()))
        #expect(Set([TokenHash(bytes: digest), TokenHash(hashing: "abc")]).count == 1)
    }

    @Test func descriptionsNeverShowTheSecret() {
        let token = SessionToken.generate()
        let other = SessionToken.generate()
        #expect(token != other)
        // Every token and every digest reads the same: nothing of the secret can reach a log.
        #expect("\(token)" == "\(other)" && String(reflecting: token) == String(reflecting: other))
        #expect(String(describing: token.hash) == String(describing: other.hash))
        #expect(String(reflecting: token.hash) == String(reflecting: other.hash))
        #expect(!"\(token)".contains(token.rawValue.dropFirst(4).prefix(8)))
        let digestHex = token.hash.bytes.prefix(4).map { ($0 < 16 ? "0" : "") + String($0, radix: 16) }.joined()
        #expect(!String(reflecting: token.hash).lowercased().contains(digestHex))
    }

    @Test func constantTimeComparison() {
        #expect(constantTimeEquals([1, 2, 3], [1, 2, 3]))
        #expect(!constantTimeEquals([1, 2, 3], [1, 2, 4]))
        #expect(!constantTimeEquals([1, 2, 3], [1, 2]))
    }

    @Test func base64URLRoundTrips() {
        for count in 0..<40 {
            let bytes = secureRandomBytes(count: count)
            let encoded = Base64URL.encode(bytes)
            #expect(!encoded.contains("=") && !encoded.contains("+") && !encoded.contains("/"))
            #expect(Base64URL.decode(encoded) == bytes)
        }
    }

    @Test func checkingWithoutDecodingAgreesWithDecoding() {
        // Valid encodings of every length, then each with one character changed or dropped.
        let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_+/=. ")
        var texts: [String] = []
        for count in 0..<40 {
            let encoded = Base64URL.encode(secureRandomBytes(count: count))
            texts.append(encoded)
            texts.append(String(encoded.dropLast()))
            if !encoded.isEmpty {
                for _ in 0..<5 {
                    var characters = Array(encoded)
                    characters[Int.random(in: 0..<characters.count)] = alphabet.randomElement()!
                    texts.append(String(characters))
                }
            }
        }
        for text in texts {
            #expect(Base64URL.decodedCount(text) == Base64URL.decode(text)?.count, "\(text)")
        }
        // Every byte value in every position of a four-character group: the branch-free
        // alphabet check accepts exactly the bytes the decoder's table does.
        for byte in UInt8.min...UInt8.max {
            for position in 0..<4 {
                var bytes = Array("AAAA".utf8)
                bytes[position] = byte
                let count = bytes.withUnsafeBufferPointer { Base64URL.decodedCount(bytes: $0) }
                let decoded = Base64URL.decode(String(decoding: bytes, as: UTF8.self))?.count
                #expect(count == decoded, "byte \(byte) at \(position)")
            }
        }
        // The last of the 43 characters of a token carries 2 padding bits, which must be zero:
        // "B" (1) sets one, "E" (4) does not.
        let token = SessionToken.generate().rawValue
        #expect(SessionToken(token) != nil)
        #expect(SessionToken(token.dropLast() + "B") == nil)
        #expect(SessionToken(token.dropLast() + "E") != nil)
    }
}
