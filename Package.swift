// swift-tools-version: 6.1
import PackageDescription

// BlindAI: confidential ONNX inference. Dependency directions (see docs/architecture.md):
//   BlindAITensor <- BlindAIKernels <- BlindAIGraph <- BlindAIOperators <- BlindAIONNX <- BlindAIConformance
//   (the engine: no networking, no attestation)
//   BlindAIAttestation (verify)   BlindAIAttestationProducer (inside the TEE)   (no engine)
//   server and clients are the only places that combine them.
let package = Package(
    name: "BlindAI",
    platforms: [.macOS(.v14)],
    products: [
        .library(name: "BlindAITensor", targets: ["BlindAITensor"]),
        .library(name: "BlindAIKernels", targets: ["BlindAIKernels"]),
        .library(name: "BlindAIGraph", targets: ["BlindAIGraph"]),
        .library(name: "BlindAIOperators", targets: ["BlindAIOperators"]),
        .library(name: "BlindAIONNX", targets: ["BlindAIONNX"]),
        .library(name: "BlindAIAttestation", targets: ["BlindAIAttestation"]),
        .library(name: "BlindAIClient", targets: ["BlindAIClient"]),
        // The wire types and the server as libraries too, for the fuzz package in fuzz/ (scripts/fuzz.sh).
        .library(name: "BlindAIProtocol", targets: ["BlindAIProtocol"]),
        .library(name: "BlindAIServer", targets: ["BlindAIServer"]),
        .executable(name: "blindai", targets: ["blindai"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-protobuf.git", exact: "1.39.0"),
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-crypto.git", "3.12.3"..<"5.0.0"),
        .package(url: "https://github.com/apple/swift-asn1.git", from: "1.7.4"),
        .package(url: "https://github.com/apple/swift-certificates.git", from: "1.21.1"),
        // Inference server (BlindAIServer) and its tests.
        .package(url: "https://github.com/hummingbird-project/hummingbird.git", from: "2.28.1"),
        .package(url: "https://github.com/swift-server/async-http-client.git", from: "1.37.0"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-metrics.git", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus.git", from: "2.4.1"),
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.3"),
        .package(url: "https://github.com/apple/swift-nio-ssl.git", from: "2.37.6"),
        .package(url: "https://github.com/apple/swift-nio-extras.git", from: "1.35.2"),
        .package(url: "https://github.com/apple/swift-http-types.git", from: "1.8.0"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle.git", from: "2.6.0"),
    ],
    targets: [
        // Hand-written SIMD kernels. Per-function `target("avx2,fma")` attributes plus a runtime CPU check,
        // so the fast path needs no compiler flag from the user (no unsafeFlags).
        .target(name: "CBlindAIKernels"),
        // NumPy .npy files: the one codec of the engine and the clients (Foundation only).
        .target(name: "BlindAINumPy"),
        .target(name: "BlindAITensor", dependencies: ["CBlindAIKernels", "BlindAINumPy"]),
        // The engine, in three layers (docs/architecture.md says why this cut):
        // kernels (loops, thread pool, GEMM, SIMD rows, FFT, attention; no notion of a graph node),
        .target(name: "BlindAIKernels", dependencies: ["BlindAITensor", "CBlindAIKernels"]),
        // the graph (IR, operator protocol, registry, planner, plan, the facts framework; no operator),
        .target(name: "BlindAIGraph", dependencies: ["BlindAITensor", "BlindAIKernels"]),
        // and the operators (one folder per ONNX domain, one family per file, each registered in its own file).
        .target(name: "BlindAIOperators", dependencies: ["BlindAITensor", "BlindAIKernels", "BlindAIGraph", "CBlindAIKernels"]),
        .target(
            name: "BlindAIONNX",
            dependencies: [
                "BlindAIGraph",
                "BlindAIOperators",
                .product(name: "SwiftProtobuf", package: "swift-protobuf"),
            ]
        ),
        // The ONNX backend-test runner (model.onnx + test_data_set_*): the CLI's `conformance` command and the engine's
        // tests use it, so it sits beside the engine, not in the CLI (no server or networking in its closure).
        .target(name: "BlindAIConformance", dependencies: ["BlindAIONNX"]),
        .target(
            name: "BlindAIAttestation",
            dependencies: [
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "_CryptoExtras", package: "swift-crypto"),
                .product(name: "SwiftASN1", package: "swift-asn1"),
                .product(name: "X509", package: "swift-certificates"),
            ]
        ),
        // `/dev/sev-guest` ioctls (Swift cannot call the variadic `ioctl`). Linux only; elsewhere it reports ENOSYS.
        .target(name: "CBlindAIAttestationShims"),
        // glibc's malloc_trim for the server (not exported by Swift's Glibc module).
        .target(name: "CBlindAIServerShims"),
        // Evidence production inside the TEE (configfs-tsm, /dev/sev-guest, simulated TEE). No engine.
        .target(
            name: "BlindAIAttestationProducer",
            dependencies: [
                "BlindAIAttestation",
                "CBlindAIAttestationShims",
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "_CryptoExtras", package: "swift-crypto"),
                .product(name: "SwiftASN1", package: "swift-asn1"),
            ]
        ),
        // Open Inference Protocol v2 wire types and binary tensor framing: Foundation only, shared with clients.
        .target(name: "BlindAIProtocol"),
        // Signed inference receipts (docs/receipts.md): the format, the canonical tensor digest, signing and the
        // signature check. Crypto only: the server signs, the clients verify.
        .target(name: "BlindAIReceipts", dependencies: [.product(name: "Crypto", package: "swift-crypto")]),
        .target(
            name: "BlindAIServer",
            dependencies: [
                "CBlindAIServerShims",
                "BlindAIProtocol",
                "BlindAIReceipts",
                "BlindAIONNX",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdCore", package: "hummingbird"),
                .product(name: "HummingbirdTLS", package: "hummingbird"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "NIOHTTPTypes", package: "swift-nio-extras"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "SwiftASN1", package: "swift-asn1"),
                .product(name: "X509", package: "swift-certificates"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ]
        ),
        // Server side of attestation: TEE selection (--tee) and the adapter from evidence providers to the server's
        // AttestationProvider.
        .target(
            name: "BlindAIServerAttestation",
            dependencies: [
                "BlindAIServer",
                "BlindAIAttestation",
                "BlindAIAttestationProducer",
                .product(name: "Crypto", package: "swift-crypto"),
            ]
        ),
        // Client library: attested and pinned TLS, uploads, inference. Never the engine or the server.
        .target(
            name: "BlindAIClient",
            dependencies: [
                "BlindAIAttestation",
                "BlindAINumPy",
                "BlindAIProtocol",
                "BlindAIReceipts",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "Crypto", package: "swift-crypto"),
            ]
        ),
        .target(
            name: "BlindAICommands",
            dependencies: [
                "BlindAIONNX",
                "BlindAIConformance",
                "BlindAIAttestation",
                "BlindAIServer",
                "BlindAIServerAttestation",
                "BlindAIClient",
                "BlindAIReceipts",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]
        ),
        .executableTarget(
            name: "blindai",
            dependencies: ["BlindAICommands", .product(name: "ArgumentParser", package: "swift-argument-parser")]
        ),
        .testTarget(name: "BlindAITensorTests", dependencies: ["BlindAITensor", "BlindAINumPy", "CBlindAIKernels"]),
        .testTarget(
            name: "BlindAIEngineTests",
            dependencies: ["BlindAIKernels", "BlindAIGraph", "BlindAIOperators", "BlindAIONNX", "BlindAIConformance", "BlindAITestSupport", "CBlindAIKernels"],
            resources: [.copy("Fixtures")]
        ),
        // Vectors/: real SEV-SNP and TDX evidence read through #filePath (not bundled).
        .testTarget(name: "BlindAIAttestationTests", dependencies: ["BlindAIAttestation"], exclude: ["Vectors"]),
        .testTarget(name: "BlindAIAttestationProducerTests", dependencies: ["BlindAIAttestationProducer", "BlindAIAttestation"]),
        .testTarget(
            name: "BlindAIServerTests",
            dependencies: [
                "BlindAIServer",
                "BlindAIProtocol",
                .product(name: "HummingbirdTesting", package: "hummingbird"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            resources: [.copy("Fixtures")]
        ),
        // ModelBuilder and other helpers shared by the test targets (not a product).
        .target(
            name: "BlindAITestSupport",
            dependencies: ["BlindAIONNX", "BlindAITensor"],
            path: "Tests/BlindAITestSupport"
        ),
        .testTarget(
            name: "BlindAIClientTests",
            dependencies: [
                "BlindAITestSupport",
                "BlindAIClient",
                "BlindAIServer",
                "BlindAIServerAttestation",
                "BlindAIAttestation",
                "BlindAIAttestationProducer",
                "BlindAIProtocol",
                "BlindAIONNX",
                "BlindAICommands",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
            ]
        ),
    ],
    swiftLanguageModes: [.v6]
)
