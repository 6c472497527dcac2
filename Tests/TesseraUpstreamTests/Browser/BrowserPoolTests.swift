import Foundation
import Tessera
import TesseraTestSupport
import TesseraUpstream
import TesseraWebDriver
import Testing

/// The browser kind of the pool, in real headless Chromium against the fake site whose pages
/// are drawn by scripts; the pool's and the site's time on one manual clock.
// One test at a time, each heavy on its own (not the whole suite): a timed test elsewhere waits
// for the browser test running, not for every one of them.
@Suite(.serialized, .enabled(if: browsersAvailable)) struct BrowserPoolTests {
    @Test(.heavy) func twoHundredActionsAtConcurrencyFourWhileSessionsDieMeetNoEndedSession() async throws {
        try await BrowserPoolFixture.with(configure: { browserConfiguration(baseURL: $0, pool: .init(min: 2, max: 4)) }) { f in
            // Each session ends at a random moment 20 to 90 s after its login, after 60 s idle,
            // and twice the site ends them all at once.
            f.site.randomLifetime = 20...90
            var failures: [String] = []
            for round in 0..<50 {
                if round == 20 || round == 40 { f.site.expireAllSessions() }
                let results = await withTaskGroup(of: (Int, Result<BrowserActionResult, any Error>).self) { group in
                    for index in 0..<4 {
                        let item = round * 4 + index
                        group.addTask {
                            do {
                                return (item, .success(try await f.pool.perform(BrowserPoolFixture.readItem(item), idempotent: true)))
                            } catch {
                                return (item, .failure(error))
                            }
                        }
                    }
                    return await group.reduce(into: [(Int, Result<BrowserActionResult, any Error>)]()) { $0.append($1) }
                }
                for (item, result) in results {
                    switch result {
                    case .success(let read) where read.reads.first?.value == "item \(item) for alice":
                        break
                    case .success(let read):
                        failures.append("item \(item): read \(read.reads)")
                    case .failure(let error):
                        failures.append("item \(item): \(error)")
                    }
                }
                f.clock.advance(by: .seconds(3))
                await f.maintain()
            }
            let snapshot = await f.pool.snapshot()
            let site = f.site.stats
            print(
                """
                200 browser actions at concurrency 4: \(200 - failures.count) read their item
                  site: \(site.logins) logins, \(site.expiredAnswers) answers to ended sessions, \(site.randomExpiries) random expiries, \
                \(site.killedOnDemand) sessions ended on demand
                  pool: \(snapshot.counters.logins) logins (mean \(snapshot.loginTime.map { String(format: "%.2f", $0.meanSeconds) } ?? "-") s), \
                retirements \(snapshot.counters.retirements.sorted { $0.key < $1.key }), \(snapshot.counters.actionsReplayed) replays, \
                browsers \(snapshot.browsers.map { "\($0.starts) started, \($0.crashes) crashed" } ?? "-")
                """
            )
            #expect(failures.isEmpty, "\(failures.prefix(5))")
            #expect(site.expiredAnswers > 0)
            #expect(site.randomExpiries > 0)
            #expect(site.killedOnDemand > 0)
            #expect(snapshot.counters.logins > 4)
            #expect(snapshot.counters.actions == 200)
        }
    }

    @Test(.heavy) func theKeeperHoldsASessionPastTheSitesIdleTimeoutAndReplacesItPastItsMaximumAge() async throws {
        try await BrowserPoolFixture.with(configure: { browserConfiguration(baseURL: $0, pool: .init(min: 1, max: 1)) }) { f in
            await f.maintain()
            #expect(f.site.stats.logins == 1)
            // 60 s idle ends a session at the site; the keeper's visit every 20 s holds it.
            for _ in 0..<5 {
                f.clock.advance(by: .seconds(21))
                await f.maintain()
            }
            let held = try await f.pool.perform(BrowserPoolFixture.readItem(1), idempotent: false)
            #expect(held.reads.first?.value == "item 1 for alice")
            #expect(f.site.stats.logins == 1)
            #expect(f.site.stats.expiredAnswers == 0)

            // Past the (jittered) maximum age of 114 s, the keeper logs a replacement in, then
            // retires the old session; no client meets either moment.
            f.clock.advance(by: .seconds(10))
            await f.maintain()
            let snapshot = await f.pool.snapshot()
            #expect(snapshot.counters.retirements["max_age"] == 1)
            #expect(snapshot.sessions.count == 1)
            #expect(f.site.stats.logins == 2)
            let after = try await f.pool.perform(BrowserPoolFixture.readItem(2), idempotent: false)
            #expect(after.reads.first?.value == "item 2 for alice")
            #expect(f.site.stats.expiredAnswers == 0)
            #expect(await f.pool.snapshot().counters.expiredHidden == 0)
        }
    }

    @Test(.heavy) func aBookingThatMeetsAnEndedSessionIsMadeAtMostOnce() async throws {
        try await BrowserPoolFixture.with { f in
            let book: [BrowserStep] = [
                .goto("/book"), .click("#confirm"), .waitFor(.init(selector: "#booked"), timeout: 10), .read(.text(selector: "#booked"), label: nil),
            ]
            // The site makes the booking, then ends the session and answers with its phrase page.
            f.site.expireAfterNextBooking = true
            await #expect {
                try await f.pool.perform(book, idempotent: false)
            } throws: { error in
                (error as? TesseraError)?.code == "UPSTREAM_SESSION_LOST"
                    && (error as? TesseraError)?.message.contains("not marked idempotent, so they were not replayed") == true
            }
            #expect(f.site.stats.bookings == 1)
            // The next booking goes to a fresh session and is made once.
            let next = try await f.pool.perform(book, idempotent: false)
            #expect(next.reads.first?.value == "Booked #2")
            #expect(next.replayed == false)
            #expect(f.site.stats.bookings == 2)
            let snapshot = await f.pool.snapshot()
            #expect(snapshot.counters.actionsLost == 1)
            #expect(snapshot.counters.actionsReplayed == 0)
        }
    }

    @Test(.heavy) func aChromiumKilledByPidMidUseIsReplacedAndTheNextActionSucceeds() async throws {
        try await BrowserPoolFixture.with(configure: { browserConfiguration(baseURL: $0, pool: .init(min: 1, max: 1)) }) { f in
            await f.maintain()
            let first = try #require(await f.pool.snapshot().sessions.first?.browserPID)
            let chromium = try #require(Self.chromiumMainProcess(under: first))
            // An action that waits 3 s on its page; the browser is killed while it waits.
            let slow: [BrowserStep] = [.goto("/slow"), .waitFor(.init(selector: "#done"), timeout: 20), .read(.text(selector: "#done"), label: nil)]
            let action = Task { try await f.pool.perform(slow, idempotent: true) }
            try await waitUntil("the slow page is open") { f.site.stats.slowPages == 1 }
            #expect(kill(chromium, SIGKILL) == 0)
            let result = try await action.value
            #expect(result.reads.first?.value == "done for alice")
            #expect(result.replayed)
            let snapshot = await f.pool.snapshot()
            #expect(snapshot.browsers?.crashes == 1)
            #expect(snapshot.counters.retirements["browser_ended"] == 1)
            #expect(snapshot.sessions.first?.browserPID != first)
            // Nothing of the killed browser is left running.
            #expect(MarkedProcess.processes(inGroupOf: first).isEmpty)
            let next = try await f.pool.perform(BrowserPoolFixture.readItem(5), idempotent: false)
            #expect(next.reads.first?.value == "item 5 for alice")
        }
    }

    @Test(.heavy) func aHungBrowserIsKilledAtItsCommandTimeoutAndTheActionReplayed() async throws {
        try await BrowserPoolFixture.with(configure: { base in
            var configuration = browserConfiguration(baseURL: base, pool: .init(min: 1, max: 1))
            configuration.browser.commandTimeout = 3
            return configuration
        }) { f in
            await f.maintain()
            let hung = try #require(await f.pool.snapshot().sessions.first?.browserPID)
            // Stop chromedriver and its browser: every command now goes unanswered.
            #expect(kill(-hung, SIGSTOP) == 0)
            let result = try await f.pool.perform(BrowserPoolFixture.readItem(3), idempotent: true)
            #expect(result.reads.first?.value == "item 3 for alice")
            #expect(result.replayed)
            let snapshot = await f.pool.snapshot()
            #expect(snapshot.browsers?.crashes == 1)
            #expect(snapshot.counters.retirements["browser_ended"] == 1)
            #expect(MarkedProcess.processes(inGroupOf: hung).filter(Self.isLive).isEmpty)
        }
    }

    @Test(.heavy) func aBrowserPastItsMemoryLimitIsReplacedItsReplacementFirst() async throws {
        try await BrowserPoolFixture.with(configure: { base in
            var configuration = browserConfiguration(baseURL: base, pool: .init(min: 1, max: 1))
            // Below what any Chromium holds: the first measure finds it over.
            configuration.browser.maxMemoryMB = 64
            return configuration
        }) { f in
            await f.maintain()
            let first = try #require(await f.pool.snapshot().sessions.first)
            #expect((first.browserMemoryBytes ?? 0) > 64 * 1024 * 1024)
            // The measure after the login only records; the keeper's probe measures it again,
            // finds it over, and its replacement logs in before it goes.
            await f.maintain()
            #expect(await f.pool.snapshot().counters.retirements["resources"] == nil)
            f.clock.advance(by: .seconds(21))
            await f.maintain()
            let snapshot = await f.pool.snapshot()
            #expect(snapshot.counters.retirements["resources"] == 1)
            #expect(snapshot.browsers?.overMemory ?? 0 >= 1)
            #expect(snapshot.sessions.count == 1)
            #expect(snapshot.sessions.first?.id != first.id)
            #expect(f.site.stats.logins == 2)
            #expect(snapshot.counters.expiredHidden == 0)
        }
    }

    @Test(.heavy) func shutdownLeavesNoBrowserProcess() async throws {
        try await BrowserPoolFixture.with(configure: { browserConfiguration(baseURL: $0, pool: .init(min: 2, max: 2)) }) { f in
            // Logins are one at a time per account: two rounds of the keeper.
            await f.maintain()
            await f.maintain()
            #expect(await f.pool.snapshot().browsers?.running == 2)
            let running = f.factory.runningProcesses
            // chromedriver, Chromium and its helpers (zygotes, GPU, network, renderers), for each browser.
            #expect(running.count >= 10, "\(running)")
            await f.pool.shutdown()
            await f.factory.closeAll()
            try await waitUntil(timeout: .seconds(5), "every browser process has ended") { f.factory.runningProcesses.isEmpty }
            // Killed processes whose parent has gone wait as zombies for init to reap them: count
            // the live ones.
            #expect(running.filter(Self.isLive).isEmpty)
        }
    }

    @Test func browsersOfAKilledServerAreKilledAtTheNextStartAndOthersAreLeftAlone() async throws {
        // A server pid that no longer runs: a process that has ended.
        let ended = Process()
        ended.executableURL = URL(fileURLWithPath: "/bin/true")
        try ended.run()
        ended.waitUntilExit()
        let orphan = try MarkedProcess(
            executable: "/bin/sleep", arguments: ["60"], environment: [:], marker: "tessera-\(ended.processIdentifier)-portal-test-1")
        let alive = try MarkedProcess(executable: "/bin/sleep", arguments: ["60"], environment: [:], marker: "tessera-\(getppid())-portal-test-1")
        defer { alive.kill() }
        #expect(BrowserUpstreamSessionFactory.killOrphanedBrowsers() >= 1)
        try await waitUntil(timeout: .seconds(5), "the orphan has gone") { !orphan.isRunning }
        #expect(alive.isRunning)
    }

    @Test func aBrowserProcessStartsWithNoFileOfTheServersButItsStandardOnes() async throws {
        // A socket and a file open in this process when the child starts.
        let socket = Glibc.socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        #expect(socket > 2)
        defer { close(socket) }
        let file = open("/dev/null", O_RDONLY)
        #expect(file > 2)
        defer { close(file) }
        let child = try MarkedProcess(executable: "/bin/sleep", arguments: ["60"], environment: [:], marker: "tessera-files-test")
        defer { child.kill() }
        let descriptors = try FileManager.default.contentsOfDirectory(atPath: "/proc/\(child.pid)/fd").compactMap(Int32.init).sorted()
        #expect(descriptors == [0, 1, 2], "the child holds \(descriptors)")
    }

    /// Whether `pid` runs (exists and is not a zombie).
    static func isLive(_ pid: Int32) -> Bool {
        guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8), let close = stat.lastIndex(of: ")") else { return false }
        let state = stat[stat.index(after: close)...].split(separator: " ").first
        return state != "Z" && state != "X"
    }

    /// The Chromium browser process chromedriver `driver` started.
    static func chromiumMainProcess(under driver: Int32) -> Int32? {
        guard let names = try? FileManager.default.contentsOfDirectory(atPath: "/proc") else { return nil }
        for name in names {
            guard let pid = Int32(name), let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
                let close = stat.lastIndex(of: ")")
            else { continue }
            let fields = stat[stat.index(after: close)...].split(separator: " ")
            if fields.count > 2, Int32(fields[1]) == driver { return pid }
        }
        return nil
    }
}
