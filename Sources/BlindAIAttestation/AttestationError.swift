/// An attestation failure: a stable machine-readable `code` and a human `reason`
/// that names the rule or check and the values involved.
public struct AttestationError: Error, Sendable, Equatable, CustomStringConvertible {
    public enum Code: String, Sendable, Codable, CaseIterable {
        // Evidence parsing
        case malformedEvidence
        case unsupportedVersion
        case malformedCertificate
        case malformedCollateral
        // Cryptographic verification
        case reportSignatureInvalid
        case certificateSignatureInvalid
        case untrustedRoot
        case simulatedRootNotAllowed
        case certificateNotValidAtTime
        case certificateRevoked
        case crlInvalid
        case productMismatch
        case signerMismatch
        case tcbMismatch
        case chipIDMismatch
        case quoteSignatureInvalid
        case qeReportSignatureInvalid
        case qeReportBindingInvalid
        case collateralSignatureInvalid
        case collateralNotValidAtTime
        case collateralMismatch
        case qeIdentityMismatch
        // Channel binding
        case nonceMismatch
        case reportDataMismatch
        case tlsKeyMismatch
        case claimsDocumentMismatch
        // Policy rules
        case malformedPolicy
        case simulatedNotAllowed
        case debugNotAllowed
        case measurementNotAllowed
        case tcbBelowMinimum
        case guestSVNBelowMinimum
        case signerNotAllowed
        case productNotAllowed
        case chipIDNotAllowed
        case vmplNotAllowed
        case teeNotAllowed
        case tcbStatusNotAllowed
        case collateralMissing
        case evidenceTooOld
        case simulatedRootNotPinned
        case tlsKeyNotGeneratedInTEE
        case migrationAgentNotAllowed
        case guestPolicyNotAllowed
        case hostDataNotAllowed
        case cspIDNotAllowed
        case tdAttributesNotAllowed
        case xfamNotAllowed
        case mrConfigIDNotAllowed
        case mrOwnerNotAllowed
        case tcbEvaluationDataNumberBelowMinimum
    }

    public let code: Code
    public let reason: String

    public init(_ code: Code, _ reason: String) {
        self.code = code
        self.reason = reason
    }

    public var description: String { "\(code.rawValue): \(reason)" }
}
