// swift-tools-version: 6.0
import PackageDescription

// Dependencies point one way:
//   CQwenKernels (C intrinsics) ← QwenKernels (math) ← QwenKit (files, model, generation) ← qwenkit (CLI)
//   QwenTokenizer (text ↔ ids)                      ↗            ↖ QwenAgent (tools, SQLite, MCP) ← QwenServer (HTTP) ↙
// The server depends on the agent, not the other way round: the agent's loop knows nothing of HTTP,
// and the server puts it behind `/v1/agent` with a brain that generates on the server's own engine
// (EngineBrain), so one loaded model serves both the OpenAI routes and the agent.
// No architecture flags: the C kernels are compiled per instruction set and chosen at run time
// (CQwenKernels.h), so one binary runs on every CPU of its architecture. QWENKIT_NATIVE=1 builds for
// the build machine's CPU instead (unsafe flags: for local benchmarks only; SwiftPM refuses them in
// a package used as a versioned dependency). See docs/PERFORMANCE.md.
import Foundation
let native = ProcessInfo.processInfo.environment["QWENKIT_NATIVE"] == "1"
let nativeSwift: [SwiftSetting] = native ? [
    .unsafeFlags(["-Xcc", "-march=native", "-Xcc", "-mno-amx-tile", "-Xcc", "-mno-amx-int8", "-Xcc", "-mno-amx-bf16",
                  "-target-cpu", "native"]),
] : []
let nativeC: [CSetting] = native ? [
    .unsafeFlags(["-march=native", "-mno-amx-tile", "-mno-amx-int8", "-mno-amx-bf16"]),
] : []

let package = Package(
    name: "QwenKit",
    // Apple platforms: declared, not verified here (Linux x86-64 only); see the README.
    platforms: [.macOS(.v15), .iOS(.v18)],
    products: [
        .library(name: "QwenKit", targets: ["QwenKit"]),
        .library(name: "QwenTokenizer", targets: ["QwenTokenizer"]),
        .library(name: "QwenServer", targets: ["QwenServer"]),
        .library(name: "QwenAgent", targets: ["QwenAgent"]),
        .executable(name: "qwenkit", targets: ["qwenkit"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/hummingbird-project/hummingbird", from: "2.28.1"),
        .package(url: "https://github.com/swift-server/swift-prometheus", from: "2.4.1"),
        .package(url: "https://github.com/groue/GRDB.swift", from: "7.10.0"),
        .package(url: "https://github.com/modelcontextprotocol/swift-sdk", from: "0.12.1"),
        .package(url: "https://github.com/apple/swift-system", from: "1.8.1"),
    ],
    targets: [
        .target(name: "CQwenKernels", cSettings: nativeC),
        .target(name: "QwenKernels", dependencies: ["CQwenKernels"], swiftSettings: nativeSwift),
        .target(name: "QwenTokenizer"),
        .target(name: "QwenKit", dependencies: ["QwenKernels", "QwenTokenizer"], swiftSettings: nativeSwift),
        .target(
            name: "QwenServer",
            dependencies: ["QwenKit", "QwenTokenizer", "QwenAgent", .product(name: "Hummingbird", package: "hummingbird"),
                           .product(name: "Prometheus", package: "swift-prometheus")],
            // The chat page, compiled into the binary (a bundle beside it would be lost when it is moved).
            resources: [.embedInCode("WebApp")],
            swiftSettings: nativeSwift),
        .target(
            name: "QwenAgent",
            dependencies: [
                "QwenKit",
                .product(name: "GRDB", package: "GRDB.swift"),
                .product(name: "MCP", package: "swift-sdk"),
                .product(name: "SystemPackage", package: "swift-system"),
            ]),
        .executableTarget(
            name: "qwenkit",
            dependencies: [
                "QwenKit", "QwenServer", "QwenAgent", .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ],
            swiftSettings: nativeSwift),
        // Fuzz targets (scripts/fuzz.sh builds them with libFuzzer; a plain build replays inputs).
        .executableTarget(name: "qwenkit-fuzz", dependencies: ["QwenKit", "QwenTokenizer"]),
        .testTarget(name: "QwenKernelsTests", dependencies: ["QwenKernels"], swiftSettings: nativeSwift),
        .testTarget(name: "QwenTokenizerTests", dependencies: ["QwenTokenizer"]),
        .testTarget(name: "QwenKitTests", dependencies: ["QwenKit"], swiftSettings: nativeSwift),
        .testTarget(name: "QwenAgentTests", dependencies: ["QwenAgent"]),
        .testTarget(
            name: "QwenServerTests",
            dependencies: ["QwenServer", "QwenAgent", .product(name: "HummingbirdTesting", package: "hummingbird")],
            swiftSettings: nativeSwift),
    ]
)
