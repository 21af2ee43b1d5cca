// swift-tools-version: 6.1
import PackageDescription

// BlindAI: confidential ONNX inference. Dependency directions (see docs/architecture.md):
//   BlindAITensor <- BlindAIGraph <- BlindAIONNX            (the engine: no networking, no attestation)
//   BlindAIAttestation (verify)   BlindAIAttestationProducer (inside the TEE)   (no engine)
//   server and clients are the only places that combine them.
let package = Package(
    name: "BlindAI",
    platforms: [.macOS(.v14)],
    products: [
        .library(name: "BlindAITensor", targets: ["BlindAITensor"]),
        .library(name: "BlindAIGraph", targets: ["BlindAIGraph"]),
        .library(name: "BlindAIONNX", targets: ["BlindAIONNX"]),
        .library(name: "BlindAIAttestation", targets: ["BlindAIAttestation"]),
        .executable(name: "blindai", targets: ["blindai"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-protobuf.git", exact: "1.39.0"),
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-crypto.git", "3.12.3"..<"5.0.0"),
        .package(url: "https://github.com/apple/swift-asn1.git", from: "1.7.4"),
        .package(url: "https://github.com/apple/swift-certificates.git", from: "1.21.1"),
    ],
    targets: [
        // Hand-written SIMD kernels. Per-function `target("avx2,fma")` attributes plus a runtime CPU check,
        // so the fast path needs no compiler flag from the user (no unsafeFlags).
        .target(name: "CBlindAIKernels"),
        .target(name: "BlindAITensor", dependencies: ["CBlindAIKernels"]),
        .target(name: "BlindAIGraph", dependencies: ["BlindAITensor"]),
        .target(
            name: "BlindAIONNX",
            dependencies: [
                "BlindAIGraph",
                .product(name: "SwiftProtobuf", package: "swift-protobuf"),
            ]
        ),
        .target(
            name: "BlindAIAttestation",
            dependencies: [
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "_CryptoExtras", package: "swift-crypto"),
                .product(name: "SwiftASN1", package: "swift-asn1"),
                .product(name: "X509", package: "swift-certificates"),
            ]
        ),
        .target(
            name: "BlindAICommands",
            dependencies: [
                "BlindAIONNX",
                "BlindAIAttestation",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]
        ),
        .executableTarget(
            name: "blindai",
            dependencies: ["BlindAICommands", .product(name: "ArgumentParser", package: "swift-argument-parser")]
        ),
        .testTarget(name: "BlindAITensorTests", dependencies: ["BlindAITensor"]),
        .testTarget(
            name: "BlindAIEngineTests",
            dependencies: ["BlindAIONNX", "BlindAICommands"],
            resources: [.copy("Fixtures")]
        ),
        .testTarget(name: "BlindAIAttestationTests", dependencies: ["BlindAIAttestation"]),
    ],
    swiftLanguageModes: [.v6]
)
