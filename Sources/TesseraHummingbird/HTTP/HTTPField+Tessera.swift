public import HTTPTypes

extension HTTPField.Name {
    /// `X-Correlation-ID`: names a request across services and log lines.
    public static var correlationID: Self { .init("X-Correlation-ID")! }
    /// `X-CSRF-Token`: the CSRF token cookie-authenticated unsafe requests must carry.
    public static var csrfToken: Self { .init("X-CSRF-Token")! }
    /// `X-Forwarded-For`: the client address, as a trusted reverse proxy reports it.
    public static var forwardedFor: Self { .init("X-Forwarded-For")! }
}
