import Crypto
import Foundation
import NIOSSL
import SwiftASN1
import X509

/// The server's TLS identity: a certificate and its private key, held in memory only.
///
/// By default a fresh ECDSA P-256 key is generated at start with a self-signed certificate; the key is never
/// written anywhere. For development a certificate and key may be read from PEM files instead.
public struct TLSIdentity: Sendable {
    /// DER of the certificate the server presents.
    public let certificateDER: [UInt8]
    /// DER of the certificate's SubjectPublicKeyInfo (what an attestation report binds to).
    public let subjectPublicKeyInfoDER: [UInt8]
    /// PEM of the certificate (for clients that want to trust it explicitly).
    public let certificatePEM: String
    /// Whether the identity was generated in memory (false: read from files, development only).
    public let generated: Bool
    let certificate: NIOSSLCertificate
    let privateKey: NIOSSLPrivateKey

    /// What an attestation provider may see: public parts only.
    public var publicInfo: TLSPublicIdentity {
        TLSPublicIdentity(certificateDER: certificateDER, subjectPublicKeyInfoDER: subjectPublicKeyInfoDER)
    }

    /// SHA-256 of the SubjectPublicKeyInfo, lowercase hex (logged at start so operators can compare).
    public var spkiSHA256: String {
        SHA256.hash(data: subjectPublicKeyInfoDER).map { String(format: "%02x", $0) }.joined()
    }

    /// Generates a P-256 key and a self-signed certificate valid for `localhost`, the loopback addresses and
    /// `hostnames` (DNS names or IP addresses), from one hour ago for `validity`.
    public static func generate(hostnames: [String] = [], validity: TimeInterval = 365 * 24 * 3600) throws -> TLSIdentity {
        let key = P256.Signing.PrivateKey()
        let certKey = Certificate.PrivateKey(key)
        let name = try DistinguishedName {
            CommonName("BlindAI inference server")
            OrganizationName("BlindAI")
        }
        var sans: [GeneralName] = [.dnsName("localhost"), .ipAddress(ASN1OctetString(contentBytes: [127, 0, 0, 1])),
                                   .ipAddress(ASN1OctetString(contentBytes: ArraySlice([UInt8](repeating: 0, count: 15) + [1])))]
        for h in hostnames where h != "localhost" {
            if let ip = ipBytes(h) {
                sans.append(.ipAddress(ASN1OctetString(contentBytes: ArraySlice(ip))))
            } else {
                sans.append(.dnsName(h))
            }
        }
        let now = Date()
        var serial = [UInt8](repeating: 0, count: 16)
        for i in serial.indices { serial[i] = UInt8.random(in: 0...255) }
        serial[0] &= 0x7F
        let certificate = try Certificate(
            version: .v3,
            serialNumber: Certificate.SerialNumber(bytes: ArraySlice(serial)),
            publicKey: certKey.publicKey,
            notValidBefore: now.addingTimeInterval(-3600),
            notValidAfter: now.addingTimeInterval(validity),
            issuer: name,
            subject: name,
            signatureAlgorithm: .ecdsaWithSHA256,
            extensions: try Certificate.Extensions {
                // Self-signed and trusted directly by clients (pinned, or bound by attestation): it is its own
                // issuer, so it must be allowed to sign certificates for chain building to accept it.
                Critical(BasicConstraints.isCertificateAuthority(maxPathLength: 0))
                Critical(KeyUsage(digitalSignature: true, keyCertSign: true))
                try ExtendedKeyUsage([.serverAuth])
                SubjectAlternativeNames(sans)
            },
            issuerPrivateKey: certKey)
        var serializer = DER.Serializer()
        try serializer.serialize(certificate)
        let der = serializer.serializedBytes
        let nioCert = try NIOSSLCertificate(bytes: der, format: .der)
        let nioKey = try NIOSSLPrivateKey(bytes: Array(key.derRepresentation), format: .der)
        return try TLSIdentity(certificateDER: der, certificate: nioCert, privateKey: nioKey, generated: true)
    }

    /// Reads a PEM certificate and key (development only: the key then exists outside the server).
    public static func load(certificatePEMFile: String, keyPEMFile: String) throws -> TLSIdentity {
        let certPEM = try String(contentsOfFile: certificatePEMFile, encoding: .utf8)
        let keyPEM = try String(contentsOfFile: keyPEMFile, encoding: .utf8)
        let certs = try NIOSSLCertificate.fromPEMBytes(Array(certPEM.utf8))
        guard let first = certs.first else { throw ServerError(.badRequest, "no certificate in '\(certificatePEMFile)'") }
        let key = try NIOSSLPrivateKey(bytes: Array(keyPEM.utf8), format: .pem)
        return try TLSIdentity(certificateDER: try first.toDERBytes(), certificate: first, privateKey: key, generated: false)
    }

    private init(certificateDER: [UInt8], certificate: NIOSSLCertificate, privateKey: NIOSSLPrivateKey, generated: Bool) throws {
        let parsed = try Certificate(derEncoded: certificateDER)
        var serializer = DER.Serializer()
        try serializer.serialize(parsed.publicKey)
        self.certificateDER = certificateDER
        self.subjectPublicKeyInfoDER = serializer.serializedBytes
        self.certificatePEM = try parsed.serializeAsPEM().pemString
        self.certificate = certificate
        self.privateKey = privateKey
        self.generated = generated
    }

    /// The server TLS configuration: TLS 1.2 or newer, this certificate and key, no client certificates.
    public var serverConfiguration: TLSConfiguration {
        var c = TLSConfiguration.makeServerConfiguration(certificateChain: [.certificate(certificate)], privateKey: .privateKey(privateKey))
        c.minimumTLSVersion = .tlsv12
        return c
    }

    static func ipBytes(_ s: String) -> [UInt8]? {
        var v4 = in_addr()
        if inet_pton(AF_INET, s, &v4) == 1 { return withUnsafeBytes(of: &v4) { Array($0) } }
        var v6 = in6_addr()
        if inet_pton(AF_INET6, s, &v6) == 1 { return withUnsafeBytes(of: &v6) { Array($0) } }
        return nil
    }
}

/// The public parts of the server's TLS identity, as given to an attestation provider.
public struct TLSPublicIdentity: Sendable, Equatable {
    public let certificateDER: [UInt8]
    /// DER of the certificate's SubjectPublicKeyInfo: the value an attestation report should bind.
    public let subjectPublicKeyInfoDER: [UInt8]

    public init(certificateDER: [UInt8], subjectPublicKeyInfoDER: [UInt8]) {
        self.certificateDER = certificateDER
        self.subjectPublicKeyInfoDER = subjectPublicKeyInfoDER
    }
}

/// Evidence answered at `POST /v2/attestation`.
public struct AttestationEvidence: Sendable {
    public var contentType: String
    public var body: Data

    public init(contentType: String, body: Data) {
        self.contentType = contentType
        self.body = body
    }
}

/// The seam for attestation: produces evidence that binds a client's nonce and the server's TLS public key
/// to the confidential VM. Implemented outside this module (the attestation producer); the server only
/// calls it. Errors it throws that are `ServerError`s reach the client; others become a 500 without details.
public protocol AttestationProvider: Sendable {
    /// Evidence for `nonce` (exactly 32 bytes, chosen by the client), the server's TLS identity and what the server
    /// states about itself (`claims`: the operator's models, the receipt key), all bound into the report data.
    func evidence(nonce: [UInt8], tls: TLSPublicIdentity, claims: ServerClaims) async throws -> AttestationEvidence
}

/// What the server states in its attested claims document beyond the attestation back end's own attributes.
public struct ServerClaims: Sendable, Equatable {
    public struct Model: Sendable, Equatable {
        public var name: String
        public var version: String
        /// SHA-256 (lowercase hex) of the model's bytes.
        public var sha256: String

        public init(name: String, version: String, sha256: String) {
            self.name = name
            self.version = version
            self.sha256 = sha256
        }
    }

    /// The models the operator loaded at start (`--model-repository`), sorted by name; nobody can replace them.
    public var operatorModels: [Model]
    /// Base64 of the receipt-signing key's SubjectPublicKeyInfo (DER, P-256), when the server signs receipts.
    public var receiptKey: String?

    public init(operatorModels: [Model] = [], receiptKey: String? = nil) {
        self.operatorModels = operatorModels
        self.receiptKey = receiptKey
    }
}
