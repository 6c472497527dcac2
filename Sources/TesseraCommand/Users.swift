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

        @Flag(help: "Make the user an administrator: the admin API and the console at /admin (docs/admin.md).")
        var admin = false

        func run() async throws {
            let cost = try Setting.integer(self.bcryptCost, env: "TESSERA_BCRYPT_COST", option: "--bcrypt-cost", range: 4...31, default: 12)
            if let problem = User.problem(username: self.name) { throw ValidationError(problem) }
            try await reportingErrors {
                guard let password = readLine(strippingNewline: true), !password.isEmpty else {
                    throw CommandError("No password on standard input. Pipe it in: echo 'secret' | tessera users add \(self.name)")
                }
                guard password.utf8.count <= 1024 else { throw CommandError("The password may be at most 1024 bytes.") }
                let hash = try await BcryptPasswordHasher(cost: UInt8(cost)).hash(password)
                let user = User(
                    id: User.makeID(),
                    username: self.name,
                    passwordHash: hash,
                    createdAt: Date().truncatedToMilliseconds,
                    role: self.admin ? .admin : .user
                )
                try await self.data.withStore { store in
                    do {
                        try await store.insertUser(user)
                    } catch let error as UserExistsError {
                        throw CommandError(error.description)
                    }
                }
                say("Added \(self.admin ? "administrator" : "user") \(user.username) (\(user.id)).")
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
                    header: ["USERNAME", "ID", "ROLE", "STATE", "CREATED"],
                    rows: users.map {
                        [$0.username, $0.id, $0.role.rawValue, $0.isEnabled ? "enabled" : "disabled", $0.createdAt.formatted(.iso8601)]
                    }
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
