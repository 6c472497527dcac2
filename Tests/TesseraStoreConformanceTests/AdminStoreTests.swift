import Foundation
import Testing
import Tessera
import TesseraTestSupport

/// What the admin API asks of a store, the same against every store: pages of sessions that
/// neither repeat nor skip one while sessions are created, users by name, updates, counts.
/// (The HTTP test, `AdminAPITests`, pages through 5,000 through the API; this one, through the
/// store alone, 2,000.)
@Suite(.heavy, .serialized) struct AdminStoreTests {
    let start = Date(timeIntervalSince1970: 1_800_000_000)

    func session(_ id: String, user: String, createdAt: Date, label: String? = nil, lifetime: TimeInterval = 3600) -> Session {
        Session(
            id: id,
            tokenHash: SessionToken.generate().hash,
            userID: user,
            createdAt: createdAt,
            lastSeenAt: createdAt,
            idleExpiresAt: createdAt.addingTimeInterval(lifetime),
            absoluteExpiresAt: createdAt.addingTimeInterval(lifetime),
            data: [:],
            dataVersion: 1,
            metadata: .init(label: label),
            csrfToken: "c"
        )
    }

    @Test(arguments: StoreKind.available) func pagingVisitsEachOf2000SessionsOnceWhileMoreAreCreated(kind: StoreKind) async throws {
        try await StoreFixture.with(kind) { fixture in
            let store = try await fixture.open()
            // Three sessions share each millisecond, so that the order's second key (the id) counts.
            let existing = (0..<2000).map { index in
                self.session(
                    String(format: "ses_%05d", index),
                    user: "usr_\(index % 7)",
                    createdAt: self.start.addingTimeInterval(Double(index / 3) / 1000)
                )
            }
            for batch in stride(from: 0, to: existing.count, by: 500) {
                try await store.insertSessions(Array(existing[batch..<min(batch + 500, existing.count)]))
            }
            let now = self.start.addingTimeInterval(60)
            let created = self.start.addingTimeInterval(30)

            // New sessions keep arriving while the pages are read.
            let writer = Task {
                for round in 0..<40 {
                    try await store.insertSessions(
                        (0..<25).map { self.session("ses_new_\(round)_\($0)", user: "usr_new", createdAt: created.addingTimeInterval(Double(round))) }
                    )
                    await Task.yield()
                }
            }
            var seen: [String] = []
            var cursor: SessionCursor?
            var previous: Session?
            var pages = 0
            while true {
                let page = try await store.sessions(matching: SessionQuery(), at: now, after: cursor, limit: 137)
                for session in page {
                    if let previous {
                        // Newest first, and the id breaks ties, descending.
                        #expect(
                            session.createdAt < previous.createdAt || (session.createdAt == previous.createdAt && session.id < previous.id),
                            "\(session.id) after \(previous.id)"
                        )
                    }
                    previous = session
                }
                seen += page.map(\.id)
                pages += 1
                guard page.count == 137, let last = page.last else { break }
                cursor = SessionCursor(after: last)
            }
            try await writer.value

            #expect(Set(seen).count == seen.count, "a session was listed twice")
            let old = seen.filter { !$0.hasPrefix("ses_new_") }
            #expect(old == existing.map(\.id).reversed(), "the sessions that existed were not each listed once, in order")
            #expect(pages >= 2000 / 137)
            // Every session is there at the end.
            #expect(try await store.countActiveSessions(at: now) == 2000 + 1000)
        }
    }

    @Test(arguments: StoreKind.available) func sessionsAreFoundByUserLabelAndState(kind: StoreKind) async throws {
        try await StoreFixture.with(kind) { fixture in
            let store = try await fixture.open()
            try await store.insertSessions([
                self.session("ses_a1", user: "usr_a", createdAt: self.start, label: "laptop"),
                self.session("ses_a2", user: "usr_a", createdAt: self.start.addingTimeInterval(1), label: "phone"),
                self.session("ses_a3", user: "usr_a", createdAt: self.start.addingTimeInterval(2), label: "phone", lifetime: 10),
                self.session("ses_b1", user: "usr_b", createdAt: self.start.addingTimeInterval(3), label: "phone"),
            ])
            let now = self.start.addingTimeInterval(100)
            try await store.revokeSession(id: "ses_a1", at: now, reason: "admin")
            func ids(_ query: SessionQuery) async throws -> [String] {
                try await store.sessions(matching: query, at: now, after: nil, limit: 100).map(\.id)
            }
            #expect(try await ids(SessionQuery(userID: "usr_a")) == ["ses_a2"])
            #expect(try await ids(SessionQuery(userID: "usr_a", activeOnly: false)) == ["ses_a3", "ses_a2", "ses_a1"])
            #expect(try await ids(SessionQuery(label: "phone")) == ["ses_b1", "ses_a2"])
            #expect(try await ids(SessionQuery(userID: "usr_a", label: "phone", activeOnly: false)) == ["ses_a3", "ses_a2"])
            #expect(try await ids(SessionQuery(userID: "usr_none")) == [])
            #expect(try await ids(SessionQuery(label: "it's \"quoted\"; --")) == [])
            #expect(try await store.countActiveSessions(at: now) == 2)
        }
    }

    @Test(arguments: StoreKind.available) func usersArePagedByNameAndPrefixAndUpdated(kind: StoreKind) async throws {
        try await StoreFixture.with(kind) { fixture in
            let store = try await fixture.open()
            for name in ["alice", "Bob", "carol", "al_x", "al%y", "Alba"] {
                try await store.insertUser(User(id: "usr_\(name.lowercased())", username: name, passwordHash: "h", createdAt: self.start))
            }
            let all = try await store.users(prefix: nil, after: nil, limit: 100).map(\.username)
            #expect(all == ["al%y", "al_x", "Alba", "alice", "Bob", "carol"])
            // A prefix ignores case and takes % and _ literally.
            #expect(try await store.users(prefix: "AL", after: nil, limit: 100).map(\.username) == ["al%y", "al_x", "Alba", "alice"])
            #expect(try await store.users(prefix: "al_", after: nil, limit: 100).map(\.username) == ["al_x"])
            #expect(try await store.users(prefix: "al%", after: nil, limit: 100).map(\.username) == ["al%y"])
            #expect(try await store.users(prefix: "zed", after: nil, limit: 100).isEmpty)
            // Pages of two, each after the last name of the one before.
            var pages: [[String]] = []
            var cursor: String?
            while true {
                let page = try await store.users(prefix: nil, after: cursor, limit: 2)
                if page.isEmpty { break }
                pages.append(page.map(\.username))
                cursor = page.last?.username
            }
            #expect(pages == [["al%y", "al_x"], ["Alba", "alice"], ["Bob", "carol"]])

            var bob = try #require(try await store.user(username: "bob"))
            #expect(bob.role == .user && bob.isEnabled)
            bob.role = .admin
            bob.disabledAt = self.start.addingTimeInterval(5)
            bob.passwordHash = "h2"
            #expect(try await store.updateUser(bob))
            let stored = try #require(try await store.user(id: "usr_bob"))
            #expect(stored == bob)
            #expect(stored.username == "Bob" && stored.createdAt == self.start)
            var ghost = bob
            ghost.id = "usr_ghost"
            #expect(try await store.updateUser(ghost) == false)
            // A user inserted with a role and a disabled time keeps them.
            let admin = User(id: "usr_root", username: "root", passwordHash: "h", createdAt: self.start, role: .admin, disabledAt: nil)
            try await store.insertUser(admin)
            #expect(try await store.user(username: "ROOT") == admin)
        }
    }
}
