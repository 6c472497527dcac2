import Foundation
import Testing

/// No request, stored row or file may reach a trap: `try!`, a force unwrap (`x!`, `as!`),
/// `fatalError`, `precondition` or `preconditionFailure`. Each one in `Sources/` crashes the
/// whole service, not one request; this test fails when one appears outside the reviewed list
/// below, and when an entry of that list no longer matches anything.
@Suite struct CrashSiteTests {
    /// Reviewed traps: each is reached by constants of the program alone, never by input.
    static let reviewed: [(file: String, code: String, reason: String)] = [
        ("TesseraHummingbird/HTTP/HTTPField+Tessera.swift", #"Self("X-Correlation-ID")!"#, "a constant, valid field name"),
        ("TesseraHummingbird/HTTP/HTTPField+Tessera.swift", #"Self("X-CSRF-Token")!"#, "a constant, valid field name"),
        ("TesseraHummingbird/HTTP/HTTPField+Tessera.swift", #"Self("X-Forwarded-For")!"#, "a constant, valid field name"),
        ("TesseraHummingbird/HTTP/HTTPField+Tessera.swift", #"Self("Last-Event-ID")!"#, "a constant, valid field name"),
        ("TesseraHummingbird/HTTP/HTTPField+Tessera.swift", #"Self("X-Accel-Buffering")!"#, "a constant, valid field name"),
        ("TesseraHummingbird/HTTP/HTTPField+Tessera.swift", #"Self("Content-Security-Policy")!"#, "a constant, valid field name"),
        ("TesseraHummingbird/HTTP/HTTPField+Tessera.swift", #"Self("X-Frame-Options")!"#, "a constant, valid field name"),
        ("TesseraHummingbird/HTTP/HTTPField+Tessera.swift", #"Self("Referrer-Policy")!"#, "a constant, valid field name"),
        ("TesseraHummingbird/HTTP/HTTPField+Tessera.swift", #"Self("traceparent")!"#, "a constant, valid field name"),
        ("TesseraHummingbird/HTTP/OriginPolicy.swift", #"HTTPField.Name("Sec-Fetch-Site")!"#, "a constant, valid field name"),
    ]

    static var sourcesDirectory: URL {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("Sources")
    }

    @Test func noTrapIsReachableOutsideTheReviewedList() throws {
        var found: [String] = []
        var used = Set<Int>()
        let files = try Self.swiftFiles()
        #expect(files.count > 50, "the scan found only \(files.count) files under \(Self.sourcesDirectory.path)")
        for file in files {
            let relative = String(file.path.dropFirst(Self.sourcesDirectory.path.count + 1))
            let text = try String(contentsOf: file, encoding: .utf8)
            let originals = text.components(separatedBy: "\n")
            let lines = Self.code(of: text)
            for (number, line) in lines.enumerated() where Self.hasTrap(line) {
                let original = originals[number].trimmingCharacters(in: .whitespaces)
                if let index = Self.reviewed.firstIndex(where: {
                    relative == $0.file && original.contains($0.code) && Self.trapFree(line, removing: $0.code)
                }) {
                    used.insert(index)
                    continue
                }
                found.append("\(relative):\(number + 1): \(original)")
            }
        }
        #expect(found.isEmpty, "traps outside the reviewed list:\n\(found.joined(separator: "\n"))")
        for (index, entry) in Self.reviewed.enumerated() where !used.contains(index) {
            Issue.record("the reviewed entry \(entry.file): \(entry.code) matches nothing; remove it")
        }
    }

    @Test func theScanFindsEveryKindOfTrap() {
        let samples = [
            "let x = try! decode()", "value!.count", "dictionary[key]!", "call()!", "x as! Int", "fatalError(\"no\")",
            "precondition(ok)", "preconditionFailure()", "var name: String!", #"log("id \(session!.id)")"#,
        ]
        for sample in samples {
            #expect(Self.hasTrap(Self.code(of: sample)[0]), "\(sample)")
        }
        let clean = [
            "if a != b {}", "guard !done else {}", "let s = \"Hello!\" // try! in a string", "x ?? y", "/* value! */ let y = 1",
            "let t = #\"a!b\"#",
        ]
        for sample in clean {
            #expect(!Self.hasTrap(Self.code(of: sample)[0]), "\(sample)")
        }
    }

    // MARK: Scanning

    static func swiftFiles() throws -> [URL] {
        let enumerator = FileManager.default.enumerator(at: Self.sourcesDirectory, includingPropertiesForKeys: nil)
        var files: [URL] = []
        while let url = enumerator?.nextObject() as? URL {
            if url.pathExtension == "swift" { files.append(url.standardizedFileURL) }
        }
        return files.sorted { $0.path < $1.path }
    }

    /// Whether a line of code (comments and string contents removed) has a trap.
    static func hasTrap(_ line: String) -> Bool {
        let patterns = [
            #"try!"#, #"\bas!"#, #"\bfatalError\s*\("#, #"\bprecondition\s*\("#, #"\bpreconditionFailure\s*\("#,
            // A postfix `!` after a name, a call, a subscript or a generic type: a force unwrap
            // (or an implicitly unwrapped optional); `!=` is a comparison.
            #"[\w\)\]>]!(?!=)"#,
        ]
        return patterns.contains { line.range(of: $0, options: .regularExpression) != nil }
    }

    /// Whether `line` has no trap once the reviewed `code` is taken out of it.
    static func trapFree(_ line: String, removing code: String) -> Bool {
        guard line.contains(Self.code(of: code)[0]) else { return false }
        return !Self.hasTrap(line.replacingOccurrences(of: Self.code(of: code)[0], with: ""))
    }

    /// The lines of `source` with comments removed and the contents of string literals blanked
    /// (their quotes kept), so that `"Hello!"` and `// try!` are not taken for code.
    static func code(of source: String) -> [String] {
        var output = ""
        let scalars = Array(source.unicodeScalars)
        var index = 0
        var blockDepth = 0
        // Inside a string literal: its closing delimiter (`"`, `"""`, with `#`s for raw strings).
        var closing: [Unicode.Scalar]?
        func starts(with text: String, at position: Int) -> Bool {
            let pattern = Array(text.unicodeScalars)
            guard position + pattern.count <= scalars.count else { return false }
            return Array(scalars[position..<position + pattern.count]) == pattern
        }
        while index < scalars.count {
            let scalar = scalars[index]
            if let delimiter = closing {
                if scalar == "\n" {
                    output.unicodeScalars.append(scalar)
                    index += 1
                } else if scalar == "\\" {
                    // An interpolation, `\(…)` (`\#(…)` in a raw string), is code: kept.
                    let hashes = delimiter.filter { $0 == "#" }.count
                    let opening = index + 1 + hashes
                    if opening < scalars.count, scalars[opening] == "(",
                        hashes == 0 || Array(scalars[(index + 1)..<opening]).allSatisfy({ $0 == "#" })
                    {
                        var depth = 0
                        var end = opening
                        repeat {
                            if scalars[end] == "(" { depth += 1 } else if scalars[end] == ")" { depth -= 1 }
                            end += 1
                        } while end < scalars.count && depth > 0
                        output += String(String.UnicodeScalarView(Array(scalars[opening..<end])))
                        index = end
                    } else {
                        index += hashes == 0 ? 2 : 1
                    }
                } else if Array(scalars[index..<min(scalars.count, index + delimiter.count)]) == delimiter {
                    output += String(String.UnicodeScalarView(delimiter))
                    index += delimiter.count
                    closing = nil
                } else {
                    index += 1
                }
            } else if blockDepth > 0 {
                if starts(with: "*/", at: index) {
                    blockDepth -= 1
                    index += 2
                } else if starts(with: "/*", at: index) {
                    blockDepth += 1
                    index += 2
                } else {
                    if scalar == "\n" { output.unicodeScalars.append(scalar) }
                    index += 1
                }
            } else if starts(with: "//", at: index) {
                while index < scalars.count && scalars[index] != "\n" { index += 1 }
            } else if starts(with: "/*", at: index) {
                blockDepth = 1
                index += 2
            } else if scalar == "#" || scalar == "\"" {
                var hashes = 0
                while index + hashes < scalars.count && scalars[index + hashes] == "#" { hashes += 1 }
                let quoteStart = index + hashes
                guard quoteStart < scalars.count, scalars[quoteStart] == "\"" else {
                    output.unicodeScalars.append(scalar)
                    index += 1
                    continue
                }
                let quotes = starts(with: "\"\"\"", at: quoteStart) ? 3 : 1
                let delimiter = Array(repeating: Unicode.Scalar("\""), count: quotes) + Array(repeating: Unicode.Scalar("#"), count: hashes)
                output += String(String.UnicodeScalarView(Array(scalars[index..<quoteStart + quotes])))
                index = quoteStart + quotes
                closing = delimiter
            } else {
                output.unicodeScalars.append(scalar)
                index += 1
            }
        }
        return output.components(separatedBy: "\n")
    }
}
