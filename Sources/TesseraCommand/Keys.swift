import ArgumentParser
import Foundation
import Tessera
import TesseraHummingbird
import TesseraTokens

/// `tessera keys`: the keys that sign access tokens.
struct Keys: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Manage the keys that sign access tokens, and show the service API key.",
        subcommands: [Rotate.self, List.self, ShowServiceKey.self, NewAdminKey.self]
    )

    struct Rotate: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Add a new signing key; the old one still verifies until its tokens have expired.",
            discussion: """
                A running service signs with the new key within 5 seconds. The retired key's private half is \
                deleted at once; its public half stays published in /.well-known/jwks.json until every token \
                it signed has expired, and leaves the file a day after retirement.
                """
        )

        @OptionGroup var data: StoreOptions

        func run() async throws {
            let directory = self.data.directory
            do {
                try directory.prepare()
                let file = directory.signingKeysURL
                if !FileManager.default.fileExists(atPath: file.path) {
                    _ = try await SigningKeys.open(file: file)
                }
                let key = try SigningKeys.rotate(file: file)
                say("New signing key \(key.id) in \(file.path)")
            } catch let error as CommandError {
                complain("\(error)")
                throw ExitCode.failure
            } catch {
                complain("cannot rotate the signing keys: \(error)")
                throw ExitCode.failure
            }
        }
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List the signing keys, oldest first.")

        @OptionGroup var data: StoreOptions

        func run() async throws {
            let file = self.data.directory.signingKeysURL
            guard FileManager.default.fileExists(atPath: file.path) else {
                say("No signing keys yet; `tessera serve` creates \(file.path) on first start.")
                return
            }
            do {
                let keys = try await SigningKeys.open(file: file)
                for key in keys.keys {
                    let state = key.retiredAt.map { "retired \($0.formatted(.iso8601))" } ?? "signing"
                    say("\(key.id)  created \(key.createdAt.formatted(.iso8601))  \(state)")
                }
            } catch {
                complain("cannot read \(file.path): \(error)")
                throw ExitCode.failure
            }
        }
    }

    struct ShowServiceKey: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "show-service-key",
            abstract: "Print the service API key of the data directory (tessera serve never logs it)."
        )

        @OptionGroup var data: StoreOptions

        func run() async throws {
            let path = self.data.directory.serviceKeyPath
            guard let text = try? String(contentsOfFile: path, encoding: .utf8) else {
                complain("no service API key at \(path); `tessera serve` generates it on first start.")
                throw ExitCode.failure
            }
            say(text.trimmingCharacters(in: .whitespacesAndNewlines))
        }
    }

    struct NewAdminKey: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "new-admin-key",
            abstract: "Print a new admin API key (tak_…) for TESSERA_ADMIN_API_KEY or --admin-key-file; nothing is stored."
        )

        func run() async throws {
            say(ServiceAPIKey.generate(prefix: ServiceAPIKey.adminPrefix))
        }
    }
}
