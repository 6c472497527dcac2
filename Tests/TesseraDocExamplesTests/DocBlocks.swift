import Foundation

/// The Swift blocks of the project's Markdown files and the example regions of this target's
/// sources, for checking that every block the docs show is code that compiles and runs here.
enum DocBlocks {
    /// The package's root folder.
    static let packageRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    /// One fenced Swift block of a Markdown file.
    struct Block: CustomStringConvertible {
        var file: String
        var line: Int
        var text: String

        /// A fragment of a `Package.swift`: its dependency lines cannot run in a test, and are
        /// checked by loading a manifest made of them instead.
        var isManifest: Bool { self.text.contains(".package(") || self.text.contains(".product(") }

        var description: String { "\(self.file):\(self.line)" }
    }

    /// The Markdown files whose Swift blocks must be examples: README.md and docs/*.md.
    static func markdownFiles() throws -> [URL] {
        let docs = self.packageRoot.appendingPathComponent("docs")
        let pages = try FileManager.default.contentsOfDirectory(at: docs, includingPropertiesForKeys: nil)
            .filter { $0.pathExtension == "md" }
            .sorted { $0.lastPathComponent < $1.lastPathComponent }
        return [self.packageRoot.appendingPathComponent("README.md")] + pages
    }

    /// Every ```swift block of `file`.
    static func blocks(in file: URL) throws -> [Block] {
        let name = file.path.replacingOccurrences(of: self.packageRoot.path + "/", with: "")
        var blocks: [Block] = []
        var current: (line: Int, lines: [String])?
        for (number, line) in try String(contentsOf: file, encoding: .utf8).components(separatedBy: "\n").enumerated() {
            let trimmed = line.trimmingCharacters(in: .whitespaces)
            if let open = current {
                if trimmed == "```" {
                    blocks.append(Block(file: name, line: open.line, text: normalized(open.lines)))
                    current = nil
                } else {
                    current?.lines.append(line)
                }
            } else if trimmed == "```swift" {
                current = (number + 1, [])
            }
        }
        return blocks
    }

    /// The regions between `// docs:begin` and `// docs:end` in this target's Swift sources.
    static func exampleRegions() throws -> [String] {
        let folder = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        var regions: [String] = []
        for file in try FileManager.default.contentsOfDirectory(at: folder, includingPropertiesForKeys: nil) where file.pathExtension == "swift" {
            var current: [String]?
            for line in try String(contentsOf: file, encoding: .utf8).components(separatedBy: "\n") {
                let trimmed = line.trimmingCharacters(in: .whitespaces)
                if trimmed == "// docs:begin" {
                    current = []
                } else if trimmed == "// docs:end", let lines = current {
                    regions.append(normalized(lines))
                    current = nil
                } else {
                    current?.append(line)
                }
            }
        }
        return regions
    }

    /// The lines without their common indentation and without blank lines at either end.
    static func normalized(_ lines: [String]) -> String {
        var lines = lines.map { line in line.replacingOccurrences(of: "\t", with: "    ") }
        while lines.first?.trimmingCharacters(in: .whitespaces).isEmpty == true { lines.removeFirst() }
        while lines.last?.trimmingCharacters(in: .whitespaces).isEmpty == true { lines.removeLast() }
        let indent =
            lines.filter { !$0.trimmingCharacters(in: .whitespaces).isEmpty }
            .map { $0.prefix { $0 == " " }.count }
            .min() ?? 0
        return lines.map { String($0.dropFirst(min(indent, $0.prefix { $0 == " " }.count))) }
            .map { $0.replacingOccurrences(of: "\\s+$", with: "", options: .regularExpression) }
            .joined(separator: "\n")
    }
}
