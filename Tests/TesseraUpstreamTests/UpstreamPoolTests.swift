import Foundation
import Synchronization
import NIOCore
import Tessera
import TesseraUpstream
import Testing
import TesseraTestSupport

/// The pool against a real fake site over loopback, both on one manual clock: no test sleeps
/// for time.
@Suite(.heavy) struct UpstreamPoolTests {
    @Test func theKeepAliveHoldsASessionPastTheSitesIdleTimeout() async throws {
        try await PoolFixture.with(configure: { fakeConfiguration(baseURL: $0, maxAge: 600) }) { f in
            await f.maintain()
            #expect(f.fake.stats.logins == 1)
            // 200 s in steps of the keep-alive interval; the site ends sessions idle for 60 s.
            for _ in 0..<10 {
                f.clock.advance(by: .seconds(20))
                await f.maintain()
            }
            #expect(f.fake.stats.pings == 10)
            let response = try await f.get("/api/items/1")
            #expect(response.status == 200)
            #expect(f.fake.stats.logins == 1)
            #expect(f.fake.stats.expiredAnswers == 0)
        }
    }

    @Test func theKeepAliveFindsAnIdleExpiredSessionAndReplacesItBeforeAnyClientBorrowsIt() async throws {
        try await PoolFixture.with { f in
            await f.maintain()
            // The site's idle timeout (60 s) passes between two rounds of the keeper.
            f.clock.advance(by: .seconds(61))
            await f.maintain()
            var snapshot = await f.pool.snapshot()
            #expect(snapshot.counters.retirements == ["expired_on_keepalive": 1])
            #expect(snapshot.counters.logins == 2)
            #expect(snapshot.sessions.map(\.state) == ["idle"])

            let response = try await f.get("/api/items/2")
            #expect(response.status == 200)
            #expect(response.text.contains(#""item":2"#))
            snapshot = await f.pool.snapshot()
            // The client met no ended session: no retry, no hidden expiry, no check needed.
            #expect(snapshot.counters.retries == 0)
            #expect(snapshot.counters.expiredHidden == 0)
            #expect(snapshot.counters.healthChecks == 0)
            #expect(f.fake.stats.expiredAnswers == 1)  // the keep-alive probe's, alone
        }
    }

    @Test func theMaximumAgeForcesALoginAndTheReplacementLogsInBeforeTheOldSessionGoes() async throws {
        try await PoolFixture.with(configure: { fakeConfiguration(baseURL: $0, pool: .init(min: 1, max: 1), maxAge: 120, leaseTimeout: 600) }) {
            f in
            f.fake.idleTimeout = .seconds(600)
            await f.maintain()
            // A client holds the session while it reaches its age (120 s less the 5 % jitter).
            let lent = try await f.pool.lend()
            f.clock.advance(by: .seconds(115))
            await f.maintain()
            var snapshot = await f.pool.snapshot()
            #expect(f.fake.stats.logins == 2)
            #expect(snapshot.sessions.count == 2)
            #expect(snapshot.sessions.first?.beingReplaced == true)
            #expect(snapshot.sessions.last?.state == "idle")
            // The old session goes when it comes back.
            await f.pool.giveBack(leaseID: lent.lease.leaseID)
            snapshot = await f.pool.snapshot()
            #expect(snapshot.sessions.count == 1)
            #expect(snapshot.counters.retirements == ["max_age": 1])
            #expect(snapshot.sessions.first?.ageSeconds == 0)
        }
    }

    @Test func sessionsAreReplacedAfterTheirMaximumUses() async throws {
        try await PoolFixture.with(configure: { fakeConfiguration(baseURL: $0, maxUses: 3) }) { f in
            for item in 1...3 {
                let status = try await f.get("/api/items/\(item)").status
                #expect(status == 200)
            }
            await f.pool.settle()
            let snapshot = await f.pool.snapshot()
            #expect(f.fake.stats.logins == 2)
            #expect(snapshot.counters.retirements == ["max_uses": 1])
            #expect(snapshot.sessions.map(\.uses) == [0])
        }
    }

    @Test func cookiesTheSiteRenewsInKeepAliveAnswersAreKept() async throws {
        try await PoolFixture.with { f in
            f.fake.rotateCookieOnPing = true
            await f.maintain()
            f.clock.advance(by: .seconds(21))
            await f.maintain()
            #expect(f.fake.stats.pings == 1)
            let response = try await f.get("/api/items/3")
            #expect(response.status == 200)
            #expect(f.fake.stats.logins == 1)
            #expect(f.fake.stats.expiredAnswers == 0)
        }
    }

    @Test(arguments: FakeUpstream.ExpiredStyle.concrete)
    func aRequestThatMeetsAnEndedSessionIsRetriedOnceOnAFreshOne(style: FakeUpstream.ExpiredStyle) async throws {
        try await PoolFixture.with { f in
            await f.maintain()
            f.fake.expiredStyle = style
            f.fake.expireAllSessions()
            let response = try await f.get("/api/items/7")
            #expect(response.status == 200)
            #expect(response.text.contains(#""item":7"#))
            let snapshot = await f.pool.snapshot()
            #expect(snapshot.counters.retries == 1)
            #expect(snapshot.counters.expiredHidden == 1)
            #expect(snapshot.counters.retirements == ["expired_on_use": 1])
            #expect(f.fake.stats.expiredByStyle[style] == 1)
        }
    }

    @Test func aPostThatMetAnEndedSessionIsRetriedAndActsOnce() async throws {
        try await PoolFixture.with { f in
            await f.maintain()
            f.fake.expireAllSessions()
            let response = try await f.pool.send(
                UpstreamRequest(
                    method: "POST",
                    pathAndQuery: "/api/orders",
                    headers: [("content-type", "text/plain")],
                    body: ByteBuffer(string: "one")
                )
            )
            #expect(response.status == 201)
            #expect(response.text.contains(#""echo":"one""#))
            #expect(f.fake.stats.actionsPerformed == 1)
        }
    }

    @Test func aStaleSessionIsCheckedBeforeItIsLent() async throws {
        try await PoolFixture.with { f in
            await f.maintain()
            f.clock.advance(by: .seconds(6))
            let status = try await f.get("/api/items/1").status
            #expect(status == 200)
            var snapshot = await f.pool.snapshot()
            #expect(snapshot.counters.healthChecks == 1)

            // The check, not the client's request, meets the ended session.
            f.fake.expireAllSessions()
            f.clock.advance(by: .seconds(6))
            let second = try await f.get("/api/items/2").status
            #expect(second == 200)
            snapshot = await f.pool.snapshot()
            #expect(snapshot.counters.retirements == ["expired_on_check": 1])
            #expect(snapshot.counters.retries == 0)
        }
    }

    @Test func refusedLoginsBackOffAnswerLoginFailedAndRecoverWhenTheSiteAcceptsAgain() async throws {
        try await PoolFixture.with { f in
            f.fake.refuseLogins = true
            func expectLoginFailed(retryAfter: Int) async {
                await #expect {
                    try await f.get("/api/items/1")
                } throws: { error in
                    let error = error as? TesseraError
                    return error?.code == "UPSTREAM_LOGIN_FAILED" && error?.statusCode == 502 && error?.retryAfter == retryAfter
                        && error?.message
                            == "Logging in to the upstream 'fake' failed (the login answer did not set the cookie SESSID); "
                            + "the next attempt is in \(retryAfter) s."
                }
            }
            await expectLoginFailed(retryAfter: 1)
            #expect(f.fake.stats.refusedLogins == 1)
            // Within the back-off the pool does not try again: the client gets the answer at once.
            await expectLoginFailed(retryAfter: 1)
            #expect(f.fake.stats.refusedLogins == 1)
            // The back-off doubles with each refusal.
            f.clock.advance(by: .milliseconds(1100))
            await expectLoginFailed(retryAfter: 2)
            #expect(f.fake.stats.refusedLogins == 2)
            f.clock.advance(by: .milliseconds(2100))
            await expectLoginFailed(retryAfter: 4)
            #expect(f.fake.stats.refusedLogins == 3)

            f.fake.refuseLogins = false
            f.clock.advance(by: .milliseconds(4100))
            let status = try await f.get("/api/items/1").status
            #expect(status == 200)
            let account = try #require(await f.pool.snapshot().accounts.first)
            #expect(account.consecutiveFailures == 0)
            #expect(account.lastError == nil)
        }
    }

    @Test func repeatedRefusalsOpenTheAccountsCircuit() async throws {
        let backoff = UpstreamConfiguration.LoginBackoff(initial: 1, maximum: 60, breakerThreshold: 3, breakerOpen: 300)
        try await PoolFixture.with(configure: { fakeConfiguration(baseURL: $0, backoff: backoff) }) { f in
            f.fake.refuseLogins = true
            for _ in 0..<3 {
                await #expect(throws: TesseraError.self) { try await f.get("/") }
                f.clock.advance(by: .seconds(5))
            }
            #expect(f.fake.stats.refusedLogins == 3)
            var account = try #require(await f.pool.snapshot().accounts.first)
            #expect(account.circuit == "open")
            // The site would accept now, but the circuit holds logins back until it half-opens.
            f.fake.refuseLogins = false
            await #expect {
                try await f.get("/")
            } throws: { error in
                isTesseraError(error, "UPSTREAM_LOGIN_FAILED")
            }
            #expect(f.fake.stats.logins == 0)
            f.clock.advance(by: .seconds(300))
            let status = try await f.get("/api/items/4").status
            #expect(status == 200)
            account = try #require(await f.pool.snapshot().accounts.first)
            #expect(account.circuit == "closed")
        }
    }

    @Test func anotherAccountLogsInWhileOneIsRefused() async throws {
        let accounts: [UpstreamConfiguration.Account] = [
            .init(name: "mallory", fields: ["username": .init(value: "mallory")]),
            .init(name: "bob", fields: ["username": .init(env: "FAKE_USER_2"), "password": .init(env: "FAKE_PASSWORD_2")]),
        ]
        try await PoolFixture.with(configure: { fakeConfiguration(baseURL: $0, accounts: accounts) }) { f in
            let response = try await f.get("/api/items/5")
            #expect(response.status == 200)
            #expect(response.text.contains(#""user":"bob""#))
            let snapshot = await f.pool.snapshot()
            #expect(snapshot.accounts.map(\.consecutiveFailures) == [1, 0])
            #expect(snapshot.sessions.map(\.account) == ["bob"])
        }
    }

    @Test func concurrentBorrowersShareBoundedLogins() async throws {
        try await PoolFixture.with(configure: { fakeConfiguration(baseURL: $0, pool: .init(min: 0, max: 3)) }) { f in
            let statuses = try await withThrowingTaskGroup(of: Int.self) { group in
                for item in 0..<30 {
                    group.addTask { try await f.get("/api/items/\(item)").status }
                }
                return try await group.reduce(into: [Int]()) { $0.append($1) }
            }
            #expect(statuses == Array(repeating: 200, count: 30))
            #expect((1...3).contains(f.fake.stats.logins))
            #expect(await f.pool.snapshot().counters.loginFailures == 0)
        }
    }

    @Test func aBusyPoolAnswersExhaustedAfterTheBorrowTimeoutAndReclaimsOverdueLeases() async throws {
        try await PoolFixture.with(configure: { fakeConfiguration(baseURL: $0, pool: .init(min: 1, max: 1), borrowTimeout: 0.3, leaseTimeout: 60) }) {
            f in
            await f.maintain()
            let lent = try await f.pool.lend()
            #expect(lent.cookies.contains { $0.name == "SESSID" })
            await #expect {
                try await f.get("/api/items/1")
            } throws: { error in
                isTesseraError(error, "UPSTREAM_EXHAUSTED")
            }
            // The lease is never given back; after its timeout the keeper reclaims the session, which
            // is checked before it is lent again.
            f.clock.advance(by: .seconds(61))
            await f.maintain()
            let status = try await f.get("/api/items/1").status
            #expect(status == 200)
            let snapshot = await f.pool.snapshot()
            #expect(snapshot.counters.reclaimed == 1)
            #expect(snapshot.counters.exhausted == 1)
        }
    }

    @Test func theSnapshotReportsNoCookieOrCredential() async throws {
        try await PoolFixture.with { f in
            _ = try await f.get("/api/items/1")
            let lent = try await f.pool.lend()
            let cookie = try #require(lent.cookies.first { $0.name == "SESSID" })
            let snapshot = await f.pool.snapshot()
            let encoded = String(decoding: try JSONEncoder().encode(snapshot), as: UTF8.self)
            #expect(!encoded.contains(cookie.value))
            #expect(!encoded.contains("wonderland"))
            #expect(snapshot.sessions.first?.state == "lent")
        }
    }

    @Test func aTransientFailureIsRetriedForAGetButNotForAPost() async throws {
        try await PoolFixture.with { f in
            await f.maintain()
            f.fake.overloadedAnswers = 1
            let page = try await f.get("/api/items/8")
            #expect(page.status == 200)
            #expect(await f.pool.snapshot().counters.retries == 1)

            // The site may have acted on a POST before failing: its answer is passed on as it came.
            f.fake.overloadedAnswers = 1
            let order = try await f.pool.send(UpstreamRequest(method: "POST", pathAndQuery: "/api/orders", body: ByteBuffer(string: "x")))
            #expect(order.status == 503)
            #expect(f.fake.stats.refusedRequests == 2)
            let snapshot = await f.pool.snapshot()
            #expect(snapshot.counters.retries == 1)
            // The session is not blamed: nothing retired, no new login.
            #expect(snapshot.counters.retirements.isEmpty)
            #expect(f.fake.stats.logins == 1)
        }
    }

    @Test func aRateLimitedAnswerPausesThePoolWithoutANewLogin() async throws {
        try await PoolFixture.with { f in
            await f.maintain()
            f.fake.rateLimitedAnswers = 1
            let limited = try await f.get("/api/items/1")
            #expect(limited.status == 429)
            #expect(limited.header("retry-after") == "7")
            // Until the site's Retry-After has passed, the pool answers for it without sending.
            await #expect {
                try await f.get("/api/items/2")
            } throws: { error in
                let error = error as? TesseraError
                return error?.code == "UPSTREAM_RATE_LIMITED" && error?.statusCode == 503 && error?.retryAfter == 7
            }
            #expect(f.fake.stats.refusedRequests == 1)
            f.clock.advance(by: .seconds(7))
            let after = try await f.get("/api/items/3")
            #expect(after.status == 200)
            let snapshot = await f.pool.snapshot()
            #expect(snapshot.counters.rateLimited == 1)
            #expect(snapshot.counters.retirements.isEmpty)
            #expect(f.fake.stats.logins == 1)
        }
    }

    @Test func aSessionUnderKeepAliveIsNotLentMeanwhile() async throws {
        try await PoolFixture.with(configure: { fakeConfiguration(baseURL: $0, pool: .init(min: 1, max: 1), borrowTimeout: 0.3) }) { f in
            await f.maintain()
            f.clock.advance(by: .seconds(21))
            f.fake.holdPings()
            let keeper = Task { await f.pool.maintain() }
            while f.fake.heldPings == 0 { await Task.yield() }
            #expect(await f.pool.snapshot().sessions.map(\.state) == ["probing"])
            // The only session is being probed: a borrower waits, and gets no session in the meantime.
            await #expect {
                try await f.get("/api/items/1")
            } throws: { error in
                isTesseraError(error, "UPSTREAM_EXHAUSTED")
            }
            f.fake.releasePings()
            await keeper.value
            let response = try await f.get("/api/items/1")
            #expect(response.status == 200)
            #expect(f.fake.stats.logins == 1)
        }
    }

    @Test func lifetimesAreJitteredSoSessionsDoNotAllEndTogether() async throws {
        let draws = Mutex([0.0, 0.5, 1.0])
        try await PoolFixture.with(
            random: { draws.withLock { $0.isEmpty ? 0 : $0.removeFirst() } },
            configure: { fakeConfiguration(baseURL: $0, pool: .init(min: 3, max: 3), maxAge: 100) }
        ) { f in
            // One account logs in one session at a time: a round of the keeper each.
            for _ in 0..<3 { await f.maintain() }
            let lifetimes = await f.pool.snapshot().sessions.map(\.retiresInSeconds).sorted()
            // maxAge less up to 10 % of it.
            #expect(lifetimes == [90, 95, 100])
        }
    }

    @Test func anAccountHoldsNoMoreSessionsThanItsLimit() async throws {
        try await PoolFixture.with(configure: {
            // Ten requests wait their turn for one session: the wait is generous, for a machine
            // that every suite loads at once (one CI run met the 5 s default here).
            var configuration = fakeConfiguration(baseURL: $0, pool: .init(min: 0, max: 3), borrowTimeout: 60)
            configuration.maxSessionsPerAccount = 1
            return configuration
        }) { f in
            let statuses = try await withThrowingTaskGroup(of: Int.self) { group in
                for item in 0..<10 {
                    group.addTask { try await f.get("/api/items/\(item)").status }
                }
                return try await group.reduce(into: [Int]()) { $0.append($1) }
            }
            #expect(statuses == Array(repeating: 200, count: 10))
            #expect(f.fake.stats.logins == 1)
        }
    }

}
