import Crypto
import _CryptoExtras
import Foundation
import SwiftASN1

/// Object identifiers used by the attestation formats.
enum OID {
    static let rsaEncryption: ASN1ObjectIdentifier = [1, 2, 840, 113549, 1, 1, 1]
    static let rsassaPSS: ASN1ObjectIdentifier = [1, 2, 840, 113549, 1, 1, 10]
    static let mgf1: ASN1ObjectIdentifier = [1, 2, 840, 113549, 1, 1, 8]
    static let sha256: ASN1ObjectIdentifier = [2, 16, 840, 1, 101, 3, 4, 2, 1]
    static let sha384: ASN1ObjectIdentifier = [2, 16, 840, 1, 101, 3, 4, 2, 2]
    static let ecPublicKey: ASN1ObjectIdentifier = [1, 2, 840, 10045, 2, 1]
    static let p256: ASN1ObjectIdentifier = [1, 2, 840, 10045, 3, 1, 7]
    static let p384: ASN1ObjectIdentifier = [1, 3, 132, 0, 34]
    static let ecdsaWithSHA256: ASN1ObjectIdentifier = [1, 2, 840, 10045, 4, 3, 2]
    static let ecdsaWithSHA384: ASN1ObjectIdentifier = [1, 2, 840, 10045, 4, 3, 3]
    static let commonName: ASN1ObjectIdentifier = [2, 5, 4, 3]
    static let basicConstraints: ASN1ObjectIdentifier = [2, 5, 29, 19]
}

/// Small helpers over swift-asn1 nodes.
enum DERWalk {
    static func children(_ node: ASN1Node, _ what: String) throws(AttestationError) -> [ASN1Node] {
        guard case .constructed(let nodes) = node.content else {
            throw AttestationError(.malformedCertificate, "\(what): expected a constructed DER element")
        }
        return Array(nodes)
    }

    static func sequence(_ node: ASN1Node, _ what: String) throws(AttestationError) -> [ASN1Node] {
        guard node.identifier == .sequence else {
            throw AttestationError(.malformedCertificate, "\(what): expected a SEQUENCE, found tag \(node.identifier)")
        }
        return try children(node, what)
    }

    static func element(_ nodes: [ASN1Node], _ index: Int, _ what: String) throws(AttestationError) -> ASN1Node {
        guard index < nodes.count else { throw AttestationError(.malformedCertificate, "\(what): missing field \(index)") }
        return nodes[index]
    }

    static func primitive(_ node: ASN1Node, _ what: String) throws(AttestationError) -> ArraySlice<UInt8> {
        guard case .primitive(let bytes) = node.content else {
            throw AttestationError(.malformedCertificate, "\(what): expected a primitive DER element")
        }
        return bytes
    }

    static func parse(_ bytes: [UInt8], _ what: String) throws(AttestationError) -> ASN1Node {
        do { return try DER.parse(bytes) } catch {
            throw AttestationError(.malformedCertificate, "\(what): not valid DER (\(error))")
        }
    }

    static func oid(_ node: ASN1Node, _ what: String) throws(AttestationError) -> ASN1ObjectIdentifier {
        do { return try ASN1ObjectIdentifier(derEncoded: node) } catch {
            throw AttestationError(.malformedCertificate, "\(what): expected an OBJECT IDENTIFIER")
        }
    }

    /// A non-negative INTEGER as an Int (for small values such as salt lengths and SVNs).
    static func int(_ node: ASN1Node, _ what: String) throws(AttestationError) -> Int {
        do { return try Int(derEncoded: node) } catch {
            throw AttestationError(.malformedCertificate, "\(what): expected a small INTEGER")
        }
    }

    /// INTEGER content bytes as big-endian magnitude with redundant leading zeros removed.
    static func integerBytes(_ node: ASN1Node, _ what: String) throws(AttestationError) -> [UInt8] {
        guard node.identifier == .integer else {
            throw AttestationError(.malformedCertificate, "\(what): expected an INTEGER")
        }
        var bytes = Array(try primitive(node, what))
        while bytes.count > 1 && bytes[0] == 0 { bytes.removeFirst() }
        return bytes
    }

    static func time(_ node: ASN1Node, _ what: String) throws(AttestationError) -> Date {
        do {
            switch node.identifier {
            case .utcTime:
                let t = try UTCTime(derEncoded: node)
                return utcDate(t.year, t.month, t.day, t.hours, t.minutes, t.seconds)
            case .generalizedTime:
                let t = try GeneralizedTime(derEncoded: node)
                return utcDate(t.year, t.month, t.day, t.hours, t.minutes, t.seconds)
            default:
                throw AttestationError(.malformedCertificate, "\(what): expected UTCTime or GeneralizedTime")
            }
        } catch let e as AttestationError {
            throw e
        } catch {
            throw AttestationError(.malformedCertificate, "\(what): invalid time (\(error))")
        }
    }

    /// Days-from-civil (proleptic Gregorian), so no Calendar or time-zone database is involved.
    static func utcDate(_ y: Int, _ m: Int, _ d: Int, _ hh: Int, _ mm: Int, _ ss: Int) -> Date {
        let yy = m <= 2 ? y - 1 : y
        let era = (yy >= 0 ? yy : yy - 399) / 400
        let yoe = yy - era * 400
        let mp = (m + 9) % 12
        let doy = (153 * mp + 2) / 5 + d - 1
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy
        let days = era * 146097 + doe - 719468
        return Date(timeIntervalSince1970: TimeInterval(days * 86400 + hh * 3600 + mm * 60 + ss))
    }
}

/// The signature algorithms the attestation chains use.
enum CertificateSignatureAlgorithm: Sendable, Equatable, CustomStringConvertible {
    /// RSASSA-PSS with SHA-384, MGF1-SHA-384, salt length 48 (AMD's scheme).
    case rsaPSSSHA384
    case ecdsaSHA256
    case ecdsaSHA384

    var description: String {
        switch self {
        case .rsaPSSSHA384: return "RSASSA-PSS-SHA384"
        case .ecdsaSHA256: return "ECDSA-SHA256"
        case .ecdsaSHA384: return "ECDSA-SHA384"
        }
    }

    static func parse(_ node: ASN1Node, _ what: String) throws(AttestationError) -> CertificateSignatureAlgorithm {
        let parts = try DERWalk.sequence(node, what)
        guard let first = parts.first else { throw AttestationError(.malformedCertificate, "\(what): empty AlgorithmIdentifier") }
        let oid = try DERWalk.oid(first, what)
        switch oid {
        case OID.ecdsaWithSHA256: return .ecdsaSHA256
        case OID.ecdsaWithSHA384: return .ecdsaSHA384
        case OID.rsassaPSS:
            guard parts.count == 2 else {
                throw AttestationError(.malformedCertificate, "\(what): RSASSA-PSS without parameters is not accepted")
            }
            try checkPSSParameters(parts[1], what)
            return .rsaPSSSHA384
        default:
            throw AttestationError(.malformedCertificate, "\(what): unsupported signature algorithm \(oid)")
        }
    }

    /// RSASSA-PSS-params: [0] hash, [1] MGF, [2] salt length, [3] trailer. Only SHA-384/MGF1-SHA-384/48/1 is accepted.
    private static func checkPSSParameters(_ node: ASN1Node, _ what: String) throws(AttestationError) {
        var hash: ASN1ObjectIdentifier?
        var mgf: ASN1ObjectIdentifier?
        var mgfHash: ASN1ObjectIdentifier?
        var salt = 20
        var trailer = 1
        for field in try DERWalk.sequence(node, "\(what) PSS parameters") {
            guard field.identifier.tagClass == .contextSpecific, let inner = try DERWalk.children(field, what).first else {
                throw AttestationError(.malformedCertificate, "\(what): unexpected PSS parameter field")
            }
            switch field.identifier.tagNumber {
            case 0: hash = try DERWalk.oid(try DERWalk.element(try DERWalk.sequence(inner, what), 0, what), what)
            case 1:
                let m = try DERWalk.sequence(inner, what)
                mgf = try DERWalk.oid(try DERWalk.element(m, 0, what), what)
                if m.count > 1 { mgfHash = try DERWalk.oid(try DERWalk.element(try DERWalk.sequence(m[1], what), 0, what), what) }
            case 2: salt = try DERWalk.int(inner, what)
            case 3: trailer = try DERWalk.int(inner, what)
            default: throw AttestationError(.malformedCertificate, "\(what): unexpected PSS parameter [\(field.identifier.tagNumber)]")
            }
        }
        guard hash == OID.sha384, mgf == OID.mgf1, mgfHash == OID.sha384, salt == 48, trailer == 1 else {
            throw AttestationError(
                .malformedCertificate,
                "\(what): RSASSA-PSS parameters must be SHA-384/MGF1-SHA-384/salt 48/trailer 1, found hash \(hash.map { "\($0)" } ?? "sha1"), salt \(salt)")
        }
    }
}

/// A public key found in a certificate.
enum CertificateKey: Sendable {
    case rsa(_RSA.Signing.PublicKey)
    case p256(P256.Signing.PublicKey)
    case p384(P384.Signing.PublicKey)

    var name: String {
        switch self {
        case .rsa(let k): return "RSA-\(k.keySizeInBits)"
        case .p256: return "EC P-256"
        case .p384: return "EC P-384"
        }
    }

    func isValidSignature(_ signature: [UInt8], over message: [UInt8], algorithm: CertificateSignatureAlgorithm) -> Bool {
        switch (self, algorithm) {
        case (.rsa(let key), .rsaPSSSHA384):
            return key.isValidSignature(_RSA.Signing.RSASignature(rawRepresentation: signature), for: SHA384.hash(data: message), padding: .PSS)
        case (.p256(let key), .ecdsaSHA256):
            guard let sig = try? P256.Signing.ECDSASignature(derRepresentation: signature) else { return false }
            return key.isValidSignature(sig, for: SHA256.hash(data: message))
        case (.p384(let key), .ecdsaSHA384):
            guard let sig = try? P384.Signing.ECDSASignature(derRepresentation: signature) else { return false }
            return key.isValidSignature(sig, for: SHA384.hash(data: message))
        case (.p256(let key), .ecdsaSHA384):
            guard let sig = try? P256.Signing.ECDSASignature(derRepresentation: signature) else { return false }
            return key.isValidSignature(sig, for: SHA384.hash(data: message))
        case (.p384(let key), .ecdsaSHA256):
            guard let sig = try? P384.Signing.ECDSASignature(derRepresentation: signature) else { return false }
            return key.isValidSignature(sig, for: SHA256.hash(data: message))
        default:
            return false
        }
    }
}

/// A minimal X.509 v3 certificate parsed with swift-asn1. It exists because AMD's certificates are
/// RSASSA-PSS-signed, which swift-certificates 1.21 does not verify; it keeps the exact signed bytes.
public struct DERCertificate: Sendable {
    public let derBytes: [UInt8]
    let tbsBytes: [UInt8]
    let signatureAlgorithm: CertificateSignatureAlgorithm
    let signature: [UInt8]
    /// Big-endian magnitude of the serial number.
    public let serialNumber: [UInt8]
    let issuerBytes: [UInt8]
    let subjectBytes: [UInt8]
    public let subjectCommonName: String?
    public let issuerCommonName: String?
    public let notBefore: Date
    public let notAfter: Date
    /// DER SubjectPublicKeyInfo.
    public let subjectPublicKeyInfo: [UInt8]
    let publicKey: CertificateKey
    /// Extension OID (dotted) -> (critical, extnValue content bytes).
    let extensions: [String: (critical: Bool, value: [UInt8])]

    public init(derEncoded der: [UInt8]) throws(AttestationError) {
        self.derBytes = der
        let root = try DERWalk.parse(der, "certificate")
        guard root.encodedBytes.count == der.count else {
            throw AttestationError(.malformedCertificate, "certificate: trailing bytes after the DER structure")
        }
        let top = try DERWalk.sequence(root, "certificate")
        guard top.count == 3 else { throw AttestationError(.malformedCertificate, "certificate: expected 3 top-level fields, found \(top.count)") }
        self.tbsBytes = Array(top[0].encodedBytes)
        self.signatureAlgorithm = try CertificateSignatureAlgorithm.parse(top[1], "certificate signatureAlgorithm")
        do {
            let bits = try ASN1BitString(derEncoded: top[2])
            guard bits.paddingBits == 0 else { throw AttestationError(.malformedCertificate, "certificate: signature BIT STRING has padding bits") }
            self.signature = Array(bits.bytes)
        } catch let e as AttestationError {
            throw e
        } catch {
            throw AttestationError(.malformedCertificate, "certificate: signatureValue is not a BIT STRING")
        }

        var tbs = try DERWalk.sequence(top[0], "tbsCertificate")[...]
        if let v = tbs.first, v.identifier == ASN1Identifier(tagWithNumber: 0, tagClass: .contextSpecific) {
            tbs = tbs.dropFirst()
        }
        guard tbs.count >= 6 else { throw AttestationError(.malformedCertificate, "tbsCertificate: too few fields") }
        let f = Array(tbs)
        self.serialNumber = try DERWalk.integerBytes(f[0], "serialNumber")
        let innerAlg = try CertificateSignatureAlgorithm.parse(f[1], "tbsCertificate signature")
        guard innerAlg == signatureAlgorithm else {
            throw AttestationError(.malformedCertificate, "certificate: inner and outer signature algorithms differ (\(innerAlg) vs \(signatureAlgorithm))")
        }
        self.issuerBytes = Array(f[2].encodedBytes)
        let validity = try DERWalk.sequence(f[3], "validity")
        guard validity.count == 2 else { throw AttestationError(.malformedCertificate, "validity: expected 2 times") }
        self.notBefore = try DERWalk.time(validity[0], "notBefore")
        self.notAfter = try DERWalk.time(validity[1], "notAfter")
        self.subjectBytes = Array(f[4].encodedBytes)
        self.subjectCommonName = try DERCertificate.commonName(f[4])
        self.issuerCommonName = try DERCertificate.commonName(f[2])
        self.subjectPublicKeyInfo = Array(f[5].encodedBytes)
        self.publicKey = try DERCertificate.parseKey(f[5])

        var exts: [String: (critical: Bool, value: [UInt8])] = [:]
        for field in f.dropFirst(6) where field.identifier == ASN1Identifier(tagWithNumber: 3, tagClass: .contextSpecific) {
            guard let list = try DERWalk.children(field, "extensions").first else { continue }
            for ext in try DERWalk.sequence(list, "extension list") {
                let parts = try DERWalk.sequence(ext, "extension")
                guard parts.count == 2 || parts.count == 3 else { throw AttestationError(.malformedCertificate, "extension: unexpected field count") }
                let oid = try DERWalk.oid(parts[0], "extension id")
                var critical = false
                if parts.count == 3 {
                    do { critical = try Bool(derEncoded: parts[1]) } catch {
                        throw AttestationError(.malformedCertificate, "extension \(oid): critical is not a BOOLEAN")
                    }
                }
                guard let valueNode = parts.last, valueNode.identifier == .octetString else {
                    throw AttestationError(.malformedCertificate, "extension \(oid): extnValue is not an OCTET STRING")
                }
                let key = "\(oid)"
                guard exts[key] == nil else { throw AttestationError(.malformedCertificate, "extension \(oid) appears twice") }
                exts[key] = (critical, Array(try DERWalk.primitive(valueNode, "extnValue")))
            }
        }
        self.extensions = exts
    }

    public init(pemEncoded pem: String) throws(AttestationError) {
        guard let der = PEM.decodeAll(pem).first else {
            throw AttestationError(.malformedCertificate, "no PEM CERTIFICATE block found")
        }
        try self.init(derEncoded: der)
    }

    /// PEM or DER bytes.
    public init(bytes: [UInt8]) throws(AttestationError) {
        if bytes.first == 0x30 {
            try self.init(derEncoded: bytes)
        } else {
            try self.init(pemEncoded: String(decoding: bytes, as: UTF8.self))
        }
    }

    var isSelfIssued: Bool { issuerBytes == subjectBytes }

    func isValid(at time: Date) -> Bool { notBefore <= time && time <= notAfter }

    func extensionValue(_ oid: String) -> [UInt8]? { extensions[oid]?.value }

    /// Whether `issuer`'s key verifies this certificate's signature (and the names chain).
    func isSigned(by issuer: DERCertificate) -> Bool {
        issuerBytes == issuer.subjectBytes
            && issuer.publicKey.isValidSignature(signature, over: tbsBytes, algorithm: signatureAlgorithm)
    }

    var displayName: String { subjectCommonName ?? "certificate \(Hex.abbreviated(serialNumber))" }

    func checkValidity(at time: Date) throws(AttestationError) {
        guard isValid(at: time) else {
            throw AttestationError(
                .certificateNotValidAtTime,
                "certificate '\(displayName)' is valid \(ISO8601.string(notBefore)) .. \(ISO8601.string(notAfter)), not at \(ISO8601.string(time))")
        }
    }

    private static func commonName(_ name: ASN1Node) throws(AttestationError) -> String? {
        for rdn in try DERWalk.sequence(name, "Name") {
            for attr in try DERWalk.children(rdn, "RelativeDistinguishedName") {
                let parts = try DERWalk.sequence(attr, "AttributeTypeAndValue")
                guard parts.count == 2 else { continue }
                if try DERWalk.oid(parts[0], "attribute type") == OID.commonName, case .primitive(let v) = parts[1].content {
                    return String(decoding: v, as: UTF8.self)
                }
            }
        }
        return nil
    }

    private static func parseKey(_ spki: ASN1Node) throws(AttestationError) -> CertificateKey {
        let parts = try DERWalk.sequence(spki, "SubjectPublicKeyInfo")
        guard parts.count == 2 else { throw AttestationError(.malformedCertificate, "SubjectPublicKeyInfo: expected 2 fields") }
        let alg = try DERWalk.sequence(parts[0], "SPKI algorithm")
        let oid = try DERWalk.oid(try DERWalk.element(alg, 0, "SPKI algorithm"), "SPKI algorithm")
        let der = Array(spki.encodedBytes)
        do {
            switch oid {
            case OID.rsaEncryption, OID.rsassaPSS:
                return .rsa(try _RSA.Signing.PublicKey(derRepresentation: der))
            case OID.ecPublicKey:
                guard alg.count == 2 else { throw AttestationError(.malformedCertificate, "EC key without a curve") }
                let curve = try DERWalk.oid(alg[1], "EC curve")
                switch curve {
                case OID.p256: return .p256(try P256.Signing.PublicKey(derRepresentation: der))
                case OID.p384: return .p384(try P384.Signing.PublicKey(derRepresentation: der))
                default: throw AttestationError(.malformedCertificate, "unsupported EC curve \(curve)")
                }
            default:
                throw AttestationError(.malformedCertificate, "unsupported public key algorithm \(oid)")
            }
        } catch let e as AttestationError {
            throw e
        } catch {
            throw AttestationError(.malformedCertificate, "public key could not be loaded: \(error)")
        }
    }
}

enum ISO8601 {
    static func string(_ date: Date) -> String {
        date.formatted(.iso8601)
    }

    static func parse(_ text: String) -> Date? {
        if let d = try? Date(text, strategy: .iso8601) { return d }
        // Fractional seconds.
        return try? Date.ISO8601FormatStyle(includingFractionalSeconds: true).parse(text)
    }
}
