/// A session that is a browser: besides plain requests with its cookies, it takes steps in its
/// page (``UpstreamPool/perform(_:idempotent:)``).
public protocol UpstreamBrowserConnection: UpstreamSessionConnection {
    /// Takes `steps` in the browser, checking the page for an ended session after each step
    /// that may load a page, after a failed step, and at the end.
    func perform(_ steps: [BrowserStep], reader: UpstreamVerdictReader) async -> BrowserActionOutcome
}

/// How a list of steps went in one browser session.
public enum BrowserActionOutcome: Sendable {
    /// Every step was taken; what the `read` steps read.
    case completed(BrowserActionResult)
    /// The session had ended (the page said so, or the browser was lost) at `step` (0-based).
    case ended(UpstreamVerdict.ExpiryEvidence, step: Int)
    /// The page showed one of the site's "blocked" markers.
    case blocked
    /// A step could not be taken on a logged-in page: no element matched, a wait ran out…
    case failed(step: Int, reason: String)
}

/// What a list of steps read, and where the browser ended up.
public struct BrowserActionResult: Sendable, Equatable {
    public var reads: [BrowserReadValue]
    /// The page's URL after the last step.
    public var url: String
    /// Whether the steps were replayed on a fresh session after meeting an ended one.
    public var replayed: Bool

    public init(reads: [BrowserReadValue], url: String, replayed: Bool = false) {
        self.reads = reads
        self.url = url
        self.replayed = replayed
    }
}

/// What one `read` step read.
public struct BrowserReadValue: Sendable, Equatable {
    /// The step's index in the list (0-based).
    public var step: Int
    /// The step's `as`, if it had one.
    public var label: String?
    /// The value read; `nil` for an attribute the element does not have.
    public var value: String?
    /// Whether the value was cut at `browser.maxReadBytes`.
    public var truncated: Bool

    public init(step: Int, label: String?, value: String?, truncated: Bool) {
        self.step = step
        self.label = label
        self.value = value
        self.truncated = truncated
    }
}

/// A step that could not be taken, in words for the client (never a field's value).
struct BrowserStepError: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}
