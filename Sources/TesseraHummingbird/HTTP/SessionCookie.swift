public import Foundation
public import Hummingbird
public import Tessera

/// The session cookie: `HttpOnly`, `SameSite=Lax`, `Path=/`, and with ``secure`` the `Secure`
/// attribute and the `__Host-` name (which browsers accept only over HTTPS, from the host
/// itself). `Max-Age` runs to the absolute deadline, so the browser drops the cookie when the
/// server would.
public struct SessionCookie: Sendable, Hashable {
    /// Whether the service is reached over HTTPS.
    public var secure: Bool

    public init(secure: Bool = false) {
        self.secure = secure
    }

    /// The cookie's name.
    public var name: String { self.secure ? "__Host-tessera_session" : "tessera_session" }

    /// The cookie that carries `token` until the session's absolute deadline.
    public func cookie(token: SessionToken, session: Session, now: Date) -> Cookie {
        let maxAge = max(0, Int(session.absoluteExpiresAt.timeIntervalSince(now).rounded(.down)))
        return Cookie(name: self.name, value: token.rawValue, maxAge: maxAge, path: "/", secure: self.secure, httpOnly: true, sameSite: .lax)
    }

    /// A cookie that makes the browser forget the session cookie.
    public func clearing() -> Cookie {
        Cookie(name: self.name, value: "", maxAge: 0, path: "/", secure: self.secure, httpOnly: true, sameSite: .lax)
    }

    /// The token the request's cookie carries, if any.
    ///
    /// Scans the `Cookie` fields for this one cookie on their bytes, rather than parsing every
    /// cookie into a dictionary: this runs on every browser request.
    public func token(in request: Request) -> String? {
        self.token(in: request.headers)
    }

    /// The token the `Cookie` fields of `fields` carry for this cookie, if any.
    public func token(in fields: HTTPFields) -> String? {
        let name = self.name.utf8
        for field in fields where field.name == .cookie {
            if let value = field.withUnsafeBytesOfValue({ CredentialSyntax.cookie(named: name, in: $0) }) {
                return value
            }
        }
        return nil
    }
}
