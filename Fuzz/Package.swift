// swift-tools-version:6.1
// libFuzzer targets for Tessera's parsers. Built and run by `scripts/fuzz.sh`; see README.md.
//
// Each target compiles the production files it tests itself, through relative symlinks into
// `../Sources`, so that a fuzzer runs exactly the code the service runs without building the
// main package's dependencies (NIO, Hummingbird, swift-crypto…) with sanitizers.
import PackageDescription

// The main package's settings, so that the production files compile as they do there.
let swiftSettings: [SwiftSetting] = [
    .enableUpcomingFeature("ExistentialAny"),
    .enableUpcomingFeature("MemberImportVisibility"),
    .enableUpcomingFeature("InternalImportsByDefault"),
]

func fuzzer(_ name: String, dependencies: [Target.Dependency] = []) -> Target {
    .executableTarget(name: name, dependencies: ["FuzzSupport"] + dependencies, swiftSettings: swiftSettings)
}

let package = Package(
    name: "TesseraFuzz",
    platforms: [.macOS(.v15)],
    dependencies: [
        .package(url: "https://github.com/jpsim/Yams.git", from: "6.0.0")
    ],
    targets: [
        .target(name: "FuzzSupport", swiftSettings: swiftSettings),
        // JSONParser, JSONLimits, JSONWriter, JSONValue (Sources/Tessera/JSON).
        fuzzer("FuzzJSON"),
        // TokenSyntax, Base64URL (Sources/Tessera/Security).
        fuzzer("FuzzTokens"),
        // CredentialSyntax (Sources/TesseraHummingbird/HTTP), one reader each.
        fuzzer("FuzzCookie"),
        fuzzer("FuzzBearer"),
        fuzzer("FuzzIfMatch"),
        // UpstreamPath (Sources/TesseraUpstream/HTTP).
        fuzzer("FuzzUpstreamPath"),
        // UpstreamsFile, UpstreamConfiguration (Sources/TesseraUpstream/Configuration).
        fuzzer("FuzzUpstreamsFile", dependencies: [.product(name: "Yams", package: "Yams")]),
    ]
)
