import BlindAIAttestation
import Foundation
import FuzzSupport

// The SEV-SNP attestation report parser (`SNPReport(bytes:)`: versions, field offsets, signer info, CPUID
// product, TCB layouts of each product) as the verifier reads the report of an evidence bundle.

@_cdecl("LLVMFuzzerTestOneInput")
public func testOneInput(_ data: UnsafePointer<UInt8>?, _ count: Int) -> CInt {
    guard let report = try? SNPReport(bytes: bytes(data, count)) else { return 0 }
    property(report.rawBytes.count == SNPReport.size, "an accepted report is \(report.rawBytes.count) bytes, not \(SNPReport.size)")
    _ = (report.signer, report.cpuidProduct, report.isDebugAllowed, report.isChipIDMasked)
    for product in SNPProduct.allCases {
        _ = report.reportedTCB(for: product).description
    }
    return 0
}

@main enum Main {
    static func main() { runFuzzer(testOneInput) }
}
