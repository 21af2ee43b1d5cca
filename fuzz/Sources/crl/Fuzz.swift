import Foundation
import FuzzSupport
@testable import BlindAIAttestation

// The CRL reader (`DERCertificateRevocationList(derEncoded:)`: tbsCertList, times, revoked entries) on Intel's
// root CA and PCK CRLs, then the check the TDX verifier makes with an accepted CRL: signature under its
// issuer (the pinned Intel root or the PCK platform CA), validity at a time, revoked serials.

let time = utc("2025-07-01T00:00:00Z")
let root = try! DERCertificate(bytes: vector("tdx/roots/intel_sgx_root_ca.der"))
let platformCA = try! DERCertificate(bytes: vector("tdx/intermediates/intel_sgx_pck_platform_ca.pem"))

@_cdecl("LLVMFuzzerTestOneInput")
public func testOneInput(_ data: UnsafePointer<UInt8>?, _ count: Int) -> CInt {
    guard let crl = try? DERCertificateRevocationList(derEncoded: bytes(data, count)) else { return 0 }
    let issuer = crl.issuerBytes == root.subjectBytes ? root : platformCA
    try? crl.check(issuer: issuer, at: time, certificates: [root, platformCA], name: "fuzzed CRL")
    return 0
}

@main enum Main {
    static func main() {
        _ = (root, platformCA)
        runFuzzer(testOneInput)
    }
}
