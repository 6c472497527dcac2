import Foundation

/// Prints a line to standard output at once, unbuffered, so that a supervising process sees it.
/// What the line quotes from data (a username, a label, a site's answer) is escaped by
/// ``terminalSafe(_:)``.
func say(_ line: String) {
    try? FileHandle.standardOutput.write(contentsOf: Data((terminalSafe(line) + "\n").utf8))
}

/// Prints `tessera: <message>` to standard error, escaped like ``say(_:)``.
func complain(_ message: String) {
    try? FileHandle.standardError.write(contentsOf: Data(("tessera: " + terminalSafe(message) + "\n").utf8))
}

/// `text` with every character that could forge or hide output on a terminal written as an
/// escape: control characters (`\n`, `\r`, `\t`, ESC and the rest of C0 and C1, DEL) and the
/// characters that reorder or hide text (bidirectional overrides and isolates, zero-width
/// characters, line and paragraph separators). Whatever a row of `tessera sessions list` holds,
/// it stays one row and reads in order.
func terminalSafe(_ text: String) -> String {
    guard text.unicodeScalars.contains(where: isUnsafeOnTerminal) else { return text }
    var escaped = ""
    escaped.reserveCapacity(text.utf8.count + 8)
    for scalar in text.unicodeScalars {
        guard isUnsafeOnTerminal(scalar) else {
            escaped.unicodeScalars.append(scalar)
            continue
        }
        switch scalar {
        case "\n": escaped += "\\n"
        case "\r": escaped += "\\r"
        case "\t": escaped += "\\t"
        default: escaped += "\\u{" + String(scalar.value, radix: 16, uppercase: true) + "}"
        }
    }
    return escaped
}

func isUnsafeOnTerminal(_ scalar: Unicode.Scalar) -> Bool {
    switch scalar.value {
    case 0x00...0x1F, 0x7F...0x9F: return true  // C0, DEL, C1
    case 0x061C, 0x200E, 0x200F, 0x202A...0x202E, 0x2066...0x2069: return true  // bidirectional marks, embeddings, overrides, isolates
    case 0x200B...0x200D, 0x2028, 0x2029, 0x2060, 0xFEFF: return true  // zero-width, line and paragraph separators
    default: return false
    }
}

/// Prints rows under a header in aligned columns, every cell escaped by ``terminalSafe(_:)``.
func printTable(header: [String], rows: [[String]]) {
    let all = ([header] + rows).map { $0.map(terminalSafe) }
    let widths = header.indices.map { column in all.map { $0[column].count }.max() ?? 0 }
    for row in all {
        let cells = row.enumerated().map { index, cell in
            index == row.count - 1 ? cell : cell.padding(toLength: widths[index], withPad: " ", startingAt: 0)
        }
        try? FileHandle.standardOutput.write(contentsOf: Data((cells.joined(separator: "  ") + "\n").utf8))
    }
}
