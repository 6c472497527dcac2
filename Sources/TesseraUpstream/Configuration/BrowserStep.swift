import Foundation

/// One step a browser session takes: of a login recipe (`login.steps`), or of a client's list of
/// actions (`POST /v1/upstreams/{name}/actions`). Selectors are CSS. Each step is written as an
/// object with one key:
///
/// ```yaml
/// - goto: /login                                  # a path below the base URL
/// - waitFor: { selector: "#username", timeout: 10 } # or url: "/home*", text: "Welcome"
/// - fill: { selector: "#username", field: username } # a login field (env, file or value)
/// - fill: { selector: "#q", value: "blue shoes" }    # a literal (actions may use only these)
/// - click: "#sign-in"
/// - press: { selector: "#password", key: Enter }
/// - submit: "form#login"
/// - read: { text: "#price" }                     # or attribute + selector, page, source, url
/// ```
public enum BrowserStep: Sendable, Equatable {
    /// Loads a path below the base URL and waits for the page to load.
    case goto(String)
    /// Types a value into a field (cleared first).
    case fill(selector: String, value: BrowserFillValue)
    case click(String)
    /// Sends one key (`Enter`, `Tab`, `Escape`, or a character) to the element.
    case press(selector: String, key: String)
    /// Waits until every given part of the condition holds, for at most `timeout` seconds.
    case waitFor(BrowserCondition, timeout: Double)
    /// Submits the form the selector names (or the form of the element it names).
    case submit(String)
    /// Reads something of the page; `label` names the result (`as` in the step).
    case read(BrowserRead, label: String?)

    /// The step's name, as written.
    public var name: String {
        switch self {
        case .goto: "goto"
        case .fill: "fill"
        case .click: "click"
        case .press: "press"
        case .waitFor: "waitFor"
        case .submit: "submit"
        case .read: "read"
        }
    }

    /// Whether the step may load another page (the page is checked for expiry after it).
    var mayNavigate: Bool {
        switch self {
        case .goto, .click, .press, .submit: true
        case .fill, .waitFor, .read: false
        }
    }
}

/// Where a `fill` step's value comes from.
public enum BrowserFillValue: Sendable, Equatable {
    /// A login field of the recipe or the account (`login.fields`, `accounts[].fields`).
    case field(String)
    /// A source of its own: an environment variable, a file or a literal.
    case source(UpstreamConfiguration.FieldSource)
}

/// A condition on the page: every given part must hold.
public struct BrowserCondition: Sendable, Equatable, Codable {
    /// An element matching this CSS selector exists.
    public var selector: String?
    /// The page's URL matches this pattern: `*` matches any run of characters; a pattern that
    /// starts with `/` is matched against the path and query, otherwise against the whole URL.
    public var url: String?
    /// The page's text contains this, ignoring case.
    public var text: String?

    public init(selector: String? = nil, url: String? = nil, text: String? = nil) {
        self.selector = selector
        self.url = url
        self.text = text
    }

    var isEmpty: Bool { self.selector == nil && self.url == nil && self.text == nil }

    /// Whether `url` (absolute) matches the pattern `pattern`.
    public static func matches(_ url: String, pattern: String) -> Bool {
        var subject = url
        if pattern.hasPrefix("/"), let parsed = URLComponents(string: url) {
            subject = parsed.percentEncodedPath + (parsed.percentEncodedQuery.map { "?\($0)" } ?? "")
        }
        return Self.glob(Array(pattern.utf8)[...], Array(subject.utf8)[...])
    }

    static func glob(_ pattern: ArraySlice<UInt8>, _ subject: ArraySlice<UInt8>) -> Bool {
        // Iterative wildcard matching with one backtrack point (linear in practice).
        var p = pattern.startIndex
        var s = subject.startIndex
        var star: ArraySlice<UInt8>.Index?
        var mark = s
        while s < subject.endIndex {
            if p < pattern.endIndex, pattern[p] == UInt8(ascii: "*") {
                star = p
                p += 1
                mark = s
            } else if p < pattern.endIndex, pattern[p] == subject[s] {
                p += 1
                s += 1
            } else if let star {
                p = star + 1
                mark += 1
                s = mark
            } else {
                return false
            }
        }
        while p < pattern.endIndex, pattern[p] == UInt8(ascii: "*") { p += 1 }
        return p == pattern.endIndex
    }
}

/// A condition and how long to wait for it (`timeout`, seconds, default 5).
public struct BrowserWait: Sendable, Equatable, Codable {
    public var selector: String?
    public var url: String?
    public var text: String?
    public var timeout: Double

    public init(selector: String? = nil, url: String? = nil, text: String? = nil, timeout: Double = 5) {
        self.selector = selector
        self.url = url
        self.text = text
        self.timeout = timeout
    }

    enum CodingKeys: String, CodingKey { case selector, url, text, timeout }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        self.selector = try container.decodeIfPresent(String.self, forKey: .selector)
        self.url = try container.decodeIfPresent(String.self, forKey: .url)
        self.text = try container.decodeIfPresent(String.self, forKey: .text)
        self.timeout = try container.decodeIfPresent(Double.self, forKey: .timeout) ?? 5
    }

    public var condition: BrowserCondition { BrowserCondition(selector: self.selector, url: self.url, text: self.text) }
}

/// What a `read` step reads.
public enum BrowserRead: Sendable, Equatable {
    /// The page's visible text (`document.body.innerText`).
    case page
    /// The page's source (its DOM, serialized).
    case source
    /// The page's URL.
    case url
    /// The rendered text of the first element matching the selector.
    case text(selector: String)
    /// An attribute of the first element matching the selector (`nil` when it has none).
    case attribute(selector: String, name: String)
}
