import ArgumentParser
import Foundation
import AsyncHTTPClient
import TesseraUpstream

/// `tessera upstream`: the upstream session pool's configuration.
struct Upstream: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Check the upstreams file that `tessera serve --upstreams` uses.",
        subcommands: [Check.self]
    )

    struct Check: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Validate the upstreams file, then log in once per account and probe the keep-alive path (in a browser for kind: browser).",
            discussion: "Credentials are read from the environment and files the file names, as serve reads them; none is printed."
        )

        @Argument(help: "The upstreams file (YAML, or JSON when it ends in .json).")
        var file: String

        @Option(help: "Check only this upstream.")
        var name: String?

        @Flag(help: "Only validate the file; do not contact the sites.")
        var offline = false

        func run() async throws {
            let upstreams: UpstreamsFile
            do {
                upstreams = try UpstreamsFile.load(path: self.file)
            } catch {
                complain("the upstreams file is not usable: \(error)")
                throw ExitCode.failure
            }
            let selected = upstreams.upstreams.filter { self.name == nil || $0.name == self.name }
            guard !selected.isEmpty else {
                complain("no upstream is named '\(self.name ?? "")'")
                throw ExitCode.failure
            }
            say("\(self.file): \(upstreams.upstreams.count) upstream(s), valid")
            guard !self.offline else { return }
            let client = HTTPUpstreamSessionFactory.makeHTTPClient()
            var failed = false
            for upstream in selected {
                if upstream.kind == .browser, let missing = upstream.browser.missingExecutables {
                    say("\(upstream.name): FAILED, \(missing)")
                    failed = true
                    continue
                }
                let factory = try UpstreamPools.factory(for: upstream, client: client)
                for result in await upstream.checkAccounts(with: factory) {
                    say("\(upstream.name) / \(result.account): \(result.passed ? "ok" : "FAILED"), \(result.detail)")
                    failed = failed || !result.passed
                }
                if let browsers = factory as? BrowserUpstreamSessionFactory { await browsers.closeAll() }
                await factory.shutdown()
            }
            try await client.shutdown()
            if failed { throw ExitCode.failure }
        }
    }
}
