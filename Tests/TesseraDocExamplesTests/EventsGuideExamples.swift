import HTTPTypes
import Hummingbird
import Tessera

// The Swift example of docs/events.md, as the doc shows it (EventsGuideTests runs it).

// docs:begin
/// Answers 204 to a webhook signed with `secret`, 401 to anything else, and hands the event's
/// JSON (id, type, timestamp, data) to `handle`.
func addWebhookRoute(to router: Router<BasicRequestContext>, secret: String, handle: @escaping @Sendable (ByteBuffer) async -> Void) throws {
    let key = try WebhookSecret(secret)
    router.post("/hooks/tessera") { request, _ -> Response in
        let body = try await request.body.collect(upTo: 64 * 1024)
        func header(_ name: String) -> String { HTTPField.Name(name).flatMap { request.headers[$0] } ?? "" }
        do {
            try WebhookSignature.verify(
                body: body.readableBytesView,
                id: header("webhook-id"),
                timestamp: header("webhook-timestamp"),
                signatures: header("webhook-signature"),
                secret: key
            )
        } catch {
            return Response(status: .unauthorized)
        }
        await handle(body)
        return Response(status: .noContent)
    }
}
// docs:end
