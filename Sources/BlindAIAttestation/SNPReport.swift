import Foundation

/// AMD EPYC product lines with SEV-SNP. Each has its own ARK/ASK/ASVK.
public enum SNPProduct: String, Sendable, Codable, CaseIterable {
    case milan = "Milan"
    case genoa = "Genoa"
    case turin = "Turin"

    /// Product from the report's CPUID family/model (report v3+), or nil if unknown.
    static func fromCPUID(family: UInt8, model: UInt8) -> SNPProduct? {
        switch (family, model) {
        case (0x19, 0x00...0x0F): return .milan
        case (0x19, 0x10...0x1F), (0x19, 0xA0...0xAF): return .genoa
        case (0x1A, 0x00...0x1F): return .turin
        default: return nil
        }
    }

    /// Product from a certificate common name such as "ARK-Milan", "SEV-Genoa" or "SEV-VLEK-Turin".
    static func fromCommonName(_ cn: String?) -> SNPProduct? {
        guard let cn else { return nil }
        return allCases.first { cn.hasSuffix("-\($0.rawValue)") }
    }
}

/// Which key signed the report (SIGNER_INFO bits 4:2).
public enum SNPSigner: String, Sendable, Codable, CaseIterable {
    case vcek = "VCEK"
    case vlek = "VLEK"
}

/// A TCB_VERSION decoded with the product's layout.
public struct SNPTCB: Sendable, Equatable, Codable, CustomStringConvertible {
    public var bootloader: UInt8
    public var tee: UInt8
    public var snp: UInt8
    public var microcode: UInt8
    /// Turin only.
    public var fmc: UInt8?

    public init(bootloader: UInt8, tee: UInt8, snp: UInt8, microcode: UInt8, fmc: UInt8? = nil) {
        self.bootloader = bootloader
        self.tee = tee
        self.snp = snp
        self.microcode = microcode
        self.fmc = fmc
    }

    public init(raw: UInt64, product: SNPProduct) {
        func byte(_ i: Int) -> UInt8 { UInt8(truncatingIfNeeded: raw >> (8 * UInt64(i))) }
        switch product {
        case .milan, .genoa:
            self.init(bootloader: byte(0), tee: byte(1), snp: byte(6), microcode: byte(7))
        case .turin:
            self.init(bootloader: byte(1), tee: byte(2), snp: byte(3), microcode: byte(7), fmc: byte(0))
        }
    }

    public var description: String {
        var s = "bootloader=\(bootloader) tee=\(tee) snp=\(snp) microcode=\(microcode)"
        if let fmc { s += " fmc=\(fmc)" }
        return s
    }
}

/// The guest policy of an SNP report (AMD SEV-SNP ABI, GUEST_POLICY): what the guest owner allowed at launch.
public struct SNPGuestPolicy: Sendable, Codable, Equatable {
    /// Bits 7:0 and 15:8: the minimum firmware ABI the guest accepts.
    public let abiMinor: UInt8
    public let abiMajor: UInt8
    /// Bit 16: SMT allowed.
    public let smt: Bool
    /// Bit 18: association with a migration agent allowed.
    public let migrateMA: Bool
    /// Bit 19: debugging allowed.
    public let debug: Bool
    /// Bit 20: the guest may run on a single socket only.
    public let singleSocket: Bool

    public init(raw: UInt64) {
        abiMinor = UInt8(truncatingIfNeeded: raw)
        abiMajor = UInt8(truncatingIfNeeded: raw >> 8)
        smt = raw & (1 << 16) != 0
        migrateMA = raw & (1 << 18) != 0
        debug = raw & (1 << 19) != 0
        singleSocket = raw & (1 << 20) != 0
    }
}

/// An SEV-SNP ATTESTATION_REPORT (versions 2 to 5), 1184 bytes, little-endian.
public struct SNPReport: Sendable {
    public static let size = 0x4A0
    public static let signedRange = 0..<0x2A0

    public let rawBytes: [UInt8]
    public let version: UInt32
    public let guestSVN: UInt32
    public let policy: UInt64
    public let familyID: [UInt8]
    public let imageID: [UInt8]
    public let vmpl: UInt32
    public let signatureAlgorithm: UInt32
    public let currentTCBRaw: UInt64
    public let platformInfo: UInt64
    public let signerInfo: UInt32
    public let reportData: [UInt8]
    public let measurement: [UInt8]
    public let hostData: [UInt8]
    public let idKeyDigest: [UInt8]
    public let authorKeyDigest: [UInt8]
    public let reportID: [UInt8]
    /// REPORT_ID of the migration agent; all 0xFF when no migration agent is associated.
    public let reportIDMA: [UInt8]
    public let reportedTCBRaw: UInt64
    /// CPUID family/model/stepping (report v3+); zero in v2 reports.
    public let cpuidFamily: UInt8
    public let cpuidModel: UInt8
    public let cpuidStepping: UInt8
    public let chipID: [UInt8]
    public let committedTCBRaw: UInt64
    public let launchTCBRaw: UInt64
    /// r and s, big-endian, 48 bytes each.
    let signatureR: [UInt8]
    let signatureS: [UInt8]

    public var isDebugAllowed: Bool { policy & (1 << 19) != 0 }
    public var guestPolicy: SNPGuestPolicy { SNPGuestPolicy(raw: policy) }
    /// A migration agent is associated with the guest (REPORT_ID_MA is not all 0xFF).
    public var hasMigrationAgent: Bool { !reportIDMA.allSatisfy { $0 == 0xFF } }
    public var signer: SNPSigner? {
        switch (signerInfo >> 2) & 0x7 {
        case 0: return .vcek
        case 1: return .vlek
        default: return nil
        }
    }
    /// SIGNER_INFO bit 1, MASK_CHIP_KEY: the firmware did not sign the report with the VCEK (its signature is zero).
    public var isChipKeyMasked: Bool { signerInfo & 0x2 != 0 }
    /// CHIP_ID is all zero: the platform was configured with MaskChipId (SNP_CONFIG). SIGNER_INFO does not say so.
    public var isChipIDMasked: Bool { chipID.allSatisfy { $0 == 0 } }
    public var cpuidProduct: SNPProduct? { version >= 3 ? SNPProduct.fromCPUID(family: cpuidFamily, model: cpuidModel) : nil }

    public init(bytes: [UInt8]) throws(AttestationError) {
        guard bytes.count == SNPReport.size else {
            throw AttestationError(.malformedEvidence, "SNP report is \(bytes.count) bytes, expected \(SNPReport.size)")
        }
        let r = ByteReader(bytes)
        self.rawBytes = bytes
        self.version = try r.u32(0x00)
        guard (2...5).contains(version) else {
            throw AttestationError(.unsupportedVersion, "SNP report version \(version) is not supported (2 to 5)")
        }
        self.guestSVN = try r.u32(0x04)
        self.policy = try r.u64(0x08)
        self.familyID = try r.slice(0x10, 16)
        self.imageID = try r.slice(0x20, 16)
        self.vmpl = try r.u32(0x30)
        self.signatureAlgorithm = try r.u32(0x34)
        self.currentTCBRaw = try r.u64(0x38)
        self.platformInfo = try r.u64(0x40)
        self.signerInfo = try r.u32(0x48)
        self.reportData = try r.slice(0x50, 64)
        self.measurement = try r.slice(0x90, 48)
        self.hostData = try r.slice(0xC0, 32)
        self.idKeyDigest = try r.slice(0xE0, 48)
        self.authorKeyDigest = try r.slice(0x110, 48)
        self.reportID = try r.slice(0x140, 32)
        self.reportIDMA = try r.slice(0x160, 32)
        self.reportedTCBRaw = try r.u64(0x180)
        self.cpuidFamily = try r.u8(0x188)
        self.cpuidModel = try r.u8(0x189)
        self.cpuidStepping = try r.u8(0x18A)
        self.chipID = try r.slice(0x1A0, 64)
        self.committedTCBRaw = try r.u64(0x1E0)
        self.launchTCBRaw = try r.u64(0x1F0)
        guard signatureAlgorithm == 1 else {
            throw AttestationError(.malformedEvidence, "SNP report signature algorithm \(signatureAlgorithm) is not ECDSA P-384 with SHA-384 (1)")
        }
        let rLE = try r.slice(0x2A0, 72)
        let sLE = try r.slice(0x2A0 + 72, 72)
        guard rLE[48...].allSatisfy({ $0 == 0 }), sLE[48...].allSatisfy({ $0 == 0 }) else {
            throw AttestationError(.malformedEvidence, "SNP report signature components exceed 48 bytes")
        }
        self.signatureR = rLE[0..<48].reversed()
        self.signatureS = sLE[0..<48].reversed()
    }

    public func reportedTCB(for product: SNPProduct) -> SNPTCB { SNPTCB(raw: reportedTCBRaw, product: product) }
}
