import Logging
import NIOCore
import NIOHTTP1
import Tessera

/// Refusals in the one JSON shape, deadlines, and the lingering close after a refusal.
extension RequestBoundaryHandler {
    /// Answers `error` in the one JSON shape and closes; when an earlier request's answer is
    /// owed, closes after it instead (its client learns nothing of a request it sent after).
    func refuse(_ error: TesseraError, head: HTTPRequestHead?, context: ChannelHandlerContext) {
        guard !self.closing else { return }
        let correlationID = head?.headers.first(name: "x-correlation-id").flatMap(CorrelationIDs.usable) ?? makeCorrelationID()
        self.logger.debug("Request refused before routing", metadata: ["code": .string(error.code), "correlation_id": .string(correlationID)])
        guard !self.outstanding else {
            self.closeAfterResponse = true
            return
        }
        self.closing = true
        self.disarm()
        let body = error.body(correlationID: correlationID)
        var headers = HTTPHeaders()
        headers.add(name: "content-type", value: "application/json; charset=utf-8")
        headers.add(name: "cache-control", value: "no-store")
        headers.add(name: "x-correlation-id", value: correlationID)
        headers.add(name: "content-length", value: String(body.readableBytes))
        headers.add(name: "connection", value: "close")
        if let retryAfter = error.retryAfter { headers.add(name: "retry-after", value: String(retryAfter)) }
        let version: HTTPVersion = self.lastVersion == .http1_0 ? .http1_0 : .http1_1
        let status = HTTPResponseStatus(statusCode: error.statusCode)
        context.write(self.wrapOutboundOut(.head(HTTPResponseHead(version: version, status: status, headers: headers))), promise: nil)
        context.write(self.wrapOutboundOut(.body(.byteBuffer(body))), promise: nil)
        context.writeAndFlush(self.wrapOutboundOut(.end(nil))).whenComplete { _ in
            // A lingering close: stop writing, but read (and drop) what the client is still
            // sending for a moment, so that the answer reaches it instead of a reset.
            context.close(mode: .output, promise: nil)
            self.lingerEnd = self.ticks + self.lingerLimitTicks + 1
            self.arm(self.lingerTicks, linger: true)
        }
    }

    /// How long a refused connection reads on after the client last sent something, before it
    /// closes. A client still sending when the connection closes would get a reset, and a reset
    /// can discard the answer before the client reads it.
    static let linger = Duration.seconds(2)
    /// How long a lingering close lasts at most, however long the client goes on sending.
    static let lingerLimit = Duration.seconds(10)

    /// The client sent more during a lingering close: linger on, within the limit.
    func lingerOn() {
        guard let deadline = self.deadline, deadline.linger else { return }
        self.deadline = Deadline(tick: min(self.ticks + self.lingerTicks + 1, self.lingerEnd), linger: true)
    }

    /// Sets the current phase's deadline `ticks` from now (a lingering close's, with `linger`):
    /// it passes between that time and one tick later, never earlier.
    func arm(_ ticks: Int, linger: Bool = false) {
        self.deadline = Deadline(tick: self.ticks + ticks + 1, linger: linger)
    }

    func disarm() {
        self.deadline = nil
    }

    func checkDeadline(context: ChannelHandlerContext) {
        self.ticks += 1
        guard let deadline = self.deadline, self.ticks >= deadline.tick else { return }
        self.deadline = nil
        if deadline.linger {
            context.close(promise: nil)
        } else {
            self.timedOut(context: context)
        }
    }

    func timedOut(context: ChannelHandlerContext) {
        guard !self.closing else { return }
        switch self.reading {
        case .idle, .done, .refused:
            // Nothing was asked: close quietly.
            guard !self.outstanding else { return }
            self.closing = true
            context.close(promise: nil)
        case .head, .body:
            if self.responding || (self.unanswered.isEmpty && !self.isReadingHead) {
                // Answered already (a body drained after its answer), or answering: just close.
                self.closing = true
                context.close(promise: nil)
            } else {
                // A route may still wait for this body; the 408 goes first, and its later
                // writes meet a closed connection.
                self.unanswered.removeAll()
                self.refuse(.requestTimeout, head: nil, context: context)
            }
        }
    }

    var isReadingHead: Bool {
        if case .head = self.reading { return true }
        return false
    }

    /// What was wrong, for the answer's message.
    static func sentence(for error: HTTPParserError) -> String {
        switch error {
        case .invalidMethod: return "The request's method is not one HTTP/1.1 knows."
        case .invalidURL, .invalidPath, .invalidQueryString, .invalidFragment, .invalidHost, .invalidPort:
            return "The request's target is not a valid URL path."
        case .invalidHeaderToken, .invalidCharactersUsed:
            return "A header field of the request has a character HTTP/1.1 does not allow."
        case .invalidContentLength, .unexpectedContentLength:
            return "The request's Content-Length is not valid, or conflicts with another framing header."
        case .invalidChunkSize, .invalidConstant:
            return "The request's chunked body is not valid."
        case .invalidVersion: return "The request's HTTP version is not supported."
        default: return "The request is not valid HTTP/1.1."
        }
    }
}
