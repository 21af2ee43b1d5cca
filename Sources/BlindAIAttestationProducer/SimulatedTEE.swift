import BlindAIAttestation
import Crypto
import Foundation
import _CryptoExtras

/// A simulated AMD SEV-SNP platform for development and tests. **It provides no security.**
///
/// At start it generates a test root "BlindAI Simulated ARK-<product>" (RSA, RSASSA-PSS SHA-384 like AMD's;
/// 2048-bit by default where AMD uses 4096, because generation time matters here), an ASK
/// "BlindAI Simulated SEV-<product>", and a P-384 VCEK with AMD's TCB and hwID extensions. Reports are real-format
/// 1184-byte SNP reports (version 3 or 5, Milan/Genoa layout) signed with ECDSA P-384 over [0, 0x2A0), with
/// MEASUREMENT = SHA-384 of the given executable's bytes and DEBUG off. The verifier accepts this root only when
/// simulated evidence is explicitly allowed; otherwise it fails with `simulated_root_not_allowed`. A policy pins the root
/// by the SHA-256 of its SubjectPublicKeyInfo (`rootKeySHA256`), which is new at every start. Evidence carries an
/// empty CRL signed by the simulated ARK (`vcek_crl.der`), as AMD KDS serves one per product.
public struct SimulatedSNPTEE: EvidenceProvider {
    public let product: SNPProduct
    public let reportVersion: UInt32
    public let measurement: [UInt8]
    public let chipID: [UInt8]
    public let tcb: SNPTCB
    public let guestSVN: UInt32
    /// DER of the simulated ARK, ASK and VCEK.
    public let arkDER: [UInt8]
    public let askDER: [UInt8]
    public let vcekDER: [UInt8]
    /// An empty CRL signed by the simulated ARK, valid for the certificates' lifetime.
    public let crlDER: [UInt8]
    private let vcekKey: P384.Signing.PrivateKey
    private let arkKey: _RSA.Signing.PrivateKey
    private let validity: (start: Date, end: Date)

    /// Launch settings a real host or guest owner chooses, for tests of the policy rules. Defaults: the guest policy
    /// allows SMT, sets the reserved bit 17 and nothing else; no HOST_DATA; no migration agent; CHIP_ID not masked.
    public var guestPolicy: UInt64 = 0x30000
    public var hostData = [UInt8](repeating: 0, count: 32)
    /// REPORT_ID_MA; nil writes all 0xFF (no migration agent).
    public var migrationAgentReportID: [UInt8]?
    /// Emulates SNP_CONFIG MaskChipId: CHIP_ID is written as zeros (SIGNER_INFO does not change).
    public var maskChipID = false

    public static let arkCommonNamePrefix = "\(simulatedRootCommonNamePrefix) ARK-"

    /// - Parameters:
    ///   - executable: the file whose SHA-384 becomes the measurement (the server passes its own executable).
    ///   - now: start of the certificates' validity (they are valid for 10 years from one day earlier).
    public init(
        measuringExecutableAt executable: URL, product: SNPProduct = .milan, reportVersion: UInt32 = 3, rsaKeySize: _RSA.Signing.KeySize = .bits2048,
        tcb: SNPTCB? = nil, guestSVN: UInt32 = 0, now: Date = Date()
    ) throws {
        // Hashed in 1 MiB pieces: a release binary with symbols is over 100 MB, and reading it whole would be
        // the server's largest allocation of its life.
        guard let file = FileHandle(forReadingAtPath: executable.path) else {
            throw EvidenceProviderError(.invalidInput, "cannot read \(executable.path) to measure it")
        }
        defer { try? file.close() }
        var hasher = SHA384()
        do {
            while let chunk = try file.read(upToCount: 1 << 20), !chunk.isEmpty {
                hasher.update(data: chunk)
            }
        } catch {
            throw EvidenceProviderError(.invalidInput, "cannot read \(executable.path) to measure it")
        }
        try self.init(measurement: Array(hasher.finalize()), product: product, reportVersion: reportVersion, rsaKeySize: rsaKeySize,
                      tcb: tcb, guestSVN: guestSVN, now: now)
    }

    /// - Parameter chipID: the 64-byte CHIP_ID (default: random).
    public init(
        measurement: [UInt8], product: SNPProduct = .milan, reportVersion: UInt32 = 3, rsaKeySize: _RSA.Signing.KeySize = .bits2048, tcb: SNPTCB? = nil,
        guestSVN: UInt32 = 0, chipID: [UInt8]? = nil, now: Date = Date()
    ) throws {
        guard measurement.count == 48 else { throw EvidenceProviderError(.invalidInput, "measurement is \(measurement.count) bytes, expected 48") }
        guard product != .turin else { throw EvidenceProviderError(.invalidInput, "the simulated TEE produces Milan or Genoa reports only") }
        guard reportVersion == 3 || reportVersion == 5 else {
            throw EvidenceProviderError(.invalidInput, "the simulated TEE produces report version 3 or 5, not \(reportVersion)")
        }
        self.product = product
        self.reportVersion = reportVersion
        self.measurement = measurement
        self.guestSVN = guestSVN
        self.tcb = tcb ?? SNPTCB(bootloader: 4, tee: 0, snp: 22, microcode: 213)
        if let chipID, chipID.count != 64 { throw EvidenceProviderError(.invalidInput, "chip ID is \(chipID.count) bytes, expected 64") }
        var rng = SystemRandomNumberGenerator()
        self.chipID = chipID ?? (0..<64).map { _ in UInt8.random(in: .min ... .max, using: &rng) }

        let arkKey = try _RSA.Signing.PrivateKey(keySize: rsaKeySize)
        self.arkKey = arkKey
        let askKey = try _RSA.Signing.PrivateKey(keySize: rsaKeySize)
        vcekKey = P384.Signing.PrivateKey()
        let start = now.addingTimeInterval(-86_400)
        let end = now.addingTimeInterval(10 * 365 * 86_400)
        validity = (start, end)
        let arkCN = "\(SimulatedSNPTEE.arkCommonNamePrefix)\(product.rawValue)"
        let askCN = "\(simulatedRootCommonNamePrefix) SEV-\(product.rawValue)"
        arkDER = try AMDStyleCertificateBuilder.build(
            serial: SimulatedSNPTEE.arkSerial, issuerCN: arkCN, subjectCN: arkCN, notBefore: start, notAfter: end, subjectKey: .rsa(arkKey.publicKey),
            extensions: [("2.5.29.19", .basicConstraintsCA)], issuerKey: arkKey)
        askDER = try AMDStyleCertificateBuilder.build(
            serial: SimulatedSNPTEE.askSerial, issuerCN: arkCN, subjectCN: askCN, notBefore: start, notAfter: end, subjectKey: .rsa(askKey.publicKey),
            extensions: [("2.5.29.19", .basicConstraintsCA)], issuerKey: arkKey)
        let t = self.tcb
        vcekDER = try AMDStyleCertificateBuilder.build(
            serial: 0, issuerCN: askCN, subjectCN: "SEV-VCEK", notBefore: start, notAfter: end, subjectKey: .p384(vcekKey.publicKey),
            extensions: [
                ("1.3.6.1.4.1.3704.1.1", .integer(0)),
                ("1.3.6.1.4.1.3704.1.2", .ia5String("\(product.rawValue)-B0")),
                ("1.3.6.1.4.1.3704.1.3.1", .integer(Int(t.bootloader))),
                ("1.3.6.1.4.1.3704.1.3.2", .integer(Int(t.tee))),
                ("1.3.6.1.4.1.3704.1.3.3", .integer(Int(t.snp))),
                ("1.3.6.1.4.1.3704.1.3.8", .integer(Int(t.microcode))),
                ("1.3.6.1.4.1.3704.1.4", .raw(self.chipID)),
            ],
            issuerKey: askKey)
        crlDER = try AMDStyleCertificateBuilder.buildCRL(issuerCN: arkCN, thisUpdate: start, nextUpdate: end, revoked: [], issuerKey: arkKey)
    }

    /// The serial numbers of the simulated ARK and ASK.
    public static let arkSerial = 0x10000
    public static let askSerial = 0x10001

    /// SHA-256 (hex) of the simulated ARK's SubjectPublicKeyInfo: what a policy's `simulatedRootKeys` pins.
    public var rootKeySHA256: String {
        let spki = (try? DERCertificate(derEncoded: arkDER).subjectPublicKeyInfo) ?? []
        return SHA256.hash(data: spki).map { String(format: "%02x", $0) }.joined()
    }

    /// A CRL signed by the simulated ARK revoking `serials` (for example `askSerial`), valid over the certificates' lifetime.
    public func revocationList(revoking serials: [Int]) throws -> [UInt8] {
        try AMDStyleCertificateBuilder.buildCRL(
            issuerCN: "\(SimulatedSNPTEE.arkCommonNamePrefix)\(product.rawValue)", thisUpdate: validity.start, nextUpdate: validity.end,
            revoked: serials.map { ($0, validity.start) }, issuerKey: arkKey)
    }

    public var tee: TEEKind { get async throws { .sevSNP } }

    /// The certificate table a host would return (VCEK, ASK, ARK).
    public var certificateTable: SNPCertificateTable {
        SNPCertificateTable(entries: [.vcek: vcekDER, .ask: askDER, .ark: arkDER])
    }

    public func evidence(reportData: [UInt8]) async throws -> ProducedEvidence {
        ProducedEvidence(
            tee: .sevSNP, report: try report(reportData: reportData), certificates: [vcekDER, askDER, arkDER],
            collateral: [SNPCollateral.crlFileName(for: .vcek): crlDER])
    }

    /// A signed 1184-byte report.
    public func report(reportData: [UInt8]) throws -> [UInt8] {
        try checkReportData(reportData)
        guard hostData.count == 32, (migrationAgentReportID?.count ?? 32) == 32 else {
            throw EvidenceProviderError(.invalidInput, "HOST_DATA and REPORT_ID_MA are 32 bytes each")
        }
        var r = [UInt8](repeating: 0, count: SNPReport.size)
        func put32(_ v: UInt32, _ o: Int) { for i in 0..<4 { r[o + i] = UInt8(truncatingIfNeeded: v >> (8 * UInt32(i))) } }
        func put64(_ v: UInt64, _ o: Int) { for i in 0..<8 { r[o + i] = UInt8(truncatingIfNeeded: v >> (8 * UInt64(i))) } }
        func put(_ b: [UInt8], _ o: Int) { r.replaceSubrange(o..<(o + b.count), with: b) }
        let tcbRaw = UInt64(tcb.bootloader) | UInt64(tcb.tee) << 8 | UInt64(tcb.snp) << 48 | UInt64(tcb.microcode) << 56
        var rng = SystemRandomNumberGenerator()
        put32(reportVersion, 0x00)
        put32(guestSVN, 0x04)
        put64(guestPolicy, 0x08)
        put32(0, 0x30)  // VMPL 0
        put32(1, 0x34)  // ECDSA P-384 with SHA-384
        put64(tcbRaw, 0x38)  // current TCB
        put32(0, 0x48)  // signer_info: VCEK, MASK_CHIP_KEY clear
        put(reportData, 0x50)
        put(measurement, 0x90)
        put(hostData, 0xC0)
        put((0..<32).map { _ in UInt8.random(in: .min ... .max, using: &rng) }, 0x140)  // report ID
        put(migrationAgentReportID ?? [UInt8](repeating: 0xFF, count: 32), 0x160)
        put64(tcbRaw, 0x180)  // reported TCB
        r[0x188] = 0x19  // CPUID family
        r[0x189] = product == .milan ? 0x01 : 0x11  // model
        r[0x18A] = 0x01  // stepping
        put(maskChipID ? [UInt8](repeating: 0, count: 64) : chipID, 0x1A0)
        put64(tcbRaw, 0x1E0)  // committed TCB
        put64(tcbRaw, 0x1F0)  // launch TCB
        let sig = try vcekKey.signature(for: SHA384.hash(data: r[0..<0x2A0]))
        let raw = [UInt8](sig.rawRepresentation)
        put(Array(raw[0..<48].reversed()), 0x2A0)
        put(Array(raw[48..<96].reversed()), 0x2A0 + 72)
        return r
    }
}

extension SimulatedSNPTEE {
    /// The VCEK public key (P-384).
    public var vcekPublicKey: P384.Signing.PublicKey { vcekKey.publicKey }
}
