import BlindAIAttestation
import Foundation
import Testing

@testable import BlindAIAttestationProducer

/// A fake configfs-tsm tree in a temporary directory. It plays the kernel's part: a new entry gets
/// `provider` and `generation`; writing `inblob` or `privlevel` bumps `generation` and (for the simulated
/// SNP case) regenerates `outblob`/`auxblob`; `outblob` may also be pre-populated.
final class FakeTSM: TSMFilesystem, @unchecked Sendable {
    let root: URL
    let providerName: String
    let lock = NSLock()
    var onInblob: (@Sendable ([UInt8]) throws -> (outblob: [UInt8], auxblob: [UInt8]?))?
    var prepopulatedOutblob: [UInt8]?
    /// Simulates another process writing to the entry while we read outblob.
    var interfereOnRead = false
    var createdEntries = [String]()
    var removedEntries = [String]()

    init(provider: String) throws {
        root = FileManager.default.temporaryDirectory.appendingPathComponent("fake-tsm-\(UUID().uuidString)/report")
        providerName = provider
        try FileManager.default.createDirectory(at: root, withIntermediateDirectories: true)
    }

    private func bumpGeneration(_ entry: URL) throws {
        let g = UInt64(String(decoding: try read(entry.appendingPathComponent("generation")), as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)) ?? 0
        try Data("\(g + 1)\n".utf8).write(to: entry.appendingPathComponent("generation"))
    }

    func makeDirectory(_ url: URL) throws {
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: false)
        try Data("\(providerName)\n".utf8).write(to: url.appendingPathComponent("provider"))
        try Data("0\n".utf8).write(to: url.appendingPathComponent("generation"))
        if let pre = prepopulatedOutblob { try Data(pre).write(to: url.appendingPathComponent("outblob")) }
        lock.withLock { createdEntries.append(url.lastPathComponent) }
    }

    func removeDirectory(_ url: URL) throws {
        try FileManager.default.removeItem(at: url)
        lock.withLock { removedEntries.append(url.lastPathComponent) }
    }

    func read(_ url: URL) throws -> [UInt8] {
        if url.lastPathComponent == "outblob", interfereOnRead { try bumpGeneration(url.deletingLastPathComponent()) }
        guard let d = FileManager.default.contents(atPath: url.path) else { throw EvidenceProviderError(.kernelError, "no \(url.lastPathComponent)") }
        return [UInt8](d)
    }

    func write(_ bytes: [UInt8], to url: URL) throws {
        let entry = url.deletingLastPathComponent()
        try Data(bytes).write(to: url)
        try bumpGeneration(entry)
        if url.lastPathComponent == "inblob", let onInblob {
            let (out, aux) = try onInblob(bytes)
            try Data(out).write(to: entry.appendingPathComponent("outblob"))
            if let aux { try Data(aux).write(to: entry.appendingPathComponent("auxblob")) }
        }
    }

    func exists(_ url: URL) -> Bool { FileManager.default.fileExists(atPath: url.path) }
}

@Suite("configfs-tsm provider against a fake tree")
struct ConfigFSTests {
    @Test("SNP: a new entry per request, report and certificate table read, entry removed, evidence verifies")
    func snpThroughConfigFS() async throws {
        let fake = try FakeTSM(provider: "sev_guest")
        let tee = Fixtures.tee
        fake.onInblob = { data in (try tee.report(reportData: data), tee.certificateTable.encoded()) }
        let provider = ConfigFSTSMProvider(root: fake.root, filesystem: fake)
        #expect(try await provider.tee == .sevSNP)
        let nonce = ChannelBindingExpectation.freshNonce()
        let bundle = try await EvidenceResponder(provider: provider, tlsCertificateDER: Fixtures.tlsA, attributes: Fixtures.attributes).bundle(nonce: nonce)
        #expect(bundle.certificates.count == 3)
        let claims = try await AttestationVerifier(policy: Fixtures.simulatedPolicy).verify(
            bundle: bundle, binding: try ChannelBindingExpectation(nonce: nonce, tlsCertificateDER: Fixtures.tlsA))
        #expect(claims.measurement == Fixtures.measurementHex)
        #expect(fake.createdEntries.count == 3)  // tee probe, evidence's own probe, evidence
        #expect(Set(fake.createdEntries) == Set(fake.removedEntries))
        #expect(Set(fake.createdEntries).count == fake.createdEntries.count)
        #expect((try FileManager.default.contentsOfDirectory(atPath: fake.root.path)).isEmpty)
    }

    @Test("SNP: privlevel is written when requested and counted in the generation")
    func privlevel() async throws {
        let fake = try FakeTSM(provider: "sev_guest")
        let tee = Fixtures.tee
        fake.onInblob = { data in (try tee.report(reportData: data), nil) }
        let provider = ConfigFSTSMProvider(root: fake.root, filesystem: fake, privilegeLevel: 0)
        let e = try await provider.evidence(reportData: [UInt8](repeating: 5, count: 64))
        #expect(e.report.count == 1184)
        #expect(e.certificates.isEmpty)
    }

    @Test("a generation change while reading is interference")
    func interference() async throws {
        let fake = try FakeTSM(provider: "sev_guest")
        let tee = Fixtures.tee
        fake.onInblob = { data in (try tee.report(reportData: data), nil) }
        fake.interfereOnRead = true
        let provider = ConfigFSTSMProvider(root: fake.root, filesystem: fake)
        await expectProviderError(.interference) { _ = try await provider.evidence(reportData: [UInt8](repeating: 1, count: 64)) }
        #expect(Set(fake.createdEntries) == Set(fake.removedEntries))
    }

    @Test("a pre-populated outblob that does not carry our report data is refused")
    func prepopulatedWrongReportData() async throws {
        let fake = try FakeTSM(provider: "sev_guest")
        fake.prepopulatedOutblob = try Fixtures.tee.report(reportData: [UInt8](repeating: 9, count: 64))
        let provider = ConfigFSTSMProvider(root: fake.root, filesystem: fake)
        await expectProviderError(.malformedOutput) { _ = try await provider.evidence(reportData: [UInt8](repeating: 1, count: 64)) }
    }

    @Test("TDX: the quote is the outblob and collateral files are attached")
    func tdxThroughConfigFS() async throws {
        let fake = try FakeTSM(provider: "tdx_guest")
        let quote = Array("not really a quote".utf8)
        fake.prepopulatedOutblob = quote
        let collateralDir = FileManager.default.temporaryDirectory.appendingPathComponent("collateral-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: collateralDir, withIntermediateDirectories: true)
        try Data("{}".utf8).write(to: collateralDir.appendingPathComponent("qeIdentity.json"))
        try Data("{}".utf8).write(to: collateralDir.appendingPathComponent("tcbInfo_fmspc_b0c06f000000.json"))
        try Data("ignored".utf8).write(to: collateralDir.appendingPathComponent("README"))
        let provider = ConfigFSTSMProvider(root: fake.root, filesystem: fake, tdxCollateralDirectory: collateralDir)
        let e = try await provider.evidence(reportData: [UInt8](repeating: 2, count: 64))
        #expect(e.tee == .tdx)
        #expect(e.report == quote)
        #expect(Set(e.collateral.keys) == ["qeIdentity.json", "tcbInfo_fmspc_b0c06f000000.json"])
    }

    @Test("an unknown provider is unavailable")
    func unknownProvider() async throws {
        let fake = try FakeTSM(provider: "arm_cca_guest")
        let provider = ConfigFSTSMProvider(root: fake.root, filesystem: fake)
        await expectProviderError(.unavailable) { _ = try await provider.evidence(reportData: [UInt8](repeating: 1, count: 64)) }
    }

    @Test("a missing configfs tree is unavailable, and report data must be 64 bytes")
    func missingTree() async throws {
        let provider = ConfigFSTSMProvider(root: URL(fileURLWithPath: "/nonexistent/tsm/report"))
        await expectProviderError(.unavailable) { _ = try await provider.evidence(reportData: [UInt8](repeating: 1, count: 64)) }
        await expectProviderError(.invalidInput) { _ = try await provider.evidence(reportData: [1, 2, 3]) }
    }

    @Test("/dev/sev-guest at a missing path is unavailable")
    func missingDevice() async throws {
        let provider = SEVGuestDeviceProvider(devicePath: "/nonexistent/sev-guest")
        #expect(!provider.isAvailable)
        await expectProviderError(.unavailable) { _ = try await provider.evidence(reportData: [UInt8](repeating: 1, count: 64)) }
    }
}

@Suite("SNP certificate table")
struct CertificateTableTests {
    @Test("encode and parse round trip, in the verifier's chain order")
    func roundTrip() throws {
        let table = SNPCertificateTable(entries: [.ark: [1, 2, 3], .ask: [4, 5], .vcek: [6]])
        let parsed = try SNPCertificateTable(bytes: table.encoded())
        #expect(parsed == table)
        #expect(parsed.certificateChain == [[6], [4, 5], [1, 2, 3]])
    }

    @Test("the VCEK GUID is laid out in RFC 4122 byte order")
    func guidBytes() {
        #expect(SNPCertificateTable.Kind.vcek.guidBytes.prefix(4) == [0x63, 0xda, 0x75, 0x8d])
        #expect(SNPCertificateTable.Kind.vcek.mixedEndianGUIDBytes.prefix(4) == [0x8d, 0x75, 0xda, 0x63])
    }

    @Test("mixed-endian GUIDs and unknown entries are accepted; malformed tables are not")
    func variants() async throws {
        var blob = SNPCertificateTable(entries: [.vcek: [7, 7]]).encoded()
        blob.replaceSubrange(0..<16, with: SNPCertificateTable.Kind.vcek.mixedEndianGUIDBytes)
        #expect(try SNPCertificateTable(bytes: blob).entries[.vcek] == [7, 7])
        var unknown = SNPCertificateTable(entries: [.vcek: [7]]).encoded()
        unknown[0] ^= 0xFF
        #expect(try SNPCertificateTable(bytes: unknown).unknown.count == 1)
        await expectProviderError(.malformedOutput) { _ = try SNPCertificateTable(bytes: Array(blob.prefix(30))) }
        var outside = SNPCertificateTable(entries: [.vcek: [7]]).encoded()
        outside[20] = 0xFF
        await expectProviderError(.malformedOutput) { _ = try SNPCertificateTable(bytes: outside) }
    }
}
