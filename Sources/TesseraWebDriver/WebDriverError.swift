/// What a WebDriver remote end refused, as the protocol describes it (`error`, `message`), or a
/// failure to reach it.
public struct WebDriverError: Error, CustomStringConvertible, Sendable {
    /// The protocol's error code, such as `no such element` or `javascript error`; `transport`
    /// when no answer came, `invalid answer` when the answer was not the protocol's.
    public var error: String
    /// What the remote end said (its stack trace left out).
    public var message: String
    /// The command, such as `POST /session/{id}/execute/sync`.
    public var command: String

    public init(error: String, message: String, command: String) {
        self.error = error
        self.message = message
        self.command = command
    }

    public var description: String { "WebDriver \(self.command): \(self.error): \(self.message)" }
}
