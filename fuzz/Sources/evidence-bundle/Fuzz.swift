import BlindAIAttestation
import Foundation
import FuzzSupport

// The evidence bundle as a client receives it from POST /v2/attestation, end to end: JSON and base64
// decoding (`EvidenceBundle.decode(json:)`), then the whole verifier (`AttestationVerifier.verify`): the
// SNP report or TDX quote, the certificates, the collateral files, the claims document, the channel binding
// (against the nonce and TLS certificate the bundle itself echoes) and the policy rules. The verification
// time is the claims document's issuedAt when it has one (the seeds carry a time at which their vector is
// valid), so that seeds reach the end of the verifier.

let policy = AttestationPolicy(
    allowSimulated: true, allowDebug: true, maxEvidenceAgeSeconds: 10 * 365 * 86400,
    snp: AttestationPolicy.SNPRules(
        minimumTCB: AttestationPolicy.MinimumTCB(bootloader: 0, tee: 0, snp: 0, microcode: 0), minimumGuestSVN: 0, maximumVMPL: 3),
    tdx: AttestationPolicy.TDXRules(allowedTCBStatuses: nil))
let verifier = AttestationVerifier(policy: policy)
let fallbackTime = utc("2025-07-01T00:00:00Z")

@_cdecl("LLVMFuzzerTestOneInput")
public func testOneInput(_ data: UnsafePointer<UInt8>?, _ count: Int) -> CInt {
    guard let bundle = try? EvidenceBundle.decode(json: Data(bytes(data, count))) else { return 0 }
    var time = fallbackTime
    if let claims = bundle.claims, let doc = try? ClaimsDocument.decode([UInt8](claims)),
        let issued = ISO8601DateFormatter().date(from: doc.issuedAt)
    {
        time = issued
    }
    var binding: ChannelBindingExpectation?
    if let nonce = bundle.nonce, let tls = bundle.tlsCertificate {
        binding = try? ChannelBindingExpectation(nonce: [UInt8](nonce), tlsCertificateDER: [UInt8](tls))
    }
    let verifyAt = time
    let expectation = binding
    _ = blocking { try? await verifier.verify(bundle: bundle, binding: expectation, at: verifyAt) }
    _ = try? bundle.jsonData()
    return 0
}

@main enum Main {
    static func main() { runFuzzer(testOneInput) }
}
