import BlindAIAttestation
import BlindAIAttestationProducer
import BlindAIServer
import Foundation

/// The server's attestation seam (`AttestationProvider`, answered at `POST /v2/attestation`) implemented with an
/// `EvidenceProvider` inside the TEE.
///
/// For each request it writes a claims document (server name and version, TEE kind and back end, issue time, the
/// operator's models and the receipt key),
/// computes the report data of docs/attestation.md §2 over the server's TLS SubjectPublicKeyInfo, the client's
/// nonce and the claims document, asks the TEE for a report carrying exactly that value, and answers the
/// evidence bundle (JSON).
public struct TEEAttestationProvider: AttestationProvider {
    public static let contentType = "application/json"

    public let provider: any EvidenceProvider
    /// Members of the claims document's `attributes`.
    public let attributes: [String: String]

    public init(provider: any EvidenceProvider, attributes: [String: String]) {
        self.provider = provider
        self.attributes = attributes
    }

    /// The standard claims attributes: server name and version, the TEE back end, whether the TLS key was generated
    /// inside this process.
    public static func standardAttributes(backend: String, tlsKeyGeneratedInMemory: Bool) -> [String: String] {
        [
            "server": "blindai",
            "serverVersion": BlindAIServerVersion.current,
            "teeBackend": backend,
            ClaimsDocument.tlsKeyOriginAttribute: tlsKeyGeneratedInMemory ? "true" : "false",
        ]
    }

    public func evidence(nonce: [UInt8], tls: TLSPublicIdentity, claims: ServerClaims) async throws -> AttestationEvidence {
        let models = claims.operatorModels.isEmpty ? nil : claims.operatorModels.map { ClaimedModel(name: $0.name, version: $0.version, sha256: $0.sha256) }
        let responder = EvidenceResponder(provider: provider, tlsCertificateDER: tls.certificateDER, attributes: attributes, models: models,
                                          receiptKey: claims.receiptKey)
        let bundle: EvidenceBundle
        do {
            bundle = try await responder.bundle(nonce: nonce)
        } catch let e as EvidenceProviderError where e.code == .invalidInput {
            throw ServerError(.badRequest, "attestation request refused: \(e.reason)")
        } catch let e as EvidenceProviderError {
            // No internals beyond the stable code: the reason may name kernel paths.
            throw ServerError(.unavailable, "the TEE did not produce evidence (\(e.code.rawValue)); retry later")
        }
        return AttestationEvidence(contentType: Self.contentType, body: try bundle.jsonData())
    }
}

/// SEV-SNP evidence whose certificates come from the operator (`--attestation-certs`) when the host supplies no
/// certificate table, with the operator's AMD CRL files attached.
struct CertificateFallbackProvider: EvidenceProvider {
    let base: any EvidenceProvider
    let certificates: [[UInt8]]
    /// AMD CRL files by name (`vcek_crl.der`, `vlek_crl.der`).
    var collateral: [String: [UInt8]] = [:]

    var tee: TEEKind { get async throws { try await base.tee } }

    func evidence(reportData: [UInt8]) async throws -> ProducedEvidence {
        var produced = try await base.evidence(reportData: reportData)
        if produced.tee == .sevSNP, produced.certificates.isEmpty {
            produced.certificates = certificates
        }
        if produced.tee == .sevSNP { produced.collateral.merge(collateral) { supplied, _ in supplied } }
        return produced
    }
}
