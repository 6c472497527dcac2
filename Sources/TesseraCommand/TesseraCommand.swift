import ArgumentParser
import Foundation

/// `tessera`: the session service and its administration.
@main
struct TesseraCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "tessera",
        abstract: "Tessera keeps people signed in correctly: a durable session service.",
        subcommands: [Serve.self, Users.self, Sessions.self, Keys.self, Upstream.self, Events.self, Doctor.self]
    )
}
