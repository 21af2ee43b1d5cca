import Foundation

/// The composed verifier: evidence parsing -> cryptographic verification (`ValidatedSNPReport` /
/// `ValidatedTDXQuote` -> `VerifiedClaims`) -> channel binding -> policy rules.
public struct AttestationVerifier: Sendable {
    public var policy: AttestationPolicy
    public var snpAnchors: SNPTrustAnchors
    public var tdxAnchors: TDXTrustAnchors

    public init(policy: AttestationPolicy, snpAnchors: SNPTrustAnchors = .amd, tdxAnchors: TDXTrustAnchors = .intel) {
        self.policy = policy
        self.snpAnchors = snpAnchors
        self.tdxAnchors = tdxAnchors
    }

    /// Verifies an evidence bundle from the server's attestation endpoint.
    /// - Parameters:
    ///   - binding: the nonce this client sent and the TLS certificate of the connection it sent it on.
    ///     nil only for offline inspection of evidence (then nothing ties it to a session).
    ///   - time: the verification time (certificate, CRL and collateral validity; evidence age).
    public func verify(bundle: EvidenceBundle, binding: ChannelBindingExpectation?, at time: Date = Date()) async throws(AttestationError)
        -> VerifiedClaims
    {
        guard bundle.format == EvidenceBundle.currentFormat else {
            throw AttestationError(.unsupportedVersion, "evidence bundle format \"\(bundle.format)\" is not \"\(EvidenceBundle.currentFormat)\"")
        }
        var claims: VerifiedClaims
        switch bundle.tee {
        case .sevSNP:
            guard let vek = bundle.certificates.first else {
                throw AttestationError(.malformedEvidence, "SEV-SNP evidence carries no VCEK/VLEK certificate")
            }
            let report = [UInt8](bundle.report)
            let crl = try SNPReport(bytes: report).signer.flatMap { bundle.collateral[SNPCollateral.crlFileName(for: $0)] }.map { [UInt8]($0) }
            claims = try cryptographicallyVerifySNP(
                report: report, endorsementKey: [UInt8](vek), chain: bundle.certificates.dropFirst().map { [UInt8]($0) }, crl: crl, at: time)
        case .tdx:
            let quote = [UInt8](bundle.report)
            let fmspc = try TDXVerifier.fmspc(ofQuote: quote)
            let files = bundle.collateral.mapValues { [UInt8]($0) }
            claims = try await cryptographicallyVerifyTDX(quote: quote, collateral: TDXCollateral.load(files: files, fmspc: fmspc), at: time)
        }
        if let claimsBytes = bundle.claims.map({ [UInt8]($0) }) {
            let doc = try ClaimsDocument.decode(claimsBytes)
            guard doc.tee == bundle.tee else {
                throw AttestationError(.claimsDocumentMismatch, "claims document says \(doc.tee.rawValue) but the evidence is \(bundle.tee.rawValue)")
            }
            claims.claimsIssuedAt = doc.issuedAt
            claims.tlsKeyGeneratedInTEE = try doc.tlsKeyGeneratedInTEE
            claims.operatorModels = doc.models ?? []
            claims.receiptKey = doc.receiptKey
        }
        if let binding {
            try binding.check(reportData: Hex.decode(claims.reportData) ?? [], bundle: bundle)
            claims.channelBound = true
        } else {
            // Without a binding the claims document is not tied to the report: do not let it vouch for anything.
            claims.claimsIssuedAt = nil
            claims.tlsKeyGeneratedInTEE = nil
            claims.operatorModels = nil
            claims.receiptKey = nil
        }
        try policy.evaluate(claims, at: time)
        return claims
    }

    /// SEV-SNP report verification and policy, without channel binding (offline inspection).
    /// - Parameter crl: AMD's CRL for the chain (DER), from a collateral directory.
    public func verifySNP(report: [UInt8], endorsementKey: [UInt8], chain: [[UInt8]] = [], crl: [UInt8]? = nil, at time: Date = Date())
        throws(AttestationError) -> VerifiedClaims
    {
        let claims = try cryptographicallyVerifySNP(report: report, endorsementKey: endorsementKey, chain: chain, crl: crl, at: time)
        try policy.evaluate(claims, at: time)
        return claims
    }

    /// TDX quote verification and policy, without channel binding (offline inspection).
    public func verifyTDX(quote: [UInt8], collateral: TDXCollateral, at time: Date = Date()) async throws(AttestationError) -> VerifiedClaims {
        let claims = try await cryptographicallyVerifyTDX(quote: quote, collateral: collateral, at: time)
        try policy.evaluate(claims, at: time)
        return claims
    }

    func cryptographicallyVerifySNP(report: [UInt8], endorsementKey: [UInt8], chain: [[UInt8]], crl: [UInt8]?, at time: Date)
        throws(AttestationError) -> VerifiedClaims
    {
        let verifier = SNPVerifier(anchors: snpAnchors, allowSimulated: policy.allowSimulated)
        return VerifiedClaims(try verifier.verify(report: report, endorsementKey: endorsementKey, chain: chain, crl: crl, at: time))
    }

    func cryptographicallyVerifyTDX(quote: [UInt8], collateral: TDXCollateral, at time: Date) async throws(AttestationError) -> VerifiedClaims {
        VerifiedClaims(try await TDXVerifier(anchors: tdxAnchors).verify(quote: quote, collateral: collateral, at: time))
    }
}

extension TDXVerifier {
    /// The FMSPC of the PCK certificate inside a quote (to pick the matching tcbInfo file).
    public static func fmspc(ofQuote bytes: [UInt8]) throws(AttestationError) -> String {
        let quote = try TDXQuote(bytes: bytes)
        guard let leaf = PEM.decodeAll(quote.pckChainPEM).first else {
            throw AttestationError(.malformedEvidence, "TDX quote PCK chain is empty")
        }
        return Hex.encode(try PCKCertificateInfo(try DERCertificate(derEncoded: leaf)).fmspc)
    }
}
