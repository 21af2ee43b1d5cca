// swift-tools-version: 6.1
import PackageDescription

// libFuzzer targets for BlindAI's parsers of untrusted bytes (docs/fuzzing.md). Built by scripts/fuzz.sh, which
// passes `-sanitize=fuzzer,address -parse-as-library -enable-testing` to every Swift module, the main package's
// included (coverage of the code under test): neither this package nor the main one carries unsafe flags.
let package = Package(
    name: "BlindAIFuzz",
    platforms: [.macOS(.v14)],
    dependencies: [.package(name: "BlindAI", path: "..")],
    targets: [
        // libFuzzer's driver entry point, called by each target's @main (see its header).
        .target(name: "CFuzzDriver"),
        .target(
            name: "FuzzSupport",
            dependencies: ["CFuzzDriver"]
        ),
        .executableTarget(
            name: "onnx-model",
            dependencies: [
                "FuzzSupport",
                .product(name: "BlindAIONNX", package: "BlindAI"),
                .product(name: "BlindAIGraph", package: "BlindAI"),
                .product(name: "BlindAITensor", package: "BlindAI"),
            ]
        ),
        .executableTarget(
            name: "oip-request",
            dependencies: [
                "FuzzSupport",
                .product(name: "BlindAIServer", package: "BlindAI"),
                .product(name: "BlindAIProtocol", package: "BlindAI"),
                .product(name: "BlindAIONNX", package: "BlindAI"),
                .product(name: "BlindAIGraph", package: "BlindAI"),
                .product(name: "BlindAITensor", package: "BlindAI"),
            ]
        ),
        .executableTarget(name: "npy", dependencies: ["FuzzSupport", .product(name: "BlindAITensor", package: "BlindAI")]),
        .executableTarget(name: "evidence-bundle", dependencies: ["FuzzSupport", .product(name: "BlindAIAttestation", package: "BlindAI")]),
        .executableTarget(name: "snp-report", dependencies: ["FuzzSupport", .product(name: "BlindAIAttestation", package: "BlindAI")]),
        .executableTarget(name: "tdx-quote", dependencies: ["FuzzSupport", .product(name: "BlindAIAttestation", package: "BlindAI")]),
        .executableTarget(name: "der-certificate", dependencies: ["FuzzSupport", .product(name: "BlindAIAttestation", package: "BlindAI")]),
        .executableTarget(name: "crl", dependencies: ["FuzzSupport", .product(name: "BlindAIAttestation", package: "BlindAI")]),
        .executableTarget(name: "tdx-collateral", dependencies: ["FuzzSupport", .product(name: "BlindAIAttestation", package: "BlindAI")]),
    ],
    swiftLanguageModes: [.v6]
)
