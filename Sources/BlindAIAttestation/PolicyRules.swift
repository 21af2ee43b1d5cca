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

    public init(allowed: Bool) {
        self.allowed = allowed
    }
    public var name: String { "allowSimulated" }
    public func evaluate(_ c: VerifiedClaims, at time: Date) throws(AttestationError) {
        guard !c.simulated || allowed else {
            throw AttestationError(.simulatedNotAllowed, "rule allowSimulated: the evidence comes from a simulated TEE and the policy does not allow simulated evidence")
        }
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
    public let allowed: [String]

    public init(allowed: [String]) {
        self.allowed = allowed
    }
    public var name: String { "snp.measurements" }
    public func evaluate(_ c: VerifiedClaims, at time: Date) throws(AttestationError) {
        guard c.tee == .sevSNP else { return }
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
    public let allowed: [AttestationPolicy.TDXMeasurement]

    public init(allowed: [AttestationPolicy.TDXMeasurement]) {
        self.allowed = allowed
    }
    public var name: String { "tdx.measurements" }
    public func evaluate(_ c: VerifiedClaims, at time: Date) throws(AttestationError) {
        guard let t = c.tdx else { return }
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

private func abbrev(_ hex: String) -> String {
    hex.count <= 12 ? hex : "\(hex.prefix(8))…\(hex.suffix(4))"
}
