import Foundation
import FuzzSupport
@testable import BlindAIAttestation

// The TDX collateral JSON readers: a QuoteCollateralV3 document (`TDXCollateral.load(quoteCollateralV3JSON:)`)
// or a PCS response as served (tcbInfo or enclaveIdentity): the raw scanner that cuts out the signed object
// and its signature (`RawJSON.signedObject`), the JSON models of TCB info v3 and QE identity v2 and their
// dates, then Intel's TCB level matching (`TDXTCBAppraisal`) against a real quote's TD report, QE report and
// PCK certificate. Signatures are not checked here (a mutated document never verifies, and the decoders must
// be safe on any bytes the signature check lets through).

let quote = try! TDXQuote(bytes: vector("tdx/dcap-qvl/tdx_quote_v4_b0c06f.dat"))
let pck = try! PCKCertificateInfo(try! DERCertificate(derEncoded: PEM.decodeAll(quote.pckChainPEM)[0]))

func appraise(_ json: [UInt8]) {
    if let signed = try? RawJSON.signedObject(json, key: "tcbInfo"),
        let info = try? JSONDecoder().decode(PCSTCBInfo.self, from: Data(signed.body))
    {
        _ = BlindAIAttestation.ISO8601.parse(info.issueDate)
        _ = BlindAIAttestation.ISO8601.parse(info.nextUpdate)
        _ = try? TDXTCBAppraisal.evaluate(info: info, pck: pck, body: quote.body, qeStatus: nil)
        _ = try? TDXTCBAppraisal.evaluate(info: info, pck: pck, body: quote.body, qeStatus: .outOfDate)
    }
    if let signed = try? RawJSON.signedObject(json, key: "enclaveIdentity"),
        let identity = try? JSONDecoder().decode(PCSEnclaveIdentity.self, from: Data(signed.body))
    {
        _ = BlindAIAttestation.ISO8601.parse(identity.issueDate)
        _ = BlindAIAttestation.ISO8601.parse(identity.nextUpdate)
        _ = try? TDXTCBAppraisal.qeStatus(identity: identity, report: quote.qeReport)
    }
}

@_cdecl("LLVMFuzzerTestOneInput")
public func testOneInput(_ data: UnsafePointer<UInt8>?, _ count: Int) -> CInt {
    let input = bytes(data, count)
    if let collateral = try? TDXCollateral.load(quoteCollateralV3JSON: input) {
        if let json = collateral.tcbInfoJSON { appraise(json) }
        if let json = collateral.qeIdentityJSON { appraise(json) }
        for der in [collateral.pckCRL, collateral.rootCACRL].compactMap({ $0 }) {
            _ = try? DERCertificateRevocationList(derEncoded: der)
        }
        for pem in [collateral.tcbInfoIssuerChainPEM, collateral.qeIdentityIssuerChainPEM, collateral.pckCRLIssuerChainPEM] {
            for der in PEM.decodeAll(pem ?? "") { _ = try? DERCertificate(derEncoded: der) }
        }
    } else {
        appraise(input)
    }
    return 0
}

@main enum Main {
    static func main() {
        _ = (quote, pck)
        runFuzzer(testOneInput)
    }
}
