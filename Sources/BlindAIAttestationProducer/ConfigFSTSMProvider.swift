import BlindAIAttestation
import Foundation

/// File operations on a configfs-tsm tree; injectable so tests can run against a fake tree in a temp directory.
public protocol TSMFilesystem: Sendable {
    func makeDirectory(_ url: URL) throws
    func removeDirectory(_ url: URL) throws
    func read(_ url: URL) throws -> [UInt8]
    func write(_ bytes: [UInt8], to url: URL) throws
    func exists(_ url: URL) -> Bool
}

/// The real filesystem (configfs entries are created with mkdir and removed with rmdir).
public struct POSIXTSMFilesystem: TSMFilesystem {
    public init() {}

    public func makeDirectory(_ url: URL) throws {
        guard mkdir(url.path, 0o700) == 0 else { throw EvidenceProviderError(.kernelError, "mkdir \(url.path): \(String(cString: strerror(errno)))") }
    }

    public func removeDirectory(_ url: URL) throws {
        guard rmdir(url.path) == 0 else { throw EvidenceProviderError(.kernelError, "rmdir \(url.path): \(String(cString: strerror(errno)))") }
    }

    public func read(_ url: URL) throws -> [UInt8] {
        guard let handle = FileHandle(forReadingAtPath: url.path) else {
            throw EvidenceProviderError(.kernelError, "cannot open \(url.path) for reading")
        }
        defer { try? handle.close() }
        return [UInt8](try handle.readToEnd() ?? Data())
    }

    public func write(_ bytes: [UInt8], to url: URL) throws {
        guard let handle = FileHandle(forWritingAtPath: url.path) else {
            throw EvidenceProviderError(.kernelError, "cannot open \(url.path) for writing")
        }
        defer { try? handle.close() }
        try handle.write(contentsOf: Data(bytes))
    }

    public func exists(_ url: URL) -> Bool { FileManager.default.fileExists(atPath: url.path) }
}

/// Linux configfs-tsm (`/sys/kernel/config/tsm/report`): one new entry per request; write `inblob`, read
/// `generation`, `outblob`, `auxblob` and `generation` again; `provider` names `sev_guest` or `tdx_guest`.
public struct ConfigFSTSMProvider: EvidenceProvider {
    public static let defaultRoot = URL(fileURLWithPath: "/sys/kernel/config/tsm/report")

    public let root: URL
    public let filesystem: any TSMFilesystem
    /// SNP only: the VMPL to request (`privlevel`), nil to leave the kernel default.
    public let privilegeLevel: UInt32?
    /// TDX only: PCS collateral files to attach (the directory layout of `TDXCollateral`), if the server has them.
    public let tdxCollateralDirectory: URL?
    let makeEntryName: @Sendable () -> String

    public init(
        root: URL = ConfigFSTSMProvider.defaultRoot, filesystem: any TSMFilesystem = POSIXTSMFilesystem(), privilegeLevel: UInt32? = nil,
        tdxCollateralDirectory: URL? = nil, makeEntryName: @escaping @Sendable () -> String = { "blindai-\(UUID().uuidString.lowercased())" }
    ) {
        self.root = root
        self.filesystem = filesystem
        self.privilegeLevel = privilegeLevel
        self.tdxCollateralDirectory = tdxCollateralDirectory
        self.makeEntryName = makeEntryName
    }

    public var isAvailable: Bool { filesystem.exists(root) }

    public var tee: TEEKind {
        get async throws {
            // The provider is per entry; probe with a short-lived one.
            let entry = root.appendingPathComponent(makeEntryName())
            try filesystem.makeDirectory(entry)
            defer { try? filesystem.removeDirectory(entry) }
            return try readProvider(entry)
        }
    }

    private func readProvider(_ entry: URL) throws -> TEEKind {
        let text = String(decoding: try filesystem.read(entry.appendingPathComponent("provider")), as: UTF8.self)
            .trimmingCharacters(in: .whitespacesAndNewlines)
        switch text {
        case "sev_guest": return .sevSNP
        case "tdx_guest": return .tdx
        default: throw EvidenceProviderError(.unavailable, "configfs-tsm provider \"\(text)\" is not supported (sev_guest or tdx_guest)")
        }
    }

    private func readGeneration(_ entry: URL) throws -> UInt64 {
        let text = String(decoding: try filesystem.read(entry.appendingPathComponent("generation")), as: UTF8.self)
            .trimmingCharacters(in: .whitespacesAndNewlines)
        guard let g = UInt64(text) else { throw EvidenceProviderError(.malformedOutput, "configfs-tsm generation \"\(text)\" is not a number") }
        return g
    }

    public func evidence(reportData: [UInt8]) async throws -> ProducedEvidence {
        try checkReportData(reportData)
        guard isAvailable else { throw EvidenceProviderError(.unavailable, "\(root.path) does not exist (no configfs-tsm)") }
        let entry = root.appendingPathComponent(makeEntryName())
        try filesystem.makeDirectory(entry)
        defer { try? filesystem.removeDirectory(entry) }

        let tee = try readProvider(entry)
        let before = try readGeneration(entry)
        if tee == .sevSNP, let privilegeLevel {
            try filesystem.write(Array("\(privilegeLevel)\n".utf8), to: entry.appendingPathComponent("privlevel"))
        }
        try filesystem.write(reportData, to: entry.appendingPathComponent("inblob"))
        let written = try readGeneration(entry)
        let expectedWrites: UInt64 = (tee == .sevSNP && privilegeLevel != nil) ? 2 : 1
        guard written == before + expectedWrites else {
            throw EvidenceProviderError(
                .interference, "configfs-tsm entry generation went from \(before) to \(written) across our \(expectedWrites) write(s): another writer")
        }
        let outblob = try filesystem.read(entry.appendingPathComponent("outblob"))
        let auxURL = entry.appendingPathComponent("auxblob")
        let auxblob = filesystem.exists(auxURL) ? try filesystem.read(auxURL) : []
        let after = try readGeneration(entry)
        guard after == written else {
            throw EvidenceProviderError(.interference, "configfs-tsm entry generation changed from \(written) to \(after) while reading: another writer")
        }

        switch tee {
        case .sevSNP:
            let report = try SNPReportExtraction.report(fromKernelOutput: outblob)
            try SNPReportExtraction.checkReportData(report, reportData)
            let chain = auxblob.isEmpty ? [] : try SNPCertificateTable(bytes: auxblob).certificateChain
            return ProducedEvidence(tee: .sevSNP, report: report, certificates: chain)
        case .tdx:
            let collateral = tdxCollateralDirectory.map { TDXCollateral.files(inDirectory: $0) } ?? [:]
            return ProducedEvidence(tee: .tdx, report: outblob, collateral: collateral)
        }
    }
}

enum SNPReportExtraction {
    /// A raw 1184-byte report, or a MSG_REPORT_RSP (status, size, 24 reserved bytes, report).
    static func report(fromKernelOutput out: [UInt8]) throws(EvidenceProviderError) -> [UInt8] {
        if out.count == SNPReport.size { return out }
        guard out.count >= 32 else { throw EvidenceProviderError(.malformedOutput, "SNP report output is \(out.count) bytes") }
        let status = UInt32(out[0]) | UInt32(out[1]) << 8 | UInt32(out[2]) << 16 | UInt32(out[3]) << 24
        let size = Int(out[4]) | Int(out[5]) << 8 | Int(out[6]) << 16 | Int(out[7]) << 24
        guard status == 0 else { throw EvidenceProviderError(.kernelError, "SNP firmware report status 0x\(String(status, radix: 16))") }
        guard size == SNPReport.size, out.count >= 32 + size else {
            throw EvidenceProviderError(.malformedOutput, "SNP report response declares \(size) bytes in a \(out.count)-byte buffer")
        }
        return Array(out[32..<(32 + size)])
    }

    static func checkReportData(_ report: [UInt8], _ reportData: [UInt8]) throws(EvidenceProviderError) {
        guard Array(report[0x50..<0x90]) == reportData else {
            throw EvidenceProviderError(.malformedOutput, "the SNP report does not carry the requested report data")
        }
    }
}
