import Foundation

/// One policy rule: a small type with its own error code and a reason naming the rule and the values.
public protocol PolicyRule: Sendable {
    var name: String { get }
    func evaluate(_ claims: VerifiedClaims, at time: Date) throws(AttestationError)
}

public struct TEEKindRule: PolicyRule {
    public let snp: Bool
    public let tdx: Bool

    public init(snp: Bool, tdx: Bool) {
        self.snp = snp
        self.tdx = tdx
    }
    public var name: String { "tee" }
    public func evaluate(_ c: VerifiedClaims, at time: Date) throws(AttestationError) {
        let ok = c.tee == .sevSNP ? snp : tdx
        guard ok else { throw AttestationError(.teeNotAllowed, "rule tee: \(c.tee.rawValue) evidence is not allowed (the policy has no \(c.tee == .sevSNP ? "snp" : "tdx") section)") }
    }
}

public struct SimulatedRule: PolicyRule {
    public let allowed: Bool
    /// SHA-256 of the trusted simulated roots' SubjectPublicKeyInfo; nil: any simulated root (development flags only).
    public let pinnedRootKeys: [String]?

    public init(allowed: Bool, pinnedRootKeys: [String]? = nil) {
        self.allowed = allowed
        self.pinnedRootKeys = pinnedRootKeys
    }
    public var name: String { "allowSimulated" }
    public func evaluate(_ c: VerifiedClaims, at time: Date) throws(AttestationError) {
        guard c.simulated else { return }
        guard allowed else {
            throw AttestationError(.simulatedNotAllowed, "rule allowSimulated: the evidence comes from a simulated TEE and the policy does not allow simulated evidence")
        }
        if let pinnedRootKeys {
            let key = c.simulatedRootKeySHA256 ?? "?"
            guard pinnedRootKeys.contains(key) else {
                throw AttestationError(
                    .simulatedRootNotPinned,
                    "rule simulatedRootKeys: the simulated root's key \(abbrev(key)) is not one the policy pins (\(pinnedRootKeys.map(abbrev).joined(separator: ", ")))")
            }
        }
    }
}

/// The TLS key the evidence is bound to must have been generated inside the TEE (claims attribute
/// `tlsKeyGeneratedInMemory`, bound through the report data): a key loaded from a file existed outside the TEE, and
/// whoever holds a copy can terminate the client's TLS and relay the nonce to the genuine server.
public struct TLSKeyOriginRule: PolicyRule {
    public init() {}
    public var name: String { "allowTLSKeyFromFile" }
    public func evaluate(_ c: VerifiedClaims, at time: Date) throws(AttestationError) {
        switch c.tlsKeyGeneratedInTEE {
        case true?: return
        case false?:
            throw AttestationError(
                .tlsKeyNotGeneratedInTEE,
                "rule allowTLSKeyFromFile: the server loaded its TLS key from a file (it existed outside the TEE) and the policy requires a key generated in the TEE")
        case nil:
            throw AttestationError(
                .tlsKeyNotGeneratedInTEE,
                "rule allowTLSKeyFromFile: the evidence has no bound claims document saying the TLS key was generated in the TEE")
        }
    }
}

/// The operator's pre-loaded models (claims document `models`, bound through the report data) must be exactly the
/// pinned ones: the same names with the same SHA-256, none missing and none more.
public struct OperatorModelsRule: PolicyRule {
    public let pinned: [AttestationPolicy.PinnedModel]

    public init(pinned: [AttestationPolicy.PinnedModel]) { self.pinned = pinned }

    public var name: String { "operatorModels" }

    public func evaluate(_ c: VerifiedClaims, at time: Date) throws(AttestationError) {
        guard let claimed = c.operatorModels else {
            throw AttestationError(.operatorModelsMismatch, "rule operatorModels: the evidence has no bound claims document listing the operator's models")
        }
        let have = Dictionary(claimed.map { ($0.name, $0.sha256.lowercased()) }, uniquingKeysWith: { a, _ in a })
        let want = Dictionary(pinned.map { ($0.name, $0.sha256) }, uniquingKeysWith: { a, _ in a })
        guard have != want else { return }
        var differences: [String] = []
        for (name, digest) in want.sorted(by: { $0.key < $1.key }) {
            switch have[name] {
            case nil: differences.append("'\(name)' is missing")
            case let other? where other != digest: differences.append("'\(name)' has SHA-256 \(other.prefix(16))…, the policy pins \(digest.prefix(16))…")
            default: break
            }
        }
        for name in have.keys.sorted() where want[name] == nil { differences.append("'\(name)' is not pinned") }
        throw AttestationError(.operatorModelsMismatch, "rule operatorModels: the server's pre-loaded models differ from the policy: "
                               + differences.joined(separator: "; "))
    }
}

public struct DebugRule: PolicyRule {
    public let allowed: Bool

    public init(allowed: Bool) {
        self.allowed = allowed
    }
    public var name: String { "allowDebug" }
    public func evaluate(_ c: VerifiedClaims, at time: Date) throws(AttestationError) {
        guard !c.debug || allowed else {
            let detail = c.tee == .sevSNP ? "guest policy \(c.snp?.policy ?? "?") has DEBUG (bit 19) set" : "TD_ATTRIBUTES \(c.tdx?.tdAttributes ?? "?") has DEBUG (bit 0) set"
            throw AttestationError(.debugNotAllowed, "rule allowDebug: \(detail) and the policy forbids debug")
        }
    }
}

public struct EvidenceAgeRule: PolicyRule {
    public let maximumSeconds: Double

    public init(maximumSeconds: Double) {
        self.maximumSeconds = maximumSeconds
    }
    /// Tolerated clock skew for an issuance time in the future.
    public var skewSeconds: Double = 60
    public var name: String { "maxEvidenceAgeSeconds" }
    public func evaluate(_ c: VerifiedClaims, at time: Date) throws(AttestationError) {
        guard let text = c.claimsIssuedAt, let issued = ISO8601.parse(text) else {
            throw AttestationError(.evidenceTooOld, "rule maxEvidenceAgeSeconds: the evidence has no bound claims document with an issuance time")
        }
        let age = time.timeIntervalSince(issued)
        guard age <= maximumSeconds, age >= -skewSeconds else {
            throw AttestationError(
                .evidenceTooOld, "rule maxEvidenceAgeSeconds: evidence issued at \(text) is \(Int(age)) s old at \(ISO8601.string(time)); maximum \(Int(maximumSeconds)) s")
        }
    }
}

public struct SNPMeasurementRule: PolicyRule {
    /// nil: any measurement (the policy said `anyMeasurement`).
    public let allowed: [String]?

    public init(allowed: [String]?) {
        self.allowed = allowed
    }
    public var name: String { "snp.measurements" }
    public func evaluate(_ c: VerifiedClaims, at time: Date) throws(AttestationError) {
        guard c.tee == .sevSNP, let allowed else { return }
        guard !allowed.isEmpty else {
            throw AttestationError(.measurementNotAllowed, "rule snp.measurements: the policy lists no measurement and does not say anyMeasurement")
        }
        guard allowed.contains(c.measurement) else {
            throw AttestationError(
                .measurementNotAllowed, "rule snp.measurements: measurement \(abbrev(c.measurement)) is not in the allowlist (\(allowed.count) entr\(allowed.count == 1 ? "y" : "ies"))")
        }
    }
}

public struct SNPSignerRule: PolicyRule {
    public let allowed: [SNPSigner]

    public init(allowed: [SNPSigner]) {
        self.allowed = allowed
    }
    public var name: String { "snp.signers" }
    public func evaluate(_ c: VerifiedClaims, at time: Date) throws(AttestationError) {
        guard let s = c.snp else { return }
        guard allowed.contains(s.signer) else {
            throw AttestationError(.signerNotAllowed, "rule snp.signers: signer \(s.signer.rawValue) is not one of \(allowed.map(\.rawValue).joined(separator: ", "))")
        }
    }
}

public struct SNPProductRule: PolicyRule {
    public let allowed: [SNPProduct]

    public init(allowed: [SNPProduct]) {
        self.allowed = allowed
    }
    public var name: String { "snp.products" }
    public func evaluate(_ c: VerifiedClaims, at time: Date) throws(AttestationError) {
        guard let s = c.snp else { return }
        guard allowed.contains(s.product) else {
            throw AttestationError(.productNotAllowed, "rule snp.products: product \(s.product.rawValue) is not one of \(allowed.map(\.rawValue).joined(separator: ", "))")
        }
    }
}

public struct SNPMinimumTCBRule: PolicyRule {
    public let minimum: AttestationPolicy.MinimumTCB

    public init(minimum: AttestationPolicy.MinimumTCB) {
        self.minimum = minimum
    }
    public var name: String { "snp.minimumTCB" }
    public func evaluate(_ c: VerifiedClaims, at time: Date) throws(AttestationError) {
        guard let s = c.snp else { return }
        let t = s.reportedTCB
        let checks: [(String, UInt8?, UInt8?)] = [
            ("bootloader", minimum.bootloader, t.bootloader), ("tee", minimum.tee, t.tee), ("snp", minimum.snp, t.snp),
            ("microcode", minimum.microcode, t.microcode), ("fmc", minimum.fmc, t.fmc),
        ]
        for (field, min, actual) in checks {
            guard let min else { continue }
            guard let actual else {
                throw AttestationError(.tcbBelowMinimum, "rule snp.minimumTCB: \(field) minimum \(min) is set but \(s.product.rawValue) reports no \(field) SVN")
            }
            guard actual >= min else {
                throw AttestationError(.tcbBelowMinimum, "rule snp.minimumTCB: reported \(field) SVN \(actual) is below the minimum \(min)")
            }
        }
    }
}

public struct SNPGuestSVNRule: PolicyRule {
    public let minimum: UInt32

    public init(minimum: UInt32) {
        self.minimum = minimum
    }
    public var name: String { "snp.minimumGuestSVN" }
    public func evaluate(_ c: VerifiedClaims, at time: Date) throws(AttestationError) {
        guard let s = c.snp else { return }
        guard s.guestSVN >= minimum else {
            throw AttestationError(.guestSVNBelowMinimum, "rule snp.minimumGuestSVN: guest SVN \(s.guestSVN) is below the minimum \(minimum)")
        }
    }
}

public struct SNPChipIDRule: PolicyRule {
    public let allowed: [String]

    public init(allowed: [String]) {
        self.allowed = allowed
    }
    public var name: String { "snp.chipIDs" }
    public func evaluate(_ c: VerifiedClaims, at time: Date) throws(AttestationError) {
        guard let s = c.snp else { return }
        guard let chip = s.chipID else {
            throw AttestationError(.chipIDNotAllowed, "rule snp.chipIDs: the report carries no chip ID (\(s.signer == .vlek ? "VLEK-signed" : "masked")), so it cannot match the allowlist")
        }
        guard allowed.contains(chip) else {
            throw AttestationError(.chipIDNotAllowed, "rule snp.chipIDs: chip ID \(abbrev(chip)) is not in the allowlist (\(allowed.count) entries)")
        }
    }
}

public struct SNPVMPLRule: PolicyRule {
    public let maximum: UInt32

    public init(maximum: UInt32) {
        self.maximum = maximum
    }
    public var name: String { "snp.maximumVMPL" }
    public func evaluate(_ c: VerifiedClaims, at time: Date) throws(AttestationError) {
        guard let s = c.snp else { return }
        guard s.vmpl <= maximum else {
            throw AttestationError(.vmplNotAllowed, "rule snp.maximumVMPL: report VMPL \(s.vmpl) is above the maximum \(maximum)")
        }
    }
}

public struct TDXMeasurementRule: PolicyRule {
    /// nil: any measurement (the policy said `anyMeasurement`).
    public let allowed: [AttestationPolicy.TDXMeasurement]?

    public init(allowed: [AttestationPolicy.TDXMeasurement]?) {
        self.allowed = allowed
    }
    public var name: String { "tdx.measurements" }
    public func evaluate(_ c: VerifiedClaims, at time: Date) throws(AttestationError) {
        guard let t = c.tdx, let allowed else { return }
        guard !allowed.isEmpty else {
            throw AttestationError(.measurementNotAllowed, "rule tdx.measurements: the policy lists no measurement and does not say anyMeasurement")
        }
        let candidates = allowed.filter { $0.mrtd == c.measurement }
        guard !candidates.isEmpty else {
            throw AttestationError(
                .measurementNotAllowed, "rule tdx.measurements: MRTD \(abbrev(c.measurement)) is not in the allowlist (\(allowed.count) entr\(allowed.count == 1 ? "y" : "ies"))")
        }
        let matches = candidates.contains { m in
            (m.rtmrs ?? []).enumerated().allSatisfy { i, want in want == nil || want == t.rtmrs[i] }
        }
        guard matches else {
            throw AttestationError(
                .measurementNotAllowed, "rule tdx.measurements: MRTD \(abbrev(c.measurement)) is allowed but RTMRs \(t.rtmrs.map(abbrev).joined(separator: ", ")) match none of its entries")
        }
    }
}

public struct TDXTCBStatusRule: PolicyRule {
    public let allowed: [TDXTCBStatus]

    public init(allowed: [TDXTCBStatus]) {
        self.allowed = allowed
    }
    public var name: String { "tdx.allowedTCBStatuses" }
    public func evaluate(_ c: VerifiedClaims, at time: Date) throws(AttestationError) {
        guard let t = c.tdx else { return }
        guard let tcb = t.tcb else {
            throw AttestationError(.collateralMissing, "rule tdx.allowedTCBStatuses: no TCB info collateral was supplied, so the TCB status is unknown")
        }
        guard t.checkedQEIdentity else {
            throw AttestationError(.collateralMissing, "rule tdx.allowedTCBStatuses: no QE identity collateral was supplied")
        }
        guard allowed.contains(tcb.status) else {
            throw AttestationError(
                .tcbStatusNotAllowed,
                "rule tdx.allowedTCBStatuses: TCB status \(tcb.status.rawValue) (platform \(tcb.platformStatus.rawValue)) is not one of \(allowed.map(\.rawValue).joined(separator: ", "))")
        }
    }
}

/// The SNP launch settings of the guest policy and REPORT_ID_MA: migration agent, SMT, single socket, ABI minimum.
public struct SNPLaunchRule: PolicyRule {
    public let rules: AttestationPolicy.SNPRules

    public init(rules: AttestationPolicy.SNPRules) {
        self.rules = rules
    }
    public var name: String { "snp launch settings" }
    public func evaluate(_ c: VerifiedClaims, at time: Date) throws(AttestationError) {
        guard let s = c.snp else { return }
        let g = s.guestPolicy
        if !rules.allowMigrationAgent {
            guard !g.migrateMA else {
                throw AttestationError(
                    .migrationAgentNotAllowed, "rule snp.allowMigrationAgent: guest policy \(s.policy) has MIGRATE_MA (bit 18) set and the policy refuses migration agents")
            }
            guard s.reportIDMA.allSatisfy({ $0 == "f" }) else {
                throw AttestationError(
                    .migrationAgentNotAllowed, "rule snp.allowMigrationAgent: the report names migration agent \(abbrev(s.reportIDMA)) (REPORT_ID_MA) and the policy refuses migration agents")
            }
        }
        if !rules.allowSMT, g.smt {
            throw AttestationError(.guestPolicyNotAllowed, "rule snp.allowSMT: guest policy \(s.policy) allows SMT (bit 16) and the policy refuses it")
        }
        if rules.requireSingleSocket, !g.singleSocket {
            throw AttestationError(.guestPolicyNotAllowed, "rule snp.requireSingleSocket: guest policy \(s.policy) does not have SINGLE_SOCKET (bit 20) set")
        }
        if let minimum = rules.minimumABI {
            let abi = AttestationPolicy.ABIVersion(major: g.abiMajor, minor: g.abiMinor)
            guard abi >= minimum else {
                throw AttestationError(.guestPolicyNotAllowed, "rule snp.minimumABI: guest policy \(s.policy) requires firmware ABI \(abi), below the minimum \(minimum)")
            }
        }
    }
}

public struct SNPCSPIDRule: PolicyRule {
    public let allowed: [String]

    public init(allowed: [String]) {
        self.allowed = allowed
    }
    public var name: String { "snp.vlekCSPIDs" }
    public func evaluate(_ c: VerifiedClaims, at time: Date) throws(AttestationError) {
        guard let s = c.snp, s.signer == .vlek else { return }
        guard let csp = s.cspID, allowed.contains(csp) else {
            throw AttestationError(
                .cspIDNotAllowed, "rule snp.vlekCSPIDs: the VLEK's cspID \(s.cspID.map { "\"\($0)\"" } ?? "(none)") is not one of \(allowed.joined(separator: ", "))")
        }
    }
}

public struct SNPCRLRule: PolicyRule {
    public init() {}
    public var name: String { "snp.requireCRL" }
    public func evaluate(_ c: VerifiedClaims, at time: Date) throws(AttestationError) {
        guard let s = c.snp else { return }
        guard s.checkedCRL else {
            throw AttestationError(
                .collateralMissing, "rule snp.requireCRL: no AMD CRL (vcek_crl.der or vlek_crl.der) came with the evidence or the collateral directory")
        }
    }
}

/// TD_ATTRIBUTES and MRSERVICETD: SEPT_VE_DISABLE, MIGRATABLE and bound service TDs, PKS, PERFMON.
public struct TDXAttributesRule: PolicyRule {
    public let rules: AttestationPolicy.TDXRules

    public init(rules: AttestationPolicy.TDXRules) {
        self.rules = rules
    }
    public var name: String { "tdx launch settings" }
    public func evaluate(_ c: VerifiedClaims, at time: Date) throws(AttestationError) {
        guard let t = c.tdx else { return }
        try check(tdAttributes: t.tdAttributes, mrServiceTD: t.mrServiceTD)
    }

    /// - Parameters:
    ///   - tdAttributes: TD_ATTRIBUTES as in the quote (16 hex digits, little-endian).
    ///   - mrServiceTD: MRSERVICETD (TD 1.5 quotes), hex.
    public func check(tdAttributes: String, mrServiceTD: String?) throws(AttestationError) {
        let raw = (Hex.decode(tdAttributes) ?? []).reversed().reduce(UInt64(0)) { $0 << 8 | UInt64($1) }
        let a = VerifiedClaims.TDXAttributes(raw: raw)
        func refuse(_ code: AttestationError.Code, _ member: String, _ what: String) -> AttestationError {
            AttestationError(code, "rule tdx.\(member): TD_ATTRIBUTES \(tdAttributes) \(what)")
        }
        if rules.requireSEPTVEDisable, !a.septVEDisable {
            throw refuse(.tdAttributesNotAllowed, "requireSEPTVEDisable", "lacks SEPT_VE_DISABLE (bit 28): the host could inject #VE on private-memory EPT violations")
        }
        if !rules.allowMigratable, a.migratable {
            throw refuse(.migrationAgentNotAllowed, "allowMigratable", "has MIGRATABLE (bit 29) set and the policy refuses migratable TDs")
        }
        if !rules.allowPKS, a.pks { throw refuse(.tdAttributesNotAllowed, "allowPKS", "has PKS (bit 30) set and the policy does not allow it") }
        if !rules.allowPerfmon, a.perfmon { throw refuse(.tdAttributesNotAllowed, "allowPerfmon", "has PERFMON (bit 63) set and the policy does not allow it") }
        if let service = mrServiceTD, !service.allSatisfy({ $0 == "0" }), !(rules.mrServiceTDs ?? []).contains(service) {
            throw AttestationError(
                .migrationAgentNotAllowed,
                "rule tdx.mrServiceTDs: a service TD (for example a migration TD) is bound, MRSERVICETD \(abbrev(service)), and the policy does not list it")
        }
    }
}

/// An allowlist for one register of the report: SNP HOST_DATA, TDX XFAM, MRCONFIGID, MROWNER.
public struct RegisterAllowlistRule: PolicyRule {
    public enum Register: Sendable {
        case snpHostData, xfam, mrConfigID, mrOwner
    }
    public let register: Register
    public let allowed: [String]

    public init(register: Register, allowed: [String]) {
        self.register = register
        self.allowed = allowed
    }
    public var name: String {
        switch register {
        case .snpHostData: return "snp.hostData"
        case .xfam: return "tdx.xfams"
        case .mrConfigID: return "tdx.mrConfigIDs"
        case .mrOwner: return "tdx.mrOwners"
        }
    }
    public func evaluate(_ c: VerifiedClaims, at time: Date) throws(AttestationError) {
        let (value, field, code): (String?, String, AttestationError.Code)
        switch register {
        case .snpHostData: (value, field, code) = (c.snp?.hostData, "HOST_DATA", .hostDataNotAllowed)
        case .xfam: (value, field, code) = (c.tdx?.xfam, "XFAM", .xfamNotAllowed)
        case .mrConfigID: (value, field, code) = (c.tdx?.mrConfigID, "MRCONFIGID", .mrConfigIDNotAllowed)
        case .mrOwner: (value, field, code) = (c.tdx?.mrOwner, "MROWNER", .mrOwnerNotAllowed)
        }
        guard let value else { return }
        guard allowed.contains(value) else {
            throw AttestationError(code, "rule \(name): \(field) \(abbrev(value)) is not in the allowlist (\(allowed.count) entr\(allowed.count == 1 ? "y" : "ies"))")
        }
    }
}

/// Intel raises tcbEvaluationDataNumber when a TCB recovery changes which platforms are up to date; a floor refuses
/// collateral older than that recovery (a host could otherwise serve stale, still-signed collateral).
public struct TDXEvaluationDataNumberRule: PolicyRule {
    public let minimum: Int

    public init(minimum: Int) {
        self.minimum = minimum
    }
    public var name: String { "tdx.minimumTCBEvaluationDataNumber" }
    public func evaluate(_ c: VerifiedClaims, at time: Date) throws(AttestationError) {
        guard let t = c.tdx else { return }
        for (what, number) in [("TCB info", t.tcbInfoEvaluationDataNumber), ("QE identity", t.qeIdentityEvaluationDataNumber)] {
            guard let number else {
                throw AttestationError(.collateralMissing, "rule \(name): no \(what) with a tcbEvaluationDataNumber was checked")
            }
            guard number >= minimum else {
                throw AttestationError(
                    .tcbEvaluationDataNumberBelowMinimum, "rule \(name): the \(what) has tcbEvaluationDataNumber \(number), below the minimum \(minimum)")
            }
        }
    }
}

private func abbrev(_ hex: String) -> String {
    hex.count <= 12 ? hex : "\(hex.prefix(8))…\(hex.suffix(4))"
}
