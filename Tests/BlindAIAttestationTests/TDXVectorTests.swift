import Foundation
import Testing

@testable import BlindAIAttestation

struct TDXCase: Sendable, CustomStringConvertible {
    let quote: String
    let collateralDir: String?
    let time: String
    let version: UInt16
    let bodyType: UInt16
    let fmspc: String
    let mrtdPrefix: String
    let debug: Bool
    /// nil: no tcbInfo in the set.
    let status: TDXTCBStatus?
    let trailing: Int
    var description: String { quote }
}

let tdxCases: [TDXCase] = [
    // Set A: full go-tdx-guest collateral; no TCB level matches (README §3.1).
    TDXCase(quote: "tdx/go-tdx-guest/tdx_prod_quote_SPR_E4.dat", collateralDir: "tdx/go-tdx-guest/collateral", time: "2023-07-01T01:00:00Z",
            version: 4, bodyType: 2, fmspc: "50806f000000", mrtdPrefix: "6363b804", debug: false, status: .notSupported, trailing: 39),
    TDXCase(quote: "tdx/go-tdx-guest/tdx_prod_quote_SPR_E4.trimmed.dat", collateralDir: "tdx/go-tdx-guest/collateral", time: "2023-07-01T01:00:00Z",
            version: 4, bodyType: 2, fmspc: "50806f000000", mrtdPrefix: "6363b804", debug: false, status: .notSupported, trailing: 0),
    // Set C: dcap-qvl v4, UpToDate.
    TDXCase(quote: "tdx/dcap-qvl/tdx_quote_v4_b0c06f.dat", collateralDir: "tdx/dcap-qvl/collateral_v4_b0c06f", time: "2025-07-01T00:00:00Z",
            version: 4, bodyType: 2, fmspc: "b0c06f000000", mrtdPrefix: "91eb2b44", debug: false, status: .upToDate, trailing: 70),
    // Set D: dcap-qvl v5 "outdated": no level matches.
    TDXCase(quote: "tdx/dcap-qvl/tdx_quote_v5_90c06f_outdated.dat", collateralDir: "tdx/dcap-qvl/collateral_v5_90c06f_outdated",
            time: "2026-03-01T00:00:00Z", version: 5, bodyType: 3, fmspc: "90c06f000000", mrtdPrefix: "273828c4", debug: false, status: .notSupported,
            trailing: 0),
    // Set B': go-tdx-guest v5 quote with the dcap-qvl collateral of the same FMSPC.
    TDXCase(quote: "tdx/go-tdx-guest/quote_v5_sample.dat", collateralDir: "tdx/dcap-qvl/collateral_v5_90c06f_outdated", time: "2026-03-01T00:00:00Z",
            version: 5, bodyType: 3, fmspc: "90c06f000000", mrtdPrefix: "7348651a", debug: false, status: .upToDate, trailing: 0),
    // Set F: trustee quotes published without collateral, paired with the full collateral of their FMSPC
    // (quote 4 with set A's, quote 5 with set D's) at a time inside both windows.
    TDXCase(quote: "tdx/trustee/tdx_quote_4_debug_td.dat", collateralDir: "tdx/go-tdx-guest/collateral", time: "2023-07-01T01:00:00Z",
            version: 4, bodyType: 2, fmspc: "50806f000000", mrtdPrefix: "705ee938", debug: true, status: .upToDate, trailing: 0),
    TDXCase(quote: "tdx/trustee/tdx_quote_5_v5.dat", collateralDir: "tdx/dcap-qvl/collateral_v5_90c06f_outdated", time: "2026-03-01T00:00:00Z",
            version: 5, bodyType: 3, fmspc: "90c06f000000", mrtdPrefix: "dfba221b", debug: false, status: .notSupported, trailing: 0),
]

func loadCollateral(_ c: TDXCase) throws -> TDXCollateral {
    guard let dir = c.collateralDir else { return TDXCollateral() }
    return TDXCollateral.load(directory: try Vectors.directory(dir), fmspc: c.fmspc)
}

@Suite("TDX real vectors")
struct TDXVectorTests {
    @Test("every real quote verifies at its pinned time", arguments: tdxCases)
    func verifies(_ c: TDXCase) async throws {
        let collateral = try loadCollateral(c)
        let verifier = collateral.isComplete ? TDXVerifier() : TDXVerifier.quoteLayer()
        let v = try await verifier.verify(quote: try Vectors.bytes(c.quote), collateral: collateral, at: date(c.time))
        #expect(v.quote.version == c.version)
        #expect(v.quote.bodyType == c.bodyType)
        #expect(Hex.encode(v.pck.fmspc) == c.fmspc)
        #expect(Hex.encode(v.quote.body.mrTD).hasPrefix(c.mrtdPrefix))
        #expect(v.quote.body.isDebug == c.debug)
        #expect(v.tcb?.status == c.status)
        #expect(v.quote.trailingByteCount == c.trailing)
        #expect(v.checkedPCKCRL == (collateral.pckCRL != nil))
        #expect(v.checkedRootCACRL == (collateral.rootCACRL != nil))
        #expect(v.checkedQEIdentity == (collateral.qeIdentityJSON != nil))
        if collateral.qeIdentityJSON != nil { #expect(v.tcb?.qeStatus == .upToDate) }
    }

    @Test("set B: go-tdx-guest v5 with its tcbInfo and the renewed TCB Signing certificate is UpToDate")
    func setB() async throws {
        let collateral = TDXCollateral(tcbInfoJSON: try Vectors.bytes("tdx/go-tdx-guest/collateral/tcbInfo_fmspc_90c06f000000.json"),
                                       tcbInfoIssuerChainPEM: String(decoding: try Vectors.bytes("tdx/go-tdx-guest/collateral/tcbInfo_issuer_chain.pem"), as: UTF8.self))
        let v = try await TDXVerifier.quoteLayer().verify(quote: try Vectors.bytes("tdx/go-tdx-guest/quote_v5_sample.dat"), collateral: collateral,
                                               at: date("2026-02-03T01:00:00Z"))
        #expect(v.tcb?.status == .upToDate)
        #expect(v.tcb?.tdxModuleStatus == .upToDate)
    }

    @Test("set B with only the expired 2018-2025 TCB Signing certificate fails")
    func setBOldSigner() async throws {
        let anchors = TDXTrustAnchors(rootCA: TDXTrustAnchors.intel.rootCA, tcbSigning: [
            try DERCertificate(bytes: try Vectors.bytes("tdx/intermediates/intel_sgx_tcb_signing_2018-2025.pem")),
        ])
        let collateral = TDXCollateral(tcbInfoJSON: try Vectors.bytes("tdx/go-tdx-guest/collateral/tcbInfo_fmspc_90c06f000000.json"))
        await expectCodeAsync(.certificateNotValidAtTime) {
            _ = try await TDXVerifier.quoteLayer(anchors: anchors).verify(
                quote: try Vectors.bytes("tdx/go-tdx-guest/quote_v5_sample.dat"), collateral: collateral, at: date("2026-02-03T01:00:00Z"))
        }
    }

    @Test("set E: trustee quote 6 is OutOfDate (PCESVN below the first level), TDX_03 module UpToDate")
    func setE() async throws {
        let collateral = TDXCollateral(tcbInfoJSON: try Vectors.bytes("tdx/trustee/tcbInfo_fmspc_00a06d080000.json"),
                                       qeIdentityJSON: try Vectors.bytes("tdx/trustee/qeIdentity.json"))
        let v = try await TDXVerifier.quoteLayer().verify(quote: try Vectors.bytes("tdx/trustee/tdx_quote_6.dat"), collateral: collateral,
                                               at: date("2025-11-01T00:00:00Z"))
        #expect(v.tcb?.status == .outOfDate)
        #expect(v.tcb?.platformStatus == .outOfDate)
        #expect(v.tcb?.tdxModuleStatus == .upToDate)
        #expect(v.tcb?.qeStatus == .upToDate)
        #expect(Hex.encode(v.pck.fmspc) == "00a06d080000")
    }

    @Test("dcap-qvl QuoteCollateralV3 bundles verify like the split directories", arguments: [
        ("tdx/dcap-qvl/tdx_quote_v4_b0c06f.dat", "tdx/dcap-qvl/tdx_quote_v4_b0c06f_collateral.json", "2025-07-01T00:00:00Z", TDXTCBStatus.upToDate),
        ("tdx/dcap-qvl/tdx_quote_v5_90c06f_outdated.dat", "tdx/dcap-qvl/tdx_quote_v5_90c06f_outdated_collateral.json", "2026-03-01T00:00:00Z",
         TDXTCBStatus.notSupported),
    ])
    func quoteCollateralV3(_ quote: String, _ collateral: String, _ time: String, _ status: TDXTCBStatus) async throws {
        let c = try TDXCollateral.load(quoteCollateralV3JSON: try Vectors.bytes(collateral))
        let v = try await TDXVerifier().verify(quote: try Vectors.bytes(quote), collateral: c, at: date(time))
        #expect(v.tcb?.status == status)
        #expect(v.checkedPCKCRL && v.checkedRootCACRL && v.checkedQEIdentity)
    }

    @Test("the pinned Intel certificates equal the vectors'")
    func pinnedIntel() throws {
        #expect(TDXTrustAnchors.intel.rootCA.derBytes == (try Vectors.bytes("tdx/roots/intel_sgx_root_ca.der")))
        #expect(TDXTrustAnchors.intel.tcbSigning.map(\.derBytes).contains(try Vectors.pemBlocks("tdx/intermediates/intel_sgx_tcb_signing_2025-2032.pem")[0]))
        #expect(TDXTrustAnchors.intel.tcbSigning.map(\.derBytes).contains(try Vectors.pemBlocks("tdx/intermediates/intel_sgx_tcb_signing_2018-2025.pem")[0]))
    }

    @Test("the PCK CRLs parse with the documented entry counts")
    func crlCounts() throws {
        #expect(try DERCertificateRevocationList(derEncoded: try Vectors.bytes("tdx/go-tdx-guest/collateral/pck_crl_platform.der")).revokedSerials.count == 44)
        #expect(try DERCertificateRevocationList(derEncoded: try Vectors.bytes("tdx/go-tdx-guest/collateral/root_ca_crl.der")).revokedSerials.isEmpty)
        #expect(try DERCertificateRevocationList(derEncoded: try Vectors.bytes("tdx/dcap-qvl/collateral_v5_90c06f_outdated/pck_crl_platform.der")).revokedSerials.count == 57)
    }

    @Test("raw tcbInfo bytes are found without re-serializing")
    func rawJSON() throws {
        let json = try Vectors.bytes("tdx/go-tdx-guest/collateral/tcbInfo_fmspc_50806f000000.json")
        let (body, sig) = try RawJSON.signedObject(json, key: "tcbInfo")
        #expect(body.count == 2245)
        #expect(sig.count == 64)
        let qe = try RawJSON.signedObject(try Vectors.bytes("tdx/go-tdx-guest/collateral/qeIdentity.json"), key: "enclaveIdentity")
        #expect(qe.body.count == 461)
        #expect(throws: AttestationError.self) { try RawJSON.topLevelMembers(Array(#"{"a":1,"a":2}"#.utf8)) }
    }
}
