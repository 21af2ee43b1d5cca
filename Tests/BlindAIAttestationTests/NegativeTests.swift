import Foundation
import Testing

@testable import BlindAIAttestation

/// Each case is its own test with its own expected error code.
@Suite("Negative cases on real vectors")
struct NegativeTests {
    let milan = snpCases[1]  // virtee Milan, no debug
    func milanInputs() throws -> (report: [UInt8], vek: [UInt8], chain: [[UInt8]], time: Date) {
        (try Vectors.bytes(milan.report), try Vectors.bytes(milan.vek), try Vectors.pemBlocks(milan.chain), date(milan.time))
    }

    @Test("one flipped bit in the signed part of a report")
    func flippedReportBit() throws {
        var (report, vek, chain, time) = try milanInputs()
        report[0x90] ^= 0x01  // measurement
        expectCode(.reportSignatureInvalid) { _ = try SNPVerifier().verify(report: report, endorsementKey: vek, chain: chain, at: time) }
    }

    @Test("one flipped bit in the report signature")
    func flippedSignatureBit() throws {
        var (report, vek, chain, time) = try milanInputs()
        report[0x2A0] ^= 0x01  // r, least significant byte
        expectCode(.reportSignatureInvalid) { _ = try SNPVerifier().verify(report: report, endorsementKey: vek, chain: chain, at: time) }
    }

    @Test("one flipped bit in the VCEK")
    func flippedVCEK() throws {
        let (report, vek, chain, time) = try milanInputs()
        let bad = try flipSerialBit(vek)
        #expect(bad != vek)
        expectCode(.certificateSignatureInvalid) { _ = try SNPVerifier().verify(report: report, endorsementKey: bad, chain: chain, at: time) }
    }

    @Test("one flipped bit in the ASK")
    func flippedASK() throws {
        let (report, vek, chain, time) = try milanInputs()
        let bad = [try flipSerialBit(chain[0]), chain[1]]
        expectCode(.certificateSignatureInvalid) { _ = try SNPVerifier().verify(report: report, endorsementKey: vek, chain: bad, at: time) }
    }

    @Test("one flipped bit in the ARK")
    func flippedARK() throws {
        let (report, vek, chain, time) = try milanInputs()
        let bad = [chain[0], try flipSerialBit(chain[1])]
        expectCode(.certificateSignatureInvalid) { _ = try SNPVerifier().verify(report: report, endorsementKey: vek, chain: bad, at: time) }
    }

    @Test("a chain to the wrong root (Genoa ASK and ARK supplied with a Milan VCEK)")
    func wrongRootChain() throws {
        let (report, vek, _, time) = try milanInputs()
        let genoa = try Vectors.pemBlocks("sev-snp/roots/genoa/ask_ark_genoa_vcek.pem")
        expectCode(.untrustedRoot) { _ = try SNPVerifier().verify(report: report, endorsementKey: vek, chain: genoa, at: time) }
    }

    @Test("a Milan report checked against the Genoa root")
    func milanAgainstGenoa() throws {
        let (report, vek, _, time) = try milanInputs()
        let verifier = SNPVerifier(anchors: SNPTrustAnchors.amd.restricted(to: [.genoa]))
        expectCode(.untrustedRoot) { _ = try verifier.verify(report: report, endorsementKey: vek, at: time) }
    }

    @Test("a report verified with another chip's VCEK")
    func otherChipsVCEK() throws {
        let (report, _, chain, time) = try milanInputs()
        let other = try Vectors.bytes("sev-snp/milan/trustee_vcek.der")
        expectCode(.reportSignatureInvalid) { _ = try SNPVerifier().verify(report: report, endorsementKey: other, chain: chain, at: time) }
    }

    @Test("the VCEK before its validity")
    func vcekNotYetValid() throws {
        let (report, vek, chain, _) = try milanInputs()
        expectCode(.certificateNotValidAtTime) {
            _ = try SNPVerifier().verify(report: report, endorsementKey: vek, chain: chain, at: date("2023-01-01T00:00:00Z"))
        }
    }

    @Test("a truncated SNP report")
    func truncatedReport() throws {
        let (report, vek, chain, time) = try milanInputs()
        expectCode(.malformedEvidence) {
            _ = try SNPVerifier().verify(report: Array(report.prefix(1000)), endorsementKey: vek, chain: chain, at: time)
        }
    }

    @Test("an SNP report with an unsupported version")
    func unsupportedVersion() throws {
        var (report, vek, chain, time) = try milanInputs()
        report[0] = 9
        expectCode(.unsupportedVersion) { _ = try SNPVerifier().verify(report: report, endorsementKey: vek, chain: chain, at: time) }
    }

    @Test("a truncated TDX quote")
    func truncatedQuote() async throws {
        let quote = try Vectors.bytes("tdx/dcap-qvl/tdx_quote_v4_b0c06f.dat")
        await expectCodeAsync(.malformedEvidence) {
            _ = try await TDXVerifier.quoteLayer().verify(quote: Array(quote.prefix(3000)), at: date("2025-07-01T00:00:00Z"))
        }
    }

    @Test("one flipped bit in a TDX quote body")
    func flippedQuoteBit() async throws {
        var quote = try Vectors.bytes("tdx/dcap-qvl/tdx_quote_v4_b0c06f.dat")
        quote[48 + 136] ^= 0x01  // MRTD
        await expectCodeAsync(.quoteSignatureInvalid) {
            _ = try await TDXVerifier.quoteLayer().verify(quote: quote, at: date("2025-07-01T00:00:00Z"))
        }
    }

    @Test("one flipped bit in the TDX QE report")
    func flippedQEReportBit() async throws {
        var quote = try Vectors.bytes("tdx/dcap-qvl/tdx_quote_v4_b0c06f.dat")
        quote[0x27C + 134 + 258] ^= 0x01  // QE ISVSVN
        await expectCodeAsync(.qeReportSignatureInvalid) {
            _ = try await TDXVerifier.quoteLayer().verify(quote: quote, at: date("2025-07-01T00:00:00Z"))
        }
    }

    @Test("one flipped bit in the TDX QE authentication data breaks the attestation-key binding")
    func flippedQEAuthData() async throws {
        var quote = try Vectors.bytes("tdx/dcap-qvl/tdx_quote_v4_b0c06f.dat")
        let authLength = Int(quote[0x27C + 134 + 448]) | Int(quote[0x27C + 134 + 449]) << 8
        try #require(authLength > 0)
        quote[0x27C + 134 + 450] ^= 0x01
        await expectCodeAsync(.qeReportBindingInvalid) {
            _ = try await TDXVerifier.quoteLayer().verify(quote: quote, at: date("2025-07-01T00:00:00Z"))
        }
    }

    @Test("expired TDX collateral (set C two months after its window)")
    func expiredCollateral() async throws {
        let c = tdxCases[2]
        let collateral = try loadCollateral(c)
        await expectCodeAsync(.collateralNotValidAtTime) {
            _ = try await TDXVerifier.quoteLayer().verify(quote: try Vectors.bytes(c.quote), collateral: collateral, at: date("2025-09-01T00:00:00Z"))
        }
    }

    @Test("TDX evidence at a late time (2053): the PCK certificate has expired")
    func tdxLateTime() async throws {
        let c = tdxCases[0]
        let collateral = try loadCollateral(c)
        await expectCodeAsync(.certificateNotValidAtTime) {
            _ = try await TDXVerifier.quoteLayer().verify(quote: try Vectors.bytes(c.quote), collateral: collateral, at: date("2053-07-01T01:00:00Z"))
        }
    }

    @Test("tcbInfo with an edited byte fails its signature")
    func editedTCBInfo() async throws {
        let c = tdxCases[2]
        var collateral = try loadCollateral(c)
        var json = try #require(collateral.tcbInfoJSON)
        let range = try #require(String(decoding: json, as: UTF8.self).range(of: "\"UpToDate\""))
        let offset = String(decoding: json, as: UTF8.self).utf8.distance(from: String(decoding: json, as: UTF8.self).startIndex, to: range.lowerBound)
        json[offset + 1] = UInt8(ascii: "X")
        collateral.tcbInfoJSON = json
        await expectCodeAsync(.collateralSignatureInvalid) {
            _ = try await TDXVerifier.quoteLayer().verify(quote: try Vectors.bytes(c.quote), collateral: collateral, at: date(c.time))
        }
    }

    @Test("tcbInfo of another FMSPC is refused")
    func wrongFMSPCCollateral() async throws {
        let c = tdxCases[2]
        var collateral = try loadCollateral(c)
        collateral.tcbInfoJSON = try Vectors.bytes("tdx/dcap-qvl/collateral_v5_90c06f_outdated/tcbInfo_fmspc_90c06f000000.json")
        collateral.qeIdentityJSON = nil
        collateral.pckCRL = nil
        collateral.rootCACRL = nil
        await expectCodeAsync(.collateralMismatch) {
            _ = try await TDXVerifier.quoteLayer().verify(quote: try Vectors.bytes(c.quote), collateral: collateral, at: date("2026-03-01T00:00:00Z"))
        }
    }

    @Test("a PCK CRL from another issuer is refused")
    func crlFromOtherIssuer() async throws {
        let c = tdxCases[2]
        var collateral = try loadCollateral(c)
        collateral.pckCRL = collateral.rootCACRL
        await expectCodeAsync(.collateralMismatch) {
            _ = try await TDXVerifier.quoteLayer().verify(quote: try Vectors.bytes(c.quote), collateral: collateral, at: date(c.time))
        }
    }
}

@Suite("Malformed input never crashes")
struct RobustnessTests {
    /// Every prefix and a sweep of single-bit flips must either parse or throw an AttestationError.
    func sweep(_ bytes: [UInt8], step: Int = 1, _ parse: ([UInt8]) throws(AttestationError) -> Void) {
        for n in stride(from: 0, to: bytes.count, by: step) {
            do { try parse(Array(bytes.prefix(n))) } catch { _ = error.code }
        }
        for i in stride(from: 0, to: bytes.count, by: step) {
            var b = bytes
            b[i] ^= 0x80
            do { try parse(b) } catch { _ = error.code }
        }
    }

    @Test("certificates: truncations and bit flips")
    func certificates() throws {
        for path in ["sev-snp/milan/virtee_vcek_milan.der", "sev-snp/turin/anolis_turin_vcek.der"] {
            sweep(try Vectors.bytes(path)) { b throws(AttestationError) in _ = try DERCertificate(derEncoded: b) }
        }
        sweep(try Vectors.pemBlocks("sev-snp/roots/genoa/ark.pem")[0], step: 3) { b throws(AttestationError) in _ = try DERCertificate(derEncoded: b) }
    }

    @Test("CRLs: truncations and bit flips")
    func crls() throws {
        sweep(try Vectors.bytes("tdx/go-tdx-guest/collateral/root_ca_crl.der")) { b throws(AttestationError) in
            _ = try DERCertificateRevocationList(derEncoded: b)
        }
    }

    @Test("TDX quotes: truncations and bit flips in the parser")
    func quotes() throws {
        sweep(try Vectors.bytes("tdx/go-tdx-guest/quote_v5_sample.dat"), step: 5) { b throws(AttestationError) in _ = try TDXQuote(bytes: b) }
    }

    @Test("collateral JSON: truncations")
    func json() throws {
        let bytes = try Vectors.bytes("tdx/trustee/qeIdentity.json")
        let end = try #require(bytes.lastIndex(of: UInt8(ascii: "}")))
        for n in 0...end {
            #expect(throws: AttestationError.self) { _ = try RawJSON.signedObject(Array(bytes.prefix(n)), key: "enclaveIdentity") }
        }
        #expect(try RawJSON.signedObject(bytes, key: "enclaveIdentity").signature.count == 64)
    }
}
