import ArgumentParser
import Foundation
import Tessera
import TesseraHummingbird

/// `tessera users`: the people who log in with a password.
struct Users: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Manage users who log in with a password.",
        subcommands: [Add.self, List.self]
    )

    struct Add: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Add a user; the password is read from standard input (one line).")

        @Argument(help: "The username (1 to 256 characters).")
        var name: String

        @OptionGroup var data: StoreOptions

        @Option(help: "The bcrypt cost, 4 to 31 (env TESSERA_BCRYPT_COST; default 12).")
        var bcryptCost: Int?

        func run() async throws {
            let cost = try Setting.integer(self.bcryptCost, env: "TESSERA_BCRYPT_COST", option: "--bcrypt-cost", range: 4...31, default: 12)
            guard (1...256).contains(self.name.count), !self.name.contains(where: { $0.isWhitespace || $0.asciiValue.map { $0 < 0x20 } == true })
            else {
                throw ValidationError("The username must be 1 to 256 characters with no spaces or control characters.")
            }
            try await reportingErrors {
                guard let password = readLine(strippingNewline: true), !password.isEmpty else {
                    throw CommandError("No password on standard input. Pipe it in: echo 'secret' | tessera users add \(self.name)")
                }
                guard password.utf8.count <= 1024 else { throw CommandError("The password may be at most 1024 bytes.") }
                let hash = try await BcryptPasswordHasher(cost: UInt8(cost)).hash(password)
                let user = User(id: User.makeID(), username: self.name, passwordHash: hash, createdAt: Date().truncatedToMilliseconds)
                try await self.data.withStore { store in
                    do {
                        try await store.insertUser(user)
                    } catch let error as UserExistsError {
                        throw CommandError(error.description)
                    }
                }
                say("Added user \(user.username) (\(user.id)).")
            }
        }
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List users.")

        @OptionGroup var data: StoreOptions

        func run() async throws {
            try await reportingErrors {
                let users = try await self.data.withStore { try await $0.users() }
                if users.isEmpty {
                    say("No users yet. Add one with: tessera users add NAME")
                    return
                }
                printTable(
                    header: ["USERNAME", "ID", "CREATED"],
                    rows: users.map { [$0.username, $0.id, $0.createdAt.formatted(.iso8601)] }
                )
            }
        }
    }
}


/// Runs `body`, turning a ``CommandError`` or a store failure into a plain sentence and exit 1.
func reportingErrors(_ body: () async throws -> Void) async throws {
    do {
        try await body()
    } catch let error as CommandError {
        complain("\(error)")
        throw ExitCode.failure
    } catch let error as StoreUnavailableError {
        complain("the store is unavailable (\(error.underlying)).")
        throw ExitCode.failure
    }
}

/// Prints rows in aligned columns.
