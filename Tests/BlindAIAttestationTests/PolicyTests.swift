import Foundation
import Testing

@testable import BlindAIAttestation

@Suite("Policy rules on real vectors")
struct PolicyTests {
    /// Offline verification has no claims document, so these helpers waive the TLS key origin rule (tested in
    /// LaunchPolicyTests with bundles).
    func snp(_ c: SNPCase, _ policy: AttestationPolicy) throws -> VerifiedClaims {
        var p = policy
        p.allowTLSKeyFromFile = true
        return try AttestationVerifier(policy: p).verifySNP(
            report: try Vectors.bytes(c.report), endorsementKey: try Vectors.bytes(c.vek), chain: try Vectors.pemBlocks(c.chain), at: date(c.time))
    }

    func tdx(_ c: TDXCase, _ policy: AttestationPolicy, _ adjust: (inout TDXCollateral) -> Void = { _ in }) async throws -> VerifiedClaims {
        var p = policy
        p.allowTLSKeyFromFile = true
        var collateral = try loadCollateral(c)
        adjust(&collateral)
        return try await AttestationVerifier(policy: p).verifyTDX(quote: try Vectors.bytes(c.quote), collateral: collateral, at: date(c.time))
    }

    @Test("the go-sev-guest DEBUG report is rejected when debug is forbidden")
    func snpDebugRejected() throws {
        let e = expectCode(.debugNotAllowed) { _ = try snp(snpCases[0], .authenticityOnly) }
        #expect(e?.reason.contains("0xb0000") == true)
    }

    @Test("the go-sev-guest DEBUG report is accepted when debug is allowed")
    func snpDebugAllowed() throws {
        var p = AttestationPolicy.authenticityOnly
        p.allowDebug = true
        let claims = try snp(snpCases[0], p)
        #expect(claims.debug)
        #expect(claims.measurement.hasPrefix("b07af962"))
    }

    @Test("the debug TD quote is rejected when debug is forbidden")
    func tdxDebugRejected() async throws {
        await expectCodeAsync(.debugNotAllowed) { _ = try await tdx(tdxCases[5], .authenticityOnly) }
    }

    @Test("the debug TD quote is accepted when debug is allowed")
    func tdxDebugAllowed() async throws {
        var p = AttestationPolicy.authenticityOnly
        p.allowDebug = true
        let claims = try await tdx(tdxCases[5], p)
        #expect(claims.debug)
        #expect(claims.tee == .tdx)
    }

    @Test("a measurement not in the allowlist")
    func measurementNotAllowed() throws {
        let p = AttestationPolicy(snp: .init(measurements: [String(repeating: "ab", count: 48), String(repeating: "cd", count: 48)]))
        let e = expectCode(.measurementNotAllowed) { _ = try snp(snpCases[1], p) }
        #expect(e?.reason.contains("7a1e5c26") == true)
        #expect(e?.reason.contains("2 entries") == true)
    }

    @Test("a measurement in the allowlist passes")
    func measurementAllowed() throws {
        let m = "7a1e5c266c0108dbc9bb94fa926951320940915d0aafb42464bd88b579ea158d3e1a0dc39b2c60bd95b9c480cd81841f"
        let claims = try snp(snpCases[1], AttestationPolicy(snp: .init(measurements: [m.uppercased()])))
        #expect(claims.measurement == m)
    }

    @Test("a TCB below the minimum")
    func tcbBelowMinimum() throws {
        let p = AttestationPolicy(snp: .init(anyMeasurement: true, minimumTCB: .init(bootloader: 3, snp: 9)))
        let e = expectCode(.tcbBelowMinimum) { _ = try snp(snpCases[1], p) }
        #expect(e?.reason.contains("snp SVN 8 is below the minimum 9") == true)
    }

    @Test("Turin's fmc is checked against the minimum")
    func turinFMC() throws {
        #expect(try snp(snpCases[6], AttestationPolicy(snp: .init(anyMeasurement: true, minimumTCB: .init(microcode: 97, fmc: 1)))).snp?.reportedTCB.fmc == 1)
        expectCode(.tcbBelowMinimum) { _ = try snp(snpCases[6], AttestationPolicy(snp: .init(anyMeasurement: true, minimumTCB: .init(fmc: 2)))) }
    }

    @Test("a guest SVN below the minimum")
    func guestSVN() throws {
        expectCode(.guestSVNBelowMinimum) { _ = try snp(snpCases[1], AttestationPolicy(snp: .init(anyMeasurement: true, minimumGuestSVN: 1000))) }
    }

    @Test("VLEK evidence when only VCEK is allowed")
    func signerNotAllowed() throws {
        expectCode(.signerNotAllowed) { _ = try snp(snpCases[3], AttestationPolicy(snp: .init(anyMeasurement: true, signers: [.vcek]))) }
        #expect(try snp(snpCases[3], AttestationPolicy(snp: .init(anyMeasurement: true, signers: [.vlek]))).snp?.signer == .vlek)
    }

    @Test("a product outside the allowed products")
    func productNotAllowed() throws {
        expectCode(.productNotAllowed) { _ = try snp(snpCases[4], AttestationPolicy(snp: .init(anyMeasurement: true, products: [.milan, .turin]))) }
    }

    @Test("a chip ID outside the allowlist, and the VLEK that has none")
    func chipIDNotAllowed() throws {
        let p = AttestationPolicy(snp: .init(anyMeasurement: true, chipIDs: [String(repeating: "00", count: 64)]))
        expectCode(.chipIDNotAllowed) { _ = try snp(snpCases[1], p) }
        expectCode(.chipIDNotAllowed) { _ = try snp(snpCases[3], p) }
    }

    @Test("a VMPL above the maximum")
    func vmpl() throws {
        expectCode(.vmplNotAllowed) { _ = try snp(snpCases[3], AttestationPolicy(snp: .init(anyMeasurement: true, maximumVMPL: 0))) }
    }

    @Test("SNP evidence under a TDX-only policy")
    func teeNotAllowed() throws {
        expectCode(.teeNotAllowed) { _ = try snp(snpCases[1], AttestationPolicy(snp: nil)) }
    }

    @Test("TDX: UpToDate passes the default status rule; no matching level is refused")
    func tdxStatus() async throws {
        // Set A's quote lacks SEPT_VE_DISABLE (HardeningVectorTests); waived here to reach the status rule.
        let p = AttestationPolicy(snp: nil, tdx: .init(anyMeasurement: true, requireSEPTVEDisable: false))
        #expect(try await tdx(tdxCases[2], p).tdx?.tcb?.status == .upToDate)
        let e = await expectCodeAsync(.tcbStatusNotAllowed) { _ = try await tdx(tdxCases[0], p) }
        #expect(e?.reason.contains("NotSupported") == true)
    }

    @Test("TDX: OutOfDate is refused by default and accepted when listed (set E, whose missing CRLs the quote layer waives)")
    func tdxOutOfDate() async throws {
        let collateral = TDXCollateral(tcbInfoJSON: try Vectors.bytes("tdx/trustee/tcbInfo_fmspc_00a06d080000.json"),
                                       qeIdentityJSON: try Vectors.bytes("tdx/trustee/qeIdentity.json"))
        let t = date("2025-11-01T00:00:00Z")
        let claims = VerifiedClaims(try await TDXVerifier.quoteLayer().verify(quote: try Vectors.bytes("tdx/trustee/tdx_quote_6.dat"), collateral: collateral, at: t))
        expectCode(.tcbStatusNotAllowed) { try AttestationPolicy(allowTLSKeyFromFile: true, tdx: .init(anyMeasurement: true)).evaluate(claims, at: t) }
        try AttestationPolicy(allowTLSKeyFromFile: true, tdx: .init(anyMeasurement: true, allowedTCBStatuses: [.upToDate, .outOfDate])).evaluate(claims, at: t)
        #expect(claims.tdx?.tcb?.status == .outOfDate)
    }

    @Test("TDX: a status rule without TCB info is refused")
    func tdxCollateralMissing() async throws {
        await expectCodeAsync(.collateralMissing) { _ = try await tdx(tdxCases[2], AttestationPolicy(tdx: .init(anyMeasurement: true))) { $0.tcbInfoJSON = nil } }
    }

    @Test("TDX: MRTD and RTMR allowlist")
    func tdxMeasurements() async throws {
        let c = tdxCases[2]
        let mrtd = "91eb2b44d141d4ece09f0c75c2c53d247a3c68edd7fafe8a3520c942a604a407de03ae6dc5f87f27428b2538873118b7"
        let claims = try await tdx(c, AttestationPolicy(tdx: .init(measurements: [.init(mrtd: mrtd)])))
        let rtmr0 = try #require(claims.tdx?.rtmrs.first)
        _ = try await tdx(c, AttestationPolicy(tdx: .init(measurements: [.init(mrtd: mrtd, rtmrs: [rtmr0, nil])])))
        await expectCodeAsync(.measurementNotAllowed) {
            _ = try await tdx(c, AttestationPolicy(tdx: .init(measurements: [.init(mrtd: mrtd, rtmrs: [String(repeating: "0", count: 96)])])))
        }
        await expectCodeAsync(.measurementNotAllowed) {
            _ = try await tdx(c, AttestationPolicy(tdx: .init(measurements: [.init(mrtd: String(repeating: "1", count: 96))])))
        }
    }

    @Test("evidence age needs a bound claims document")
    func evidenceAgeWithoutClaims() throws {
        expectCode(.evidenceTooOld) { _ = try snp(snpCases[1], AttestationPolicy(maxEvidenceAgeSeconds: 300, snp: .init(anyMeasurement: true))) }
    }

    @Test("the documented example manifest loads")
    func manifestLoads() throws {
        let json = """
            {
              "version": 1,
              "allowDebug": false,
              "allowSimulated": false,
              "maxEvidenceAgeSeconds": 300,
              "snp": {
                "measurements": ["7a1e5c266c0108dbc9bb94fa926951320940915d0aafb42464bd88b579ea158d3e1a0dc39b2c60bd95b9c480cd81841f"],
                "signers": ["VCEK", "VLEK"],
                "products": ["Milan", "Genoa", "Turin"],
                "minimumTCB": { "bootloader": 3, "tee": 0, "snp": 8, "microcode": 115 },
                "minimumGuestSVN": 0,
                "maximumVMPL": 0
              },
              "tdx": {
                "measurements": [{ "mrtd": "91eb2b44d141d4ece09f0c75c2c53d247a3c68edd7fafe8a3520c942a604a407de03ae6dc5f87f27428b2538873118b7" }],
                "allowedTCBStatuses": ["UpToDate", "SWHardeningNeeded"]
              }
            }
            """
        let p = try AttestationPolicy.load(json: Data(json.utf8))
        #expect(p.maxEvidenceAgeSeconds == 300)
        #expect(p.snp?.minimumTCB?.microcode == 115)
        #expect(p.tdx?.allowedTCBStatuses == [.upToDate, .swHardeningNeeded])
        #expect(!p.allowSimulated)
        // And it is enforced: the virtee report meets the SNP rules except the age rule (no claims document).
        expectCode(.evidenceTooOld) { _ = try snp(snpCases[1], p) }
        var noAge = p
        noAge.maxEvidenceAgeSeconds = nil
        #expect(try snp(snpCases[1], noAge).snp?.product == .milan)
    }

    @Test("a manifest with a misspelt member is refused")
    func manifestUnknownKey() throws {
        let e = expectCode(.malformedPolicy) { _ = try AttestationPolicy.load(json: Data(#"{"allowDebugg": true}"#.utf8)) }
        #expect(e?.reason.contains("allowDebugg") == true)
        expectCode(.malformedPolicy) { _ = try AttestationPolicy.load(json: Data(#"{"snp": {"minimumTCB": {"ucode": 1}}}"#.utf8)) }
        expectCode(.malformedPolicy) { _ = try AttestationPolicy.load(json: Data(#"{"snp": {"measurements": []}}"#.utf8)) }
        expectCode(.malformedPolicy) { _ = try AttestationPolicy.load(json: Data(#"{"snp": {"measurements": ["abc"]}}"#.utf8)) }
    }

    @Test("an unknown member in a tdx.measurements entry is refused (a misspelt rtmrs must not accept any RTMR)")
    func tdxMeasurementUnknownMember() throws {
        let zero96 = String(repeating: "0", count: 96)
        let mrtd = "91eb2b44d141d4ece09f0c75c2c53d247a3c68edd7fafe8a3520c942a604a407de03ae6dc5f87f27428b2538873118b7"
        let e = expectCode(.malformedPolicy) { _ = try AttestationPolicy.load(json: Data(#"{"tdx":{"measurements":[{"mrtd":"\#(mrtd)","rtmr":["\#(zero96)"]}]}}"#.utf8)) }
        #expect(e?.reason == "policy: unknown member \"rtmr\" in tdx.measurements.0 (known: mrtd, rtmrs)")
        let second = expectCode(.malformedPolicy) {
            _ = try AttestationPolicy.load(json: Data(#"{"tdx":{"measurements":[{"mrtd":"\#(mrtd)"},{"mrtd":"\#(mrtd)","RTMRs":[]}]}}"#.utf8))
        }
        #expect(second?.reason.contains("unknown member \"RTMRs\" in tdx.measurements.1") == true)
        // The spelled-out form still loads, lowercased, with null entries unconstrained.
        let p = try AttestationPolicy.load(json: Data(#"{"tdx":{"measurements":[{"mrtd":"\#(mrtd.uppercased())","rtmrs":[null,"\#(zero96)"]}]}}"#.utf8))
        #expect(p.tdx?.measurements == [AttestationPolicy.TDXMeasurement(mrtd: mrtd, rtmrs: [nil, zero96])])
        expectCode(.malformedPolicy) { _ = try AttestationPolicy.load(json: Data(#"{"tdx":{"measurements":[]}}"#.utf8)) }
        expectCode(.malformedPolicy) { _ = try AttestationPolicy.load(json: Data(#"{"tdx":{"measurements":[{"mrtd":"abc"}]}}"#.utf8)) }
        expectCode(.malformedPolicy) { _ = try AttestationPolicy.load(json: Data(#"{"tdx":{"measurements":[{"rtmrs":[]}]}}"#.utf8)) }
        expectCode(.malformedPolicy) { _ = try AttestationPolicy.load(json: Data(#"{"tdx":{"measurements":[{"mrtd":"\#(mrtd)","rtmrs":[null,null,null,null,null]}]}}"#.utf8)) }
    }

    @Test("a manifest's tdx section defaults to UpToDate only, and simulated evidence stays refused")
    func manifestDefaults() throws {
        let p = try AttestationPolicy.load(json: Data(#"{"tdx": {"anyMeasurement": true}}"#.utf8))
        #expect(p.tdx?.allowedTCBStatuses == [.upToDate])
        #expect(p.snp == nil)
        #expect(!p.allowSimulated && !p.allowDebug)
    }
}

@Suite("Evidence bundles of real vectors")
struct RealBundleTests {
    @Test("a TDX bundle with collateral files verifies through AttestationVerifier at the pinned time")
    func tdxBundle() async throws {
        let c = tdxCases[2]
        let files = TDXCollateral.files(inDirectory: try Vectors.directory(try #require(c.collateralDir)))
        #expect(files.count == 7)
        let bundle = EvidenceBundle(tee: .tdx, report: try Vectors.bytes(c.quote), collateral: files)
        let decoded = try EvidenceBundle.decode(json: try bundle.jsonData())
        let claims = try await AttestationVerifier(policy: try AttestationPolicy.load(json: Data(#"{"allowTLSKeyFromFile": true, "tdx": {"anyMeasurement": true}}"#.utf8)))
            .verify(bundle: decoded, binding: nil, at: date(c.time))
        #expect(claims.tdx?.tcb?.status == .upToDate)
        #expect(claims.tdx?.checkedPCKCRL == true)
        #expect(!claims.channelBound)
    }

    @Test("an SNP bundle verifies, and its report data is checked when a binding is given")
    func snpBundle() async throws {
        let c = snpCases[1]
        let bundle = EvidenceBundle(
            tee: .sevSNP, report: try Vectors.bytes(c.report), certificates: [try Vectors.bytes(c.vek)] + (try Vectors.pemBlocks(c.chain)),
            claims: Array(#"{"attributes":{},"issuedAt":"2024-01-01T00:00:00Z","tee":"sev-snp","version":1}"#.utf8),
            nonce: [UInt8](repeating: 0, count: 32))
        let verifier = AttestationVerifier(policy: .authenticityOnly)
        let claims = try await verifier.verify(bundle: bundle, binding: nil, at: date(c.time))
        #expect(claims.snp?.product == .milan)
        // A real report was not made for this binding: the check must refuse it.
        await expectCodeAsync(.reportDataMismatch) {
            _ = try await verifier.verify(
                bundle: bundle, binding: ChannelBindingExpectation(nonce: [UInt8](repeating: 0, count: 32), tlsSubjectPublicKeyInfo: [1, 2, 3]),
                at: date(c.time))
        }
    }

    @Test("a bundle whose claims document names another TEE is refused")
    func claimsTEEMismatch() async throws {
        let c = snpCases[1]
        let bundle = EvidenceBundle(
            tee: .sevSNP, report: try Vectors.bytes(c.report), certificates: [try Vectors.bytes(c.vek)],
            claims: Array(#"{"attributes":{},"issuedAt":"2024-01-01T00:00:00Z","tee":"tdx","version":1}"#.utf8))
        await expectCodeAsync(.claimsDocumentMismatch) {
            _ = try await AttestationVerifier(policy: .authenticityOnly).verify(bundle: bundle, binding: nil, at: date(c.time))
        }
    }
}

@Suite("Channel binding")
struct BindingTests {
    let spkiA = Array("server key A".utf8)
    let spkiB = Array("server key B".utf8)

    func bundle(reportDataFor spki: [UInt8], nonce: [UInt8], claims: [UInt8], echo: [UInt8]? = nil, tlsCert: [UInt8]? = nil) throws
        -> ([UInt8], EvidenceBundle)
    {
        let rd = try ReportDataBinding.compute(spki: spki, nonce: nonce, claimsDigest: ReportDataBinding.claimsDigest(claims))
        return (rd, EvidenceBundle(tee: .sevSNP, report: [], claims: claims, nonce: echo ?? nonce, tlsCertificate: tlsCert))
    }

    @Test("report data is SHA-512 over the domain separator, SPKI digest, nonce and claims digest")
    func construction() throws {
        let nonce = [UInt8](repeating: 7, count: 32)
        let rd = try ReportDataBinding.compute(spki: spkiA, nonce: nonce, claimsDigest: ReportDataBinding.claimsDigest([1, 2, 3]))
        #expect(rd.count == 64)
        #expect(ReportDataBinding.domainSeparator.count == 23)
        #expect(ReportDataBinding.domainSeparator.last == 0)
        #expect(rd != (try ReportDataBinding.compute(spki: spkiB, nonce: nonce, claimsDigest: ReportDataBinding.claimsDigest([1, 2, 3]))))
        expectCode(.nonceMismatch) { _ = try ReportDataBinding.compute(spki: spkiA, nonce: [1], claimsDigest: ReportDataBinding.claimsDigest([])) }
    }

    @Test("matching nonce and key pass")
    func matching() throws {
        let nonce = ChannelBindingExpectation.freshNonce()
        let (rd, b) = try bundle(reportDataFor: spkiA, nonce: nonce, claims: [9])
        try ChannelBindingExpectation(nonce: nonce, tlsSubjectPublicKeyInfo: spkiA).check(reportData: rd, bundle: b)
    }

    @Test("a wrong nonce")
    func wrongNonce() throws {
        let (rd, b) = try bundle(reportDataFor: spkiA, nonce: [UInt8](repeating: 1, count: 32), claims: [9])
        expectCode(.nonceMismatch) {
            try ChannelBindingExpectation(nonce: [UInt8](repeating: 2, count: 32), tlsSubjectPublicKeyInfo: spkiA).check(reportData: rd, bundle: b)
        }
    }

    @Test("a replay with the echoed nonce rewritten")
    func replay() throws {
        let fresh = [UInt8](repeating: 2, count: 32)
        let (rd, b) = try bundle(reportDataFor: spkiA, nonce: [UInt8](repeating: 1, count: 32), claims: [9], echo: fresh)
        expectCode(.reportDataMismatch) { try ChannelBindingExpectation(nonce: fresh, tlsSubjectPublicKeyInfo: spkiA).check(reportData: rd, bundle: b) }
    }

    @Test("a tampered claims document")
    func tamperedClaims() throws {
        let nonce = [UInt8](repeating: 3, count: 32)
        var (rd, b) = try bundle(reportDataFor: spkiA, nonce: nonce, claims: [9])
        b.claims = Data([10])
        expectCode(.reportDataMismatch) { try ChannelBindingExpectation(nonce: nonce, tlsSubjectPublicKeyInfo: spkiA).check(reportData: rd, bundle: b) }
        b.claims = Data([9])
        rd[0] ^= 1
        expectCode(.reportDataMismatch) { try ChannelBindingExpectation(nonce: nonce, tlsSubjectPublicKeyInfo: spkiA).check(reportData: rd, bundle: b) }
    }

    @Test("the SPKI is taken from a certificate of any signature algorithm")
    func spkiExtraction() throws {
        let vcek = try Vectors.bytes("sev-snp/milan/virtee_vcek_milan.der")
        let spki = try ReportDataBinding.subjectPublicKeyInfo(certificateDER: vcek)
        #expect(spki == (try DERCertificate(derEncoded: vcek)).subjectPublicKeyInfo)
        #expect(spki.first == 0x30)
    }
}
