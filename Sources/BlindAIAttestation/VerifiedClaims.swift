import Foundation

/// What a verified piece of evidence says, independent of the TEE. Only the verifier creates it
/// (from a `ValidatedSNPReport` or `ValidatedTDXQuote`); policy rules read it. It is `Encodable` only, so it
/// cannot be made by decoding JSON.
public struct VerifiedClaims: Sendable, Encodable, Equatable {
    public struct SNP: Sendable, Codable, Equatable {
        public let reportVersion: UInt32
        public let product: SNPProduct
        public let signer: SNPSigner
        public let vmpl: UInt32
        public let guestSVN: UInt32
        public let policy: String
        /// The guest policy's bits, decoded.
        public let guestPolicy: SNPGuestPolicy
        /// REPORT_ID_MA; all `ff` when no migration agent is associated.
        public let reportIDMA: String
        public let reportedTCB: SNPTCB
        /// nil when the signer masks it (MASK_CHIP_ID) or for VLEK-signed reports.
        public let chipID: String?
        public let hostData: String
        public let familyID: String
        public let imageID: String
        public let idKeyDigest: String
        /// The VLEK's cspID; nil for VCEK-signed reports.
        public let cspID: String?
        /// An AMD CRL was checked against the chain.
        public let checkedCRL: Bool
    }

    /// TD_ATTRIBUTES bits, decoded.
    public struct TDXAttributes: Sendable, Codable, Equatable {
        /// Bit 0.
        public let debug: Bool
        /// Bit 28: EPT violations are not converted to #VE for the guest (SEPT_VE_DISABLE).
        public let septVEDisable: Bool
        /// Bit 29: the TD may be migrated (by a migration TD).
        public let migratable: Bool
        /// Bit 30: supervisor protection keys.
        public let pks: Bool
        /// Bit 63: the TD may use performance monitoring.
        public let perfmon: Bool

        public init(raw: UInt64) {
            debug = raw & 1 != 0
            septVEDisable = raw & (1 << 28) != 0
            migratable = raw & (1 << 29) != 0
            pks = raw & (1 << 30) != 0
            perfmon = raw & (1 << 63) != 0
        }
    }

    public struct TDX: Sendable, Codable, Equatable {
        public let quoteVersion: UInt16
        public let bodyType: UInt16
        public let fmspc: String
        public let teeTCBSVN: String
        public let mrSeam: String
        public let tdAttributes: String
        public let attributes: TDXAttributes
        public let xfam: String
        public let rtmrs: [String]
        public let mrConfigID: String
        public let mrOwner: String
        public let mrOwnerConfig: String
        public let mrServiceTD: String?
        /// nil when no TCB info collateral was checked.
        public let tcb: TDXTCBEvaluation?
        public let checkedPCKCRL: Bool
        public let checkedRootCACRL: Bool
        public let checkedQEIdentity: Bool
        /// tcbEvaluationDataNumber of the TCB info and of the QE identity that were checked.
        public let tcbInfoEvaluationDataNumber: Int?
        public let qeIdentityEvaluationDataNumber: Int?
    }

    public let tee: TEEKind
    /// The chain ends at a simulated root (never true unless simulated evidence was allowed).
    public let simulated: Bool
    /// Simulated evidence only: SHA-256 of the simulated root's SubjectPublicKeyInfo (what a policy pins).
    public let simulatedRootKeySHA256: String?
    public let debug: Bool
    /// SEV-SNP MEASUREMENT or TDX MRTD, lowercase hex.
    public let measurement: String
    public let reportData: String
    public let verifiedAt: String
    /// Set by the channel-binding step.
    public internal(set) var channelBound: Bool
    /// The claims document's `issuedAt`, when a claims document was bound.
    public internal(set) var claimsIssuedAt: String?
    /// The bound claims document's `tlsKeyGeneratedInMemory` attribute: the server generated its TLS key inside the
    /// TEE (true) or loaded it from a file that existed outside (false). nil without a bound claims document.
    public internal(set) var tlsKeyGeneratedInTEE: Bool?
    /// The bound claims document's `models`: the operator's pre-loaded models (nil without a bound claims document,
    /// empty when the server has none).
    public internal(set) var operatorModels: [ClaimedModel]?
    /// The bound claims document's `receiptKey` (base64 SPKI DER of the receipt-signing key), when the server signs
    /// receipts.
    public internal(set) var receiptKey: String?
    public let snp: SNP?
    public let tdx: TDX?

    init(_ v: ValidatedSNPReport) {
        let r = v.report
        tee = .sevSNP
        simulated = v.rootKind == .simulated
        simulatedRootKeySHA256 = v.rootKind == .simulated ? v.rootKeySHA256 : nil
        debug = r.isDebugAllowed
        measurement = Hex.encode(r.measurement)
        reportData = Hex.encode(r.reportData)
        verifiedAt = ISO8601.string(v.verificationTime)
        channelBound = false
        claimsIssuedAt = nil
        tlsKeyGeneratedInTEE = nil
        operatorModels = nil
        receiptKey = nil
        snp = SNP(
            reportVersion: r.version, product: v.product, signer: v.signer, vmpl: r.vmpl, guestSVN: r.guestSVN,
            policy: "0x" + String(r.policy, radix: 16), guestPolicy: r.guestPolicy, reportIDMA: Hex.encode(r.reportIDMA), reportedTCB: v.reportedTCB,
            chipID: (r.isChipIDMasked || v.signer == .vlek) ? nil : Hex.encode(r.chipID),
            hostData: Hex.encode(r.hostData), familyID: Hex.encode(r.familyID), imageID: Hex.encode(r.imageID),
            idKeyDigest: Hex.encode(r.idKeyDigest), cspID: v.cspID, checkedCRL: v.checkedCRL)
        tdx = nil
    }

    init(_ v: ValidatedTDXQuote) {
        let b = v.quote.body
        tee = .tdx
        simulated = false
        simulatedRootKeySHA256 = nil
        debug = b.isDebug
        measurement = Hex.encode(b.mrTD)
        reportData = Hex.encode(b.reportData)
        verifiedAt = ISO8601.string(v.verificationTime)
        channelBound = false
        claimsIssuedAt = nil
        tlsKeyGeneratedInTEE = nil
        operatorModels = nil
        receiptKey = nil
        snp = nil
        tdx = TDX(
            quoteVersion: v.quote.version, bodyType: v.quote.bodyType, fmspc: Hex.encode(v.pck.fmspc), teeTCBSVN: Hex.encode(b.teeTCBSVN),
            mrSeam: Hex.encode(b.mrSeam), tdAttributes: Hex.encode(b.tdAttributes),
            attributes: TDXAttributes(raw: b.tdAttributesValue), xfam: Hex.encode(b.xfam), rtmrs: b.rtmrs.map { Hex.encode($0) },
            mrConfigID: Hex.encode(b.mrConfigID), mrOwner: Hex.encode(b.mrOwner), mrOwnerConfig: Hex.encode(b.mrOwnerConfig),
            mrServiceTD: b.mrServiceTD.map { Hex.encode($0) }, tcb: v.tcb, checkedPCKCRL: v.checkedPCKCRL, checkedRootCACRL: v.checkedRootCACRL,
            checkedQEIdentity: v.checkedQEIdentity, tcbInfoEvaluationDataNumber: v.tcbInfoEvaluationDataNumber,
            qeIdentityEvaluationDataNumber: v.qeIdentityEvaluationDataNumber)
    }

    public func jsonString() -> String {
        let e = JSONEncoder()
        e.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        return (try? e.encode(self)).map { String(decoding: $0, as: UTF8.self) } ?? "{}"
    }
}
