// swift-tools-version:6.1
import PackageDescription

let swiftSettings: [SwiftSetting] = [
    .enableUpcomingFeature("ExistentialAny"),
    .enableUpcomingFeature("MemberImportVisibility"),
    .enableUpcomingFeature("InternalImportsByDefault"),
]

let package = Package(
    name: "Tessera",
    platforms: [.macOS(.v15)],
    products: [
        .library(name: "Tessera", targets: ["Tessera"]),
        .library(name: "TesseraSQLite", targets: ["TesseraSQLite"]),
        .library(name: "TesseraPostgres", targets: ["TesseraPostgres"]),
        .library(name: "TesseraHummingbird", targets: ["TesseraHummingbird"]),
        .library(name: "TesseraTokens", targets: ["TesseraTokens"]),
        .library(name: "TesseraClient", targets: ["TesseraClient"]),
        .library(name: "TesseraUpstream", targets: ["TesseraUpstream"]),
        .library(name: "TesseraWebDriver", targets: ["TesseraWebDriver"]),
        .library(name: "TesseraEvents", targets: ["TesseraEvents"]),
        .executable(name: "tessera", targets: ["TesseraCommand"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.5.0"),
        .package(url: "https://github.com/apple/swift-crypto.git", from: "4.0.0"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.6.0"),
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.0"),
        .package(url: "https://github.com/apple/swift-nio-extras.git", from: "1.35.0"),
        .package(url: "https://github.com/apple/swift-nio-ssl.git", from: "2.30.0"),
        .package(url: "https://github.com/apple/swift-certificates.git", from: "1.0.0"),
        .package(url: "https://github.com/apple/swift-asn1.git", from: "1.0.0"),
        .package(url: "https://github.com/apple/swift-http-types.git", from: "1.0.0"),
        .package(url: "https://github.com/groue/GRDB.swift.git", from: "7.10.0"),
        .package(url: "https://github.com/hummingbird-project/hummingbird.git", from: "2.28.0"),
        .package(url: "https://github.com/vapor/postgres-nio.git", from: "1.33.0"),
        .package(url: "https://github.com/hummingbird-project/hummingbird-auth.git", from: "2.5.0"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle.git", from: "2.6.0"),
        .package(url: "https://github.com/swift-server/async-http-client.git", from: "1.30.0"),
        .package(url: "https://github.com/vapor/jwt-kit.git", from: "5.7.0"),
        .package(url: "https://github.com/jpsim/Yams.git", from: "6.0.0"),
        .package(url: "https://github.com/apple/swift-metrics.git", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus.git", from: "2.4.0"),
    ],
    targets: [
        // The core: model, policy, tokens, errors, clock. No I/O.
        .target(
            name: "Tessera",
            dependencies: [
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "CoreMetrics", package: "swift-metrics"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: swiftSettings
        ),
        // The embedded store: SQLite through GRDB.
        .target(
            name: "TesseraSQLite",
            dependencies: [
                .byName(name: "Tessera"),
                .product(name: "GRDB", package: "GRDB.swift"),
            ],
            swiftSettings: swiftSettings
        ),
        // The shared store for several nodes: PostgreSQL through postgres-nio.
        .target(
            name: "TesseraPostgres",
            dependencies: [
                .byName(name: "Tessera"),
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: swiftSettings
        ),
        // Token mode: signed access tokens (JWT), signing keys, refresh-token rotation.
        .target(
            name: "TesseraTokens",
            dependencies: [
                .byName(name: "Tessera"),
                .product(name: "JWTKit", package: "jwt-kit"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: swiftSettings
        ),
        // The client SDK for Swift apps: owns the credentials, refreshes them without storms or loops.
        .target(
            name: "TesseraClient",
            dependencies: [
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: swiftSettings
        ),
        // The upstream session pool: logged-in sessions with other sites, kept healthy.
        .target(
            name: "TesseraUpstream",
            dependencies: [
                .byName(name: "Tessera"),
                .byName(name: "TesseraWebDriver"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Yams", package: "Yams"),
                .product(name: "CoreMetrics", package: "swift-metrics"),
            ],
            swiftSettings: swiftSettings
        ),
        // Delivery of session events: signed webhooks from the store's outbox.
        .target(
            name: "TesseraEvents",
            dependencies: [
                .byName(name: "Tessera"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "CoreMetrics", package: "swift-metrics"),
            ],
            swiftSettings: swiftSettings
        ),
        // The HTTP service and the middleware any Hummingbird app can mount.
        .target(
            name: "TesseraHummingbird",
            dependencies: [
                .byName(name: "Tessera"),
                .byName(name: "TesseraTokens"),
                .byName(name: "TesseraUpstream"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdCore", package: "hummingbird"),
                .product(name: "HummingbirdBcrypt", package: "hummingbird-auth"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTPTypes", package: "swift-nio-extras"),
                .product(name: "NIOHTTPTypesHTTP1", package: "swift-nio-extras"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "CoreMetrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            resources: [
                .copy("openapi.yaml"), .embedInCode("SDK/tessera.js"), .embedInCode("SDK/tessera.d.ts"),
                .embedInCode("Admin/Console/admin.html"), .embedInCode("Admin/Console/console.js"),
                .embedInCode("Admin/Console/console.css"),
            ],
            swiftSettings: swiftSettings
        ),
        // The `tessera` executable: parses arguments and wires the parts together.
        .executableTarget(
            name: "TesseraCommand",
            dependencies: [
                .byName(name: "Tessera"),
                .byName(name: "TesseraSQLite"),
                .byName(name: "TesseraPostgres"),
                .byName(name: "TesseraHummingbird"),
                .byName(name: "TesseraTokens"),
                .byName(name: "TesseraUpstream"),
                .byName(name: "TesseraEvents"),
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "CoreMetrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: swiftSettings
        ),
        // A small application that authenticates its routes with Tessera's middleware.
        .executableTarget(
            name: "ProtectedApp",
            dependencies: [
                .byName(name: "Tessera"),
                .byName(name: "TesseraSQLite"),
                .byName(name: "TesseraHummingbird"),
                .product(name: "Hummingbird", package: "hummingbird"),
            ],
            path: "Examples/ProtectedApp",
            swiftSettings: swiftSettings
        ),
        // The baseline for scripts/bench-http.sh: a bare Hummingbird route.
        .executableTarget(
            name: "BareRoute",
            dependencies: [
                .product(name: "Hummingbird", package: "hummingbird")
            ],
            path: "Benchmarks/BareRoute",
            swiftSettings: swiftSettings
        ),
        // A client of the W3C WebDriver protocol (chromedriver): the browser tests drive
        // headless Chromium with it, and browser-driven upstream sessions will.
        .target(
            name: "TesseraWebDriver",
            dependencies: [
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
            ],
            swiftSettings: swiftSettings
        ),
        // Helpers shared by the test targets.
        .target(
            name: "TesseraTestSupport",
            dependencies: [
                .byName(name: "Tessera"),
                .byName(name: "TesseraSQLite"),
                .byName(name: "TesseraPostgres"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdTesting", package: "hummingbird"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
            ],
            path: "Tests/TesseraTestSupport",
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "TesseraEventsTests",
            dependencies: [
                .byName(name: "Tessera"),
                .byName(name: "TesseraEvents"),
                .byName(name: "TesseraSQLite"),
                .byName(name: "TesseraPostgres"),
                .byName(name: "TesseraTestSupport"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "TesseraTests",
            dependencies: [
                .byName(name: "Tessera"),
                .byName(name: "TesseraTestSupport"),
            ],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "TesseraStoreConformanceTests",
            dependencies: [
                .byName(name: "Tessera"),
                .byName(name: "TesseraSQLite"),
                .byName(name: "TesseraPostgres"),
                .byName(name: "TesseraTestSupport"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycleTestKit", package: "swift-service-lifecycle"),
            ],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "TesseraSQLiteTests",
            dependencies: [
                .byName(name: "Tessera"),
                .byName(name: "TesseraSQLite"),
                .byName(name: "TesseraTestSupport"),
                .product(name: "GRDB", package: "GRDB.swift"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycleTestKit", package: "swift-service-lifecycle"),
            ],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "TesseraHummingbirdTests",
            dependencies: [
                .byName(name: "Tessera"),
                .byName(name: "TesseraSQLite"),
                .byName(name: "TesseraHummingbird"),
                .byName(name: "TesseraTokens"),
                .byName(name: "TesseraTestSupport"),
                .byName(name: "ProtectedApp"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdTesting", package: "hummingbird"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "InMemoryLogging", package: "swift-log"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Yams", package: "Yams"),
                .product(name: "GRDB", package: "GRDB.swift"),
                .product(name: "NIOEmbedded", package: "swift-nio"),
                .product(name: "NIOHTTPTypes", package: "swift-nio-extras"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "CoreMetrics", package: "swift-metrics"),
                .product(name: "MetricsTestKit", package: "swift-metrics"),
            ],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "TesseraTokensTests",
            dependencies: [
                .byName(name: "Tessera"),
                .byName(name: "TesseraTokens"),
                .byName(name: "TesseraSQLite"),
                .byName(name: "TesseraHummingbird"),
                .byName(name: "TesseraTestSupport"),
                .product(name: "JWTKit", package: "jwt-kit"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdTesting", package: "hummingbird"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "NIOCore", package: "swift-nio"),
            ],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "TesseraClientTests",
            dependencies: [
                .byName(name: "TesseraClient"),
                .byName(name: "Tessera"),
                .byName(name: "TesseraTokens"),
                .byName(name: "TesseraSQLite"),
                .byName(name: "TesseraHummingbird"),
                .byName(name: "TesseraTestSupport"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdTesting", package: "hummingbird"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: swiftSettings
        ),
        // The Swift examples of README.md and docs/, compiled and run against a real service;
        // a test checks that every Swift block of the docs is one of them.
        .testTarget(
            name: "TesseraDocExamplesTests",
            dependencies: [
                .byName(name: "TesseraClient"),
                .byName(name: "Tessera"),
                .byName(name: "TesseraSQLite"),
                .byName(name: "TesseraHummingbird"),
                .byName(name: "TesseraTestSupport"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdTesting", package: "hummingbird"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
            ],
            swiftSettings: swiftSettings
        ),
        // tessera.js in headless Chromium against a real `tessera serve`.
        .testTarget(
            name: "TesseraBrowserTests",
            dependencies: [
                .byName(name: "TesseraWebDriver"),
                .byName(name: "TesseraTestSupport"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
            ],
            exclude: ["Pages"],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "TesseraUpstreamTests",
            dependencies: [
                .byName(name: "TesseraUpstream"),
                .byName(name: "TesseraWebDriver"),
                .byName(name: "Tessera"),
                .byName(name: "TesseraSQLite"),
                .byName(name: "TesseraHummingbird"),
                .byName(name: "TesseraTestSupport"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdTesting", package: "hummingbird"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "NIOEmbedded", package: "swift-nio"),
                .product(name: "X509", package: "swift-certificates"),
                .product(name: "SwiftASN1", package: "swift-asn1"),
                .product(name: "CoreMetrics", package: "swift-metrics"),
                .product(name: "MetricsTestKit", package: "swift-metrics"),
                .product(name: "NIOHTTPTypes", package: "swift-nio-extras"),
            ],
            swiftSettings: swiftSettings
        ),
    ]
)
