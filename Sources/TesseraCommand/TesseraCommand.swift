import ArgumentParser
import Foundation

/// `tessera`: the session service and its administration.
@main
struct TesseraCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "tessera",
        abstract: "Tessera keeps people signed in correctly: a durable session service.",
        subcommands: [Serve.self, Users.self, Sessions.self, Keys.self, Upstream.self, Doctor.self]
    )
}

/// Prints a line to standard output at once, unbuffered, so that a supervising process sees it.
func say(_ line: String) {
    FileHandle.standardOutput.write(Data((line + "\n").utf8))
}
