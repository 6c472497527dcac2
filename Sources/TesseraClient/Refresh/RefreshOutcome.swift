import Foundation
import NIOHTTP1

/// What a refresh's answer means for the session.
enum RefreshOutcome {
    /// A new pair.
    case refreshed(TokenResponse)
    /// `401 AUTH_1007`: the presented token was used already. Another process sharing the store
    /// may have rotated it; the store decides whether this is terminal.
    case alreadyUsed(TesseraServerError?)
    /// The session is gone.
    case terminal(SignOutReason, TesseraServerError?)
    /// A passing failure: keep the session, try again later.
    case transient(TesseraClientError)

    /// Classifies a response of `POST /v1/token/refresh`.
    ///
    /// Only Tessera's own answers that say the session or the token is gone sign out: a `4xx` but
    /// `408` and `429` that carries Tessera's error body. Everything else (`5xx`,
    /// `503 STORE_UNAVAILABLE`, `429`, `408`, a `4xx` without Tessera's error body, as a proxy or a
    /// firewall sends, a `200` that is not a token pair, as a captive portal sends) keeps the
    /// session.
    static func classify(_ response: TesseraHTTPResponse) -> RefreshOutcome {
        let serverError = response.serverError
        switch response.status.code {
        case 200:
            do {
                return .refreshed(try response.decode(TokenResponse.self))
            } catch {
                return .transient(
                    TesseraClientError(
                        .refreshUnavailable,
                        "the refresh answer is not a token pair",
                        status: response.status,
                        underlyingError: error
                    )
                )
            }
        case 401 where serverError?.code == "AUTH_1007":
            return .alreadyUsed(serverError)
        case 400...499 where serverError == nil && response.status.code != 408 && response.status.code != 429:
            // Not Tessera's answer (no error body in its shape): a proxy, a firewall or a captive
            // portal speaks. Only Tessera may end the session.
            return .transient(
                TesseraClientError(
                    .refreshUnavailable,
                    "the refresh was answered \(response.status.code) by something other than Tessera; the session is kept",
                    status: response.status
                )
            )
        case 401:
            return .terminal(Self.reason(of: serverError), serverError)
        case 408, 429, 500...599:
            return .transient(
                TesseraClientError(
                    .refreshUnavailable,
                    "the refresh failed with \(response.status.code); the session is kept",
                    serverError: serverError,
                    status: response.status,
                    retryAfter: Self.retryAfter(response.headers)
                )
            )
        case 400...499:
            return .terminal(.refreshRejected, serverError)
        default:
            return .transient(
                TesseraClientError(.refreshUnavailable, "unexpected refresh status \(response.status.code)", status: response.status)
            )
        }
    }

    /// The reason a `401` refresh answer gives for the session's end.
    static func reason(of error: TesseraServerError?) -> SignOutReason {
        guard let error, error.code == "AUTH_1002" else { return .refreshRejected }
        switch error.reason {
        case "revoked": return .revoked
        case "idle": return .expired(.idle)
        case "absolute": return .expired(.absolute)
        default: return .refreshRejected
        }
    }

    /// `Retry-After` in seconds (the HTTP-date form is ignored).
    static func retryAfter(_ headers: HTTPHeaders) -> Duration? {
        guard let value = headers.first(name: "Retry-After"), let seconds = Int(value.trimmingCharacters(in: .whitespaces)), seconds >= 0
        else { return nil }
        return .seconds(seconds)
    }
}
