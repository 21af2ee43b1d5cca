import Foundation
import Testing

@testable import BlindAIAttestation

struct SNPCase: Sendable, CustomStringConvertible {
    let report: String
    let vek: String
    let chain: String
    let time: String
    let product: SNPProduct
    let signer: SNPSigner
    let version: UInt32
    let tcb: SNPTCB
    let measurementPrefix: String
    let debug: Bool
    var description: String { report }
}

let snpCases: [SNPCase] = [
    SNPCase(report: "sev-snp/milan/gosev_attestation.bin", vek: "sev-snp/milan/gosev_vcek.der", chain: "sev-snp/roots/milan/ask_ark_milan_vcek.pem",
            time: "2022-09-24T01:00:00Z", product: .milan, signer: .vcek, version: 2,
            tcb: SNPTCB(bootloader: 2, tee: 0, snp: 5, microcode: 68), measurementPrefix: "b07af962", debug: true),
    SNPCase(report: "sev-snp/milan/virtee_report_milan.bin", vek: "sev-snp/milan/virtee_vcek_milan.der", chain: "sev-snp/roots/milan/ask_ark_milan_vcek.pem",
            time: "2024-01-01T00:00:00Z", product: .milan, signer: .vcek, version: 2,
            tcb: SNPTCB(bootloader: 3, tee: 0, snp: 8, microcode: 115), measurementPrefix: "7a1e5c26", debug: false),
    SNPCase(report: "sev-snp/milan/trustee_report.bin", vek: "sev-snp/milan/trustee_vcek.der", chain: "sev-snp/roots/milan/ask_ark_milan_vcek.pem",
            time: "2024-01-01T00:00:00Z", product: .milan, signer: .vcek, version: 2,
            tcb: SNPTCB(bootloader: 3, tee: 0, snp: 8, microcode: 115), measurementPrefix: "a1f39304", debug: false),
    SNPCase(report: "sev-snp/milan/trustee_aws_vlek_report.bin", vek: "sev-snp/milan/trustee_aws_vlek.der", chain: "sev-snp/roots/milan/ask_ark_milan_vlek.pem",
            time: "2025-06-01T00:00:00Z", product: .milan, signer: .vlek, version: 3,
            tcb: SNPTCB(bootloader: 4, tee: 0, snp: 24, microcode: 217), measurementPrefix: "8922ebbd", debug: false),
    SNPCase(report: "sev-snp/genoa/azure_genoa_report.bin", vek: "sev-snp/genoa/azure_genoa_vcek.pem", chain: "sev-snp/roots/genoa/ask_ark_genoa_vcek.pem",
            time: "2025-06-01T00:00:00Z", product: .genoa, signer: .vcek, version: 3,
            tcb: SNPTCB(bootloader: 10, tee: 0, snp: 23, microcode: 84), measurementPrefix: "f57dc09a", debug: false),
    SNPCase(report: "sev-snp/genoa/attrs_genoa_v5_report.bin", vek: "sev-snp/genoa/attrs_genoa_v5_vcek.der", chain: "sev-snp/roots/genoa/ask_ark_genoa_vcek.pem",
            time: "2026-07-01T00:00:00Z", product: .genoa, signer: .vcek, version: 5,
            tcb: SNPTCB(bootloader: 10, tee: 0, snp: 27, microcode: 27), measurementPrefix: "d9912ba3", debug: false),
    SNPCase(report: "sev-snp/turin/anolis_turin_report.bin", vek: "sev-snp/turin/anolis_turin_vcek.der", chain: "sev-snp/roots/turin/ask_ark_turin_vcek.pem",
            time: "2026-07-01T00:00:00Z", product: .turin, signer: .vcek, version: 5,
            tcb: SNPTCB(bootloader: 3, tee: 2, snp: 5, microcode: 97, fmc: 1), measurementPrefix: "a13039ba", debug: false),
]

@Suite("SEV-SNP real vectors")
struct SNPVectorTests {
    @Test("every real report verifies at its pinned time with the evidence chain", arguments: snpCases)
    func verifiesWithSuppliedChain(_ c: SNPCase) throws {
        let v = try SNPVerifier().verify(
            report: try Vectors.bytes(c.report), endorsementKey: try Vectors.bytes(c.vek), chain: try Vectors.pemBlocks(c.chain), at: date(c.time))
        #expect(v.product == c.product)
        #expect(v.signer == c.signer)
        #expect(v.report.version == c.version)
        #expect(v.reportedTCB == c.tcb)
        #expect(Hex.encode(v.report.measurement).hasPrefix(c.measurementPrefix))
        #expect(v.report.isDebugAllowed == c.debug)
        #expect(v.rootKind == .vendor)
    }

    @Test("every real report verifies with only the pinned roots", arguments: snpCases)
    func verifiesWithPinnedRootsOnly(_ c: SNPCase) throws {
        let v = try SNPVerifier().verify(report: try Vectors.bytes(c.report), endorsementKey: try Vectors.bytes(c.vek), at: date(c.time))
        #expect(v.product == c.product)
    }

    @Test("the pinned roots are byte-identical to the vectors' roots")
    func pinnedRootsMatchVectors() throws {
        for roots in SNPTrustAnchors.amd.roots {
            let dir = roots.product.rawValue.lowercased()
            let vcek = try Vectors.pemBlocks("sev-snp/roots/\(dir)/ask_ark_\(dir)_vcek.pem")
            let vlek = try Vectors.pemBlocks("sev-snp/roots/\(dir)/ask_ark_\(dir)_vlek.pem")
            #expect(roots.ask.derBytes == vcek[0])
            #expect(roots.ark.derBytes == vcek[1])
            #expect(roots.asvk.derBytes == vlek[0])
            #expect(roots.ark.subjectCommonName == "ARK-\(roots.product.rawValue)")
        }
    }

    @Test("the second Turin VCEK chains to the Turin ASK")
    func turinChainOnly() throws {
        let vcek = try DERCertificate(derEncoded: try Vectors.bytes("sev-snp/turin/virtee_vcek_turin.der"))
        let turin = try #require(SNPTrustAnchors.amd.roots.first { $0.product == .turin })
        #expect(vcek.isSigned(by: turin.ask))
        #expect(turin.ask.isSigned(by: turin.ark))
        #expect(vcek.isValid(at: date("2026-07-01T00:00:00Z")))
        #expect(vcek.extensionValue(SNPVerifier.hwIDOID)?.count == 8)
    }

    @Test("the VLEK is expired after 2025-12-10")
    func vlekExpired() throws {
        let c = snpCases[3]
        expectCode(.certificateNotValidAtTime) {
            _ = try SNPVerifier().verify(report: try Vectors.bytes(c.report), endorsementKey: try Vectors.bytes(c.vek), at: date("2026-07-01T00:00:00Z"))
        }
    }

    @Test("edited VCEK with a raw hwID fails its signature check")
    func negativeRawHWID() throws {
        let c = snpCases[2]
        expectCode(.certificateSignatureInvalid) {
            _ = try SNPVerifier().verify(
                report: try Vectors.bytes(c.report), endorsementKey: try Vectors.bytes("sev-snp/negative/trustee_vcek_hwid_raw_badsig.der"), at: date(c.time))
        }
    }

    @Test("edited VCEK with an OCTET STRING hwID fails its signature check")
    func negativeWrappedHWID() throws {
        let c = snpCases[2]
        expectCode(.certificateSignatureInvalid) {
            _ = try SNPVerifier().verify(
                report: try Vectors.bytes(c.report), endorsementKey: try Vectors.bytes("sev-snp/negative/trustee_vcek_hwid_octetstring_badsig.der"),
                at: date(c.time))
        }
    }

    @Test("the edited VCEKs' hwID parses in both encodings")
    func negativeHWIDEncodings() throws {
        let raw = try DERCertificate(derEncoded: try Vectors.bytes("sev-snp/negative/trustee_vcek_hwid_raw_badsig.der"))
        let wrapped = try DERCertificate(derEncoded: try Vectors.bytes("sev-snp/negative/trustee_vcek_hwid_octetstring_badsig.der"))
        #expect(raw.extensionValue(SNPVerifier.hwIDOID) == Array(0..<64))
        #expect(wrapped.extensionValue(SNPVerifier.hwIDOID) == [0x04, 0x40] + Array(0..<64))
    }
}
