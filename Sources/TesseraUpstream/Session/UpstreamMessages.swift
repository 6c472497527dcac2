import Foundation
public import NIOCore

/// A request the pool sends to an upstream site through one of its sessions.
public struct UpstreamRequest: Sendable {
    /// The method, uppercased (`GET`, `POST`, …).
    public var method: String
    /// The path and query, relative to the upstream's base URL; starts with `/`.
    public var pathAndQuery: String
    /// Header fields to send. The session adds its own `Cookie` header.
    public var headers: [(name: String, value: String)]
    public var body: ByteBuffer?

    public init(method: String, pathAndQuery: String, headers: [(name: String, value: String)] = [], body: ByteBuffer? = nil) {
        self.method = method.uppercased()
        self.pathAndQuery = pathAndQuery
        self.headers = headers
        self.body = body
    }

    /// Whether the method is idempotent (RFC 9110 §9.2.2): sending it twice has the effect of
    /// sending it once.
    public var isIdempotent: Bool {
        ["GET", "HEAD", "OPTIONS", "TRACE", "PUT", "DELETE"].contains(self.method)
    }
}

/// An upstream site's answer, read whole (up to the pool's body limit).
public struct UpstreamResponse: Sendable {
    public var status: Int
    public var headers: [(name: String, value: String)]
    public var body: ByteBuffer

    public init(status: Int, headers: [(name: String, value: String)] = [], body: ByteBuffer = ByteBuffer()) {
        self.status = status
        self.headers = headers
        self.body = body
    }

    /// The first value of a header field, by case-insensitive name.
    public func header(_ name: String) -> String? {
        self.headers.first { $0.name.caseInsensitiveCompare(name) == .orderedSame }?.value
    }

    /// Every value of a header field, by case-insensitive name.
    public func headers(_ name: String) -> [String] {
        self.headers.filter { $0.name.caseInsensitiveCompare(name) == .orderedSame }.map(\.value)
    }
}
