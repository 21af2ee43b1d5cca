import Crypto
import Foundation
import SwiftASN1

/// Binds attestation evidence to one TLS key, one client nonce and one claims document:
///
///     report_data (64 bytes) = SHA-512( "BLINDAI-ATTESTATION-V1\0"
///                                       || SHA-256(TLS certificate SubjectPublicKeyInfo DER)
///                                       || nonce (32 bytes)
///                                       || SHA-256(claims document JSON bytes) )
public enum ReportDataBinding {
    public static let domainSeparator: [UInt8] = Array("BLINDAI-ATTESTATION-V1".utf8) + [0]
    public static let nonceLength = 32

    public static func compute(spki: [UInt8], nonce: [UInt8], claimsDigest: [UInt8]) throws(AttestationError) -> [UInt8] {
        guard nonce.count == nonceLength else {
            throw AttestationError(.nonceMismatch, "nonce is \(nonce.count) bytes, expected \(nonceLength)")
        }
        guard claimsDigest.count == 32 else {
            throw AttestationError(.claimsDocumentMismatch, "claims digest is \(claimsDigest.count) bytes, expected 32 (SHA-256)")
        }
        var h = SHA512()
        h.update(data: domainSeparator)
        h.update(data: Array(SHA256.hash(data: spki)))
        h.update(data: nonce)
        h.update(data: claimsDigest)
        return Array(h.finalize())
    }

    public static func claimsDigest(_ claimsDocument: [UInt8]) -> [UInt8] { Array(SHA256.hash(data: claimsDocument)) }

    /// The DER SubjectPublicKeyInfo of a DER certificate, whatever its key and signature algorithms.
    public static func subjectPublicKeyInfo(certificateDER der: [UInt8]) throws(AttestationError) -> [UInt8] {
        let root = try DERWalk.parse(der, "TLS certificate")
        let top = try DERWalk.sequence(root, "TLS certificate")
        guard let tbsNode = top.first else { throw AttestationError(.malformedCertificate, "TLS certificate: empty") }
        var tbs = try DERWalk.sequence(tbsNode, "TLS tbsCertificate")[...]
        if let v = tbs.first, v.identifier == ASN1Identifier(tagWithNumber: 0, tagClass: .contextSpecific) { tbs = tbs.dropFirst() }
        let fields = Array(tbs)
        guard fields.count >= 6, fields[5].identifier == .sequence else {
            throw AttestationError(.malformedCertificate, "TLS certificate: no SubjectPublicKeyInfo")
        }
        return Array(fields[5].encodedBytes)
    }
}

/// What the client knows about its own connection: the nonce it sent and the certificate the TLS
/// handshake presented (taken from that connection, never from the evidence).
public struct ChannelBindingExpectation: Sendable {
    public let nonce: [UInt8]
    public let tlsSubjectPublicKeyInfo: [UInt8]

    public init(nonce: [UInt8], tlsSubjectPublicKeyInfo: [UInt8]) {
        self.nonce = nonce
        self.tlsSubjectPublicKeyInfo = tlsSubjectPublicKeyInfo
    }

    public init(nonce: [UInt8], tlsCertificateDER: [UInt8]) throws(AttestationError) {
        self.init(nonce: nonce, tlsSubjectPublicKeyInfo: try ReportDataBinding.subjectPublicKeyInfo(certificateDER: tlsCertificateDER))
    }

    /// A fresh random 32-byte nonce.
    public static func freshNonce() -> [UInt8] {
        var rng = SystemRandomNumberGenerator()
        return (0..<ReportDataBinding.nonceLength).map { _ in UInt8.random(in: .min ... .max, using: &rng) }
    }

    /// Checks the evidence's report data against this connection: the echoed nonce, then the report data
    /// recomputed from this connection's TLS key, this nonce and the bundle's claims document.
    public func check(reportData: [UInt8], bundle: EvidenceBundle) throws(AttestationError) {
        guard let echoed = bundle.nonce.map({ [UInt8]($0) }) else {
            throw AttestationError(.nonceMismatch, "evidence carries no nonce; this connection sent \(Hex.abbreviated(nonce))")
        }
        guard constantTimeEqual(echoed, nonce) else {
            throw AttestationError(.nonceMismatch, "evidence answers nonce \(Hex.abbreviated(echoed)), this connection sent \(Hex.abbreviated(nonce))")
        }
        guard let claims = bundle.claims.map({ [UInt8]($0) }) else {
            throw AttestationError(.claimsDocumentMismatch, "evidence carries no claims document")
        }
        let digest = ReportDataBinding.claimsDigest(claims)
        let expected = try ReportDataBinding.compute(spki: tlsSubjectPublicKeyInfo, nonce: nonce, claimsDigest: digest)
        if constantTimeEqual(expected, reportData) { return }
        if let other = bundle.tlsCertificate.map({ [UInt8]($0) }),
            let otherSPKI = try? ReportDataBinding.subjectPublicKeyInfo(certificateDER: other), otherSPKI != tlsSubjectPublicKeyInfo,
            let relayed = try? ReportDataBinding.compute(spki: otherSPKI, nonce: nonce, claimsDigest: digest), constantTimeEqual(relayed, reportData)
        {
            throw AttestationError(
                .tlsKeyMismatch,
                "evidence is bound to TLS key \(Hex.abbreviated(Array(SHA256.hash(data: otherSPKI)))), but this connection presented \(Hex.abbreviated(Array(SHA256.hash(data: tlsSubjectPublicKeyInfo)))) (relayed evidence)")
        }
        throw AttestationError(
            .reportDataMismatch,
            "report data \(Hex.abbreviated(reportData)) is not the binding of this connection's TLS key, nonce and claims document \(Hex.abbreviated(expected))")
    }
}
