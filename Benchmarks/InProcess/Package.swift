// swift-tools-version:6.1
import PackageDescription

// In-process benchmarks of Tessera's hot paths, with ordo-one/benchmark. A package of its own, so
// that the project's `swift test` never builds the benchmark framework.
//
//   cd Benchmarks/InProcess && swift package benchmark
let package = Package(
    name: "TesseraBenchmarks",
    platforms: [.macOS(.v15)],
    dependencies: [
        .package(name: "Tessera", path: "../.."),
        .package(url: "https://github.com/ordo-one/benchmark.git", from: "1.38.0", traits: ["MallocInterposer"]),
    ],
    targets: [
        .executableTarget(
            name: "TesseraBenchmarks",
            dependencies: [
                .product(name: "Benchmark", package: "benchmark"),
                .product(name: "Tessera", package: "Tessera"),
                .product(name: "TesseraSQLite", package: "Tessera"),
                .product(name: "TesseraHummingbird", package: "Tessera"),
            ],
            path: "Benchmarks/TesseraBenchmarks",
            plugins: [.plugin(name: "BenchmarkPlugin", package: "benchmark")]
        ),
        // The client SDK's per-request overhead against a transport that answers at once.
        .executableTarget(
            name: "TesseraClientBenchmarks",
            dependencies: [
                .product(name: "Benchmark", package: "benchmark"),
                .product(name: "TesseraClient", package: "Tessera"),
            ],
            path: "Benchmarks/TesseraClientBenchmarks",
            plugins: [.plugin(name: "BenchmarkPlugin", package: "benchmark")]
        ),
        // The upstream pool's own cost per proxied request, against a session that answers at once.
        .executableTarget(
            name: "TesseraUpstreamBenchmarks",
            dependencies: [
                .product(name: "Benchmark", package: "benchmark"),
                .product(name: "TesseraUpstream", package: "Tessera"),
                .product(name: "Tessera", package: "Tessera"),
            ],
            path: "Benchmarks/TesseraUpstreamBenchmarks",
            plugins: [.plugin(name: "BenchmarkPlugin", package: "benchmark")]
        ),
    ]
)
