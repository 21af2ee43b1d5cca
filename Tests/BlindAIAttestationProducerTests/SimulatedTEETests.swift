import BlindAIAttestation
import Crypto
import Foundation
import Testing
import _CryptoExtras

@testable import BlindAIAttestationProducer

@Suite("Simulated TEE end to end")
struct SimulatedTEETests {
    func freshBundle(nonce: [UInt8], tls: [UInt8] = Fixtures.tlsA, now: Date = Date()) async throws -> EvidenceBundle {
        try await EvidenceResponder(provider: Fixtures.tee, tlsCertificateDER: tls, attributes: Fixtures.attributes).bundle(nonce: nonce, now: now)
    }

    @Test("simulated evidence verifies through the production path with allowSimulated")
    func endToEnd() async throws {
        let nonce = ChannelBindingExpectation.freshNonce()
        let bundle = try await freshBundle(nonce: nonce)
        // Through JSON, as the client receives it.
        let received = try EvidenceBundle.decode(json: try bundle.jsonData())
        #expect(received == bundle)
        var policy = Fixtures.simulatedPolicy
        policy.snp = .init(measurements: [Fixtures.measurementHex], signers: [.vcek], products: [.milan], minimumTCB: .init(bootloader: 4, snp: 22))
        let claims = try await AttestationVerifier(policy: policy).verify(
            bundle: received, binding: try ChannelBindingExpectation(nonce: nonce, tlsCertificateDER: Fixtures.tlsA))
        #expect(claims.simulated)
        #expect(claims.channelBound)
        #expect(!claims.debug)
        #expect(claims.measurement == Fixtures.measurementHex)
        #expect(claims.snp?.product == .milan)
        #expect(claims.snp?.reportVersion == 3)
        #expect(claims.claimsIssuedAt != nil)
    }

    @Test("the simulated report is in the real format and its chain is RSASSA-PSS")
    func realFormat() throws {
        let report = try Fixtures.tee.report(reportData: [UInt8](repeating: 0xAB, count: 64))
        #expect(report.count == 1184)
        let parsed = try SNPReport(bytes: report)
        #expect(parsed.signer == .vcek)
        #expect(!parsed.isDebugAllowed)
        #expect(parsed.cpuidProduct == .milan)
        let ark = try DERCertificate(derEncoded: Fixtures.tee.arkDER)
        #expect(ark.subjectCommonName == "BlindAI Simulated ARK-Milan")
        let v = try SNPVerifier(allowSimulated: true).verify(
            report: report, endorsementKey: Fixtures.tee.vcekDER, chain: [Fixtures.tee.askDER, Fixtures.tee.arkDER], at: Date())
        #expect(v.rootKind == .simulated)
        #expect(v.reportedTCB == Fixtures.tee.tcb)
    }

    @Test("a version 5 Genoa simulated report verifies")
    func genoaV5() throws {
        let tee = try SimulatedSNPTEE(measurement: [UInt8](repeating: 1, count: 48), product: .genoa, reportVersion: 5)
        let v = try SNPVerifier(allowSimulated: true).verify(
            report: try tee.report(reportData: [UInt8](repeating: 0, count: 64)), endorsementKey: tee.vcekDER, chain: [tee.askDER, tee.arkDER], at: Date())
        #expect(v.product == .genoa)
        #expect(v.report.version == 5)
    }

    @Test("simulated evidence under a production policy (no allowSimulated)")
    func simulatedUnderProductionPolicy() async throws {
        let nonce = ChannelBindingExpectation.freshNonce()
        let bundle = try await freshBundle(nonce: nonce)
        await expectAttestationError(.simulatedRootNotAllowed) {
            _ = try await AttestationVerifier(policy: AttestationPolicy()).verify(
                bundle: bundle, binding: try ChannelBindingExpectation(nonce: nonce, tlsCertificateDER: Fixtures.tlsA))
        }
    }

    @Test("a production manifest policy also refuses it")
    func simulatedUnderManifestPolicy() async throws {
        let nonce = ChannelBindingExpectation.freshNonce()
        let bundle = try await freshBundle(nonce: nonce)
        let policy = try AttestationPolicy.load(json: Data(#"{"snp": {"anyMeasurement": true}}"#.utf8))
        await expectAttestationError(.simulatedRootNotAllowed) {
            _ = try await AttestationVerifier(policy: policy).verify(
                bundle: bundle, binding: try ChannelBindingExpectation(nonce: nonce, tlsCertificateDER: Fixtures.tlsA))
        }
    }

    @Test("the simulated-evidence policy rule refuses claims from a simulated root")
    func simulatedRule() throws {
        let report = try Fixtures.tee.report(reportData: [UInt8](repeating: 0, count: 64))
        // Cryptographic verification allowed it; the policy (defence in depth) does not.
        let claims = try AttestationVerifier(
            policy: AttestationPolicy(allowSimulated: true, allowTLSKeyFromFile: true, snp: .init(anyMeasurement: true), tdx: nil)
        ).verifySNP(
            report: report, endorsementKey: Fixtures.tee.vcekDER, chain: [Fixtures.tee.askDER, Fixtures.tee.arkDER])
        #expect(claims.simulated)
        #expect(throws: AttestationError(.simulatedNotAllowed, "rule allowSimulated: the evidence comes from a simulated TEE and the policy does not allow simulated evidence")) {
            try SimulatedRule(allowed: false).evaluate(claims, at: Date())
        }
    }

    @Test("a wrong nonce")
    func wrongNonce() async throws {
        let bundle = try await freshBundle(nonce: ChannelBindingExpectation.freshNonce())
        await expectAttestationError(.nonceMismatch) {
            _ = try await AttestationVerifier(policy: Fixtures.simulatedPolicy).verify(
                bundle: bundle, binding: try ChannelBindingExpectation(nonce: ChannelBindingExpectation.freshNonce(), tlsCertificateDER: Fixtures.tlsA))
        }
    }

    @Test("a replayed evidence from an earlier nonce")
    func replay() async throws {
        let earlier = ChannelBindingExpectation.freshNonce()
        var replayed = try await freshBundle(nonce: earlier)
        let now = ChannelBindingExpectation.freshNonce()
        replayed.nonce = Data(now)  // the attacker echoes the new nonce over old evidence
        await expectAttestationError(.reportDataMismatch) {
            _ = try await AttestationVerifier(policy: Fixtures.simulatedPolicy).verify(
                bundle: replayed, binding: try ChannelBindingExpectation(nonce: now, tlsCertificateDER: Fixtures.tlsA))
        }
    }

    @Test("a report bound to another TLS key (relay)")
    func relay() async throws {
        let nonce = ChannelBindingExpectation.freshNonce()
        // The genuine server (key A) answered the nonce that a relay (key B) forwarded to it.
        let bundle = try await freshBundle(nonce: nonce, tls: Fixtures.tlsA)
        await expectAttestationError(.tlsKeyMismatch) {
            _ = try await AttestationVerifier(policy: Fixtures.simulatedPolicy).verify(
                bundle: bundle, binding: try ChannelBindingExpectation(nonce: nonce, tlsCertificateDER: Fixtures.tlsB))
        }
    }

    @Test("a tampered claims document")
    func tamperedClaims() async throws {
        let nonce = ChannelBindingExpectation.freshNonce()
        var bundle = try await freshBundle(nonce: nonce)
        var doc = try ClaimsDocument.decode([UInt8](bundle.claims ?? Data()))
        doc.attributes["model"] = "evil"
        bundle.claims = Data(try doc.encoded())
        await expectAttestationError(.reportDataMismatch) {
            _ = try await AttestationVerifier(policy: Fixtures.simulatedPolicy).verify(
                bundle: bundle, binding: try ChannelBindingExpectation(nonce: nonce, tlsCertificateDER: Fixtures.tlsA))
        }
    }

    @Test("evidence older than the maximum age")
    func tooOld() async throws {
        let nonce = ChannelBindingExpectation.freshNonce()
        let bundle = try await freshBundle(nonce: nonce, now: Date(timeIntervalSinceNow: -3600))
        let e = await expectAttestationError(.evidenceTooOld) {
            _ = try await AttestationVerifier(policy: Fixtures.simulatedPolicy).verify(
                bundle: bundle, binding: try ChannelBindingExpectation(nonce: nonce, tlsCertificateDER: Fixtures.tlsA))
        }
        #expect(e?.reason.contains("maximum 300 s") == true)
    }

    @Test("a measurement not in the allowlist (another build)")
    func otherBuild() async throws {
        let nonce = ChannelBindingExpectation.freshNonce()
        let bundle = try await freshBundle(nonce: nonce)
        var policy = Fixtures.simulatedPolicy
        policy.snp = .init(measurements: [String(repeating: "00", count: 48)])
        await expectAttestationError(.measurementNotAllowed) {
            _ = try await AttestationVerifier(policy: policy).verify(
                bundle: bundle, binding: try ChannelBindingExpectation(nonce: nonce, tlsCertificateDER: Fixtures.tlsA))
        }
    }

    @Test("a chain to the wrong root: a forged ARK-Milan that is neither pinned nor simulated")
    func forgedRoot() throws {
        let key = Fixtures.signingKey
        let start = Date(timeIntervalSinceNow: -86_400)
        let end = Date(timeIntervalSinceNow: 86_400)
        let ark = try AMDStyleCertificateBuilder.build(
            serial: 1, issuerCN: "ARK-Milan", subjectCN: "ARK-Milan", notBefore: start, notAfter: end, subjectKey: .rsa(key.publicKey), extensions: [],
            issuerKey: key)
        let ask = try AMDStyleCertificateBuilder.build(
            serial: 2, issuerCN: "ARK-Milan", subjectCN: "SEV-Milan", notBefore: start, notAfter: end, subjectKey: .rsa(key.publicKey), extensions: [],
            issuerKey: key)
        let sim = Fixtures.tee
        let report = try sim.report(reportData: [UInt8](repeating: 0, count: 64))
        // With a VCEK actually issued by the forged ASK, the failure is the untrusted root.
        let forgedTEE = try ForgedIssuer(askKey: key, askCN: "SEV-Milan", base: sim)
        let e = try #require(throws: AttestationError.self) {
            try SNPVerifier(allowSimulated: true).verify(report: report, endorsementKey: forgedTEE.vcekDER, chain: [ask, ark], at: Date())
        }
        #expect(e.code == .untrustedRoot)
    }
}

/// Re-issues the simulated VCEK (same key, same extensions) under another issuer.
struct ForgedIssuer {
    let vcekDER: [UInt8]

    init(askKey: _RSA.Signing.PrivateKey, askCN: String, base: SimulatedSNPTEE) throws {
        let t = base.tcb
        vcekDER = try AMDStyleCertificateBuilder.build(
            serial: 0, issuerCN: askCN, subjectCN: "SEV-VCEK", notBefore: Date(timeIntervalSinceNow: -86_400), notAfter: Date(timeIntervalSinceNow: 86_400),
            subjectKey: .p384(base.vcekPublicKey),
            extensions: [
                ("1.3.6.1.4.1.3704.1.3.1", .integer(Int(t.bootloader))), ("1.3.6.1.4.1.3704.1.3.2", .integer(Int(t.tee))),
                ("1.3.6.1.4.1.3704.1.3.3", .integer(Int(t.snp))), ("1.3.6.1.4.1.3704.1.3.8", .integer(Int(t.microcode))),
                ("1.3.6.1.4.1.3704.1.4", .raw(base.chipID)),
            ],
            issuerKey: askKey)
    }
}
