import BlindAIAttestation
import CBlindAIAttestationShims
import Foundation

/// `/dev/sev-guest` SNP_GET_EXT_REPORT (falling back to SNP_GET_REPORT), for kernels without configfs-tsm.
public struct SEVGuestDeviceProvider: EvidenceProvider {
    public static let defaultPath = "/dev/sev-guest"

    public let devicePath: String
    public let vmpl: UInt32
    /// Used when the host provides no certificate table (then the VCEK must come from elsewhere).
    public let fallbackCertificates: [[UInt8]]

    public init(devicePath: String = SEVGuestDeviceProvider.defaultPath, vmpl: UInt32 = 0, fallbackCertificates: [[UInt8]] = []) {
        self.devicePath = devicePath
        self.vmpl = vmpl
        self.fallbackCertificates = fallbackCertificates
    }

    public var tee: TEEKind { get async throws { .sevSNP } }

    public var isAvailable: Bool { FileManager.default.fileExists(atPath: devicePath) }

    public func evidence(reportData: [UInt8]) async throws -> ProducedEvidence {
        try checkReportData(reportData)
        let fd = open(devicePath, O_RDWR)
        guard fd >= 0 else { throw EvidenceProviderError(.unavailable, "cannot open \(devicePath): \(String(cString: strerror(errno)))") }
        defer { close(fd) }

        var response = [UInt8](repeating: 0, count: Int(BLINDAI_SNP_RESPONSE_SIZE))
        var exitinfo: UInt64 = 0
        var certLength: UInt32 = 4 * 4096
        var certs = [UInt8](repeating: 0, count: Int(certLength))
        var rc = blindai_snp_get_ext_report(fd, reportData, vmpl, &response, &certs, &certLength, &exitinfo)
        if rc != 0, Int(certLength) > certs.count {
            // The host needs a bigger buffer and said how big.
            certs = [UInt8](repeating: 0, count: Int(certLength))
            rc = blindai_snp_get_ext_report(fd, reportData, vmpl, &response, &certs, &certLength, &exitinfo)
        }
        var chain = [[UInt8]]()
        if rc == 0 {
            if certLength > 0, certs.contains(where: { $0 != 0 }) {
                chain = try SNPCertificateTable(bytes: certs).certificateChain
            }
        } else {
            rc = blindai_snp_get_report(fd, reportData, vmpl, &response, &exitinfo)
            guard rc == 0 else {
                throw EvidenceProviderError(
                    .kernelError, "SNP_GET_REPORT failed: \(String(cString: strerror(-rc))) (exitinfo2 0x\(String(exitinfo, radix: 16)))")
            }
        }
        let report = try SNPReportExtraction.report(fromKernelOutput: response)
        try SNPReportExtraction.checkReportData(report, reportData)
        return ProducedEvidence(tee: .sevSNP, report: report, certificates: chain.isEmpty ? fallbackCertificates : chain)
    }
}
