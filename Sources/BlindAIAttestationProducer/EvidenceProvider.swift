import BlindAIAttestation
import Foundation

/// A failure to produce evidence inside the TEE.
public struct EvidenceProviderError: Error, Sendable, Equatable, CustomStringConvertible {
    /// A stable, machine-readable code. A struct rather than an enum so that new codes can be added without
    /// breaking a client's `switch` (which needs a `default:`); codes are snake_case strings, printed by the CLI and
    /// sent in protocol errors, and never renamed once published (docs/errors.md).
    public struct Code: RawRepresentable, Hashable, Sendable, CustomStringConvertible {
        public let rawValue: String
        public init(rawValue: String) { self.rawValue = rawValue }
        public var description: String { rawValue }
        /// The interface (configfs-tsm, /dev/sev-guest) is not present or not usable here.
        public static let unavailable = Code(rawValue: "unavailable")
        /// Another writer changed the configfs-tsm entry between our write and our read.
        public static let interference = Code(rawValue: "interference")
        /// The kernel or firmware refused the request.
        public static let kernelError = Code(rawValue: "kernel_error")
        /// The kernel returned something that is not a report/quote/certificate table.
        public static let malformedOutput = Code(rawValue: "malformed_output")
        /// The kernel or firmware was given an unusable request (report data of the wrong size).
        public static let invalidInput = Code(rawValue: "invalid_input")

        /// Every code this version defines.
        public static let allCases: [Code] = [
            .unavailable,
            .interference,
            .kernelError,
            .malformedOutput,
            .invalidInput,
        ]
    }

    public let code: Code
    public let reason: String

    public init(_ code: Code, _ reason: String) {
        self.code = code
        self.reason = reason
    }

    public var description: String { "\(code.rawValue): \(reason)" }
}

/// The raw parts of evidence for one report-data value.
public struct ProducedEvidence: Sendable {
    public var tee: TEEKind
    /// SEV-SNP report or TDX quote.
    public var report: [UInt8]
    /// SEV-SNP: VCEK/VLEK first, then ASK/ASVK, ARK (DER), when known.
    public var certificates: [[UInt8]]
    /// TDX: PCS collateral files by name, when the server has them.
    public var collateral: [String: [UInt8]]

    public init(tee: TEEKind, report: [UInt8], certificates: [[UInt8]] = [], collateral: [String: [UInt8]] = [:]) {
        self.tee = tee
        self.report = report
        self.certificates = certificates
        self.collateral = collateral
    }
}

/// A source of attestation evidence inside the TEE.
public protocol EvidenceProvider: Sendable {
    /// The technology behind this provider (known after probing).
    var tee: TEEKind { get async throws }
    /// Evidence whose report data is exactly `reportData` (64 bytes).
    func evidence(reportData: [UInt8]) async throws -> ProducedEvidence
}

func checkReportData(_ reportData: [UInt8]) throws(EvidenceProviderError) {
    guard reportData.count == 64 else {
        throw EvidenceProviderError(.invalidInput, "report data is \(reportData.count) bytes, expected 64")
    }
}

/// Builds the evidence bundle the attestation endpoint returns: claims document -> report data bound to the
/// TLS key and the client's nonce -> evidence from the provider.
public struct EvidenceResponder: Sendable {
    public let provider: any EvidenceProvider
    /// DER of the TLS certificate the server presents on the connection.
    public let tlsCertificateDER: [UInt8]
    public let attributes: [String: String]
    /// The operator's models and the receipt key, for the claims document's `models` and `receiptKey`.
    public let models: [ClaimedModel]?
    public let receiptKey: String?

    public init(provider: any EvidenceProvider, tlsCertificateDER: [UInt8], attributes: [String: String] = [:], models: [ClaimedModel]? = nil,
                receiptKey: String? = nil) {
        self.provider = provider
        self.tlsCertificateDER = tlsCertificateDER
        self.attributes = attributes
        self.models = models
        self.receiptKey = receiptKey
    }

    public func bundle(nonce: [UInt8], now: Date = Date()) async throws -> EvidenceBundle {
        guard nonce.count == ReportDataBinding.nonceLength else {
            throw EvidenceProviderError(.invalidInput, "nonce is \(nonce.count) bytes, expected \(ReportDataBinding.nonceLength)")
        }
        let tee = try await provider.tee
        let claims = try ClaimsDocument(tee: tee, issuedAt: now, attributes: attributes, models: models, receiptKey: receiptKey).encoded()
        let spki = try ReportDataBinding.subjectPublicKeyInfo(certificateDER: tlsCertificateDER)
        let reportData = try ReportDataBinding.compute(spki: spki, nonce: nonce, claimsDigest: ReportDataBinding.claimsDigest(claims))
        let produced = try await provider.evidence(reportData: reportData)
        return EvidenceBundle(
            tee: produced.tee, report: produced.report, certificates: produced.certificates, collateral: produced.collateral, claims: claims,
            nonce: nonce, tlsCertificate: tlsCertificateDER)
    }
}
