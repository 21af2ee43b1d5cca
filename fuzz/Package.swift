// swift-tools-version: 6.1
import PackageDescription

// libFuzzer targets for BlindAI's parsers of untrusted bytes (docs/fuzzing.md). Built by scripts/fuzz.sh, which
// passes `-sanitize=fuzzer,address -parse-as-library -enable-testing` to every Swift module, the main package's
// included (coverage of the code under test): neither this package nor the main one carries unsafe flags.

/// One fuzz target: an executable that links FuzzSupport and the named products of the main package.
func fuzzTarget(_ name: String, _ products: [String]) -> Target {
    .executableTarget(name: name, dependencies: ["FuzzSupport"] + products.map { .product(name: $0, package: "BlindAI") })
}

let package = Package(
    name: "BlindAIFuzz",
    platforms: [.macOS(.v14)],
    dependencies: [.package(name: "BlindAI", path: "..")],
    targets: [
        // libFuzzer's driver entry point, called by each target's @main (see its header).
        .target(name: "CFuzzDriver"),
        .target(name: "FuzzSupport", dependencies: ["CFuzzDriver"]),
        fuzzTarget("onnx-model", ["BlindAIONNX", "BlindAIGraph", "BlindAITensor"]),
        fuzzTarget("oip-request", ["BlindAIServer", "BlindAIProtocol", "BlindAIONNX", "BlindAIGraph", "BlindAITensor"]),
        fuzzTarget("npy", ["BlindAITensor"]),
        fuzzTarget("evidence-bundle", ["BlindAIAttestation"]),
        fuzzTarget("snp-report", ["BlindAIAttestation"]),
        fuzzTarget("tdx-quote", ["BlindAIAttestation"]),
        fuzzTarget("der-certificate", ["BlindAIAttestation"]),
        fuzzTarget("crl", ["BlindAIAttestation"]),
        fuzzTarget("tdx-collateral", ["BlindAIAttestation"]),
    ],
    swiftLanguageModes: [.v6]
)
