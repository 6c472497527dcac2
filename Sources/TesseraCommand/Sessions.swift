import ArgumentParser
import Foundation
import Tessera

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

        @OptionGroup var data: StoreOptions

        func run() async throws {
            try await reportingErrors {
                let user = self.user
                let sessions = try await self.data.withStore { store in
                    try await SessionManager(store: store).activeSessions(userID: try await resolveSubject(user, in: store), limit: 10_000)
                }
                if sessions.isEmpty {
                    say("No active sessions.")
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

        @OptionGroup var data: StoreOptions

        func validate() throws {
            guard (self.id == nil) != (self.user == nil) else {
                throw ValidationError("Name either a session id or --user, not both and not neither.")
            }
        }

        func run() async throws {
            try await reportingErrors {
                let (id, user) = (self.id, self.user)
                let message = try await self.data.withStore { store -> String in
                    let sessions = SessionManager(store: store)
                    if let id {
                        guard try await sessions.revoke(sessionID: id, reason: RevocationReason.admin.rawValue) else {
                            throw CommandError("No unrevoked session has the id \(id).")
                        }
                        return "Revoked session \(id)."
                    }
                    let name = user ?? ""
                    let userID = try await resolveSubject(name, in: store) ?? name
                    let count = try await sessions.revokeAll(userID: userID, reason: RevocationReason.admin.rawValue)
                    return "Revoked \(count) session\(count == 1 ? "" : "s") of \(name)."
                }
                say(message)
            }
        }
    }
}

/// A username's user id; a name that is no username is taken as a subject id as it is.
func resolveSubject(_ name: String?, in store: any SessionStore) async throws -> String? {
    guard let name else { return nil }
    return try await store.user(username: name)?.id ?? name
}
