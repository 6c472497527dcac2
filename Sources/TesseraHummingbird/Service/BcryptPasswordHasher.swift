import HummingbirdBcrypt
import NIOPosix
public import Tessera

/// bcrypt, run on NIO's blocking thread pool so that hashing never stalls request handling.
public struct BcryptPasswordHasher: PasswordHasher {
    /// The work factor: each step doubles the time (12 by default, about a quarter of a second).
    public let cost: UInt8

    public init(cost: UInt8 = 12) {
        self.cost = min(max(cost, 4), 31)
    }

    public func hash(_ password: String) async throws -> String {
        let cost = self.cost
        return try await NIOThreadPool.singleton.runIfActive { Bcrypt.hash(password, cost: cost) }
    }

    public func verify(_ password: String, hash: String) async throws -> Bool {
        try await NIOThreadPool.singleton.runIfActive { Bcrypt.verify(password, hash: hash) }
    }
}
