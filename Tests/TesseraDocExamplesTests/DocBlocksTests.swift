import Foundation
import TesseraTestSupport
import Testing

/// Every Swift block of README.md and docs/*.md is an example this target compiles and runs, or
/// a fragment of a manifest that SwiftPM loads.
@Suite struct DocBlocksTests {
    @Test func everySwiftBlockOfTheDocsIsAnExampleThatCompilesHere() throws {
        let regions = try DocBlocks.exampleRegions()
        let blocks = try DocBlocks.markdownFiles().flatMap { try DocBlocks.blocks(in: $0) }
        #expect(blocks.count(where: { !$0.isManifest }) >= 6)
        for block in blocks where !block.isManifest {
            #expect(regions.contains(block.text), "\(block) is not an example of Tests/TesseraDocExamplesTests:\n\(block.text)")
        }
        // And no example is left that the docs no longer show.
        let shown = Set(blocks.map(\.text))
        for region in regions {
            #expect(shown.contains(region), "an example no doc shows:\n\(region)")
        }
    }

    /// The dependency lines of the docs, each `.package` form with the `.product` lines, in the
    /// manifest of a package that depends on this one: SwiftPM loads it. The path form points at
    /// a folder not named after the package, as a checkout often is.
    @Test(.heavy) func theDocsDependencyLinesLoadInAManifest() throws {
        let manifests = try DocBlocks.markdownFiles().flatMap { try DocBlocks.blocks(in: $0) }.filter(\.isManifest)
        #expect(!manifests.isEmpty)
        let directory = TemporaryDirectory()
        let checkout = directory.url.appendingPathComponent("checkout")
        try FileManager.default.createSymbolicLink(at: checkout, withDestinationURL: DocBlocks.packageRoot)
        for block in manifests {
            let lines = block.text.components(separatedBy: "\n").map { $0.trimmingCharacters(in: .whitespaces) }
            let packages = lines.filter { $0.hasPrefix(".package(") }
            let products = lines.filter { $0.hasPrefix(".product(") }
            #expect(packages.count >= 2, "\(block): the URL form and the path form")
            #expect(!products.isEmpty, "\(block)")
            for package in packages {
                let dependency = package.replacingOccurrences(of: #"path: "[^"]*""#, with: "path: \"\(checkout.path)\"", options: .regularExpression)
                let result = try Self.loadManifest(dependency: dependency, products: products, in: directory.url)
                #expect(result.status == 0, "\(block): \(package)\n\(result.output)")
            }
        }
        // The check can fail: a path dependency without its name is what SwiftPM refuses.
        let unnamed = try Self.loadManifest(
            dependency: ".package(path: \"\(checkout.path)\"),",
            products: [".product(name: \"TesseraClient\", package: \"Tessera\"),"],
            in: directory.url
        )
        #expect(unnamed.status != 0)
        #expect(unnamed.output.contains("unknown package 'Tessera'"), "\(unnamed.output)")
    }

    /// Writes a package `App` with `dependency` and `products` and has SwiftPM load its manifest.
    static func loadManifest(dependency: String, products: [String], in directory: URL) throws -> (status: Int32, output: String) {
        let package = directory.appendingPathComponent("App-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: package.appendingPathComponent("Sources/App"), withIntermediateDirectories: true)
        let manifest = """
            // swift-tools-version:6.1
            import PackageDescription

            let package = Package(
                name: "App",
                platforms: [.macOS(.v15)],
                dependencies: [
                    \(dependency)
                ],
                targets: [
                    .executableTarget(name: "App", dependencies: [
                        \(products.joined(separator: "\n"))
                    ])
                ]
            )
            """
        try manifest.write(to: package.appendingPathComponent("Package.swift"), atomically: true, encoding: .utf8)
        try "print(1)\n".write(to: package.appendingPathComponent("Sources/App/main.swift"), atomically: true, encoding: .utf8)
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["swift", "package", "--package-path", package.path, "dump-package"]
        let output = Pipe()
        process.standardOutput = output
        process.standardError = output
        try process.run()
        let data = output.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return (process.terminationStatus, String(decoding: data, as: UTF8.self))
    }
}
