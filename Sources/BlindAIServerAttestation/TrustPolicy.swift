import BlindAIAttestation
import BlindAIAttestationProducer
import Crypto
import Foundation

/// What a client needs to trust this server: the policy manifest (docs/attestation.md §5) naming the server's
/// measurement, printed by `blindai serve` at start and written with `--write-policy FILE`.
public struct ServerTrustPolicy: Sendable {
    public let tee: TEEKind
    public let backend: String
    /// SEV-SNP MEASUREMENT or TDX MRTD, lowercase hex.
    public let measurement: String
    public let simulated: Bool
    /// Simulated TEE only: the generated root (ARK), the SHA-256 of its SubjectPublicKeyInfo (pinned by the policy as
    /// `simulatedRootKeys`), and the simulated chip ID pinned by the policy.
    public let simulatedRootName: String?
    public let simulatedRootKeySHA256: String?
    public let chipID: String?
    /// The policy manifest (JSON text, loadable with `AttestationPolicy.load(json:)`).
    public var json: String

    /// A short human description for the start banner.
    public var summary: String {
        var lines: [String] = []
        if simulated {
            lines.append("attestation: SIMULATED TEE (SEV-SNP format). Simulated evidence proves nothing: development only.")
            if let simulatedRootName, let simulatedRootKeySHA256 {
                lines.append("  simulated root:  \(simulatedRootName), public key SHA-256 \(simulatedRootKeySHA256)")
            }
            if let chipID { lines.append("  simulated chip:  \(chipID.prefix(32))…") }
        } else {
            lines.append("attestation: \(tee == .tdx ? "Intel TDX" : "AMD SEV-SNP") through \(backend)")
        }
        lines.append("  measurement:     \(measurement)")
        return lines.joined(separator: "\n")
    }
}

extension TEESetup {
    /// The policy a client needs to trust this server. For a real TEE the measurement is read from a report made
    /// now (which also checks that the TEE answers); clients should compare it with a measurement they computed
    /// themselves from a reproducible build rather than take the server's word for it.
    public func trustPolicy(maxEvidenceAgeSeconds: Int = 300) async throws -> ServerTrustPolicy {
        if let simulated {
            let measurement = hex(simulated.measurement)
            let chip = hex(simulated.chipID)
            let rootKey = simulated.rootKeySHA256
            let json = TrustPolicyJSON.snp(
                measurement: measurement, simulated: true, simulatedRootKey: rootKey, chipID: chip, maxEvidenceAgeSeconds: maxEvidenceAgeSeconds)
            return ServerTrustPolicy(
                tee: .sevSNP, backend: backend, measurement: measurement, simulated: true,
                simulatedRootName: "\(SimulatedSNPTEE.arkCommonNamePrefix)\(simulated.product.rawValue)",
                simulatedRootKeySHA256: rootKey, chipID: chip, json: json)
        }
        let produced: ProducedEvidence
        do {
            produced = try await provider.evidence(reportData: [UInt8](repeating: 0, count: 64))
        } catch {
            throw TEESetupError("the TEE (\(backend)) did not produce a report at start: \(error)")
        }
        switch produced.tee {
        case .sevSNP:
            let report = try SNPReport(bytes: produced.report)
            let measurement = hex(report.measurement)
            return ServerTrustPolicy(
                tee: .sevSNP, backend: backend, measurement: measurement, simulated: false, simulatedRootName: nil, simulatedRootKeySHA256: nil,
                chipID: nil, json: TrustPolicyJSON.snp(measurement: measurement, simulated: false, chipID: nil, maxEvidenceAgeSeconds: maxEvidenceAgeSeconds))
        case .tdx:
            let quote = try TDXQuote(bytes: produced.report)
            let mrtd = hex(quote.body.mrTD)
            return ServerTrustPolicy(
                tee: .tdx, backend: backend, measurement: mrtd, simulated: false, simulatedRootName: nil, simulatedRootKeySHA256: nil, chipID: nil,
                json: TrustPolicyJSON.tdx(mrtd: mrtd, maxEvidenceAgeSeconds: maxEvidenceAgeSeconds))
        }
    }
}

/// Policy manifests as readable JSON text (members in a fixed order). The launch-setting rules (no migration agent,
/// SEPT_VE_DISABLE, no PKS/PERFMON, TLS key generated in the TEE) are the manifest defaults, so they are not repeated.
public enum TrustPolicyJSON {
    /// - Parameter simulatedRootKey: the simulated root's public-key SHA-256, required when `simulated`.
    public static func snp(measurement: String, simulated: Bool, simulatedRootKey: String? = nil, chipID: String?, maxEvidenceAgeSeconds: Int) -> String {
        var snp = ["    \"measurements\": [\"\(measurement)\"]"]
        if simulated { snp.append("    \"products\": [\"Milan\", \"Genoa\"]") }
        if let chipID { snp.append("    \"chipIDs\": [\"\(chipID)\"]") }
        snp.append("    \"maximumVMPL\": 0")
        let root = simulatedRootKey.map { "  \"simulatedRootKeys\": [\"\($0)\"],\n" } ?? ""
        return """
            {
              "version": 1,
              "allowSimulated": \(simulated),
            \(root)  "allowDebug": false,
              "maxEvidenceAgeSeconds": \(maxEvidenceAgeSeconds),
              "snp": {
            \(snp.joined(separator: ",\n"))
              }
            }

            """
    }

    /// The policy text with an `operatorModels` member pinning these models (name, SHA-256), after
    /// `maxEvidenceAgeSeconds`; unchanged when there are none.
    public static func pinning(operatorModels: [(name: String, sha256: String)], in json: String) -> String {
        guard !operatorModels.isEmpty, let line = json.range(of: "\"maxEvidenceAgeSeconds\"") else { return json }
        let end = json[line.upperBound...].firstIndex(of: "\n") ?? json.endIndex
        let entries = operatorModels.sorted { $0.name < $1.name }.map { m in
            let name = String(data: (try? JSONEncoder().encode(m.name)) ?? Data(), encoding: .utf8) ?? "\"\""
            return "    {\"name\": \(name), \"sha256\": \"\(m.sha256)\"}"
        }
        return String(json[..<end]) + "\n  \"operatorModels\": [\n" + entries.joined(separator: ",\n") + "\n  ]," + String(json[end...])
    }

    public static func tdx(mrtd: String, maxEvidenceAgeSeconds: Int) -> String {
        """
        {
          "version": 1,
          "allowSimulated": false,
          "allowDebug": false,
          "maxEvidenceAgeSeconds": \(maxEvidenceAgeSeconds),
          "tdx": {
            "measurements": [{"mrtd": "\(mrtd)"}],
            "allowedTCBStatuses": ["UpToDate"]
          }
        }

        """
    }
}

func hex<C: Collection>(_ bytes: C) -> String where C.Element == UInt8 {
    let digits = Array("0123456789abcdef".utf8)
    var out = [UInt8]()
    out.reserveCapacity(bytes.count * 2)
    for b in bytes {
        out.append(digits[Int(b >> 4)])
        out.append(digits[Int(b & 0xF)])
    }
    return String(decoding: out, as: UTF8.self)
}
