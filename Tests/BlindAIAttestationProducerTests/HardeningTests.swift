import BlindAIAttestation
import Crypto
import Foundation
import Testing

@testable import BlindAIAttestationProducer

/// The simulated platform stands in where no real vector can: reports with launch settings no published report
/// has, a TLS key loaded from a file, and AMD CRLs (none is published with the vectors).
@Suite("Hardening: TLS key origin, simulated root pinning, SNP launch settings and CRLs")
struct HardeningTests {
    func bundle(_ tee: SimulatedSNPTEE = Fixtures.tee, nonce: [UInt8], attributes: [String: String] = Fixtures.attributes) async throws -> EvidenceBundle {
        try await EvidenceResponder(provider: tee, tlsCertificateDER: Fixtures.tlsA, attributes: attributes).bundle(nonce: nonce)
    }

    func verify(_ bundle: EvidenceBundle, nonce: [UInt8], policy: AttestationPolicy = Fixtures.simulatedPolicy) async throws -> VerifiedClaims {
        try await AttestationVerifier(policy: policy).verify(bundle: bundle, binding: try ChannelBindingExpectation(nonce: nonce, tlsCertificateDER: Fixtures.tlsA))
    }

    // MARK: Item 3: TLS key origin

    @Test("a server whose TLS key came from a file is refused by default, accepted with allowTLSKeyFromFile")
    func tlsKeyFromFile() async throws {
        let nonce = ChannelBindingExpectation.freshNonce()
        var attributes = Fixtures.attributes
        attributes[ClaimsDocument.tlsKeyOriginAttribute] = "false"
        let b = try await bundle(nonce: nonce, attributes: attributes)
        let e = await expectAttestationError(.tlsKeyNotGeneratedInTEE) { _ = try await verify(b, nonce: nonce) }
        #expect(e?.reason.contains("from a file") == true)
        var optOut = Fixtures.simulatedPolicy
        optOut.allowTLSKeyFromFile = true
        let claims = try await verify(b, nonce: nonce, policy: optOut)
        #expect(claims.tlsKeyGeneratedInTEE == false)
        // The manifest member.
        let manifest = try AttestationPolicy.load(json: Data(#"{"allowTLSKeyFromFile": true, "tdx": {"anyMeasurement": true}}"#.utf8))
        #expect(manifest.allowTLSKeyFromFile)
        #expect(try !AttestationPolicy.load(json: Data(#"{"tdx": {"anyMeasurement": true}}"#.utf8)).allowTLSKeyFromFile)
    }

    @Test("a key generated in the TEE passes; a claims document that does not say is refused; garbage is malformed")
    func tlsKeyOriginValues() async throws {
        let nonce = ChannelBindingExpectation.freshNonce()
        #expect(try await verify(try await bundle(nonce: nonce), nonce: nonce).tlsKeyGeneratedInTEE == true)
        let silent = try await bundle(nonce: nonce, attributes: ["model": "resnet"])
        await expectAttestationError(.tlsKeyNotGeneratedInTEE) { _ = try await verify(silent, nonce: nonce) }
        var attributes = Fixtures.attributes
        attributes[ClaimsDocument.tlsKeyOriginAttribute] = "yes"
        let garbage = try await bundle(nonce: nonce, attributes: attributes)
        await expectAttestationError(.claimsDocumentMismatch) { _ = try await verify(garbage, nonce: nonce) }
    }

    @Test("without a channel binding the claims document vouches for nothing, so the TLS key origin is unknown and refused")
    func tlsKeyOriginNeedsBinding() async throws {
        let nonce = ChannelBindingExpectation.freshNonce()
        let b = try await bundle(nonce: nonce)
        var policy = Fixtures.simulatedPolicy
        policy.maxEvidenceAgeSeconds = nil
        await expectAttestationError(.tlsKeyNotGeneratedInTEE) { _ = try await AttestationVerifier(policy: policy).verify(bundle: b, binding: nil) }
        policy.allowTLSKeyFromFile = true
        #expect(try await AttestationVerifier(policy: policy).verify(bundle: b, binding: nil).tlsKeyGeneratedInTEE == nil)
    }

    // MARK: Item 8: the simulated root is pinned

    @Test("a look-alike simulated chain copying the public measurement and chip ID is refused by the root pin")
    func lookAlikeSimulatedChain() async throws {
        let lookAlike = try SimulatedSNPTEE(measurement: Fixtures.tee.measurement, chipID: Fixtures.tee.chipID)
        var policy = Fixtures.simulatedPolicy
        policy.snp = .init(measurements: [Fixtures.measurementHex], chipIDs: [Fixtures.tee.chipID.map { String(format: "%02x", $0) }.joined()])
        let nonce = ChannelBindingExpectation.freshNonce()
        let claims = try await verify(try await bundle(nonce: nonce), nonce: nonce, policy: policy)
        #expect(claims.simulatedRootKeySHA256 == Fixtures.tee.rootKeySHA256)
        let e = await expectAttestationError(.simulatedRootNotPinned) { _ = try await verify(try await bundle(lookAlike, nonce: nonce), nonce: nonce, policy: policy) }
        #expect(e?.reason.contains(String(lookAlike.rootKeySHA256.prefix(8))) == true)
    }

    @Test("a manifest allowing simulated evidence must pin the simulated root")
    func manifestPinsSimulatedRoot() throws {
        let e = try #require(throws: AttestationError.self) {
            try AttestationPolicy.load(json: Data(#"{"allowSimulated": true, "snp": {"anyMeasurement": true}}"#.utf8))
        }
        #expect(e.code == .malformedPolicy)
        #expect(e.reason.contains("simulatedRootKeys"))
        let key = Fixtures.tee.rootKeySHA256
        let p = try AttestationPolicy.load(json: Data(#"{"allowSimulated": true, "simulatedRootKeys": ["\#(key.uppercased())"], "snp": {"anyMeasurement": true}}"#.utf8))
        #expect(p.simulatedRootKeys == [key])
    }

    // MARK: Item 6: SNP launch settings

    @Test("MIGRATE_MA in the guest policy or a migration agent in REPORT_ID_MA is refused unless allowMigrationAgent")
    func migrationAgent() async throws {
        let nonce = ChannelBindingExpectation.freshNonce()
        var policyBit = try SimulatedSNPTEE(measurement: Fixtures.tee.measurement)
        policyBit.guestPolicy |= 1 << 18
        var agent = try SimulatedSNPTEE(measurement: Fixtures.tee.measurement)
        agent.migrationAgentReportID = [UInt8](repeating: 0x42, count: 32)
        for tee in [policyBit, agent] {
            var policy = Fixtures.simulatedPolicy
            policy.simulatedRootKeys = [tee.rootKeySHA256]
            let b = try await bundle(tee, nonce: nonce)
            await expectAttestationError(.migrationAgentNotAllowed) { _ = try await verify(b, nonce: nonce, policy: policy) }
            policy.snp?.allowMigrationAgent = true
            _ = try await verify(b, nonce: nonce, policy: policy)
        }
    }

    @Test("a chip ID zeroed by MaskChipId, with SIGNER_INFO bit 1 clear, verifies (bit 1 is MASK_CHIP_KEY)")
    func maskedChipID() async throws {
        var tee = try SimulatedSNPTEE(measurement: Fixtures.tee.measurement)
        tee.maskChipID = true
        let report = try tee.report(reportData: [UInt8](repeating: 0, count: 64))
        #expect(try SNPReport(bytes: report).signerInfo == 0)
        let v = try SNPVerifier(allowSimulated: true).verify(report: report, endorsementKey: tee.vcekDER, chain: [tee.askDER, tee.arkDER], at: Date())
        #expect(v.report.isChipIDMasked)
    }

    @Test("SIGNER_INFO with MASK_CHIP_KEY set is refused with that reason")
    func maskChipKey() throws {
        var report = try Fixtures.tee.report(reportData: [UInt8](repeating: 0, count: 64))
        report[0x48] |= 0x02
        let e = try #require(throws: AttestationError.self) {
            try SNPVerifier(allowSimulated: true).verify(report: report, endorsementKey: Fixtures.tee.vcekDER, chain: [Fixtures.tee.askDER, Fixtures.tee.arkDER], at: Date())
        }
        #expect(e.code == .reportSignatureInvalid)
        #expect(e.reason.contains("MASK_CHIP_KEY"))
    }

    @Test("HOST_DATA allowlist")
    func hostData() async throws {
        var tee = try SimulatedSNPTEE(measurement: Fixtures.tee.measurement)
        tee.hostData = [UInt8](repeating: 0xA5, count: 32)
        var policy = Fixtures.simulatedPolicy
        policy.simulatedRootKeys = [tee.rootKeySHA256]
        let nonce = ChannelBindingExpectation.freshNonce()
        let b = try await bundle(tee, nonce: nonce)
        policy.snp?.hostData = [String(repeating: "a5", count: 32)]
        #expect(try await verify(b, nonce: nonce, policy: policy).snp?.hostData == String(repeating: "a5", count: 32))
        policy.snp?.hostData = [String(repeating: "00", count: 32)]
        await expectAttestationError(.hostDataNotAllowed) { _ = try await verify(b, nonce: nonce, policy: policy) }
    }

    // MARK: Item 4: AMD CRL

    @Test("the simulated evidence carries a CRL signed by its ARK; requireCRL passes with it and refuses without it")
    func crlCarried() async throws {
        let nonce = ChannelBindingExpectation.freshNonce()
        var b = try await bundle(nonce: nonce)
        #expect(b.collateral["vcek_crl.der"] != nil)
        var policy = Fixtures.simulatedPolicy
        policy.snp?.requireCRL = true
        #expect(try await verify(b, nonce: nonce, policy: policy).snp?.checkedCRL == true)
        b.collateral = [:]
        let e = await expectAttestationError(.collateralMissing) { _ = try await verify(b, nonce: nonce, policy: policy) }
        #expect(e?.reason.contains("requireCRL") == true)
        policy.snp?.requireCRL = false
        #expect(try await verify(b, nonce: nonce, policy: policy).snp?.checkedCRL == false)
    }

    @Test("an ASK revoked by the ARK's CRL is refused; a CRL from another root is invalid")
    func crlRevokesASK() throws {
        let tee = Fixtures.tee
        let report = try tee.report(reportData: [UInt8](repeating: 0, count: 64))
        let verifier = SNPVerifier(allowSimulated: true)
        let revoked = try tee.revocationList(revoking: [SimulatedSNPTEE.askSerial])
        let e = try #require(throws: AttestationError.self) {
            try verifier.verify(report: report, endorsementKey: tee.vcekDER, chain: [tee.askDER, tee.arkDER], crl: revoked, at: Date())
        }
        #expect(e.code == .certificateRevoked)
        #expect(e.reason.contains("SEV-Milan"))
        // Another serial revoked: passes.
        let unrelated = try tee.revocationList(revoking: [0x7777])
        #expect(try verifier.verify(report: report, endorsementKey: tee.vcekDER, chain: [tee.askDER, tee.arkDER], crl: unrelated, at: Date()).checkedCRL)
        // A CRL with the same issuer name signed by another simulated ARK: its signature does not verify.
        let other = try SimulatedSNPTEE(measurement: tee.measurement)
        let foreign = try #require(throws: AttestationError.self) {
            try verifier.verify(report: report, endorsementKey: tee.vcekDER, chain: [tee.askDER, tee.arkDER], crl: other.crlDER, at: Date())
        }
        #expect(foreign.code == .crlInvalid)
    }
}
