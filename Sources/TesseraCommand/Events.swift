import ArgumentParser
import Foundation
import Tessera

/// `tessera events`: webhook delivery state, dead deliveries, signing secrets and verification.
struct Events: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Inspect and retry webhook deliveries of session events; make and check signing secrets.",
        subcommands: [List.self, Retry.self, Enable.self, NewSecret.self, Verify.self]
    )

    static func deliveries(_ store: any SessionStore) throws -> any WebhookDeliveryStore {
        guard let deliveries = store as? any WebhookDeliveryStore else { throw CommandError("This store keeps no webhook deliveries.") }
        return deliveries
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Show each webhook endpoint's state and its dead deliveries.")

        @OptionGroup var data: StoreOptions

        func run() async throws {
            try await reportingErrors {
                let (endpoints, dead) = try await self.data.withStore { store in
                    let deliveries = try Events.deliveries(store)
                    return (
                        try await deliveries.webhookEndpoints(at: Date()),
                        try await deliveries.webhookDeliveries(endpoint: nil, state: .dead, limit: 1000)
                    )
                }
                guard !endpoints.isEmpty else {
                    say("No webhook endpoint has been configured (tessera serve --webhook-url).")
                    return
                }
                printTable(
                    header: ["ENDPOINT", "STATE", "PENDING", "OLDEST PENDING", "DEAD", "LAST EVENT"],
                    rows: endpoints.map { endpoint in
                        [
                            endpoint.name,
                            endpoint.disabledAt.map { "disabled since \($0.formatted(.iso8601)): \(endpoint.disabledReason ?? "")" } ?? "enabled",
                            "\(endpoint.pending)", endpoint.oldestPendingAt?.formatted(.iso8601) ?? "-", "\(endpoint.dead)", "\(endpoint.cursor)",
                        ]
                    }
                )
                if !dead.isEmpty {
                    say("")
                    printTable(
                        header: ["ENDPOINT", "EVENT", "ID", "TYPE", "TIME", "ATTEMPTS", "LAST ERROR"],
                        rows: dead.map {
                            [
                                $0.endpoint, "\($0.event.sequence)", $0.event.id, $0.event.kind.rawValue, $0.event.time.formatted(.iso8601),
                                "\($0.attempts)", terminalSafe($0.lastError ?? ""),
                            ]
                        }
                    )
                }
            }
        }
    }

    struct Retry: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Make dead deliveries pending again: all of them, or one event's.")

        @Option(help: "Only this event (its number, the EVENT column of `tessera events list`).")
        var event: Int64?

        @Option(help: "Only this endpoint's.")
        var endpoint: String?

        @OptionGroup var data: StoreOptions

        func run() async throws {
            try await reportingErrors {
                let (event, endpoint) = (self.event, self.endpoint)
                let count = try await self.data.withStore { store in
                    try await Events.deliveries(store).retryWebhookDeliveries(endpoint: endpoint, sequence: event, at: Date())
                }
                say(count == 0 ? "No dead delivery matched." : "\(count) dead deliver\(count == 1 ? "y is" : "ies are") pending again.")
            }
        }
    }

    struct Enable: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Resume deliveries to an endpoint disabled by a 410 Gone.")

        @Argument(help: "The endpoint's name (`webhook` for the one --webhook-url configures).")
        var endpoint = "webhook"

        @OptionGroup var data: StoreOptions

        func run() async throws {
            try await reportingErrors {
                let endpoint = self.endpoint
                let enabled = try await self.data.withStore { store in try await Events.deliveries(store).enableWebhookEndpoint(endpoint) }
                say(enabled ? "Deliveries to \(terminalSafe(endpoint)) resume." : "\(terminalSafe(endpoint)) is not disabled.")
            }
        }
    }

    struct NewSecret: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "new-secret", abstract: "Print a new webhook signing secret (whsec_…).")

        func run() async throws {
            print(WebhookSecret.generate())
        }
    }

    struct Verify: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Check a received webhook: its body on standard input, its headers as options.",
            discussion: "Exit status 0 when it verifies, 1 (and why) when it does not."
        )

        @Option(help: "The webhook-id header.")
        var id: String

        @Option(help: "The webhook-timestamp header.")
        var timestamp: String

        @Option(help: "The webhook-signature header.")
        var signature: String

        @Option(help: "The environment variable holding the secret (default TESSERA_WEBHOOK_SECRET; its first word).")
        var secretEnv = "TESSERA_WEBHOOK_SECRET"

        @Option(help: "How far the timestamp may be from now, in seconds (default 300).")
        var tolerance = 300

        func run() async throws {
            try await reportingErrors {
                guard let text = Setting.environment[self.secretEnv]?.split(whereSeparator: \.isWhitespace).first else {
                    throw CommandError("\(self.secretEnv) holds no secret.")
                }
                let secret: WebhookSecret
                do {
                    secret = try WebhookSecret(String(text))
                } catch {
                    throw CommandError("\(self.secretEnv): \(error).")
                }
                let body = FileHandle.standardInput.readDataToEndOfFile()
                do {
                    try WebhookSignature.verify(
                        body: Array(body),
                        id: self.id,
                        timestamp: self.timestamp,
                        signatures: self.signature,
                        secret: secret,
                        tolerance: .seconds(self.tolerance)
                    )
                } catch {
                    throw CommandError("Not verified: \(error)")
                }
                say("Verified: signed with this secret, \(self.timestamp) is within \(self.tolerance) s of now.")
            }
        }
    }
}
