import BlindAIAttestation
import BlindAIReceipts
import Foundation

/// A receipt with the evidence needed to check it later, as one JSON file (docs/receipts.md):
///
///     {"format": "blindai-receipt-file/1", "receipt": BASE64, "signature": BASE64, "evidence": {EVIDENCE BUNDLE}}
///
/// `receipt` is the receipt's canonical JSON, `signature` the server's ECDSA P-256 signature over it, `evidence` the
/// attestation evidence of the session that received it (its claims document names the receipt key).
public struct ReceiptFile: Codable, Sendable, Equatable {
    public static let currentFormat = "blindai-receipt-file/1"

    public var format: String
    public var receipt: String
    public var signature: String
    public var evidence: EvidenceBundle

    public init(receipt: SignedReceipt, evidence: EvidenceBundle) {
        format = Self.currentFormat
        self.receipt = receipt.payload.base64EncodedString()
        signature = receipt.signature.base64EncodedString()
        self.evidence = evidence
    }

    public func jsonData() throws -> Data {
        let e = JSONEncoder()
        e.outputFormatting = [.sortedKeys, .prettyPrinted, .withoutEscapingSlashes]
        return try e.encode(self)
    }

    public static func decode(json: Data) throws(ReceiptError) -> ReceiptFile {
        let file: ReceiptFile
        do { file = try JSONDecoder().decode(ReceiptFile.self, from: json) } catch {
            throw ReceiptError(.malformed, "not a receipt file: \(error)")
        }
        guard file.format == currentFormat else {
            throw ReceiptError(.malformed, "receipt file format \"\(file.format)\" is not \"\(currentFormat)\"")
        }
        return file
    }

    /// The signed receipt, decoded from base64.
    public var signedReceipt: SignedReceipt {
        get throws(ReceiptError) {
            guard let payload = Data(base64Encoded: receipt), let sig = Data(base64Encoded: signature) else {
                throw ReceiptError(.malformed, "the receipt or its signature is not base64")
            }
            return SignedReceipt(payload: payload, signature: sig)
        }
    }
}

/// A receipt that verified: what it says, and the claims of the evidence that vouches for its key.
public struct VerifiedReceipt: Sendable {
    public let receipt: Receipt
    public let claims: VerifiedClaims
}

/// Offline verification of a receipt file, by anyone, after the server has gone (docs/receipts.md):
/// 1. the evidence against the policy, at the evidence's own issue time, with its report data recomputed from the
///    certificate, nonce and claims document it carries (so the claims document, and the receipt key in it, are the
///    TEE's);
/// 2. the receipt's signature with that key;
/// 3. the receipt's time within the evidence's validity: from its issue time to the policy's maximum evidence age
///    (24 hours when the policy sets none);
/// 4. when given, each tensor's digest against the receipt's.
public enum ReceiptVerifier {
    /// The validity of evidence for receipts when the policy sets no `maxEvidenceAgeSeconds`.
    public static let defaultEvidenceValidity: TimeInterval = 24 * 3600

    public static func verify(_ file: ReceiptFile, policy: AttestationPolicy, inputs: [String: Tensor] = [:], outputs: [String: Tensor] = [:],
                              snpAnchors: SNPTrustAnchors = .amd, tdxAnchors: TDXTrustAnchors = .intel) async throws -> VerifiedReceipt {
        let bundle = file.evidence
        guard let claimsBytes = bundle.claims.map({ [UInt8]($0) }), let nonce = bundle.nonce.map({ [UInt8]($0) }),
              let certificate = bundle.tlsCertificate.map({ [UInt8]($0) })
        else {
            throw AttestationError(.claimsDocumentMismatch, "the receipt's evidence lacks its claims document, nonce or TLS certificate")
        }
        let document = try ClaimsDocument.decode(claimsBytes)
        guard let issued = try? Date(document.issuedAt, strategy: .iso8601) else {
            throw AttestationError(.claimsDocumentMismatch, "the claims document's issuedAt \"\(document.issuedAt)\" is not an ISO 8601 time")
        }
        let binding = try ChannelBindingExpectation(nonce: nonce, tlsCertificateDER: certificate)
        let claims = try await AttestationVerifier(policy: policy, snpAnchors: snpAnchors, tdxAnchors: tdxAnchors)
            .verify(bundle: bundle, binding: binding, at: issued)
        guard let key = claims.receiptKey else {
            throw ReceiptError(.keyMismatch, "the evidence's claims document names no receipt key: that server does not sign receipts")
        }
        let receipt = try file.signedReceipt.verify(expectedKey: key)
        guard let at = receipt.issuedAtDate else {
            throw ReceiptError(.malformed, "the receipt's issuedAt \"\(receipt.issuedAt)\" is not an ISO 8601 time")
        }
        let validity = policy.maxEvidenceAgeSeconds ?? defaultEvidenceValidity
        // The claims document's time has whole seconds: allow the second it was issued in.
        guard at >= issued.addingTimeInterval(-1), at <= issued.addingTimeInterval(validity) else {
            throw ReceiptError(.outsideEvidenceValidity, "the receipt was issued at \(receipt.issuedAt), outside its evidence's validity (issued "
                               + "\(document.issuedAt), valid \(Int(validity)) s): the evidence does not vouch for the key at that time")
        }
        try check(inputs, against: receipt.inputs, kind: "input", mismatch: .inputMismatch)
        try check(outputs, against: receipt.outputs, kind: "output", mismatch: .outputMismatch)
        return VerifiedReceipt(receipt: receipt, claims: claims)
    }

    /// The receipt digest of a client tensor.
    public static func digest(_ t: Tensor, name: String) -> String {
        TensorDigest.sha256(name: name, datatype: t.datatype.rawValue, shape: t.shape, bytes: t.data)
    }

    static func check(_ tensors: [String: Tensor], against recorded: [Receipt.Tensor], kind: String, mismatch: ReceiptError.Code) throws(ReceiptError) {
        for (name, t) in tensors.sorted(by: { $0.key < $1.key }) {
            guard let entry = recorded.first(where: { $0.name == name }) else {
                throw ReceiptError(.tensorUnknown, "the receipt records no \(kind) named '\(name)' (it has: \(recorded.map(\.name).joined(separator: ", ")))")
            }
            guard digest(t, name: name) == entry.sha256 else {
                throw ReceiptError(mismatch, "\(kind) '\(name)' is not the one the receipt records: its digest differs")
            }
        }
    }
}
