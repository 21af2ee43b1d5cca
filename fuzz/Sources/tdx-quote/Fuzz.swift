import Foundation
import FuzzSupport
@testable import BlindAIAttestation

// The TDX quote parser (`TDXQuote(bytes:)`: v4 and v5 headers, TD 1.0 and 1.5 bodies, signature data, QE
// report certification data, QE authentication data) and what the verifier reads out of an accepted quote
// before any signature: the PCK chain (PEM, then DER) and the PCK certificate's SGX
// extensions (FMSPC, PCE-ID, TCB components).

@_cdecl("LLVMFuzzerTestOneInput")
public func testOneInput(_ data: UnsafePointer<UInt8>?, _ count: Int) -> CInt {
    guard let quote = try? TDXQuote(bytes: bytes(data, count)) else { return 0 }
    property(quote.version == 4 || quote.version == 5, "an accepted quote has version \(quote.version)")
    property(quote.attestationKey.count == 64 && quote.signature.count == 64, "attestation key or signature of the wrong size")
    let chain = PEM.decodeAll(quote.pckChainPEM).compactMap { try? DERCertificate(derEncoded: $0) }
    if let leaf = chain.first, let pck = try? PCKCertificateInfo(leaf) {
        property(pck.sgxTCBComponents.count == 16, "PCK info has \(pck.sgxTCBComponents.count) SGX TCB components")
    }
    return 0
}

@main enum Main {
    static func main() { runFuzzer(testOneInput) }
}
