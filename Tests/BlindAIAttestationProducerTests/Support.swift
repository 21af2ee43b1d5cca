import BlindAIAttestation
import Crypto
import Foundation
import Testing
import _CryptoExtras

@testable import BlindAIAttestationProducer

/// Shared fixtures: generating RSA keys is slow, so one simulated TEE is made per process.
enum Fixtures {
    static let executableBytes: [UInt8] = Array("#!/bin/sh\necho blindai server build 42\n".utf8)

    static let executable: URL = {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("blindai-test-exe-\(UUID().uuidString)")
        _ = FileManager.default.createFile(atPath: url.path, contents: Data(executableBytes))
        return url
    }()

    static let tee: SimulatedSNPTEE = {
        do { return try SimulatedSNPTEE(measuringExecutableAt: executable) } catch { fatalError("simulated TEE: \(error)") }
    }()

    static let signingKey: _RSA.Signing.PrivateKey = {
        do { return try _RSA.Signing.PrivateKey(keySize: .bits2048) } catch { fatalError("\(error)") }
    }()

    /// A TLS server certificate (the SPKI is what matters for the binding).
    static func tlsCertificate() throws -> [UInt8] {
        try AMDStyleCertificateBuilder.build(
            serial: Int.random(in: 1...1_000_000), issuerCN: "blindai test CA", subjectCN: "localhost", notBefore: Date(timeIntervalSinceNow: -60),
            notAfter: Date(timeIntervalSinceNow: 86_400), subjectKey: .p384(P384.Signing.PrivateKey().publicKey), extensions: [], issuerKey: signingKey)
    }

    static let tlsA: [UInt8] = { (try? tlsCertificate()) ?? [] }()
    static let tlsB: [UInt8] = { (try? tlsCertificate()) ?? [] }()

    static var measurementHex: String { Array(SHA384.hash(data: executableBytes)).map { String(format: "%02x", $0) }.joined() }

    /// Pins the fixture's simulated root; any measurement.
    static let simulatedPolicy = AttestationPolicy(
        allowSimulated: true, simulatedRootKeys: [tee.rootKeySHA256], maxEvidenceAgeSeconds: 300, snp: .init(anyMeasurement: true), tdx: nil)

    /// Claims attributes of a server that generated its TLS key in memory.
    static let attributes = ["model": "resnet", ClaimsDocument.tlsKeyOriginAttribute: "true"]
}

@discardableResult
func expectAttestationError(
    _ code: AttestationError.Code, sourceLocation: SourceLocation = #_sourceLocation, _ body: () async throws -> Void
) async -> AttestationError? {
    do {
        try await body()
        Issue.record("expected \(code.rawValue), but it succeeded", sourceLocation: sourceLocation)
    } catch let e as AttestationError {
        #expect(e.code == code, "expected \(code.rawValue), got \(e)", sourceLocation: sourceLocation)
        return e
    } catch {
        Issue.record("expected \(code.rawValue), got \(error)", sourceLocation: sourceLocation)
    }
    return nil
}

@discardableResult
func expectProviderError(
    _ code: EvidenceProviderError.Code, sourceLocation: SourceLocation = #_sourceLocation, _ body: () async throws -> Void
) async -> EvidenceProviderError? {
    do {
        try await body()
        Issue.record("expected \(code.rawValue), but it succeeded", sourceLocation: sourceLocation)
    } catch let e as EvidenceProviderError {
        #expect(e.code == code, "expected \(code.rawValue), got \(e)", sourceLocation: sourceLocation)
        return e
    } catch {
        Issue.record("expected \(code.rawValue), got \(error)", sourceLocation: sourceLocation)
    }
    return nil
}
