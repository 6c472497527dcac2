public import HTTPTypes
import Foundation
import Tessera

extension HTTPField.Name {
    /// `X-Correlation-ID`: names a request across services and log lines.
    public static var correlationID: Self { .init("X-Correlation-ID")! }
    /// `X-CSRF-Token`: the CSRF token cookie-authenticated unsafe requests must carry.
    public static var csrfToken: Self { .init("X-CSRF-Token")! }
    /// `X-Forwarded-For`: the client address, as a trusted reverse proxy reports it.
    public static var forwardedFor: Self { .init("X-Forwarded-For")! }
}

extension HTTPFields {
    /// The token of `Authorization: Bearer …` (the scheme matched case-insensitively), if any.
    var bearerToken: String? {
        guard let authorization = self[.authorization] else { return nil }
        let parts = authorization.split(separator: " ", maxSplits: 1, omittingEmptySubsequences: true)
        guard parts.count == 2, parts[0].lowercased() == "bearer" else { return nil }
        return String(parts[1].trimmingCharacters(in: .whitespaces))
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

/// A new correlation id, for requests that did not send a usable one.
func makeCorrelationID() -> String {
    makeIdentifier(prefix: "req_", byteCount: 12)
}
