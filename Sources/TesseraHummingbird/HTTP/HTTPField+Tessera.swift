public import HTTPTypes
import Foundation
import Synchronization
import Tessera

extension HTTPField.Name {
    /// `X-Correlation-ID`: names a request across services and log lines.
    public static let correlationID = Self("X-Correlation-ID")!
    /// `X-CSRF-Token`: the CSRF token cookie-authenticated unsafe requests must carry.
    public static let csrfToken = Self("X-CSRF-Token")!
    /// `X-Forwarded-For`: the client address, as a trusted reverse proxy reports it.
    public static let forwardedFor = Self("X-Forwarded-For")!
}

extension HTTPFields {
    /// The token of `Authorization: Bearer …` (the scheme matched case-insensitively), if any.
    var bearerToken: String? {
        guard var authorization = self[.authorization] else { return nil }
        // On the contiguous bytes: this runs on every request.
        return authorization.withUTF8 { bytes -> String? in
            var start = 0
            for expected in "bearer".utf8 {
                guard start < bytes.count, bytes[start] | 0x20 == expected else { return nil }
                start += 1
            }
            guard start < bytes.count, bytes[start] == UInt8(ascii: " ") else { return nil }
            while start < bytes.count, bytes[start] == UInt8(ascii: " ") || bytes[start] == UInt8(ascii: "\t") {
                start += 1
            }
            var end = bytes.count
            while end > start, bytes[end - 1] == UInt8(ascii: " ") || bytes[end - 1] == UInt8(ascii: "\t") {
                end -= 1
            }
            guard start < end else { return nil }
            return String(decoding: UnsafeBufferPointer(rebasing: bytes[start..<end]), as: UTF8.self)
        }
    }

    /// The request's `X-Correlation-ID` when it is usable: 1 to 128 letters, digits and `-_.:`,
    /// so that a client cannot inject into logs.
    var usableCorrelationID: String? {
        guard let value = self[.correlationID], (1...128).contains(value.utf8.count),
            value.utf8.allSatisfy({ byte in
                (byte >= 0x30 && byte <= 0x39) || (byte >= 0x41 && byte <= 0x5A) || (byte >= 0x61 && byte <= 0x7A)
                    || byte == UInt8(ascii: "-") || byte == UInt8(ascii: "_") || byte == UInt8(ascii: ".") || byte == UInt8(ascii: ":")
            })
        else { return nil }
        return value
    }
}

/// A new correlation id, for requests that did not send a usable one: `req_`, 64 random bits
/// drawn once per process, and a counter. Unique across processes and restarts without a
/// system call per request; correlation ids name requests and are not secrets.
func makeCorrelationID() -> String {
    let number = CorrelationIDs.counter.add(1, ordering: .relaxed).newValue
    return CorrelationIDs.prefix + String(number, radix: 36)
}

private enum CorrelationIDs {
    static let prefix = "req_" + Base64URL.encode(secureRandomBytes(count: 8)) + "-"
    static let counter = Atomic<UInt64>(0)
}
