import Foundation
import NIOCore

/// What an upstream answer says about the session that received it.
public enum UpstreamVerdict: Sendable, Equatable {
    /// The session is logged in; the answer is the site's real answer.
    case ok
    /// The session has ended; the answer is the site's "log in again" page.
    case expired(ExpiryEvidence)
    /// The site blocked the session (a configured lock-out or challenge marker).
    case blocked
    /// `429`: the site wants fewer requests. Back off; the session itself is fine, so the pool
    /// does not log in again because of it.
    case rateLimited(retryAfter: Double?)
    /// `502`, `503`, `504`: the site failed for now; the session is not to blame.
    case transient

    /// How the answer showed that the session ended.
    public enum ExpiryEvidence: String, Sendable, Equatable {
        case status
        case phrase
        case loginRedirect = "login_redirect"
        /// The browser holding the session crashed, hung or closed, and was killed.
        case browserEnded = "browser_ended"
        /// The page did not show what it shows when logged in (`keepAlive.waitFor`).
        case loggedInMarkerMissing = "logged_in_marker_missing"
    }
}

/// Reads verdicts off answers with one upstream's markers. Phrases are matched
/// case-insensitively in text bodies (`text/*`, JSON, XML, or no content type).
public struct UpstreamVerdictReader: Sendable {
    let expiry: UpstreamConfiguration.ExpiryMarkers
    let blocked: UpstreamConfiguration.BlockedMarkers
    let loginPaths: Set<String>
    let expiryPhrases: PhraseSet
    let blockedPhrases: PhraseSet

    public init(configuration: UpstreamConfiguration) {
        self.expiry = configuration.expiry
        self.blocked = configuration.blocked
        var paths = Set(configuration.expiry.redirectPaths.map(Self.normalized))
        if configuration.expiry.loginRedirect { paths.insert(Self.normalized(configuration.login.path)) }
        self.loginPaths = paths
        self.expiryPhrases = PhraseSet(configuration.expiry.phrases)
        self.blockedPhrases = PhraseSet(configuration.blocked.phrases)
    }

    /// The verdict on `response`.
    public func verdict(on response: UpstreamResponse) -> UpstreamVerdict {
        let status = response.status
        if self.blocked.statuses.contains(status) { return .blocked }
        if self.expiry.statuses.contains(status) { return .expired(.status) }
        if status == 429 { return .rateLimited(retryAfter: response.header("retry-after").flatMap(Double.init)) }
        if [502, 503, 504].contains(status) { return .transient }
        if (300...399).contains(status), let location = response.header("location"), self.isLoginLocation(location) {
            return .expired(.loginRedirect)
        }
        if self.isText(response) {
            if self.blockedPhrases.isFound(in: response.body) { return .blocked }
            if self.expiryPhrases.isFound(in: response.body) { return .expired(.phrase) }
        }
        return .ok
    }

    /// The verdict on a page a browser shows: its status where the browser knows it, its URL
    /// (the login page's marks an ended session, as a redirect to it does), and its source.
    public func verdict(onPage page: BrowserPage) -> UpstreamVerdict {
        if let status = page.status {
            if self.blocked.statuses.contains(status) { return .blocked }
            if self.expiry.statuses.contains(status) { return .expired(.status) }
            if status == 429 { return .rateLimited(retryAfter: nil) }
            if [502, 503, 504].contains(status) { return .transient }
        }
        if self.isLoginLocation(page.url) { return .expired(.loginRedirect) }
        let source = ByteBuffer(string: page.source)
        if self.blockedPhrases.isFound(in: source) { return .blocked }
        if self.expiryPhrases.isFound(in: source) { return .expired(.phrase) }
        return .ok
    }

    /// How much of `response`'s body (its head only: status and fields) the verdict reads:
    /// up to `limit` bytes of a text answer when phrases are configured, none otherwise (a
    /// binary answer, a redirect, a status that decides alone, or no phrases).
    public func bytesToScan(of response: UpstreamResponse, upTo limit: Int) -> Int {
        guard !(self.expiryPhrases.isEmpty && self.blockedPhrases.isEmpty), self.isText(response) else { return 0 }
        let status = response.status
        if self.blocked.statuses.contains(status) || self.expiry.statuses.contains(status) || status == 429 || [502, 503, 504].contains(status) {
            return 0
        }
        return limit
    }

    /// Whether the body contains one of the expiry phrases (a login answer that says "not
    /// logged in" is a failed login whatever its status).
    func bodyHasExpiryPhrase(_ response: UpstreamResponse) -> Bool {
        guard self.isText(response) else { return false }
        return self.expiryPhrases.isFound(in: response.body)
    }

    func isLoginLocation(_ location: String) -> Bool {
        // The Location may be absolute or relative; only its path counts.
        let path = URL(string: location, relativeTo: URL(string: "http://upstream.invalid/"))?.path ?? location
        return self.loginPaths.contains(Self.normalized(path))
    }

    func isText(_ response: UpstreamResponse) -> Bool {
        guard let type = response.header("content-type") else { return true }
        return Self.isTextType(type)
    }

    static let textTypeMarks = PhraseSet(["json", "xml", "javascript"])

    /// Whether a content type is text: `text/…`, or one that names JSON, XML or JavaScript (ASCII
    /// case ignored; read byte by byte, with no Foundation string search).
    static func isTextType(_ type: String) -> Bool {
        var type = type
        return type.withUTF8 { bytes in
            let text = "text/".utf8
            let isTextSlash = bytes.count >= text.count && zip(bytes, text).allSatisfy { PhraseSet.lowercased($0) == $1 }
            return isTextSlash || Self.textTypeMarks.isFound(in: UnsafeRawBufferPointer(bytes))
        }
    }

    static func normalized(_ path: String) -> String {
        var path = path.split(separator: "?", maxSplits: 1).first.map(String.init) ?? path
        while path.count > 1 && path.hasSuffix("/") { path.removeLast() }
        return path.lowercased()
    }
}

/// What the expiry check reads of a page in a browser.
public struct BrowserPage: Sendable, Equatable {
    /// The page's URL.
    public var url: String
    /// The status of the page's document, when the browser reports it.
    public var status: Int?
    /// The page's source (its DOM, serialized), up to the configured size.
    public var source: String

    public init(url: String, status: Int?, source: String) {
        self.url = url
        self.status = status
        self.source = source
    }
}

/// Phrases looked for in a body, ignoring the case of ASCII letters, in one pass over the bytes
/// in place (no copy of the body): a byte that starts no phrase costs a table lookup.
struct PhraseSet: Sendable {
    /// Lowercased phrases, by their first byte.
    let byFirstByte: [UInt8: [[UInt8]]]
    /// Whether a (lowercased) byte starts a phrase.
    let starts: [Bool]

    init(_ phrases: [String]) {
        let lowered = phrases.map { Array($0.lowercased().utf8) }.filter { !$0.isEmpty }
        self.byFirstByte = Dictionary(grouping: lowered, by: { $0[0] })
        var starts = [Bool](repeating: false, count: 256)
        for byte in self.byFirstByte.keys { starts[Int(byte)] = true }
        self.starts = starts
    }

    var isEmpty: Bool { self.byFirstByte.isEmpty }

    func isFound(in body: ByteBuffer) -> Bool {
        guard !self.isEmpty else { return false }
        return body.withUnsafeReadableBytes { self.isFound(in: $0) }
    }

    func isFound(in raw: UnsafeRawBufferPointer) -> Bool {
        guard !self.isEmpty, let base = raw.baseAddress else { return false }
        let bytes = base.assumingMemoryBound(to: UInt8.self)
        let count = raw.count
        return self.starts.withUnsafeBufferPointer { starts in
            var index = 0
            while index < count {
                let byte = Self.lowercased(bytes[index])
                if starts[Int(byte)] {
                    for phrase in self.byFirstByte[byte] ?? [] where phrase.count <= count - index {
                        var matched = 1
                        while matched < phrase.count && Self.lowercased(bytes[index + matched]) == phrase[matched] { matched += 1 }
                        if matched == phrase.count { return true }
                    }
                }
                index += 1
            }
            return false
        }
    }

    @inline(__always)
    static func lowercased(_ byte: UInt8) -> UInt8 {
        (byte &- 65) < 26 ? byte | 0x20 : byte
    }
}
