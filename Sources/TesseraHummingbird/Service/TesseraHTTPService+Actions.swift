import Foundation
import Hummingbird
import Logging
import Tessera
import TesseraUpstream

/// `POST /v1/upstreams/{name}/actions`: steps taken in one browser session of a browser pool.
extension TesseraHTTPService {
    /// The largest body of a list of actions.
    static let actionsBodyLimit = 64 * 1024

    struct ActionsResponse: Encodable {
        struct Read: Encodable {
            var step: Int
            var `as`: String?
            var value: String?
            var truncated: Bool
        }

        var upstream: String
        /// The page's URL after the last step.
        var url: String
        /// Whether the steps ran again on a fresh session after meeting an ended one.
        var replayed: Bool
        var reads: [Read]
    }

    @Sendable func performUpstreamActions(_ request: Request, context: TesseraRequestContext) async throws -> Response {
        let pool = try self.pool(context)
        // Whatever the body: an upstream that is not a browser takes no actions.
        guard pool.configuration.kind == .browser else { throw TesseraError.upstreamNotBrowser(upstream: pool.name) }
        let body = try await JSONCoding.object(from: request, limit: Self.actionsBodyLimit)
        let idempotent: Bool
        switch body.members["idempotent"] {
        case nil, .null: idempotent = false
        case .bool(let value): idempotent = value
        default: throw TesseraError.malformedBody("The field 'idempotent' has the wrong type.")
        }
        guard case .array(let items) = body.members["steps"] else {
            throw TesseraError.malformedBody("The field 'steps' must be an array of steps.")
        }
        let steps = try Self.actionSteps(items, upstream: pool.name)
        let result = try await pool.perform(steps, idempotent: idempotent)
        context.logger.info(
            "Performed upstream actions",
            metadata: ["upstream": .string(pool.name), "steps": .stringConvertible(steps.count), "replayed": .stringConvertible(result.replayed)]
        )
        return try Response.json(
            ActionsResponse(
                upstream: pool.name,
                url: result.url,
                replayed: result.replayed,
                reads: result.reads.map { .init(step: $0.step, as: $0.label, value: $0.value, truncated: $0.truncated) }
            )
        )
    }

    /// The steps of a request, checked: 1 to 32 of them, each well formed, a `goto` below the
    /// base URL, and a `fill` with a literal `value` only (a client may not make the service read
    /// its environment or files).
    static func actionSteps(_ items: [JSONValue], upstream: String) throws -> [BrowserStep] {
        guard (1...UpstreamPool.maxActionSteps).contains(items.count) else {
            throw TesseraError.invalidField("A list of actions has 1 to \(UpstreamPool.maxActionSteps) steps.")
        }
        let decoder = JSONDecoder()
        var steps: [BrowserStep] = []
        for (index, item) in items.enumerated() {
            let place = "steps[\(index)]"
            let step: BrowserStep
            do {
                step = try decoder.decode(BrowserStep.self, from: try JSONEncoder().encode(item))
            } catch let error as DecodingError {
                throw TesseraError.invalidField("\(place): \(Self.describe(error))")
            }
            do {
                try UpstreamConfiguration.validate(step, at: place, upstream: "")
            } catch let error as UpstreamConfigurationError {
                throw TesseraError.invalidField(error.message)
            }
            switch step {
            case .fill(_, .source(let source)) where source.value != nil && source.env == nil && source.file == nil:
                break
            case .fill:
                throw TesseraError.invalidField("\(place): a fill step of an action takes a literal value.")
            case .goto(let path):
                let parts = path.split(separator: "?", maxSplits: 1, omittingEmptySubsequences: false)
                do {
                    _ = try UpstreamPath(
                        basePath: "",
                        segments: UpstreamPath.segments(of: String(parts[0]), after: 0) ?? [],
                        query: parts.count > 1 ? parts[1] : nil
                    )
                } catch let error as UpstreamPathError {
                    throw TesseraError.invalidField("\(place): \(error.reason).")
                }
            default:
                break
            }
            steps.append(step)
        }
        return steps
    }

    static func describe(_ error: DecodingError) -> String {
        switch error {
        case .dataCorrupted(let context): return context.debugDescription
        case .keyNotFound(let key, _): return "the key '\(key.stringValue)' is missing"
        case .typeMismatch(_, let context), .valueNotFound(_, let context):
            let key = context.codingPath.last?.stringValue ?? "a value"
            return "'\(key)' has the wrong type"
        @unknown default: return "not a step"
        }
    }
}
