import Foundation

/// The TEE technology that produced the evidence.
public enum TEEKind: String, Sendable, Codable, CaseIterable {
    case sevSNP = "sev-snp"
    case tdx = "tdx"
}

/// What the server's attestation endpoint returns (and what `--evidence FILE` reads). JSON; byte
/// fields are base64 (standard alphabet, padded).
public struct EvidenceBundle: Sendable, Codable, Equatable {
    public static let currentFormat = "blindai-evidence/1"

    public var format: String
    public var tee: TEEKind
    /// SEV-SNP: the 1184-byte report. TDX: the quote.
    public var report: Data
    /// SEV-SNP: the VCEK or VLEK first, then any ASK/ASVK and ARK (DER). TDX: unused (the PCK chain is in the quote).
    public var certificates: [Data]
    /// TDX: PCS collateral files by name (`tcbInfo_fmspc_<fmspc>.json`, `qeIdentity.json`, `pck_crl_platform.der`,
    /// `root_ca_crl.der`, `*_issuer_chain.pem`). SEV-SNP: AMD's CRL (`vcek_crl.der` or `vlek_crl.der`).
    public var collateral: [String: Data]
    /// The claims document JSON bytes whose SHA-256 is bound into the report data.
    public var claims: Data?
    /// The client's nonce, echoed.
    public var nonce: Data?
    /// The TLS certificate (DER) the server bound the evidence to, for diagnostics and for checking a receipt's evidence
    /// offline (docs/receipts.md): a connected client always uses the certificate of its own connection.
    public var tlsCertificate: Data?

    public init(
        tee: TEEKind, report: [UInt8], certificates: [[UInt8]] = [], collateral: [String: [UInt8]] = [:], claims: [UInt8]? = nil,
        nonce: [UInt8]? = nil, tlsCertificate: [UInt8]? = nil
    ) {
        self.format = EvidenceBundle.currentFormat
        self.tee = tee
        self.report = Data(report)
        self.certificates = certificates.map { Data($0) }
        self.collateral = collateral.mapValues { Data($0) }
        self.claims = claims.map { Data($0) }
        self.nonce = nonce.map { Data($0) }
        self.tlsCertificate = tlsCertificate.map { Data($0) }
    }

    enum CodingKeys: String, CodingKey {
        case format, tee, report, certificates, collateral, claims, nonce, tlsCertificate
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        format = try c.decode(String.self, forKey: .format)
        tee = try c.decode(TEEKind.self, forKey: .tee)
        report = try c.decode(Data.self, forKey: .report)
        certificates = try c.decodeIfPresent([Data].self, forKey: .certificates) ?? []
        collateral = try c.decodeIfPresent([String: Data].self, forKey: .collateral) ?? [:]
        claims = try c.decodeIfPresent(Data.self, forKey: .claims)
        nonce = try c.decodeIfPresent(Data.self, forKey: .nonce)
        tlsCertificate = try c.decodeIfPresent(Data.self, forKey: .tlsCertificate)
    }

    public func jsonData() throws -> Data {
        let e = JSONEncoder()
        e.outputFormatting = [.prettyPrinted, .sortedKeys]
        return try e.encode(self)
    }

    public static func decode(json: Data) throws(AttestationError) -> EvidenceBundle {
        // Duplicate members are refused at any depth (JSONDecoder would silently keep one of them).
        let members = JSONMemberCheck.check(json)
        if case .duplicate(let name) = members {
            throw AttestationError(.malformedEvidence, "evidence bundle JSON is invalid: duplicate member \"\(name)\"")
        }
        let bundle: EvidenceBundle
        do { bundle = try JSONDecoder().decode(EvidenceBundle.self, from: json) } catch {
            throw AttestationError(.malformedEvidence, "evidence bundle JSON is invalid: \(error)")
        }
        if case .unreadable(let why) = members { throw AttestationError(.malformedEvidence, "evidence bundle JSON is invalid: \(why)") }
        guard bundle.format == currentFormat else {
            throw AttestationError(.unsupportedVersion, "evidence bundle format \"\(bundle.format)\" is not \"\(currentFormat)\"")
        }
        return bundle
    }
}

/// A model of the operator's repository as the claims document lists it.
public struct ClaimedModel: Sendable, Codable, Equatable, Hashable {
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

/// The server's statement bound into the evidence through its SHA-256. The verifier reads `issuedAt`
/// (for the maximum evidence age rule) and `tee`; other members are for the application.
public struct ClaimsDocument: Sendable, Codable, Equatable {
    public var version: Int
    public var tee: TEEKind
    /// ISO 8601 UTC.
    public var issuedAt: String
    public var attributes: [String: String]
    /// The models the operator loaded at start, sorted by name (absent when there are none): nobody can replace them,
    /// so a policy may pin them (`operatorModels`).
    public var models: [ClaimedModel]?
    /// Base64 of the server's receipt-signing key's SubjectPublicKeyInfo (DER, P-256), when it signs receipts
    /// (docs/receipts.md).
    public var receiptKey: String?

    public init(tee: TEEKind, issuedAt: Date, attributes: [String: String] = [:], models: [ClaimedModel]? = nil, receiptKey: String? = nil) {
        self.version = 1
        self.tee = tee
        self.issuedAt = ISO8601.string(issuedAt)
        self.attributes = attributes
        self.models = models.map { $0.sorted { $0.name < $1.name } }
        self.receiptKey = receiptKey
    }

    /// Canonical bytes (sorted keys, no whitespace) for hashing and transport.
    public func encoded() throws -> [UInt8] {
        let e = JSONEncoder()
        e.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return [UInt8](try e.encode(self))
    }

    /// The attribute in which the server says whether it generated its TLS key inside the TEE ("true") or loaded it
    /// from a file ("false").
    public static let tlsKeyOriginAttribute = "tlsKeyGeneratedInMemory"

    /// The `tlsKeyGeneratedInMemory` attribute: nil when absent, an error when it is neither "true" nor "false".
    public var tlsKeyGeneratedInTEE: Bool? {
        get throws(AttestationError) {
            switch attributes[Self.tlsKeyOriginAttribute] {
            case nil: return nil
            case "true": return true
            case "false": return false
            case let other?:
                throw AttestationError(.claimsDocumentMismatch, "claims document attribute \(Self.tlsKeyOriginAttribute) is \"\(other)\", not \"true\" or \"false\"")
            }
        }
    }

    public static func decode(_ bytes: [UInt8]) throws(AttestationError) -> ClaimsDocument {
        // Duplicate members are refused at any depth (JSONDecoder would silently keep one of them).
        let members = JSONMemberCheck.check(bytes)
        if case .duplicate(let name) = members {
            throw AttestationError(.claimsDocumentMismatch, "claims document is not valid JSON of version 1: duplicate member \"\(name)\"")
        }
        let document: ClaimsDocument
        do { document = try JSONDecoder().decode(ClaimsDocument.self, from: Data(bytes)) } catch {
            throw AttestationError(.claimsDocumentMismatch, "claims document is not valid JSON of version 1: \(error)")
        }
        if case .unreadable(let why) = members {
            throw AttestationError(.claimsDocumentMismatch, "claims document is not valid JSON of version 1: \(why)")
        }
        return document
    }
}

/// SEV-SNP collateral: AMD's CRL for the chain, as AMD KDS serves it (`/vcek/v1/<product>/crl` or
/// `/vlek/v1/<product>/crl`, DER), named by the key that signs reports.
public enum SNPCollateral {
    public static func crlFileName(for signer: SNPSigner) -> String { signer == .vcek ? "vcek_crl.der" : "vlek_crl.der" }
    public static let fileNames: [String] = SNPSigner.allCases.map(crlFileName(for:))

    /// The CRL files present in `directory` (for packing into an evidence bundle).
    public static func files(inDirectory directory: URL) -> [String: [UInt8]] {
        var out = [String: [UInt8]]()
        for name in fileNames {
            if let d = FileManager.default.contents(atPath: directory.appendingPathComponent(name).path) { out[name] = [UInt8](d) }
        }
        return out
    }
}
