public import Hummingbird
import Tessera

/// The service API key that applications present to create sessions for subjects they
/// authenticated themselves: `tsk_` and 32 random bytes in base64url. Only its SHA-256 is held
/// in memory for comparison, in constant time.
public struct ServiceAPIKey: Sendable {
    /// The prefix every service key starts with.
    public static let prefix = "tsk_"
    /// The prefix of the admin API key, which the same type holds.
    public static let adminPrefix = "tak_"
    let hash: TokenHash

    /// - Parameter key: the key as issued.
    public init(key: String) {
        self.hash = TokenHash(hashing: key)
    }

    /// A new random key (`prefix`: ``adminPrefix`` for an admin key).
    public static func generate(prefix: String = Self.prefix) -> String {
        makeIdentifier(prefix: prefix, byteCount: 32)
    }

    /// Whether `presented` is this key.
    public func matches(_ presented: String) -> Bool {
        self.hash.constantTimeEquals(TokenHash(hashing: presented))
    }
}

/// Lets a request through only with `Authorization: Bearer <service API key>`.
public struct ServiceKeyMiddleware<Context: RequestContext>: RouterMiddleware {
    let key: ServiceAPIKey?

    /// - Parameter key: the accepted key; with `nil`, every request is refused.
    public init(key: ServiceAPIKey?) {
        self.key = key
    }

    public func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        guard let key = self.key,
            let presented = request.headers.bearerToken,
            key.matches(presented)
        else { throw TesseraError.apiKeyInvalid }
        var response = try await next(request, context)
        response.headers[.cacheControl] = "no-store"
        return response
    }
}
