extension Duration {
    /// Parses a human duration such as `90s`, `15m`, `2h`, `1d` or `250ms`.
    ///
    /// A bare number is read as seconds. Returns `nil` for anything else, including negative
    /// values and overflow.
    public init?(parsing text: some StringProtocol) {
        let trimmed = text.trimmingWhitespace()
        guard let unitStart = trimmed.firstIndex(where: { !$0.isASCII || !$0.isNumber }) ?? Optional(trimmed.endIndex) else {
            return nil
        }
        let digits = trimmed[..<unitStart]
        let unit = trimmed[unitStart...]
        guard !digits.isEmpty, digits.count <= 12, let value = Int64(digits) else { return nil }
        switch unit {
        case "ms": self = .milliseconds(value)
        case "", "s": self = .seconds(value)
        case "m": self = .seconds(value * 60)
        case "h": self = .seconds(value * 3600)
        case "d": self = .seconds(value * 86400)
        default: return nil
        }
    }

    /// The duration written the way ``init(parsing:)`` reads it, in the largest whole unit.
    public var humanReadable: String {
        let milliseconds = self.components.seconds * 1000 + self.components.attoseconds / 1_000_000_000_000_000
        if milliseconds % 1000 != 0 { return "\(milliseconds)ms" }
        let seconds = milliseconds / 1000
        if seconds != 0 && seconds % 86400 == 0 { return "\(seconds / 86400)d" }
        if seconds != 0 && seconds % 3600 == 0 { return "\(seconds / 3600)h" }
        if seconds != 0 && seconds % 60 == 0 { return "\(seconds / 60)m" }
        return "\(seconds)s"
    }
}

extension StringProtocol {
    func trimmingWhitespace() -> SubSequence {
        var start = self.startIndex
        var end = self.endIndex
        while start < end, self[start].isWhitespace { start = self.index(after: start) }
        while end > start, self[self.index(before: end)].isWhitespace { end = self.index(before: end) }
        return self[start..<end]
    }
}
