import Foundation

extension User {
    /// A new user id: `usr_` and 32 hexadecimal digits.
    public static func makeID() -> String {
        "usr_" + UUID().uuidString.lowercased().replacingOccurrences(of: "-", with: "")
    }

    /// Why `username` cannot be one, or `nil`: 1 to 256 characters, no spaces or control
    /// characters.
    public static func problem(username: String) -> String? {
        let valid =
            (1...256).contains(username.unicodeScalars.count)
            && !username.unicodeScalars.contains { $0.properties.isWhitespace || $0.value < 0x20 || $0.value == 0x7F }
        return valid ? nil : "The username must be 1 to 256 characters with no spaces or control characters."
    }

    /// The lengths a password set through the admin API may have, in bytes of UTF-8.
    public static let passwordBytes = 8...1024

    /// Why `password` cannot be set through the admin API, or `nil`.
    public static func problem(password: String) -> String? {
        Self.passwordBytes.contains(password.utf8.count)
            ? nil : "The password must be \(Self.passwordBytes.lowerBound) to \(Self.passwordBytes.upperBound) bytes."
    }
}
