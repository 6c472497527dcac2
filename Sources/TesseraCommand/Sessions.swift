import ArgumentParser
import Foundation
import Tessera
import TesseraSQLite

/// `tessera sessions`: list and revoke sessions.
struct Sessions: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "List and revoke sessions.",
        subcommands: [List.self, Revoke.self]
    )

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List active sessions.")

        @Option(help: "Only this user's (a username, or the subject a service named).")
        var user: String?

        @OptionGroup var data: DataDirectoryOptions

        func run() async throws {
            try await reportingErrors {
                let store = try self.data.directory.openStore()
                let userID = try await resolveSubject(self.user, in: store)
                let sessions = try await SessionManager(store: store).activeSessions(userID: userID, limit: 10_000)
                if sessions.isEmpty {
                    print("No active sessions.")
                    return
                }
                printTable(
                    header: ["ID", "USER", "CREATED", "LAST SEEN", "IDLE EXPIRES", "ABSOLUTE EXPIRES", "LABEL"],
                    rows: sessions.map {
                        [
                            $0.id, $0.userID, $0.createdAt.formatted(.iso8601), $0.lastSeenAt.formatted(.iso8601),
                            $0.idleExpiresAt.formatted(.iso8601), $0.absoluteExpiresAt.formatted(.iso8601), $0.metadata.label ?? "",
                        ]
                    }
                )
            }
        }
    }

    struct Revoke: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Revoke one session by id, or every session of a user.")

        @Argument(help: "The id of the session to revoke.")
        var id: String?

        @Option(help: "Revoke every session of this user (a username, or a subject).")
        var user: String?

        @OptionGroup var data: DataDirectoryOptions

        func validate() throws {
            guard (self.id == nil) != (self.user == nil) else {
                throw ValidationError("Name either a session id or --user, not both and not neither.")
            }
        }

        func run() async throws {
            try await reportingErrors {
                let store = try self.data.directory.openStore()
                let sessions = SessionManager(store: store)
                if let id = self.id {
                    guard try await sessions.revoke(sessionID: id, reason: "admin") else {
                        throw CommandError("No unrevoked session has the id \(id).")
                    }
                    print("Revoked session \(id).")
                } else if let user = self.user {
                    let userID = try await resolveSubject(user, in: store) ?? user
                    let count = try await sessions.revokeAll(userID: userID, reason: "admin")
                    print("Revoked \(count) session\(count == 1 ? "" : "s") of \(user).")
                }
            }
        }
    }
}

/// A username's user id; a name that is no username is taken as a subject id as it is.
func resolveSubject(_ name: String?, in store: SQLiteSessionStore) async throws -> String? {
    guard let name else { return nil }
    return try await store.user(username: name)?.id ?? name
}
