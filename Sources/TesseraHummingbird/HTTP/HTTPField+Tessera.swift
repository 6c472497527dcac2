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
    /// Where a server-sent event stream resumes.
    public static let lastEventID = Self("Last-Event-ID")!
    /// Tells a reverse proxy (nginx) not to buffer a streamed answer.
    public static let accelBuffering = Self("X-Accel-Buffering")!
    /// W3C Trace Context: the trace a request belongs to.
    public static let traceparent = Self("traceparent")!
    /// The admin console's page policy: what it may load and where it may send.
    public static let contentSecurityPolicy = Self("Content-Security-Policy")!
    /// Older browsers' way of refusing to be framed.
    public static let xFrameOptions = Self("X-Frame-Options")!
    /// Whether a page's address goes along with its requests.
    public static let referrerPolicy = Self("Referrer-Policy")!
}

extension HTTPFields {
    /// The token of `Authorization: Bearer …` (the scheme matched case-insensitively), if any.
    var bearerToken: String? {
        // On the field's bytes, without the String the subscript joins for every read: this runs
        // on every request. More than one Authorization field is read as the subscript reads it
        // (joined, which no token survives).
        var authorization: HTTPField?
        for field in self where field.name == .authorization {
            guard authorization == nil else {
                var joined = self[.authorization] ?? ""
                return joined.withUTF8 { CredentialSyntax.bearerToken(in: $0) }
            }
            authorization = field
        }
        return authorization?.withUnsafeBytesOfValue { CredentialSyntax.bearerToken(in: $0) }
    }

    /// The request's `X-Correlation-ID` when it is usable: 1 to 128 letters, digits and `-_.:`,
    /// so that a client cannot inject into logs.
    var usableCorrelationID: String? {
        self[.correlationID].flatMap(CorrelationIDs.usable)
    }
}

/// A new correlation id, for requests that did not send a usable one: `req_`, 36 random bits
/// drawn once per process (6 base64url characters), and a counter (5 base64url characters, more
/// after the first 2^30 requests). Unique across processes and restarts without a system call
/// per request; correlation ids name requests and are not secrets. At 15 bytes an id is a small
/// string: making it, copying it with the request context and writing it cost no allocation.
func makeCorrelationID() -> String {
    var number = CorrelationIDs.counter.add(1, ordering: .relaxed).newValue
    var digits = 5
    while digits < 11 && number >> (6 * UInt64(digits)) != 0 { digits += 1 }
    let prefix = CorrelationIDs.prefix
    return String(unsafeUninitializedCapacity: prefix.count + digits) { text in
        _ = text.initialize(fromContentsOf: prefix)
        for position in stride(from: prefix.count + digits - 1, through: prefix.count, by: -1) {
            text[position] = Base64URL.character(of: UInt8(truncatingIfNeeded: number & 63))
            number >>= 6
        }
        return prefix.count + digits
    }
}

enum CorrelationIDs {
    /// `value` when it may serve as a correlation id: 1 to 128 letters, digits and `-_.:`.
    static func usable(_ value: String) -> String? {
        guard (1...128).contains(value.utf8.count),
            value.utf8.allSatisfy({ byte in
                (byte >= 0x30 && byte <= 0x39) || (byte >= 0x41 && byte <= 0x5A) || (byte >= 0x61 && byte <= 0x7A)
                    || byte == UInt8(ascii: "-") || byte == UInt8(ascii: "_") || byte == UInt8(ascii: ".") || byte == UInt8(ascii: ":")
            })
        else { return nil }
        return value
    }

    static let prefix = Array(("req_" + Base64URL.encode(secureRandomBytes(count: 6)).prefix(6)).utf8)
    static let counter = Atomic<UInt64>(0)
}
