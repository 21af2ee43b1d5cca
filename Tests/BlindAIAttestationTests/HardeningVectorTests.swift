import Foundation
import Testing

@testable import BlindAIAttestation

/// Issue 10 items 4, 5 and 6 on the real vectors (mutated where a negative case needs it).
@Suite("Hardening on real vectors")
struct HardeningVectorTests {
    /// Offline verification: no claims document, so the TLS key origin rule is waived here (see the producer tests).
    func offline(_ policy: AttestationPolicy) -> AttestationVerifier {
        var p = policy
        p.allowTLSKeyFromFile = true
        return AttestationVerifier(policy: p)
    }

    func snp(_ c: SNPCase, _ policy: AttestationPolicy, crl: [UInt8]? = nil) throws -> VerifiedClaims {
        try offline(policy).verifySNP(
            report: try Vectors.bytes(c.report), endorsementKey: try Vectors.bytes(c.vek), chain: try Vectors.pemBlocks(c.chain), crl: crl, at: date(c.time))
    }

    func tdx(_ c: TDXCase, _ policy: AttestationPolicy, _ adjust: (inout TDXCollateral) -> Void = { _ in }) async throws -> VerifiedClaims {
        var collateral = try loadCollateral(c)
        adjust(&collateral)
        return try await offline(policy).verifyTDX(quote: try Vectors.bytes(c.quote), collateral: collateral, at: date(c.time))
    }

    static let anySNP = AttestationPolicy(snp: .init(anyMeasurement: true), tdx: nil)
    static let anyTDX = AttestationPolicy(snp: nil, tdx: .init(anyMeasurement: true, allowedTCBStatuses: nil))

    // MARK: Item 4: TDX revocation and QE identity are required

    @Test("TDX evidence without the PCK CRL, the Root CA CRL or the QE identity is refused, also with no policy (authenticityOnly)")
    func tdxCollateralRequired() async throws {
        let c = tdxCases[2]
        _ = try await tdx(c, .authenticityOnly)
        let drops: [(String, (inout TDXCollateral) -> Void)] = [
            ("PCK CRL", { $0.pckCRL = nil }), ("Root CA CRL", { $0.rootCACRL = nil }), ("QE identity", { $0.qeIdentityJSON = nil }),
        ]
        for (what, drop) in drops {
            let e = await expectCodeAsync(.collateralMissing) { _ = try await tdx(c, .authenticityOnly, drop) }
            #expect(e?.reason.contains(what) == true, "\(what): \(e?.reason ?? "")")
        }
        // The same through an evidence bundle whose host left the PCK CRL out.
        var files = TDXCollateral.files(inDirectory: try Vectors.directory(try #require(c.collateralDir)))
        files["pck_crl_platform.der"] = nil
        let bundle = EvidenceBundle(tee: .tdx, report: try Vectors.bytes(c.quote), collateral: files)
        await expectCodeAsync(.collateralMissing) { _ = try await AttestationVerifier(policy: .authenticityOnly).verify(bundle: bundle, binding: nil, at: date(c.time)) }
        // The vectors published without CRLs (trustee set E, quote-only sets) cannot be accepted.
        let setE = TDXCollateral(tcbInfoJSON: try Vectors.bytes("tdx/trustee/tcbInfo_fmspc_00a06d080000.json"),
                                 qeIdentityJSON: try Vectors.bytes("tdx/trustee/qeIdentity.json"))
        await expectCodeAsync(.collateralMissing) {
            _ = try await TDXVerifier().verify(quote: try Vectors.bytes("tdx/trustee/tdx_quote_6.dat"), collateral: setE, at: date("2025-11-01T00:00:00Z"))
        }
        await expectCodeAsync(.collateralMissing) {
            _ = try await TDXVerifier().verify(quote: try Vectors.bytes("tdx/go-tdx-guest/quote_v5_sample.dat"), at: date("2026-02-03T01:00:00Z"))
        }
    }

    @Test("tdx.minimumTCBEvaluationDataNumber: set C's collateral is number 17, set B' is 18")
    func evaluationDataNumberFloor() async throws {
        let c = tdxCases[2]
        let claims = try await tdx(c, Self.anyTDX)
        #expect(claims.tdx?.tcbInfoEvaluationDataNumber == 17)
        #expect(claims.tdx?.qeIdentityEvaluationDataNumber == 17)
        var p = Self.anyTDX
        p.tdx?.minimumTCBEvaluationDataNumber = 17
        _ = try await tdx(c, p)
        p.tdx?.minimumTCBEvaluationDataNumber = 18
        let e = await expectCodeAsync(.tcbEvaluationDataNumberBelowMinimum) { _ = try await tdx(c, p) }
        #expect(e?.reason.contains("17, below the minimum 18") == true)
        #expect(try await tdx(tdxCases[4], p).tdx?.tcbInfoEvaluationDataNumber == 18)
        // Without TCB info the floor cannot be checked.
        await expectCodeAsync(.collateralMissing) { _ = try await tdx(c, p) { $0.tcbInfoJSON = nil } }
        let loaded = try AttestationPolicy.load(json: Data(#"{"tdx": {"anyMeasurement": true, "minimumTCBEvaluationDataNumber": 18}}"#.utf8))
        #expect(loaded.tdx?.minimumTCBEvaluationDataNumber == 18)
        expectCode(.malformedPolicy) { _ = try AttestationPolicy.load(json: Data(#"{"tdx": {"anyMeasurement": true, "minimumTCBEvaluationDataNumber": -1}}"#.utf8)) }
    }

    @Test("SNP: an AMD CRL that the root did not issue is invalid; requireCRL refuses evidence without one")
    func snpCRL() throws {
        let c = snpCases[1]
        let intelCRL = try Vectors.bytes("tdx/go-tdx-guest/collateral/root_ca_crl.der")
        let e = expectCode(.crlInvalid) { _ = try snp(c, Self.anySNP, crl: intelCRL) }
        #expect(e?.reason.contains("ARK-Milan") == true)
        expectCode(.crlInvalid) { _ = try snp(c, Self.anySNP, crl: Array(intelCRL.dropLast(3))) }
        var p = Self.anySNP
        p.snp?.requireCRL = true
        expectCode(.collateralMissing) { _ = try snp(c, p) }
        #expect(try snp(c, Self.anySNP).snp?.checkedCRL == false)
        #expect(try AttestationPolicy.load(json: Data(#"{"snp": {"anyMeasurement": true, "requireCRL": true}}"#.utf8)).snp?.requireCRL == true)
    }

    @Test("SNP: AMD's real Genoa and Milan CRLs verify under the pinned ARKs, and are refused for another product, out of date, or edited")
    func snpRealCRL() async throws {
        let genoaCRL = try Vectors.bytes("sev-snp/crl/amd_genoa_vcek_crl.der")
        let milanCRL = try Vectors.bytes("sev-snp/crl/amd_milan_vcek_crl.der")
        #expect(try DERCertificateRevocationList(derEncoded: genoaCRL).revokedSerials == [[0x02, 0x00, 0x01]])
        #expect(try DERCertificateRevocationList(derEncoded: milanCRL).revokedSerials.isEmpty)
        var p = Self.anySNP
        p.snp?.requireCRL = true
        // Azure Genoa report at its pinned time 2025-06-01, inside the CRL's window (2024-10-23 .. 2025-11-03); its ASK
        // is serial 0x020002, not the revoked 0x020001.
        let genoa = snpCases[4]
        #expect(try snp(genoa, p, crl: genoaCRL).snp?.checkedCRL == true)
        // The same through an evidence bundle that carries the CRL as collateral.
        let bundle = EvidenceBundle(
            tee: .sevSNP, report: try Vectors.bytes(genoa.report), certificates: [try Vectors.bytes(genoa.vek)] + (try Vectors.pemBlocks(genoa.chain)),
            collateral: [SNPCollateral.crlFileName(for: .vcek): genoaCRL])
        #expect(try await offline(p).verify(bundle: bundle, binding: nil, at: date(genoa.time)).snp?.checkedCRL == true)
        // virtee's Milan report at 2025-06-01 (its VCEK is valid until 2030) with the Milan CRL.
        let milan = snpCases[1]
        let milanClaims = try offline(p).verifySNP(
            report: try Vectors.bytes(milan.report), endorsementKey: try Vectors.bytes(milan.vek), chain: try Vectors.pemBlocks(milan.chain), crl: milanCRL,
            at: date("2025-06-01T00:00:00Z"))
        #expect(milanClaims.snp?.checkedCRL == true)
        // Genoa's CRL for a Milan chain: another issuer.
        let other = expectCode(.crlInvalid) {
            _ = try offline(p).verifySNP(
                report: try Vectors.bytes(milan.report), endorsementKey: try Vectors.bytes(milan.vek), chain: try Vectors.pemBlocks(milan.chain),
                crl: genoaCRL, at: date("2025-06-01T00:00:00Z"))
        }
        #expect(other?.reason.contains("ARK-Genoa") == true)
        // After its nextUpdate.
        await expectCodeAsync(.collateralNotValidAtTime) { _ = try await offline(p).verify(bundle: bundle, binding: nil, at: date("2025-12-01T00:00:00Z")) }
        // One bit of its signature flipped.
        var edited = genoaCRL
        edited[edited.count - 1] ^= 0x01
        expectCode(.crlInvalid) { _ = try snp(genoa, p, crl: edited) }
    }

    // MARK: Item 5: "any measurement" is explicit

    @Test("{\"snp\":{}} and {\"tdx\":{}} are refused; anyMeasurement must be said, and not beside a list")
    func anyMeasurementIsExplicit() async throws {
        for json in [#"{"snp": {}}"#, #"{"tdx": {}}"#, #"{"snp": {"maximumVMPL": 0}}"#, #"{"tdx": {"allowedTCBStatuses": ["UpToDate"]}}"#] {
            let e = expectCode(.malformedPolicy) { _ = try AttestationPolicy.load(json: Data(json.utf8)) }
            #expect(e?.reason.contains("anyMeasurement") == true, "\(json)")
        }
        let m = String(repeating: "ab", count: 48)
        expectCode(.malformedPolicy) { _ = try AttestationPolicy.load(json: Data(#"{"snp": {"measurements": ["\#(m)"], "anyMeasurement": true}}"#.utf8)) }
        let any = try AttestationPolicy.load(json: Data(#"{"snp": {"anyMeasurement": true}}"#.utf8))
        #expect(try snp(snpCases[1], any).measurement.hasPrefix("7a1e5c26"))
        // A policy built in code without measurements accepts none.
        let e = expectCode(.measurementNotAllowed) { _ = try snp(snpCases[1], AttestationPolicy()) }
        #expect(e?.reason.contains("anyMeasurement") == true)
        await expectCodeAsync(.measurementNotAllowed) { _ = try await tdx(tdxCases[2], AttestationPolicy(snp: nil)) }
    }

    // MARK: Item 6: SNP launch settings

    @Test("snp.allowSMT, requireSingleSocket and minimumABI on the real guest policies (0x30000, 0x3001f)")
    func snpGuestPolicy() throws {
        #expect(try snp(snpCases[1], Self.anySNP).snp?.guestPolicy == SNPGuestPolicy(raw: 0x30000))
        var p = Self.anySNP
        p.snp?.allowSMT = false
        let e = expectCode(.guestPolicyNotAllowed) { _ = try snp(snpCases[1], p) }
        #expect(e?.reason.contains("SMT (bit 16)") == true)
        p = Self.anySNP
        p.snp?.requireSingleSocket = true
        expectCode(.guestPolicyNotAllowed) { _ = try snp(snpCases[1], p) }
        // trustee_report's policy 0x3001f requires ABI 0.31.
        p = Self.anySNP
        p.snp?.minimumABI = .init(major: 0, minor: 31)
        _ = try snp(snpCases[2], p)
        p.snp?.minimumABI = .init(major: 0, minor: 32)
        expectCode(.guestPolicyNotAllowed) { _ = try snp(snpCases[2], p) }
        p.snp?.minimumABI = .init(major: 1, minor: 0)
        expectCode(.guestPolicyNotAllowed) { _ = try snp(snpCases[2], p) }
        let loaded = try AttestationPolicy.load(
            json: Data(#"{"snp": {"anyMeasurement": true, "allowSMT": false, "requireSingleSocket": true, "minimumABI": {"major": 1, "minor": 55}, "allowMigrationAgent": false}}"#.utf8))
        #expect(loaded.snp?.minimumABI == .init(major: 1, minor: 55))
        #expect(loaded.snp?.allowSMT == false && loaded.snp?.requireSingleSocket == true)
        expectCode(.malformedPolicy) { _ = try AttestationPolicy.load(json: Data(#"{"snp": {"anyMeasurement": true, "minimumABI": {"major": 1, "patch": 2}}}"#.utf8)) }
    }

    @Test("the real reports name no migration agent (REPORT_ID_MA all ff) and pass the default")
    func snpNoMigrationAgent() throws {
        for c in snpCases where !c.debug {
            let claims = try snp(c, Self.anySNP)
            #expect(claims.snp?.reportIDMA == String(repeating: "f", count: 64), "\(c)")
            #expect(claims.snp?.guestPolicy.migrateMA == false)
        }
    }

    @Test("snp.vlekCSPIDs: the AWS VLEK's cspID")
    func vlekCSPID() throws {
        let c = snpCases[3]
        var p = Self.anySNP
        // The extension's IA5String is the text "CN=cc-us-east-2.amazonaws.com" (vectors README §1.1).
        p.snp?.vlekCSPIDs = ["CN=cc-us-east-2.amazonaws.com"]
        #expect(try snp(c, p).snp?.cspID == "CN=cc-us-east-2.amazonaws.com")
        p.snp?.vlekCSPIDs = ["cc-eu-west-1.example.com"]
        let e = expectCode(.cspIDNotAllowed) { _ = try snp(c, p) }
        #expect(e?.reason.contains("cc-us-east-2.amazonaws.com") == true)
        // VCEK-signed reports are not constrained by it.
        #expect(try snp(snpCases[1], p).snp?.cspID == nil)
    }

    @Test("snp.hostData allowlist against the real report's HOST_DATA")
    func snpHostData() throws {
        let actual = try #require(try snp(snpCases[4], Self.anySNP).snp?.hostData)
        var p = Self.anySNP
        p.snp?.hostData = [actual.uppercased()]
        _ = try snp(snpCases[4], p)
        p.snp?.hostData = [String(repeating: "5a", count: 32)]
        expectCode(.hostDataNotAllowed) { _ = try snp(snpCases[4], p) }
    }

    @Test("SIGNER_INFO bit 1 (MASK_CHIP_KEY) set on a real report is refused by name; a zero CHIP_ID is 'masked'")
    func maskChipKeyBit() throws {
        let c = snpCases[1]
        var report = try Vectors.bytes(c.report)
        report[0x48] |= 0x02
        let e = expectCode(.reportSignatureInvalid) {
            _ = try SNPVerifier().verify(report: report, endorsementKey: try Vectors.bytes(c.vek), chain: try Vectors.pemBlocks(c.chain), at: date(c.time))
        }
        #expect(e?.reason.contains("MASK_CHIP_KEY") == true)
        #expect(try SNPReport(bytes: report).isChipKeyMasked)
        #expect(!(try SNPReport(bytes: report).isChipIDMasked))
        var zeroed = try Vectors.bytes(c.report)
        zeroed.replaceSubrange(0x1A0..<0x1E0, with: [UInt8](repeating: 0, count: 64))
        #expect(try SNPReport(bytes: zeroed).isChipIDMasked)
    }

    // MARK: Item 6: TDX launch settings

    @Test("TDX defaults: SEPT_VE_DISABLE required, MIGRATABLE and PERFMON refused, PKS allowed (real quotes; bits flipped in TD_ATTRIBUTES)")
    func tdxAttributes() async throws {
        let claims = try await tdx(tdxCases[2], Self.anyTDX)
        let t = try #require(claims.tdx)
        #expect(t.tdAttributes == "0000001000000000")
        #expect(t.attributes.septVEDisable && !t.attributes.migratable && !t.attributes.pks && !t.attributes.perfmon)
        // go-tdx-guest's SPR E4 quote (set A) was made without SEPT_VE_DISABLE (and with PKS): the default refuses it.
        let setA = await expectCodeAsync(.tdAttributesNotAllowed) { _ = try await tdx(tdxCases[0], Self.anyTDX) }
        #expect(setA?.reason.contains("0000004000000000 lacks SEPT_VE_DISABLE") == true)
        var lax = Self.anyTDX
        lax.tdx?.requireSEPTVEDisable = false
        let a = try #require(try await tdx(tdxCases[0], lax).tdx?.attributes)
        #expect(!a.septVEDisable && a.pks)
        lax.tdx?.allowPKS = false
        await expectCodeAsync(.tdAttributesNotAllowed) { _ = try await tdx(tdxCases[0], lax) }
        func with(_ bit: Int, set: Bool) -> String {
            var bytes = Hex.decode(t.tdAttributes) ?? []
            if set { bytes[bit / 8] |= 1 << UInt8(bit % 8) } else { bytes[bit / 8] &= ~(1 << UInt8(bit % 8)) }
            return Hex.encode(bytes)
        }
        let defaults = TDXAttributesRule(rules: .init(anyMeasurement: true))
        try defaults.check(tdAttributes: t.tdAttributes, mrServiceTD: t.mrServiceTD)
        let cases: [(Int, Bool, AttestationError.Code, String)] = [
            (28, false, .tdAttributesNotAllowed, "SEPT_VE_DISABLE"), (29, true, .migrationAgentNotAllowed, "MIGRATABLE"),
            (63, true, .tdAttributesNotAllowed, "PERFMON"),
        ]
        for (bit, set, code, name) in cases {
            let e = expectCode(code) { try defaults.check(tdAttributes: with(bit, set: set), mrServiceTD: nil) }
            #expect(e?.reason.contains(name) == true)
        }
        // PKS is allowed by default and refused on request.
        try defaults.check(tdAttributes: with(30, set: true), mrServiceTD: nil)
        let noPKS = TDXAttributesRule(rules: .init(anyMeasurement: true, allowPKS: false))
        expectCode(.tdAttributesNotAllowed) { try noPKS.check(tdAttributes: with(30, set: true), mrServiceTD: nil) }
        let permissive = TDXAttributesRule(
            rules: .init(anyMeasurement: true, requireSEPTVEDisable: false, allowMigratable: true, allowPerfmon: true))
        for (bit, set, _, _) in cases { try permissive.check(tdAttributes: with(bit, set: set), mrServiceTD: nil) }
        let loaded = try AttestationPolicy.load(
            json: Data(#"{"tdx": {"anyMeasurement": true, "requireSEPTVEDisable": false, "allowMigratable": true, "allowPKS": false, "allowPerfmon": true}}"#.utf8))
        #expect(loaded.tdx == AttestationPolicy.TDXRules(
            anyMeasurement: true, requireSEPTVEDisable: false, allowMigratable: true, allowPKS: false, allowPerfmon: true))
    }

    @Test("a bound service TD (trustee quote 5's MRSERVICETD) is refused unless tdx.mrServiceTDs lists it")
    func tdxServiceTD() async throws {
        let c = tdxCases[6]
        let e = await expectCodeAsync(.migrationAgentNotAllowed) { _ = try await tdx(c, Self.anyTDX) }
        #expect(e?.reason.contains("383c87d3") == true)
        var rules = AttestationPolicy.TDXRules(anyMeasurement: true, allowedTCBStatuses: nil)
        rules.mrServiceTDs = [String(repeating: "0", count: 96)]
        await expectCodeAsync(.migrationAgentNotAllowed) { _ = try await tdx(c, AttestationPolicy(snp: nil, tdx: rules)) }
        let claims = try await tdx(c, AttestationPolicy(snp: nil, tdx: .init(anyMeasurement: true, allowedTCBStatuses: nil, mrServiceTDs: [try serviceTD(c)])))
        #expect(claims.tdx?.mrServiceTD?.hasPrefix("383c87d3") == true)
    }

    func serviceTD(_ c: TDXCase) throws -> String {
        Hex.encode(try #require(try TDXQuote(bytes: try Vectors.bytes(c.quote)).body.mrServiceTD))
    }

    @Test("tdx.xfams, mrConfigIDs and mrOwners allowlists on a real quote")
    func tdxRegisters() async throws {
        let c = tdxCases[2]
        let t = try #require(try await tdx(c, Self.anyTDX).tdx)
        let accepted = AttestationPolicy(snp: nil, tdx: .init(anyMeasurement: true, allowedTCBStatuses: nil, xfams: [t.xfam], mrConfigIDs: [t.mrConfigID], mrOwners: [t.mrOwner]))
        _ = try await tdx(c, accepted)
        let refused: [(AttestationPolicy.TDXRules, AttestationError.Code)] = [
            (.init(anyMeasurement: true, allowedTCBStatuses: nil, xfams: ["0300000000000000"]), .xfamNotAllowed),
            (.init(anyMeasurement: true, allowedTCBStatuses: nil, mrConfigIDs: [String(repeating: "1", count: 96)]), .mrConfigIDNotAllowed),
            (.init(anyMeasurement: true, allowedTCBStatuses: nil, mrOwners: [String(repeating: "1", count: 96)]), .mrOwnerNotAllowed),
        ]
        #expect(t.xfam != "0300000000000000")
        for (rules, code) in refused { await expectCodeAsync(code) { _ = try await tdx(c, AttestationPolicy(snp: nil, tdx: rules)) } }
        expectCode(.malformedPolicy) { _ = try AttestationPolicy.load(json: Data(#"{"tdx": {"anyMeasurement": true, "xfams": ["e7"]}}"#.utf8)) }
    }
}
