import ArgumentParser
import Foundation
import Tessera
import TesseraEvents

/// `tessera serve`'s session events: the node's name in them, how long they are kept, and the
/// webhook endpoint they are delivered to.
struct EventOptions: ParsableArguments {
    @Option(help: "This node's name in the events it records (env TESSERA_NODE; default the host name).")
    var node: String?

    @Option(
        help: "How long session events are kept: how far back streams resume and dead webhooks can be retried (env TESSERA_EVENT_RETENTION; default 7d)."
    )
    var eventRetention: String?

    @Flag(help: "Record no session events: no webhooks, no streams (env TESSERA_SESSION_EVENTS=off). Only to measure what they cost.")
    var noSessionEvents = false

    @Option(help: "Deliver session events to this URL as signed webhooks (env TESSERA_WEBHOOK_URL).")
    var webhookURL: String?

    @Option(help: "A JSON file of webhook endpoints, each with its URL, secret source and event types (env TESSERA_WEBHOOKS; docs/events.md).")
    var webhooks: String?

    @Option(
        help: """
            A file holding the webhook signing secret(s), whsec_…, several separated by spaces during a rotation \
            (env TESSERA_WEBHOOK_SECRET holds them directly; `tessera events new-secret` makes one).
            """
    )
    var webhookSecretFile: String?

    @Option(help: "The event types to deliver, comma-separated, e.g. session.revoked,session.expired (env TESSERA_WEBHOOK_EVENTS; default all).")
    var webhookEvents: String?

    @Option(help: "How long one webhook attempt may take (env TESSERA_WEBHOOK_TIMEOUT; default 10s).")
    var webhookTimeout: String?

    @Option(help: "The delay after a webhook's first failed attempt, doubling after, at most 1h (env TESSERA_WEBHOOK_RETRY_DELAY; default 5s).")
    var webhookRetryDelay: String?

    @Option(help: "How long after an event its webhook is retried before it is dead (env TESSERA_WEBHOOK_RETRY_FOR; default 24h).")
    var webhookRetryFor: String?

    var nodeName: String {
        let name = Setting.string(self.node, env: "TESSERA_NODE", default: SessionEvent.defaultNode)
        return name.isEmpty ? SessionEvent.defaultNode : String(name.prefix(64))
    }

    var recordsEvents: Bool {
        !(self.noSessionEvents || Setting.environment["TESSERA_SESSION_EVENTS"]?.lowercased() == "off")
    }

    func retention() throws -> Duration {
        let retention = try Setting.duration(self.eventRetention, env: "TESSERA_EVENT_RETENTION", option: "--event-retention", default: .seconds(7 * 86_400))
        guard retention >= .seconds(3600) else { throw ValidationError("--event-retention must be at least 1h.") }
        return retention
    }

    /// Every webhook endpoint: the `--webhooks` file's and `--webhook-url`'s.
    func endpoints(retention: Duration) throws -> [WebhookEndpoint] {
        var endpoints: [WebhookEndpoint] = []
        if let path = self.webhooks ?? Setting.environment["TESSERA_WEBHOOKS"], !path.isEmpty {
            guard self.recordsEvents else { throw ValidationError("--webhooks needs session events; leave out --no-session-events.") }
            do {
                endpoints = try WebhooksFile.load(path: path, environment: Setting.environment, retention: retention).endpoints
            } catch {
                throw ValidationError("\(error)")
            }
        }
        if let endpoint = try self.endpoint(retention: retention) {
            guard !endpoints.contains(where: { $0.name == endpoint.name }) else {
                throw ValidationError("The webhooks file names an endpoint 'webhook', the name --webhook-url takes; rename it.")
            }
            endpoints.append(endpoint)
        }
        return endpoints
    }

    /// The webhook endpoint the options describe, if any.
    /// - Throws: `ValidationError` saying which option is wrong (never repeating a secret).
    func endpoint(retention: Duration) throws -> WebhookEndpoint? {
        let text = Setting.string(self.webhookURL, env: "TESSERA_WEBHOOK_URL", default: "")
        guard !text.isEmpty else { return nil }
        guard self.recordsEvents else { throw ValidationError("--webhook-url needs session events; leave out --no-session-events.") }
        guard let url = WebhookEndpoint.url(text) else {
            throw ValidationError("--webhook-url (or TESSERA_WEBHOOK_URL) must be an http or https URL without credentials.")
        }
        let secrets = try self.secrets()
        var kinds: Set<SessionEvent.Kind>?
        let events = Setting.string(self.webhookEvents, env: "TESSERA_WEBHOOK_EVENTS", default: "")
        if !events.isEmpty {
            do {
                kinds = try SessionEvent.Kind.named(events.split(separator: ","))
            } catch {
                throw ValidationError("--webhook-events: \(terminalSafe(error.name)) is not an event type; they are \(SessionEvent.Kind.names).")
            }
        }
        let timeout = try Setting.duration(self.webhookTimeout, env: "TESSERA_WEBHOOK_TIMEOUT", option: "--webhook-timeout", default: .seconds(10))
        guard WebhookEndpoint.timeoutRange.contains(timeout) else { throw ValidationError("--webhook-timeout must be between 100ms and 60s.") }
        let delay = try Setting.duration(self.webhookRetryDelay, env: "TESSERA_WEBHOOK_RETRY_DELAY", option: "--webhook-retry-delay", default: .seconds(5))
        guard WebhookEndpoint.retryDelayRange.contains(delay) else { throw ValidationError("--webhook-retry-delay must be between 100ms and 1h.") }
        let retryFor = try Setting.duration(self.webhookRetryFor, env: "TESSERA_WEBHOOK_RETRY_FOR", option: "--webhook-retry-for", default: .seconds(86_400))
        guard retryFor >= delay, retryFor < retention else {
            throw ValidationError("--webhook-retry-for must be at least the retry delay and shorter than --event-retention.")
        }
        return WebhookEndpoint(
            name: "webhook",
            url: url,
            secrets: secrets,
            kinds: kinds,
            timeout: timeout,
            retry: WebhookRetryPolicy(initialDelay: delay, retryFor: retryFor)
        )
    }

    func secrets() throws -> [WebhookSecret] {
        var text = Setting.environment["TESSERA_WEBHOOK_SECRET"] ?? ""
        var source = "TESSERA_WEBHOOK_SECRET"
        if let path = self.webhookSecretFile {
            guard let contents = try? String(contentsOfFile: path, encoding: .utf8) else {
                throw ValidationError("--webhook-secret-file: cannot read \(terminalSafe(path)).")
            }
            text = contents
            source = "--webhook-secret-file"
        }
        let secrets: [WebhookSecret]
        do {
            secrets = try WebhookSecret.list(text)
        } catch {
            throw ValidationError("\(source): \(error).")
        }
        guard !secrets.isEmpty else {
            throw ValidationError("--webhook-url needs a signing secret: TESSERA_WEBHOOK_SECRET or --webhook-secret-file (`tessera events new-secret` makes one).")
        }
        return secrets
    }

    /// The URL without its query or fragment (which may carry a token), for messages.
    static func redacted(_ url: URL) -> String {
        guard var components = URLComponents(url: url, resolvingAgainstBaseURL: false) else { return "the webhook URL" }
        if components.query != nil { components.query = "…" }
        components.fragment = nil
        return components.string ?? "the webhook URL"
    }
}
