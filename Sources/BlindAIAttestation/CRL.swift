import Foundation
import SwiftASN1

/// An X.509 v2 CRL parsed with swift-asn1 (swift-certificates has no CRL type).
public struct DERCertificateRevocationList: Sendable {
    public let derBytes: [UInt8]
    let tbsBytes: [UInt8]
    let signatureAlgorithm: CertificateSignatureAlgorithm
    let signature: [UInt8]
    let issuerBytes: [UInt8]
    public let issuerCommonName: String?
    public let thisUpdate: Date
    public let nextUpdate: Date?
    /// Big-endian magnitudes of the revoked serial numbers.
    public let revokedSerials: Set<[UInt8]>

    public init(derEncoded der: [UInt8]) throws(AttestationError) {
        derBytes = der
        func bad(_ why: String) -> AttestationError { AttestationError(.crlInvalid, "CRL: \(why)") }
        let root: ASN1Node
        do { root = try DER.parse(der) } catch { throw bad("not valid DER") }
        let top: [ASN1Node]
        do { top = try DERWalk.sequence(root, "CRL") } catch { throw bad("not a SEQUENCE") }
        guard top.count == 3 else { throw bad("expected 3 top-level fields") }
        tbsBytes = Array(top[0].encodedBytes)
        do {
            signatureAlgorithm = try CertificateSignatureAlgorithm.parse(top[1], "CRL signatureAlgorithm")
            let bits = try ASN1BitString(derEncoded: top[2])
            signature = Array(bits.bytes)
        } catch { throw bad("bad signature fields (\(error))") }
        do throws(AttestationError) {
            var f = try DERWalk.sequence(top[0], "tbsCertList")[...]
            if let v = f.first, v.identifier == .integer { f = f.dropFirst() }
            let fields = Array(f)
            guard fields.count >= 3 else { throw bad("too few fields") }
            issuerBytes = Array(fields[1].encodedBytes)
            issuerCommonName = try DERCRLName.commonName(fields[1])
            thisUpdate = try DERWalk.time(fields[2], "thisUpdate")
            var idx = 3
            if idx < fields.count, fields[idx].identifier == .utcTime || fields[idx].identifier == .generalizedTime {
                nextUpdate = try DERWalk.time(fields[idx], "nextUpdate")
                idx += 1
            } else {
                nextUpdate = nil
            }
            var serials = Set<[UInt8]>()
            if idx < fields.count, fields[idx].identifier == .sequence {
                for entry in try DERWalk.sequence(fields[idx], "revokedCertificates") {
                    let e = try DERWalk.sequence(entry, "revoked entry")
                    guard let s = e.first else { throw bad("empty revoked entry") }
                    serials.insert(try DERWalk.integerBytes(s, "revoked serial"))
                }
            }
            revokedSerials = serials
        } catch {
            throw error.code == .crlInvalid ? error : AttestationError(.crlInvalid, "CRL: \(error.reason)")
        }
    }

    func isSigned(by issuer: DERCertificate) -> Bool {
        issuerBytes == issuer.subjectBytes && issuer.publicKey.isValidSignature(signature, over: tbsBytes, algorithm: signatureAlgorithm)
    }

    /// Signature by `issuer`, validity at `time`, and that none of `certificates` is revoked.
    func check(issuer: DERCertificate, at time: Date, certificates: [DERCertificate], name: String) throws(AttestationError) {
        guard isSigned(by: issuer) else {
            throw AttestationError(.crlInvalid, "\(name) signature does not verify under '\(issuer.displayName)'")
        }
        guard thisUpdate <= time, nextUpdate.map({ time <= $0 }) ?? true else {
            throw AttestationError(
                .collateralNotValidAtTime,
                "\(name) is valid \(ISO8601.string(thisUpdate)) .. \(nextUpdate.map(ISO8601.string) ?? "open"), not at \(ISO8601.string(time))")
        }
        for cert in certificates where cert.issuerBytes == issuerBytes && revokedSerials.contains(cert.serialNumber) {
            throw AttestationError(.certificateRevoked, "'\(cert.displayName)' serial \(Hex.encode(cert.serialNumber)) is revoked by the \(name)")
        }
    }
}

enum DERCRLName {
    static func commonName(_ name: ASN1Node) throws(AttestationError) -> String? {
        for rdn in try DERWalk.sequence(name, "Name") {
            for attr in try DERWalk.children(rdn, "RDN") {
                let p = try DERWalk.sequence(attr, "attribute")
                if p.count == 2, try DERWalk.oid(p[0], "attribute type") == OID.commonName, case .primitive(let v) = p[1].content {
                    return String(decoding: v, as: UTF8.self)
                }
            }
        }
        return nil
    }
}
