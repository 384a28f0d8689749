// swift-tools-version: 6.0
import PackageDescription

// Dependencies point one way:
//   CQwenKernels (C intrinsics) ← QwenKernels (math) ← QwenKit (files, model, generation) ← qwenkit (CLI)
//   QwenTokenizer (text ↔ ids)                      ↗            ↖ QwenServer (HTTP) ↙
// Release builds target the machine they are built on (AVX-512/FMA); see docs/PERFORMANCE.md.
let nativeSwift: [SwiftSetting] = [
    .unsafeFlags(["-Xcc", "-march=native", "-Xcc", "-mno-amx-tile", "-Xcc", "-mno-amx-int8", "-Xcc", "-mno-amx-bf16",
                  "-target-cpu", "native"]),
]
let nativeC: [CSetting] = [
    .unsafeFlags(["-march=native", "-mno-amx-tile", "-mno-amx-int8", "-mno-amx-bf16"]),
]

let package = Package(
    name: "QwenKit",
    products: [
        .library(name: "QwenKit", targets: ["QwenKit"]),
        .executable(name: "qwenkit", targets: ["qwenkit"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/hummingbird-project/hummingbird", from: "2.28.1"),
        .package(url: "https://github.com/swift-server/swift-prometheus", from: "2.4.1"),
    ],
    targets: [
        .target(name: "CQwenKernels", cSettings: nativeC),
        .target(name: "QwenKernels", dependencies: ["CQwenKernels"], swiftSettings: nativeSwift),
        .target(name: "QwenTokenizer"),
        .target(name: "QwenKit", dependencies: ["QwenKernels", "QwenTokenizer"], swiftSettings: nativeSwift),
        .target(
            name: "QwenServer",
            dependencies: ["QwenKit", "QwenTokenizer", .product(name: "Hummingbird", package: "hummingbird"),
                           .product(name: "Prometheus", package: "swift-prometheus")],
            swiftSettings: nativeSwift),
        .executableTarget(
            name: "qwenkit",
            dependencies: ["QwenKit", "QwenServer", .product(name: "ArgumentParser", package: "swift-argument-parser")],
            swiftSettings: nativeSwift),
        .testTarget(name: "QwenKernelsTests", dependencies: ["QwenKernels"], swiftSettings: nativeSwift),
        .testTarget(name: "QwenTokenizerTests", dependencies: ["QwenTokenizer"]),
        .testTarget(name: "QwenKitTests", dependencies: ["QwenKit"], swiftSettings: nativeSwift),
        .testTarget(
            name: "QwenServerTests",
            dependencies: ["QwenServer", .product(name: "HummingbirdTesting", package: "hummingbird")],
            swiftSettings: nativeSwift),
    ]
)
