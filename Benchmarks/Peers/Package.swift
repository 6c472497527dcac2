// swift-tools-version:6.0
// Tessera's peers, each answering a who-am-I by session cookie as `GET /v1/session` does, for
// scripts/bench-peers.sh. A package of its own, so that `swift test` never builds Vapor or Fluent.
import PackageDescription

let package = Package(
    name: "Peers",
    platforms: [.macOS(.v14)],
    dependencies: [
        .package(url: "https://github.com/hummingbird-project/hummingbird.git", from: "2.28.0"),
        .package(url: "https://github.com/hummingbird-project/hummingbird-auth.git", from: "2.5.0"),
        .package(url: "https://github.com/vapor/vapor.git", from: "4.122.0"),
        .package(url: "https://github.com/vapor/fluent.git", from: "4.13.0"),
        .package(url: "https://github.com/vapor/fluent-sqlite-driver.git", from: "4.9.0"),
    ],
    targets: [
        // hummingbird-auth's SessionMiddleware on its memory driver.
        .executableTarget(
            name: "PeerHummingbirdAuth",
            dependencies: [
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdAuth", package: "hummingbird-auth"),
            ]
        ),
        // Vapor's SessionsMiddleware on its memory driver, or on Fluent with SQLite (DRIVER=fluent).
        .executableTarget(
            name: "PeerVapor",
            dependencies: [
                .product(name: "Vapor", package: "vapor"),
                .product(name: "Fluent", package: "fluent"),
                .product(name: "FluentSQLiteDriver", package: "fluent-sqlite-driver"),
            ],
            swiftSettings: [.swiftLanguageMode(.v5)]
        ),
    ]
)
