import Foundation
import FuzzSupport
@testable import BlindAIAttestation

// The X.509 certificate reader (`DERCertificate(bytes:)`: PEM or DER, names, validity times, extensions, the
// public key of every supported algorithm) on VCEK/VLEK/ASK/ARK and PCK chain certificates, then what the
// verifiers ask of a certificate: the PCK SGX extensions, validity, and a self-signature check for
// self-issued certificates (the signature algorithm and key paths: RSA-PSS, ECDSA P-256/P-384).

let time = utc("2025-07-01T00:00:00Z")

@_cdecl("LLVMFuzzerTestOneInput")
public func testOneInput(_ data: UnsafePointer<UInt8>?, _ count: Int) -> CInt {
    guard let cert = try? DERCertificate(bytes: bytes(data, count)) else { return 0 }
    _ = cert.displayName
    _ = cert.isValid(at: time)
    try? cert.checkValidity(at: time)
    _ = try? PCKCertificateInfo(cert)
    if cert.isSelfIssued { _ = cert.isSigned(by: cert) }
    // The key and names again through the TLS binding's reader (a DER certificate from the bundle).
    _ = try? ReportDataBinding.subjectPublicKeyInfo(certificateDER: cert.derBytes)
    return 0
}

@main enum Main {
    static func main() { runFuzzer(testOneInput) }
}
