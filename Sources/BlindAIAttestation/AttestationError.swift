/// An attestation failure: a stable machine-readable `code` and a human `reason`
/// that names the rule or check and the values involved.
public struct AttestationError: Error, Sendable, Equatable, CustomStringConvertible {
    /// A stable, machine-readable code. A struct rather than an enum so that new codes can be added without
    /// breaking a client's `switch` (which needs a `default:`); codes are snake_case strings, printed by the CLI and
    /// sent in protocol errors, and never renamed once published (docs/errors.md).
    public struct Code: RawRepresentable, Hashable, Sendable, CustomStringConvertible, Codable {
        public let rawValue: String
        public init(rawValue: String) { self.rawValue = rawValue }
        public var description: String { rawValue }
        // Evidence parsing
        /// The evidence bundle, report or quote cannot be parsed (truncated, wrong sizes, bad encoding).
        public static let malformedEvidence = Code(rawValue: "malformed_evidence")
        /// A report, quote or collateral version this verifier does not implement.
        public static let unsupportedVersion = Code(rawValue: "unsupported_version")
        /// A certificate in the chain cannot be parsed, or lacks a required extension.
        public static let malformedCertificate = Code(rawValue: "malformed_certificate")
        /// TDX collateral (TCB info, QE identity, CRLs) cannot be parsed.
        public static let malformedCollateral = Code(rawValue: "malformed_collateral")
        // Cryptographic verification
        /// The SEV-SNP report's signature does not verify under the VCEK/VLEK.
        public static let reportSignatureInvalid = Code(rawValue: "report_signature_invalid")
        /// A certificate of the chain is not signed by its issuer.
        public static let certificateSignatureInvalid = Code(rawValue: "certificate_signature_invalid")
        /// The chain does not end at a pinned AMD or Intel root.
        public static let untrustedRoot = Code(rawValue: "untrusted_root")
        /// Simulated evidence whose root is the simulated one, without the policy allowing simulation.
        public static let simulatedRootNotAllowed = Code(rawValue: "simulated_root_not_allowed")
        /// A certificate of the chain is expired or not yet valid at the verification time.
        public static let certificateNotValidAtTime = Code(rawValue: "certificate_not_valid_at_time")
        /// A certificate of the chain is listed in its issuer's CRL.
        public static let certificateRevoked = Code(rawValue: "certificate_revoked")
        /// A CRL is malformed, not signed by its issuer, or not valid at the verification time.
        public static let crlInvalid = Code(rawValue: "crl_invalid")
        /// The evidence's chain is for another processor product than the report claims.
        public static let productMismatch = Code(rawValue: "product_mismatch")
        /// The report says VCEK where the chain holds a VLEK, or the reverse.
        public static let signerMismatch = Code(rawValue: "signer_mismatch")
        /// The TCB in the VCEK certificate differs from the report's reported TCB.
        public static let tcbMismatch = Code(rawValue: "tcb_mismatch")
        /// The chip ID in the VCEK certificate differs from the report's.
        public static let chipIDMismatch = Code(rawValue: "chip_id_mismatch")
        /// The TDX quote's signature does not verify under its attestation key.
        public static let quoteSignatureInvalid = Code(rawValue: "quote_signature_invalid")
        /// The quoting enclave's report is not signed by the PCK certificate.
        public static let qeReportSignatureInvalid = Code(rawValue: "qe_report_signature_invalid")
        /// The quoting enclave's report does not bind the quote's attestation key.
        public static let qeReportBindingInvalid = Code(rawValue: "qe_report_binding_invalid")
        /// TCB info or QE identity is not signed by the TCB Signing certificate.
        public static let collateralSignatureInvalid = Code(rawValue: "collateral_signature_invalid")
        /// TCB info or QE identity is expired or not yet valid at the verification time.
        public static let collateralNotValidAtTime = Code(rawValue: "collateral_not_valid_at_time")
        /// The collateral is for another FMSPC, TEE type or quoting enclave than the quote.
        public static let collateralMismatch = Code(rawValue: "collateral_mismatch")
        /// The quoting enclave does not match the QE identity (MRSIGNER, attributes, ISV SVN).
        public static let qeIdentityMismatch = Code(rawValue: "qe_identity_mismatch")
        // Channel binding
        /// The evidence answers another challenge nonce than the client sent.
        public static let nonceMismatch = Code(rawValue: "nonce_mismatch")
        /// The report data does not bind this TLS key, nonce and claims (a replayed or relayed report).
        public static let reportDataMismatch = Code(rawValue: "report_data_mismatch")
        /// The TLS key of the connection is not the one the evidence binds (a relay or interception).
        public static let tlsKeyMismatch = Code(rawValue: "tls_key_mismatch")
        /// The claims document sent with the evidence is not the one the report data binds.
        public static let claimsDocumentMismatch = Code(rawValue: "claims_document_mismatch")
        // Policy rules
        /// The policy file cannot be parsed, has unknown or duplicate members, or contradicts itself.
        public static let malformedPolicy = Code(rawValue: "malformed_policy")
        /// Simulated evidence without the policy allowing simulation.
        public static let simulatedNotAllowed = Code(rawValue: "simulated_not_allowed")
        /// The guest runs with debugging enabled and the policy does not allow it.
        public static let debugNotAllowed = Code(rawValue: "debug_not_allowed")
        /// The launch measurement (or MRTD/RTMRs) is not one the policy lists.
        public static let measurementNotAllowed = Code(rawValue: "measurement_not_allowed")
        /// A TCB component is below the policy's minimum.
        public static let tcbBelowMinimum = Code(rawValue: "tcb_below_minimum")
        /// The guest security version is below the policy's minimum.
        public static let guestSVNBelowMinimum = Code(rawValue: "guest_svn_below_minimum")
        /// The report was signed by a key kind (VCEK, VLEK) the policy does not allow.
        public static let signerNotAllowed = Code(rawValue: "signer_not_allowed")
        /// The processor product (Milan, Genoa, ...) is not one the policy allows.
        public static let productNotAllowed = Code(rawValue: "product_not_allowed")
        /// The chip ID is not one the policy lists.
        public static let chipIDNotAllowed = Code(rawValue: "chip_id_not_allowed")
        /// The report comes from a VM privilege level the policy does not allow.
        public static let vmplNotAllowed = Code(rawValue: "vmpl_not_allowed")
        /// The TEE kind (SEV-SNP, TDX, simulated) is not one the policy allows.
        public static let teeNotAllowed = Code(rawValue: "tee_not_allowed")
        /// The TDX TCB status (out of date, configuration needed, ...) is not one the policy allows.
        public static let tcbStatusNotAllowed = Code(rawValue: "tcb_status_not_allowed")
        /// Collateral the policy requires (CRLs, TCB info, QE identity) is absent from the evidence.
        public static let collateralMissing = Code(rawValue: "collateral_missing")
        /// The evidence or its collateral is older than the policy allows.
        public static let evidenceTooOld = Code(rawValue: "evidence_too_old")
        /// Simulated evidence is allowed but its root key is not one the policy pins.
        public static let simulatedRootNotPinned = Code(rawValue: "simulated_root_not_pinned")
        /// The server says its TLS key was loaded from a file, and the policy requires a key born in the TEE.
        public static let tlsKeyNotGeneratedInTEE = Code(rawValue: "tls_key_not_generated_in_tee")
        /// The SEV-SNP guest is bound to a migration agent and the policy does not allow it.
        public static let migrationAgentNotAllowed = Code(rawValue: "migration_agent_not_allowed")
        /// The SEV-SNP guest policy (SMT, ABI, debug, ...) is not one the policy allows.
        public static let guestPolicyNotAllowed = Code(rawValue: "guest_policy_not_allowed")
        /// The SEV-SNP host data is not the policy's.
        public static let hostDataNotAllowed = Code(rawValue: "host_data_not_allowed")
        /// The SEV-SNP ID block's key digests (ID key, author key) are not the policy's.
        public static let cspIDNotAllowed = Code(rawValue: "csp_id_not_allowed")
        /// The TDX TD attributes are not the policy's.
        public static let tdAttributesNotAllowed = Code(rawValue: "td_attributes_not_allowed")
        /// The TDX XFAM (extended features) is not the policy's.
        public static let xfamNotAllowed = Code(rawValue: "xfam_not_allowed")
        /// The TDX MRCONFIGID is not the policy's.
        public static let mrConfigIDNotAllowed = Code(rawValue: "mr_config_id_not_allowed")
        /// The TDX MROWNER (or MROWNERCONFIG) is not the policy's.
        public static let mrOwnerNotAllowed = Code(rawValue: "mr_owner_not_allowed")
        /// The TDX collateral's TCB evaluation data number is below the policy's minimum.
        public static let tcbEvaluationDataNumberBelowMinimum = Code(rawValue: "tcb_evaluation_data_number_below_minimum")
        /// The operator's pre-loaded models the bound claims document lists are not the ones the policy pins
        /// (`operatorModels`).
        public static let operatorModelsMismatch = Code(rawValue: "operator_models_mismatch")

        /// Every code this version defines.
        public static let allCases: [Code] = [
            .malformedEvidence,
            .unsupportedVersion,
            .malformedCertificate,
            .malformedCollateral,
            .reportSignatureInvalid,
            .certificateSignatureInvalid,
            .untrustedRoot,
            .simulatedRootNotAllowed,
            .certificateNotValidAtTime,
            .certificateRevoked,
            .crlInvalid,
            .productMismatch,
            .signerMismatch,
            .tcbMismatch,
            .chipIDMismatch,
            .quoteSignatureInvalid,
            .qeReportSignatureInvalid,
            .qeReportBindingInvalid,
            .collateralSignatureInvalid,
            .collateralNotValidAtTime,
            .collateralMismatch,
            .qeIdentityMismatch,
            .nonceMismatch,
            .reportDataMismatch,
            .tlsKeyMismatch,
            .claimsDocumentMismatch,
            .malformedPolicy,
            .simulatedNotAllowed,
            .debugNotAllowed,
            .measurementNotAllowed,
            .tcbBelowMinimum,
            .guestSVNBelowMinimum,
            .signerNotAllowed,
            .productNotAllowed,
            .chipIDNotAllowed,
            .vmplNotAllowed,
            .teeNotAllowed,
            .tcbStatusNotAllowed,
            .collateralMissing,
            .evidenceTooOld,
            .simulatedRootNotPinned,
            .tlsKeyNotGeneratedInTEE,
            .migrationAgentNotAllowed,
            .guestPolicyNotAllowed,
            .hostDataNotAllowed,
            .cspIDNotAllowed,
            .tdAttributesNotAllowed,
            .xfamNotAllowed,
            .mrConfigIDNotAllowed,
            .mrOwnerNotAllowed,
            .tcbEvaluationDataNumberBelowMinimum,
            .operatorModelsMismatch,
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
