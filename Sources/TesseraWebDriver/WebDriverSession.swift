import Foundation
import NIOHTTP1

/// One browser session of a ``WebDriver``: its windows, pages, scripts and cookies. Commands go
/// to the current window; ``switchToWindow(_:)`` changes it.
public struct WebDriverSession: Sendable {
    public let driver: WebDriver
    /// The session id the remote end gave.
    public let id: String

    /// The session `id` of `driver` (one started elsewhere, or to send it a command with
    /// another client).
    public init(driver: WebDriver, id: String) {
        self.driver = driver
        self.id = id
    }

    var base: String { "/session/\(self.id)" }

    // MARK: Navigation

    /// Loads `url` in the current window and waits for it to load.
    public func navigate(to url: String) async throws {
        _ = try await self.driver.command(.POST, self.base + "/url", ["url": .string(url)])
    }

    /// The current window's URL.
    public func currentURL() async throws -> String {
        try await self.driver.command(.GET, self.base + "/url").string ?? ""
    }

    /// Reloads the current page.
    public func refresh() async throws {
        _ = try await self.driver.command(.POST, self.base + "/refresh")
    }

    /// The current page's source (its DOM, serialized).
    public func pageSource() async throws -> String {
        try await self.driver.command(.GET, self.base + "/source").string ?? ""
    }

    /// A PNG of the current window's viewport (WebDriver's Take Screenshot).
    public func screenshot() async throws -> [UInt8] {
        let command = "GET /session/{id}/screenshot"
        guard let encoded = try await self.driver.command(.GET, self.base + "/screenshot").string,
            let data = Data(base64Encoded: encoded)
        else { throw WebDriverError(error: "invalid answer", message: "the screenshot is not base64", command: command) }
        return Array(data)
    }

    /// Sets the current window's size in CSS pixels.
    public func setWindowSize(width: Int, height: Int) async throws {
        _ = try await self.driver.command(.POST, self.base + "/window/rect", ["width": .number(Double(width)), "height": .number(Double(height))])
    }

    // MARK: Scripts

    /// Runs `script` (a function body: `return` gives its result) in the current page with
    /// `arguments`, and returns what it returned. A returned promise is awaited.
    @discardableResult
    public func execute(_ script: String, _ arguments: [WebDriverJSON] = []) async throws -> WebDriverJSON {
        try await self.driver.command(.POST, self.base + "/execute/sync", ["script": .string(script), "args": .array(arguments)])
    }

    /// Sets how long a script (and a page load) may run before the command fails.
    public func setTimeouts(script: Duration? = nil, pageLoad: Duration? = nil, implicit: Duration? = nil) async throws {
        func milliseconds(_ duration: Duration) -> WebDriverJSON {
            .number(Double(duration.components.seconds * 1000 + duration.components.attoseconds / 1_000_000_000_000_000))
        }
        var body: [String: WebDriverJSON] = [:]
        if let script { body["script"] = milliseconds(script) }
        if let pageLoad { body["pageLoad"] = milliseconds(pageLoad) }
        if let implicit { body["implicit"] = milliseconds(implicit) }
        _ = try await self.driver.command(.POST, self.base + "/timeouts", .object(body))
    }

    // MARK: Windows

    /// The handle of the current window.
    public func windowHandle() async throws -> String {
        try await self.driver.command(.GET, self.base + "/window").string ?? ""
    }

    /// The handles of every window (tab) of the session.
    public func windowHandles() async throws -> [String] {
        try await self.driver.command(.GET, self.base + "/window/handles").array?.compactMap(\.string) ?? []
    }

    /// Opens a new tab (or window) and returns its handle; the current window does not change.
    public func newWindow(tab: Bool = true) async throws -> String {
        let value = try await self.driver.command(.POST, self.base + "/window/new", ["type": tab ? "tab" : "window"])
        guard let handle = value["handle"]?.string else {
            throw WebDriverError(error: "invalid answer", message: "no handle for the new window", command: "POST /window/new")
        }
        return handle
    }

    /// Makes `handle` the current window.
    public func switchToWindow(_ handle: String) async throws {
        _ = try await self.driver.command(.POST, self.base + "/window", ["handle": .string(handle)])
    }

    /// Closes the current window; the handles of those left are returned.
    @discardableResult
    public func closeWindow() async throws -> [String] {
        try await self.driver.command(.DELETE, self.base + "/window").array?.compactMap(\.string) ?? []
    }

    // MARK: Elements

    /// The first element matching the CSS `selector`.
    public func findElement(_ selector: String) async throws -> WebDriverElement {
        let value = try await self.driver.command(.POST, self.base + "/element", ["using": "css selector", "value": .string(selector)])
        guard let id = value[WebDriverElement.key]?.string else {
            throw WebDriverError(error: "invalid answer", message: "no element reference", command: "POST /element")
        }
        return WebDriverElement(session: self, id: id)
    }

    // MARK: Cookies

    /// The cookies visible to the current page.
    public func cookies() async throws -> [WebDriverCookie] {
        (try await self.driver.command(.GET, self.base + "/cookie").array ?? []).compactMap(WebDriverCookie.init)
    }

    /// Adds a cookie for the current page's domain.
    public func addCookie(name: String, value: String, path: String = "/", httpOnly: Bool = false) async throws {
        let cookie: WebDriverJSON = ["name": .string(name), "value": .string(value), "path": .string(path), "httpOnly": .bool(httpOnly)]
        _ = try await self.driver.command(.POST, self.base + "/cookie", ["cookie": cookie])
    }

    /// Adds (or replaces) `cookie`; its domain must be the current page's or one it belongs to.
    public func addCookie(_ cookie: WebDriverCookie) async throws {
        _ = try await self.driver.command(.POST, self.base + "/cookie", ["cookie": cookie.json])
    }

    /// Deletes every cookie visible to the current page.
    public func deleteAllCookies() async throws {
        _ = try await self.driver.command(.DELETE, self.base + "/cookie")
    }

    // MARK: Ending

    /// Ends the session and closes its browser.
    public func delete() async throws {
        _ = try await self.driver.command(.DELETE, self.base)
    }
}

/// An element of a page, found by ``WebDriverSession/findElement(_:)``.
public struct WebDriverElement: Sendable {
    /// The member naming an element reference in the protocol.
    static let key = "element-6066-11e4-a52e-4f735466cecf"

    public let session: WebDriverSession
    public let id: String

    var base: String { self.session.base + "/element/\(self.id)" }

    public func click() async throws {
        _ = try await self.session.driver.command(.POST, self.base + "/click")
    }

    /// Empties an editable element.
    public func clear() async throws {
        _ = try await self.session.driver.command(.POST, self.base + "/clear")
    }

    /// Types `text` into the element.
    public func sendKeys(_ text: String) async throws {
        _ = try await self.session.driver.command(.POST, self.base + "/value", ["text": .string(text)])
    }

    /// The element's rendered text.
    public func text() async throws -> String {
        try await self.session.driver.command(.GET, self.base + "/text").string ?? ""
    }

    /// The value of the element's attribute `name`, if it has one.
    public func attribute(_ name: String) async throws -> String? {
        try await self.session.driver.command(.GET, self.base + "/attribute/\(name)").string
    }
}

/// A cookie as WebDriver describes it.
public struct WebDriverCookie: Hashable, Sendable {
    public var name: String
    public var value: String
    public var path: String?
    public var domain: String?
    public var httpOnly: Bool
    public var secure: Bool
    public var sameSite: String?
    /// When it expires, in seconds since 1970; `nil` for a cookie that ends with the browser.
    public var expiry: Double?

    public init(name: String, value: String, path: String? = "/", domain: String? = nil, httpOnly: Bool = false, secure: Bool = false, expiry: Double? = nil) {
        self.name = name
        self.value = value
        self.path = path
        self.domain = domain
        self.httpOnly = httpOnly
        self.secure = secure
        self.sameSite = nil
        self.expiry = expiry
    }

    init?(_ json: WebDriverJSON) {
        guard let name = json["name"]?.string, let value = json["value"]?.string else { return nil }
        self.name = name
        self.value = value
        self.path = json["path"]?.string
        self.domain = json["domain"]?.string
        self.httpOnly = json["httpOnly"]?.bool ?? false
        self.secure = json["secure"]?.bool ?? false
        self.sameSite = json["sameSite"]?.string
        self.expiry = json["expiry"]?.number
    }

    var json: WebDriverJSON {
        var members: [String: WebDriverJSON] = [
            "name": .string(self.name), "value": .string(self.value), "httpOnly": .bool(self.httpOnly), "secure": .bool(self.secure),
        ]
        if let path = self.path { members["path"] = .string(path) }
        if let domain = self.domain { members["domain"] = .string(domain) }
        if let expiry = self.expiry { members["expiry"] = .number(expiry.rounded(.down)) }
        return .object(members)
    }
}
