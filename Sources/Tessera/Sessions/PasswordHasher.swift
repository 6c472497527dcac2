/// Hashes and verifies passwords. The service uses bcrypt.
public protocol PasswordHasher: Sendable {
    /// A new salted hash of `password`.
    func hash(_ password: String) async throws -> String
    /// Whether `password` matches `hash`. Takes the same time for a wrong password as for a
    /// right one.
    func verify(_ password: String, hash: String) async throws -> Bool
}
