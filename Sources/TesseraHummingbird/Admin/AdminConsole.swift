import HTTPTypes
import Hummingbird

/// The admin console's page, script and style sheet, built into the service and served at
/// `/admin`, `/admin/console.js` and `/admin/console.css` (`no-cache`, with an `ETag`).
///
/// Every answer carries a strict `Content-Security-Policy`: this origin's scripts, styles and
/// requests only, no inline script or style, no framing, no form posted anywhere. The page signs
/// an administrator in with `tessera.js` (`/sdk/tessera.js`).
struct AdminConsole: Sendable {
    static let shared = AdminConsole()
    static let contentSecurityPolicy =
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; "
        + "form-action 'none'; base-uri 'none'; frame-ancestors 'none'"

    let page = BrowserSDK.file(PackageResources.admin_html, contentType: "text/html; charset=utf-8")
    let script = BrowserSDK.file(PackageResources.console_js, contentType: "text/javascript; charset=utf-8")
    let styles = BrowserSDK.file(PackageResources.console_css, contentType: "text/css; charset=utf-8")

    static func response(for file: BrowserSDK.File, request: Request) -> Response {
        var response = BrowserSDK.response(for: file, request: request)
        response.headers[.contentSecurityPolicy] = Self.contentSecurityPolicy
        response.headers[.xFrameOptions] = "DENY"
        response.headers[.referrerPolicy] = "no-referrer"
        return response
    }
}
