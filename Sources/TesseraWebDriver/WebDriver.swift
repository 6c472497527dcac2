public import AsyncHTTPClient
import Foundation
public import NIOCore
public import NIOHTTP1

/// A client of a W3C WebDriver remote end (chromedriver), on AsyncHTTPClient: it starts browser
/// sessions and sends their commands.
///
/// ```swift
/// let driver = WebDriver(url: chromedriver.url)
/// let browser = try await driver.newSession(.headlessChromium())
/// try await browser.navigate(to: "http://127.0.0.1:8080/")
/// let title = try await browser.execute("return document.title")
/// try await browser.delete()
/// ```
public struct WebDriver: Sendable {
    /// The remote end, such as `http://127.0.0.1:9515`.
    public let url: String
    let httpClient: HTTPClient
    /// How long one command may take (a script that waits, a page that loads) before it fails.
    public let commandTimeout: TimeAmount

    /// - Parameters:
    ///   - url: the remote end, such as `http://127.0.0.1:9515`
    ///   - httpClient: the client to send commands with (by default the process-wide shared one)
    ///   - commandTimeout: the longest a command may take (default 60 seconds)
    public init(url: String, httpClient: HTTPClient = .shared, commandTimeout: TimeAmount = .seconds(60)) {
        self.url = url.hasSuffix("/") ? String(url.dropLast()) : url
        self.httpClient = httpClient
        self.commandTimeout = commandTimeout
    }

    /// Whether the remote end is ready to start sessions (`GET /status`).
    public func isReady() async -> Bool {
        guard let value = try? await self.command(.GET, "/status") else { return false }
        return value["ready"]?.bool == true
    }

    /// Starts a browser session with `capabilities` (the `alwaysMatch` object).
    public func newSession(_ capabilities: WebDriverJSON) async throws -> WebDriverSession {
        let value = try await self.command(.POST, "/session", ["capabilities": ["alwaysMatch": capabilities]])
        guard let id = value["sessionId"]?.string else {
            throw WebDriverError(error: "invalid answer", message: "no sessionId in the answer", command: "POST /session")
        }
        return WebDriverSession(driver: self, id: id)
    }

    /// Sends one command and returns its `value`, or throws the error the remote end described.
    public func command(_ method: HTTPMethod, _ path: String, _ body: WebDriverJSON? = nil) async throws -> WebDriverJSON {
        let name = "\(method) \(path)"
        var request = HTTPClientRequest(url: self.url + path)
        request.method = method
        if let body {
            request.headers.add(name: "Content-Type", value: "application/json; charset=utf-8")
            request.body = .bytes(ByteBuffer(bytes: try JSONEncoder().encode(body)))
        } else if method == .POST {
            request.headers.add(name: "Content-Type", value: "application/json; charset=utf-8")
            request.body = .bytes(ByteBuffer(string: "{}"))
        }
        let response: HTTPClientResponse
        let bytes: ByteBuffer
        do {
            response = try await self.httpClient.execute(request, timeout: self.commandTimeout)
            bytes = try await response.body.collect(upTo: 64 * 1024 * 1024)
        } catch {
            throw WebDriverError(error: "transport", message: "\(error)", command: name)
        }
        let answer: WebDriverJSON
        do {
            answer = try JSONDecoder().decode(WebDriverJSON.self, from: Data(bytes.readableBytesView))
        } catch {
            throw WebDriverError(error: "invalid answer", message: "status \(response.status.code), not JSON", command: name)
        }
        let value = answer["value"] ?? .null
        guard (200..<300).contains(response.status.code) else {
            throw WebDriverError(
                error: value["error"]?.string ?? "status \(response.status.code)",
                message: value["message"]?.string.map { String($0.prefix(2000)) } ?? "",
                command: name
            )
        }
        return value
    }
}

extension WebDriverJSON {
    /// The capabilities of headless Chromium: `--headless=new`, and `--no-sandbox` (needed when
    /// the browser runs as root, as in a container), a window of 1280×800, and `arguments`.
    ///
    /// - Parameters:
    ///   - binary: the browser, such as `/usr/bin/chromium` (`nil`: chromedriver's default)
    ///   - arguments: more command-line arguments
    public static func headlessChromium(binary: String? = "/usr/bin/chromium", arguments: [String] = []) -> WebDriverJSON {
        var options: [String: WebDriverJSON] = [
            "args": .array(
                (["--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu", "--window-size=1280,800"] + arguments)
                    .map { .string($0) }
            )
        ]
        if let binary { options["binary"] = .string(binary) }
        return ["browserName": "chrome", "goog:chromeOptions": .object(options), "pageLoadStrategy": "normal"]
    }
}
