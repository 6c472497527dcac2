/// An error as Tessera describes it in a response body:
/// `{"error":{"code":"AUTH_1002","message":"…","reason":"revoked","correlationId":"…"}}`.
public struct TesseraServerError: Decodable, Hashable, Sendable {
    /// The stable code, such as `AUTH_1002`.
    public var code: String
    /// The human-readable message.
    public var message: String?
    /// Why a session ended (`idle`, `absolute`, `revoked`), for `AUTH_1002`.
    public var reason: String?
    /// The id to quote when asking the operator about this request.
    public var correlationID: String?

    /// Creates a description of a server error.
    public init(code: String, message: String? = nil, reason: String? = nil, correlationID: String? = nil) {
        self.code = code
        self.message = message
        self.reason = reason
        self.correlationID = correlationID
    }

    enum CodingKeys: String, CodingKey {
        case code, message, reason
        case correlationID = "correlationId"
    }
}
