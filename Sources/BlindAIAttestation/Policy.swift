import Foundation

/// A verification policy, loaded from a JSON manifest a person can read and diff (see docs/attestation.md).
///
/// Absent members mean "not constrained", except the safety defaults: debug and simulated evidence are refused
/// unless allowed, a TLS key loaded from a file is refused unless allowed, a TEE section must list its measurements
/// or say `anyMeasurement`, migration agents (SNP) and migratable TDs or bound service TDs (TDX) are refused,
/// SEPT_VE_DISABLE is required, PERFMON is refused, and a present `tdx` section accepts only `UpToDate`
/// unless it lists more statuses. Unknown members are rejected, so a misspelt rule cannot silently do nothing.
public struct AttestationPolicy: Sendable, Equatable {
    public struct MinimumTCB: Sendable, Codable, Equatable {
        public var bootloader: UInt8?
        public var tee: UInt8?
        public var snp: UInt8?
        public var microcode: UInt8?
        public var fmc: UInt8?

        public init(bootloader: UInt8? = nil, tee: UInt8? = nil, snp: UInt8? = nil, microcode: UInt8? = nil, fmc: UInt8? = nil) {
            self.bootloader = bootloader
            self.tee = tee
            self.snp = snp
            self.microcode = microcode
            self.fmc = fmc
        }
    }

    /// A firmware ABI version (SNP guest policy bits 15:8 and 7:0).
    public struct ABIVersion: Sendable, Codable, Equatable, Comparable, CustomStringConvertible {
        public var major: UInt8
        public var minor: UInt8

        public init(major: UInt8, minor: UInt8) {
            self.major = major
            self.minor = minor
        }

        public static func < (a: ABIVersion, b: ABIVersion) -> Bool { (a.major, a.minor) < (b.major, b.minor) }
        public var description: String { "\(major).\(minor)" }
    }

    public struct SNPRules: Sendable, Equatable {
        /// Allowed MEASUREMENT values (lowercase hex, 96 digits). nil: refused unless `anyMeasurement`.
        public var measurements: [String]?
        /// Accept any measurement (says so explicitly; a section without measurements otherwise accepts none).
        public var anyMeasurement: Bool
        public var signers: [SNPSigner]?
        public var products: [SNPProduct]?
        public var minimumTCB: MinimumTCB?
        public var minimumGuestSVN: UInt32?
        /// Allowed chip IDs (hex). nil: any.
        public var chipIDs: [String]?
        public var maximumVMPL: UInt32?
        /// Accept a guest policy with MIGRATE_MA (bit 18) or a report naming a migration agent (REPORT_ID_MA). Default false.
        public var allowMigrationAgent: Bool
        /// Accept a guest policy allowing SMT (bit 16). Default true (SMT is on in most clouds; false for hardened hosts).
        public var allowSMT: Bool
        /// Require SINGLE_SOCKET (bit 20). Default false.
        public var requireSingleSocket: Bool
        /// The guest policy's minimum firmware ABI (bits 15:0) must be at least this. nil: not constrained.
        public var minimumABI: ABIVersion?
        /// Allowed HOST_DATA values (64 hex digits). nil: any.
        public var hostData: [String]?
        /// Allowed VLEK cspID values (the cloud provider a VLEK was issued to). nil: any.
        public var vlekCSPIDs: [String]?
        /// Require an AMD CRL (evidence collateral or a collateral directory) to have been checked. Default false.
        public var requireCRL: Bool

        public init(
            measurements: [String]? = nil, anyMeasurement: Bool = false, signers: [SNPSigner]? = nil, products: [SNPProduct]? = nil,
            minimumTCB: MinimumTCB? = nil, minimumGuestSVN: UInt32? = nil, chipIDs: [String]? = nil, maximumVMPL: UInt32? = nil,
            allowMigrationAgent: Bool = false, allowSMT: Bool = true, requireSingleSocket: Bool = false, minimumABI: ABIVersion? = nil,
            hostData: [String]? = nil, vlekCSPIDs: [String]? = nil, requireCRL: Bool = false
        ) {
            self.measurements = measurements?.map { $0.lowercased() }
            self.anyMeasurement = anyMeasurement
            self.signers = signers
            self.products = products
            self.minimumTCB = minimumTCB
            self.minimumGuestSVN = minimumGuestSVN
            self.chipIDs = chipIDs?.map { $0.lowercased() }
            self.maximumVMPL = maximumVMPL
            self.allowMigrationAgent = allowMigrationAgent
            self.allowSMT = allowSMT
            self.requireSingleSocket = requireSingleSocket
            self.minimumABI = minimumABI
            self.hostData = hostData?.map { $0.lowercased() }
            self.vlekCSPIDs = vlekCSPIDs
            self.requireCRL = requireCRL
        }
    }

    public struct TDXMeasurement: Sendable, Codable, Equatable {
        public var mrtd: String
        /// RTMR0..RTMR3; a missing or null entry is not constrained.
        public var rtmrs: [String?]?

        public init(mrtd: String, rtmrs: [String?]? = nil) {
            self.mrtd = mrtd.lowercased()
            self.rtmrs = rtmrs?.map { $0?.lowercased() }
        }
    }

    public struct TDXRules: Sendable, Equatable {
        /// nil: refused unless `anyMeasurement`.
        public var measurements: [TDXMeasurement]?
        public var anyMeasurement: Bool
        /// nil: any status and TCB info optional (authenticity only). Default from a manifest: ["UpToDate"].
        public var allowedTCBStatuses: [TDXTCBStatus]?
        /// Both the TCB info's and the QE identity's tcbEvaluationDataNumber must be at least this. nil: not constrained.
        public var minimumTCBEvaluationDataNumber: Int?
        /// Require TD_ATTRIBUTES.SEPT_VE_DISABLE (bit 28). Default true.
        public var requireSEPTVEDisable: Bool
        /// Accept TD_ATTRIBUTES.MIGRATABLE (bit 29). Default false.
        public var allowMigratable: Bool
        /// Allowed non-zero MRSERVICETD values (96 hex digits; TD 1.5). nil: MRSERVICETD must be zero (no service TD bound).
        public var mrServiceTDs: [String]?
        /// Accept TD_ATTRIBUTES.PKS (bit 30). Default true: supervisor protection keys harden the guest kernel and give
        /// the host nothing (go-tdx-guest's production SPR quote has it); false for an image known to run without it.
        public var allowPKS: Bool
        /// Accept TD_ATTRIBUTES.PERFMON (bit 63). Default false.
        public var allowPerfmon: Bool
        /// Allowed XFAM values (16 hex digits, as in the quote). nil: any.
        public var xfams: [String]?
        /// Allowed MRCONFIGID / MROWNER values (96 hex digits). nil: any.
        public var mrConfigIDs: [String]?
        public var mrOwners: [String]?

        public init(
            measurements: [TDXMeasurement]? = nil, anyMeasurement: Bool = false, allowedTCBStatuses: [TDXTCBStatus]? = [.upToDate],
            minimumTCBEvaluationDataNumber: Int? = nil, requireSEPTVEDisable: Bool = true, allowMigratable: Bool = false,
            mrServiceTDs: [String]? = nil, allowPKS: Bool = true, allowPerfmon: Bool = false, xfams: [String]? = nil,
            mrConfigIDs: [String]? = nil, mrOwners: [String]? = nil
        ) {
            self.measurements = measurements
            self.anyMeasurement = anyMeasurement
            self.allowedTCBStatuses = allowedTCBStatuses
            self.minimumTCBEvaluationDataNumber = minimumTCBEvaluationDataNumber
            self.requireSEPTVEDisable = requireSEPTVEDisable
            self.allowMigratable = allowMigratable
            self.mrServiceTDs = mrServiceTDs?.map { $0.lowercased() }
            self.allowPKS = allowPKS
            self.allowPerfmon = allowPerfmon
            self.xfams = xfams?.map { $0.lowercased() }
            self.mrConfigIDs = mrConfigIDs?.map { $0.lowercased() }
            self.mrOwners = mrOwners?.map { $0.lowercased() }
        }
    }

    /// A model the policy requires among the operator's pre-loaded models.
    public struct PinnedModel: Sendable, Equatable, Hashable {
        public var name: String
        /// Lowercase hex.
        public var sha256: String

        public init(name: String, sha256: String) {
            self.name = name
            self.sha256 = sha256.lowercased()
        }
    }

    public var allowSimulated: Bool
    /// SHA-256 (hex) of the SubjectPublicKeyInfo of the simulated roots a policy trusts. A manifest that allows
    /// simulated evidence must list them; nil (only from code, for development flags) accepts any simulated root.
    public var simulatedRootKeys: [String]?
    public var allowDebug: Bool
    /// Accept a server whose TLS key was loaded from a file (so existed outside the TEE). Default false.
    public var allowTLSKeyFromFile: Bool
    public var maxEvidenceAgeSeconds: Double?
    /// The operator's pre-loaded models the server must have, exactly (name and SHA-256 of each; the claims
    /// document's `models`). nil: not checked.
    public var operatorModels: [PinnedModel]?
    /// A TEE kind without a section is refused.
    public var snp: SNPRules?
    public var tdx: TDXRules?

    public init(
        allowSimulated: Bool = false, simulatedRootKeys: [String]? = nil, allowDebug: Bool = false, allowTLSKeyFromFile: Bool = false,
        maxEvidenceAgeSeconds: Double? = nil, snp: SNPRules? = SNPRules(), tdx: TDXRules? = TDXRules()
    ) {
        self.allowSimulated = allowSimulated
        self.simulatedRootKeys = simulatedRootKeys?.map { $0.lowercased() }
        self.allowDebug = allowDebug
        self.allowTLSKeyFromFile = allowTLSKeyFromFile
        self.maxEvidenceAgeSeconds = maxEvidenceAgeSeconds
        self.snp = snp
        self.tdx = tdx
    }

    /// Offline inspection (`blindai attestation verify` without `--policy`): authenticity (TDX revocation and QE
    /// identity included) plus the safety defaults for debug, simulated evidence and launch settings; any measurement,
    /// any TCB status, and no claim about the TLS key (there is no session).
    public static let authenticityOnly = AttestationPolicy(
        allowTLSKeyFromFile: true, snp: SNPRules(anyMeasurement: true), tdx: TDXRules(anyMeasurement: true, allowedTCBStatuses: nil))

    /// The rules this policy enforces, in order.
    public var rules: [any PolicyRule] {
        var r: [any PolicyRule] = [
            TEEKindRule(snp: snp != nil, tdx: tdx != nil), SimulatedRule(allowed: allowSimulated, pinnedRootKeys: simulatedRootKeys),
            DebugRule(allowed: allowDebug),
        ]
        if !allowTLSKeyFromFile { r.append(TLSKeyOriginRule()) }
        if let max = maxEvidenceAgeSeconds { r.append(EvidenceAgeRule(maximumSeconds: max)) }
        if let m = operatorModels { r.append(OperatorModelsRule(pinned: m)) }
        if let snp {
            r.append(SNPMeasurementRule(allowed: snp.anyMeasurement ? nil : snp.measurements ?? []))
            r.append(SNPLaunchRule(rules: snp))
            if let h = snp.hostData { r.append(RegisterAllowlistRule(register: .snpHostData, allowed: h)) }
            if let c = snp.vlekCSPIDs { r.append(SNPCSPIDRule(allowed: c)) }
            if snp.requireCRL { r.append(SNPCRLRule()) }
            if let s = snp.signers { r.append(SNPSignerRule(allowed: s)) }
            if let p = snp.products { r.append(SNPProductRule(allowed: p)) }
            if let t = snp.minimumTCB { r.append(SNPMinimumTCBRule(minimum: t)) }
            if let g = snp.minimumGuestSVN { r.append(SNPGuestSVNRule(minimum: g)) }
            if let c = snp.chipIDs { r.append(SNPChipIDRule(allowed: c)) }
            if let v = snp.maximumVMPL { r.append(SNPVMPLRule(maximum: v)) }
        }
        if let tdx {
            r.append(TDXMeasurementRule(allowed: tdx.anyMeasurement ? nil : tdx.measurements ?? []))
            r.append(TDXAttributesRule(rules: tdx))
            if let x = tdx.xfams { r.append(RegisterAllowlistRule(register: .xfam, allowed: x)) }
            if let m = tdx.mrConfigIDs { r.append(RegisterAllowlistRule(register: .mrConfigID, allowed: m)) }
            if let m = tdx.mrOwners { r.append(RegisterAllowlistRule(register: .mrOwner, allowed: m)) }
            if let s = tdx.allowedTCBStatuses { r.append(TDXTCBStatusRule(allowed: s)) }
            if let n = tdx.minimumTCBEvaluationDataNumber { r.append(TDXEvaluationDataNumberRule(minimum: n)) }
        }
        return r
    }

    public func evaluate(_ claims: VerifiedClaims, at time: Date) throws(AttestationError) {
        for rule in rules { try rule.evaluate(claims, at: time) }
    }

    // MARK: Manifest

    public static func load(json: Data) throws(AttestationError) -> AttestationPolicy {
        // Duplicate members are refused at any depth (JSONDecoder would silently keep one of them), before any rule.
        let members = JSONMemberCheck.check(json)
        if case .duplicate(let name) = members {
            throw AttestationError(.malformedPolicy, "policy: the data is not valid JSON (duplicate member \"\(name)\")")
        }
        do {
            let policy = try JSONDecoder().decode(PolicyManifest.self, from: json).policy
            if case .unreadable(let why) = members { throw AttestationError(.malformedPolicy, "policy: the data is not valid JSON (\(why))") }
            return policy
        } catch let e as AttestationError {
            throw e
        } catch let DecodingError.dataCorrupted(ctx) {
            throw AttestationError(.malformedPolicy, "policy: \(ctx.debugDescription) at \(ctx.codingPath.map(\.stringValue).joined(separator: "."))")
        } catch let DecodingError.typeMismatch(_, ctx) {
            throw AttestationError(.malformedPolicy, "policy: wrong type at \(ctx.codingPath.map(\.stringValue).joined(separator: ".")): \(ctx.debugDescription)")
        } catch {
            throw AttestationError(.malformedPolicy, "policy: \(error)")
        }
    }

    public static func load(contentsOf url: URL) throws(AttestationError) -> AttestationPolicy {
        guard let data = FileManager.default.contents(atPath: url.path) else {
            throw AttestationError(.malformedPolicy, "policy file \(url.path) cannot be read")
        }
        return try load(json: data)
    }
}

/// Decoding of the manifest with strict key checking.
struct PolicyManifest: Decodable {
    let policy: AttestationPolicy

    struct Key: CodingKey {
        var stringValue: String
        var intValue: Int? { nil }
        init(_ s: String) { stringValue = s }
        init?(stringValue: String) { self.stringValue = stringValue }
        init?(intValue: Int) { nil }
    }

    static func checkKeys(_ c: KeyedDecodingContainer<Key>, allowed: Set<String>, section: String) throws {
        for k in c.allKeys where !allowed.contains(k.stringValue) {
            throw AttestationError(
                .malformedPolicy, "policy: unknown member \"\(k.stringValue)\" in \(section) (known: \(allowed.sorted().joined(separator: ", ")))")
        }
    }

    static func hexList(_ list: [String]?, digits: Int, name: String) throws -> [String]? {
        guard let list else { return nil }
        guard !list.isEmpty else { throw AttestationError(.malformedPolicy, "policy: \(name) is empty; omit it to accept any value") }
        for v in list where v.count != digits || Hex.decode(v) == nil {
            throw AttestationError(.malformedPolicy, "policy: \(name) entry \"\(v)\" is not \(digits) hex digits")
        }
        return list.map { $0.lowercased() }
    }

    static func measurementChoice(_ c: KeyedDecodingContainer<Key>, hasList: Bool, section: String) throws -> Bool {
        let any = try c.decodeIfPresent(Bool.self, forKey: Key("anyMeasurement")) ?? false
        guard hasList != any else {
            throw AttestationError(
                .malformedPolicy,
                hasList
                    ? "policy: \(section) has both measurements and anyMeasurement; keep one"
                    : "policy: \(section) lists no measurements; list the allowed ones, or say \"anyMeasurement\": true to accept any (anyone who rents a confidential VM would pass)")
        }
        return any
    }

    /// `tdx.measurements`, each entry with strict key checking (a misspelt "rtmr" must not silently accept any RTMR).
    static func tdxMeasurements(_ t: KeyedDecodingContainer<Key>) throws -> [AttestationPolicy.TDXMeasurement]? {
        let key = Key("measurements")
        guard t.contains(key), try !t.decodeNil(forKey: key) else { return nil }
        var list = try t.nestedUnkeyedContainer(forKey: key)
        guard !list.isAtEnd else { throw AttestationError(.malformedPolicy, "policy: tdx.measurements is empty; omit it to accept any value") }
        var out = [AttestationPolicy.TDXMeasurement]()
        while !list.isAtEnd {
            let index = list.currentIndex
            let e = try list.nestedContainer(keyedBy: Key.self)
            try checkKeys(e, allowed: ["mrtd", "rtmrs"], section: "tdx.measurements.\(index)")
            let mrtd = try e.decode(String.self, forKey: Key("mrtd"))
            let rtmrs = try e.decodeIfPresent([String?].self, forKey: Key("rtmrs"))
            _ = try hexList([mrtd], digits: 96, name: "tdx.measurements.mrtd")
            if let r = rtmrs {
                guard r.count <= 4 else { throw AttestationError(.malformedPolicy, "policy: tdx.measurements.rtmrs has \(r.count) entries (at most 4)") }
                let present = r.compactMap { $0 }
                _ = try hexList(present.isEmpty ? nil : present, digits: 96, name: "tdx.measurements.rtmrs")
            }
            out.append(AttestationPolicy.TDXMeasurement(mrtd: mrtd, rtmrs: rtmrs))
        }
        return out
    }

    init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: Key.self)
        try Self.checkKeys(
            c,
            allowed: [
                "version", "allowSimulated", "simulatedRootKeys", "allowDebug", "allowTLSKeyFromFile", "maxEvidenceAgeSeconds", "operatorModels",
                "snp", "tdx",
            ],
            section: "the policy")
        let version = try c.decodeIfPresent(Int.self, forKey: Key("version")) ?? 1
        guard version == 1 else { throw AttestationError(.malformedPolicy, "policy: version \(version) is not supported (1)") }
        var p = AttestationPolicy(snp: nil, tdx: nil)
        p.allowSimulated = try c.decodeIfPresent(Bool.self, forKey: Key("allowSimulated")) ?? false
        p.simulatedRootKeys = try Self.hexList(try c.decodeIfPresent([String].self, forKey: Key("simulatedRootKeys")), digits: 64, name: "simulatedRootKeys")
        if p.allowSimulated, p.simulatedRootKeys == nil {
            throw AttestationError(
                .malformedPolicy,
                "policy: allowSimulated needs simulatedRootKeys (the SHA-256 of the simulated root's public key that blindai serve prints); without it any self-made simulated chain would pass")
        }
        p.allowDebug = try c.decodeIfPresent(Bool.self, forKey: Key("allowDebug")) ?? false
        p.allowTLSKeyFromFile = try c.decodeIfPresent(Bool.self, forKey: Key("allowTLSKeyFromFile")) ?? false
        p.maxEvidenceAgeSeconds = try c.decodeIfPresent(Double.self, forKey: Key("maxEvidenceAgeSeconds"))
        if let age = p.maxEvidenceAgeSeconds, age <= 0 {
            throw AttestationError(.malformedPolicy, "policy: maxEvidenceAgeSeconds must be positive, found \(age)")
        }
        if c.contains(Key("operatorModels")) {
            var list = try c.nestedUnkeyedContainer(forKey: Key("operatorModels"))
            var models: [AttestationPolicy.PinnedModel] = []
            while !list.isAtEnd {
                let m = try list.nestedContainer(keyedBy: Key.self)
                try Self.checkKeys(m, allowed: ["name", "sha256"], section: "an operatorModels entry")
                let name = try m.decode(String.self, forKey: Key("name"))
                let digest = try Self.hexList([try m.decode(String.self, forKey: Key("sha256"))], digits: 64, name: "operatorModels.sha256")![0]
                guard !models.contains(where: { $0.name == name }) else {
                    throw AttestationError(.malformedPolicy, "policy: operatorModels names '\(name)' twice")
                }
                models.append(AttestationPolicy.PinnedModel(name: name, sha256: digest))
            }
            p.operatorModels = models
        }
        if c.contains(Key("snp")) {
            let s = try c.nestedContainer(keyedBy: Key.self, forKey: Key("snp"))
            try Self.checkKeys(
                s,
                allowed: [
                    "measurements", "anyMeasurement", "signers", "products", "minimumTCB", "minimumGuestSVN", "chipIDs", "maximumVMPL",
                    "allowMigrationAgent", "allowSMT", "requireSingleSocket", "minimumABI", "hostData", "vlekCSPIDs", "requireCRL",
                ],
                section: "snp")
            if s.contains(Key("minimumTCB")) {
                let t = try s.nestedContainer(keyedBy: Key.self, forKey: Key("minimumTCB"))
                try Self.checkKeys(t, allowed: ["bootloader", "tee", "snp", "microcode", "fmc"], section: "snp.minimumTCB")
            }
            if s.contains(Key("minimumABI")) {
                let a = try s.nestedContainer(keyedBy: Key.self, forKey: Key("minimumABI"))
                try Self.checkKeys(a, allowed: ["major", "minor"], section: "snp.minimumABI")
            }
            let measurements = try Self.hexList(try s.decodeIfPresent([String].self, forKey: Key("measurements")), digits: 96, name: "snp.measurements")
            let cspIDs = try s.decodeIfPresent([String].self, forKey: Key("vlekCSPIDs"))
            if let cspIDs, cspIDs.isEmpty { throw AttestationError(.malformedPolicy, "policy: snp.vlekCSPIDs is empty; omit it to accept any value") }
            p.snp = AttestationPolicy.SNPRules(
                measurements: measurements, anyMeasurement: try Self.measurementChoice(s, hasList: measurements != nil, section: "snp"),
                signers: try s.decodeIfPresent([SNPSigner].self, forKey: Key("signers")),
                products: try s.decodeIfPresent([SNPProduct].self, forKey: Key("products")),
                minimumTCB: try s.decodeIfPresent(AttestationPolicy.MinimumTCB.self, forKey: Key("minimumTCB")),
                minimumGuestSVN: try s.decodeIfPresent(UInt32.self, forKey: Key("minimumGuestSVN")),
                chipIDs: try Self.hexList(try s.decodeIfPresent([String].self, forKey: Key("chipIDs")), digits: 128, name: "snp.chipIDs"),
                maximumVMPL: try s.decodeIfPresent(UInt32.self, forKey: Key("maximumVMPL")),
                allowMigrationAgent: try s.decodeIfPresent(Bool.self, forKey: Key("allowMigrationAgent")) ?? false,
                allowSMT: try s.decodeIfPresent(Bool.self, forKey: Key("allowSMT")) ?? true,
                requireSingleSocket: try s.decodeIfPresent(Bool.self, forKey: Key("requireSingleSocket")) ?? false,
                minimumABI: try s.decodeIfPresent(AttestationPolicy.ABIVersion.self, forKey: Key("minimumABI")),
                hostData: try Self.hexList(try s.decodeIfPresent([String].self, forKey: Key("hostData")), digits: 64, name: "snp.hostData"),
                vlekCSPIDs: cspIDs,
                requireCRL: try s.decodeIfPresent(Bool.self, forKey: Key("requireCRL")) ?? false)
        }
        if c.contains(Key("tdx")) {
            let t = try c.nestedContainer(keyedBy: Key.self, forKey: Key("tdx"))
            try Self.checkKeys(
                t,
                allowed: [
                    "measurements", "anyMeasurement", "allowedTCBStatuses", "minimumTCBEvaluationDataNumber", "requireSEPTVEDisable",
                    "allowMigratable", "mrServiceTDs", "allowPKS", "allowPerfmon", "xfams", "mrConfigIDs", "mrOwners",
                ],
                section: "tdx")
            let ms = try Self.tdxMeasurements(t)
            let statuses = try t.decodeIfPresent([TDXTCBStatus].self, forKey: Key("allowedTCBStatuses")) ?? [.upToDate]
            guard !statuses.isEmpty else { throw AttestationError(.malformedPolicy, "policy: tdx.allowedTCBStatuses is empty") }
            let floor = try t.decodeIfPresent(Int.self, forKey: Key("minimumTCBEvaluationDataNumber"))
            if let floor, floor < 0 { throw AttestationError(.malformedPolicy, "policy: tdx.minimumTCBEvaluationDataNumber must not be negative") }
            p.tdx = AttestationPolicy.TDXRules(
                measurements: ms,
                anyMeasurement: try Self.measurementChoice(t, hasList: ms != nil, section: "tdx"),
                allowedTCBStatuses: statuses, minimumTCBEvaluationDataNumber: floor,
                requireSEPTVEDisable: try t.decodeIfPresent(Bool.self, forKey: Key("requireSEPTVEDisable")) ?? true,
                allowMigratable: try t.decodeIfPresent(Bool.self, forKey: Key("allowMigratable")) ?? false,
                mrServiceTDs: try Self.hexList(try t.decodeIfPresent([String].self, forKey: Key("mrServiceTDs")), digits: 96, name: "tdx.mrServiceTDs"),
                allowPKS: try t.decodeIfPresent(Bool.self, forKey: Key("allowPKS")) ?? true,
                allowPerfmon: try t.decodeIfPresent(Bool.self, forKey: Key("allowPerfmon")) ?? false,
                xfams: try Self.hexList(try t.decodeIfPresent([String].self, forKey: Key("xfams")), digits: 16, name: "tdx.xfams"),
                mrConfigIDs: try Self.hexList(try t.decodeIfPresent([String].self, forKey: Key("mrConfigIDs")), digits: 96, name: "tdx.mrConfigIDs"),
                mrOwners: try Self.hexList(try t.decodeIfPresent([String].self, forKey: Key("mrOwners")), digits: 96, name: "tdx.mrOwners"))
        }
        policy = p
    }
}
