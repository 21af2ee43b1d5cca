import Foundation

/// A verification policy, loaded from a JSON manifest a person can read and diff (see docs/attestation.md).
///
/// Absent members mean "not constrained", except the safety defaults: debug and simulated evidence are
/// refused unless allowed, and a present `tdx` section accepts only `UpToDate` unless it lists more statuses.
/// Unknown members are rejected, so a misspelt rule cannot silently do nothing.
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

    public struct SNPRules: Sendable, Equatable {
        /// Allowed MEASUREMENT values (lowercase hex, 96 digits). nil: any.
        public var measurements: [String]?
        public var signers: [SNPSigner]?
        public var products: [SNPProduct]?
        public var minimumTCB: MinimumTCB?
        public var minimumGuestSVN: UInt32?
        /// Allowed chip IDs (hex). nil: any.
        public var chipIDs: [String]?
        public var maximumVMPL: UInt32?

        public init(
            measurements: [String]? = nil, signers: [SNPSigner]? = nil, products: [SNPProduct]? = nil, minimumTCB: MinimumTCB? = nil,
            minimumGuestSVN: UInt32? = nil, chipIDs: [String]? = nil, maximumVMPL: UInt32? = nil
        ) {
            self.measurements = measurements?.map { $0.lowercased() }
            self.signers = signers
            self.products = products
            self.minimumTCB = minimumTCB
            self.minimumGuestSVN = minimumGuestSVN
            self.chipIDs = chipIDs?.map { $0.lowercased() }
            self.maximumVMPL = maximumVMPL
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
        public var measurements: [TDXMeasurement]?
        /// nil: any status and collateral optional (authenticity only). Default from a manifest: ["UpToDate"].
        public var allowedTCBStatuses: [TDXTCBStatus]?

        public init(measurements: [TDXMeasurement]? = nil, allowedTCBStatuses: [TDXTCBStatus]? = [.upToDate]) {
            self.measurements = measurements
            self.allowedTCBStatuses = allowedTCBStatuses
        }
    }

    public var allowSimulated: Bool
    public var allowDebug: Bool
    public var maxEvidenceAgeSeconds: Double?
    /// A TEE kind without a section is refused.
    public var snp: SNPRules?
    public var tdx: TDXRules?

    public init(
        allowSimulated: Bool = false, allowDebug: Bool = false, maxEvidenceAgeSeconds: Double? = nil, snp: SNPRules? = SNPRules(),
        tdx: TDXRules? = TDXRules()
    ) {
        self.allowSimulated = allowSimulated
        self.allowDebug = allowDebug
        self.maxEvidenceAgeSeconds = maxEvidenceAgeSeconds
        self.snp = snp
        self.tdx = tdx
    }

    /// Authenticity plus the safety defaults: debug and simulated refused, any measurement, any TCB status.
    public static let authenticityOnly = AttestationPolicy(snp: SNPRules(), tdx: TDXRules(allowedTCBStatuses: nil))

    /// The rules this policy enforces, in order.
    public var rules: [any PolicyRule] {
        var r: [any PolicyRule] = [TEEKindRule(snp: snp != nil, tdx: tdx != nil), SimulatedRule(allowed: allowSimulated), DebugRule(allowed: allowDebug)]
        if let max = maxEvidenceAgeSeconds { r.append(EvidenceAgeRule(maximumSeconds: max)) }
        if let snp {
            if let m = snp.measurements { r.append(SNPMeasurementRule(allowed: m)) }
            if let s = snp.signers { r.append(SNPSignerRule(allowed: s)) }
            if let p = snp.products { r.append(SNPProductRule(allowed: p)) }
            if let t = snp.minimumTCB { r.append(SNPMinimumTCBRule(minimum: t)) }
            if let g = snp.minimumGuestSVN { r.append(SNPGuestSVNRule(minimum: g)) }
            if let c = snp.chipIDs { r.append(SNPChipIDRule(allowed: c)) }
            if let v = snp.maximumVMPL { r.append(SNPVMPLRule(maximum: v)) }
        }
        if let tdx {
            if let m = tdx.measurements { r.append(TDXMeasurementRule(allowed: m)) }
            if let s = tdx.allowedTCBStatuses { r.append(TDXTCBStatusRule(allowed: s)) }
        }
        return r
    }

    public func evaluate(_ claims: VerifiedClaims, at time: Date) throws(AttestationError) {
        for rule in rules { try rule.evaluate(claims, at: time) }
    }

    // MARK: Manifest

    public static func load(json: Data) throws(AttestationError) -> AttestationPolicy {
        do {
            return try JSONDecoder().decode(PolicyManifest.self, from: json).policy
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

    init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: Key.self)
        try Self.checkKeys(c, allowed: ["version", "allowSimulated", "allowDebug", "maxEvidenceAgeSeconds", "snp", "tdx"], section: "the policy")
        let version = try c.decodeIfPresent(Int.self, forKey: Key("version")) ?? 1
        guard version == 1 else { throw AttestationError(.malformedPolicy, "policy: version \(version) is not supported (1)") }
        var p = AttestationPolicy(snp: nil, tdx: nil)
        p.allowSimulated = try c.decodeIfPresent(Bool.self, forKey: Key("allowSimulated")) ?? false
        p.allowDebug = try c.decodeIfPresent(Bool.self, forKey: Key("allowDebug")) ?? false
        p.maxEvidenceAgeSeconds = try c.decodeIfPresent(Double.self, forKey: Key("maxEvidenceAgeSeconds"))
        if let age = p.maxEvidenceAgeSeconds, age <= 0 {
            throw AttestationError(.malformedPolicy, "policy: maxEvidenceAgeSeconds must be positive, found \(age)")
        }
        if c.contains(Key("snp")) {
            let s = try c.nestedContainer(keyedBy: Key.self, forKey: Key("snp"))
            try Self.checkKeys(
                s, allowed: ["measurements", "signers", "products", "minimumTCB", "minimumGuestSVN", "chipIDs", "maximumVMPL"], section: "snp")
            if s.contains(Key("minimumTCB")) {
                let t = try s.nestedContainer(keyedBy: Key.self, forKey: Key("minimumTCB"))
                try Self.checkKeys(t, allowed: ["bootloader", "tee", "snp", "microcode", "fmc"], section: "snp.minimumTCB")
            }
            p.snp = AttestationPolicy.SNPRules(
                measurements: try Self.hexList(try s.decodeIfPresent([String].self, forKey: Key("measurements")), digits: 96, name: "snp.measurements"),
                signers: try s.decodeIfPresent([SNPSigner].self, forKey: Key("signers")),
                products: try s.decodeIfPresent([SNPProduct].self, forKey: Key("products")),
                minimumTCB: try s.decodeIfPresent(AttestationPolicy.MinimumTCB.self, forKey: Key("minimumTCB")),
                minimumGuestSVN: try s.decodeIfPresent(UInt32.self, forKey: Key("minimumGuestSVN")),
                chipIDs: try Self.hexList(try s.decodeIfPresent([String].self, forKey: Key("chipIDs")), digits: 128, name: "snp.chipIDs"),
                maximumVMPL: try s.decodeIfPresent(UInt32.self, forKey: Key("maximumVMPL")))
        }
        if c.contains(Key("tdx")) {
            let t = try c.nestedContainer(keyedBy: Key.self, forKey: Key("tdx"))
            try Self.checkKeys(t, allowed: ["measurements", "allowedTCBStatuses"], section: "tdx")
            let ms = try t.decodeIfPresent([AttestationPolicy.TDXMeasurement].self, forKey: Key("measurements"))
            if let ms {
                guard !ms.isEmpty else { throw AttestationError(.malformedPolicy, "policy: tdx.measurements is empty; omit it to accept any value") }
                for m in ms {
                    _ = try Self.hexList([m.mrtd], digits: 96, name: "tdx.measurements.mrtd")
                    if let r = m.rtmrs {
                        guard r.count <= 4 else { throw AttestationError(.malformedPolicy, "policy: tdx.measurements.rtmrs has \(r.count) entries (at most 4)") }
                        _ = try Self.hexList(r.compactMap { $0 }.isEmpty ? nil : r.compactMap { $0 }, digits: 96, name: "tdx.measurements.rtmrs")
                    }
                }
            }
            let statuses = try t.decodeIfPresent([TDXTCBStatus].self, forKey: Key("allowedTCBStatuses")) ?? [.upToDate]
            guard !statuses.isEmpty else { throw AttestationError(.malformedPolicy, "policy: tdx.allowedTCBStatuses is empty") }
            p.tdx = AttestationPolicy.TDXRules(measurements: ms.map { $0.map { AttestationPolicy.TDXMeasurement(mrtd: $0.mrtd, rtmrs: $0.rtmrs) } },
                                               allowedTCBStatuses: statuses)
        }
        policy = p
    }
}
