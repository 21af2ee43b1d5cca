import BlindAIAttestation
import BlindAIAttestationProducer
import Crypto
import Foundation

/// `blindai serve --tee ...`: which TEE the server attests with.
public enum TEEMode: String, Sendable, CaseIterable {
    /// The real TEE of this machine (configfs-tsm `sev_guest`/`tdx_guest`, or `/dev/sev-guest`); refuse to start
    /// without one.
    case auto
    /// The simulated SEV-SNP platform: evidence in the real format from keys the server generates. Proves nothing.
    case simulated
    case sevSNP = "sev-snp"
    case tdx
}

/// A failure to set up attestation at start, with what to do about it.
public struct TEESetupError: Error, Sendable, CustomStringConvertible {
    public let message: String

    public init(_ message: String) { self.message = message }

    public var description: String { message }
}

/// The attestation back end chosen at start, and what a client needs to trust it.
public struct TEESetup: Sendable {
    public let mode: TEEMode
    public let tee: TEEKind
    /// `simulated`, `configfs-tsm` or `/dev/sev-guest`.
    public let backend: String
    public let provider: any EvidenceProvider
    /// The simulated platform, when `mode == .simulated`.
    public let simulated: SimulatedSNPTEE?
    /// The executable whose SHA-384 is the simulated measurement.
    public let measuredExecutable: URL?

    public init(mode: TEEMode, tee: TEEKind, backend: String, provider: any EvidenceProvider, simulated: SimulatedSNPTEE? = nil,
                measuredExecutable: URL? = nil) {
        self.mode = mode
        self.tee = tee
        self.backend = backend
        self.provider = provider
        self.simulated = simulated
        self.measuredExecutable = measuredExecutable
    }

    /// Wraps an existing simulated platform (tests, the demo).
    public static func simulated(_ platform: SimulatedSNPTEE, measuredExecutable: URL? = nil) -> TEESetup {
        TEESetup(mode: .simulated, tee: .sevSNP, backend: "simulated", provider: platform, simulated: platform,
                 measuredExecutable: measuredExecutable)
    }

    /// The server's attestation provider.
    public func attestationProvider(tlsKeyGeneratedInMemory: Bool = true) -> TEEAttestationProvider {
        TEEAttestationProvider(
            provider: provider, attributes: TEEAttestationProvider.standardAttributes(backend: backend, tlsKeyGeneratedInMemory: tlsKeyGeneratedInMemory))
    }

    /// Chooses and checks the TEE.
    ///
    /// - `auto`: configfs-tsm (provider `sev_guest` or `tdx_guest`), else `/dev/sev-guest`; no TEE is an error
    ///   (never a silent fallback to the simulated one).
    /// - `sev-snp` / `tdx`: that TEE or an error.
    /// - `simulated`: a fresh simulated SEV-SNP platform measuring `executable` (default: the running executable).
    ///
    /// `certificatesDirectory` (`--attestation-certs`): SEV-SNP VCEK/VLEK, ASK/ASVK, ARK files used when the host
    /// supplies no certificate table, and AMD's CRL (`vcek_crl.der`/`vlek_crl.der`) attached to every report; TDX PCS
    /// collateral files attached to every quote.
    ///
    /// `tlsKeyFromFile` (`--tls-cert/--tls-key`): a real TEE refuses it, because a key that existed outside the VM
    /// lets whoever holds a copy terminate clients' TLS and relay their nonces to this server. The simulated TEE
    /// accepts it (it proves nothing anyway); its claims say so and policies refuse it unless `allowTLSKeyFromFile`.
    public static func make(
        mode: TEEMode, certificatesDirectory: URL? = nil, executable: URL? = nil, tlsKeyFromFile: Bool = false,
        configFSRoot: URL = ConfigFSTSMProvider.defaultRoot, sevGuestPath: String = SEVGuestDeviceProvider.defaultPath
    ) async throws -> TEESetup {
        if mode != .simulated, tlsKeyFromFile {
            throw TEESetupError("""
                --tls-cert/--tls-key cannot be used with a real TEE (--tee \(mode.rawValue)): the key existed outside the VM, so whoever \
                holds a copy could terminate clients' TLS and relay their attestation requests to this server. Let the server generate \
                its key in memory (omit --tls-cert/--tls-key), or use --tee simulated for development.
                """)
        }
        if mode == .simulated {
            if certificatesDirectory != nil {
                throw TEESetupError("--attestation-certs is for a real TEE; the simulated TEE makes its own certificates")
            }
            let exe = try executable ?? currentExecutable()
            let platform: SimulatedSNPTEE
            do {
                platform = try SimulatedSNPTEE(measuringExecutableAt: exe)
            } catch {
                throw TEESetupError("cannot start the simulated TEE: \(error)")
            }
            return .simulated(platform, measuredExecutable: exe)
        }

        var probeErrors: [String] = []
        if FileManager.default.fileExists(atPath: configFSRoot.path) {
            let probe = ConfigFSTSMProvider(root: configFSRoot)
            do {
                let kind = try await probe.tee
                if mode == .auto || (mode == .sevSNP && kind == .sevSNP) || (mode == .tdx && kind == .tdx) {
                    switch kind {
                    case .sevSNP:
                        let base = ConfigFSTSMProvider(root: configFSRoot)
                        let provider: any EvidenceProvider = try certificatesDirectory.map {
                            CertificateFallbackProvider(
                                base: base, certificates: try SNPCertificateFiles.load(directory: $0), collateral: SNPCollateral.files(inDirectory: $0))
                        } ?? base
                        return TEESetup(mode: mode, tee: .sevSNP, backend: "configfs-tsm", provider: provider)
                    case .tdx:
                        if let dir = certificatesDirectory { try checkDirectory(dir) }
                        return TEESetup(mode: mode, tee: .tdx, backend: "configfs-tsm",
                                        provider: ConfigFSTSMProvider(root: configFSRoot, tdxCollateralDirectory: certificatesDirectory))
                    }
                }
                probeErrors.append("configfs-tsm (\(configFSRoot.path)) provides \(kind.rawValue), not \(mode.rawValue)")
            } catch {
                probeErrors.append("configfs-tsm (\(configFSRoot.path)) is present but unusable: \(error)")
            }
        } else {
            probeErrors.append("no configfs-tsm (\(configFSRoot.path))")
        }
        if mode != .tdx {
            if FileManager.default.fileExists(atPath: sevGuestPath) {
                let certificates = try certificatesDirectory.map { try SNPCertificateFiles.load(directory: $0) } ?? []
                let device = SEVGuestDeviceProvider(devicePath: sevGuestPath, fallbackCertificates: certificates)
                let collateral = certificatesDirectory.map { SNPCollateral.files(inDirectory: $0) } ?? [:]
                return TEESetup(mode: mode, tee: .sevSNP, backend: sevGuestPath,
                                provider: collateral.isEmpty ? device : CertificateFallbackProvider(base: device, certificates: [], collateral: collateral))
            }
            probeErrors.append("no \(sevGuestPath)")
        }
        let wanted = mode == .auto ? "an AMD SEV-SNP or Intel TDX" : (mode == .tdx ? "an Intel TDX" : "an AMD SEV-SNP")
        throw TEESetupError("""
            no attestation available: this machine does not look like \(wanted) confidential VM \
            (\(probeErrors.joined(separator: "; "))). Run the server inside a confidential VM, or pass --tee simulated \
            for development (simulated evidence proves nothing, and clients accept it only if their policy allows it).
            """)
    }

    static func checkDirectory(_ dir: URL) throws {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: dir.path, isDirectory: &isDirectory), isDirectory.boolValue else {
            throw TEESetupError("--attestation-certs \(dir.path) is not a directory")
        }
    }

    /// The running executable: `/proc/self/exe` on Linux, else `CommandLine.arguments[0]` resolved.
    public static func currentExecutable() throws -> URL {
        #if os(Linux)
        let proc = URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath()
        if proc.path != "/proc/self/exe", FileManager.default.fileExists(atPath: proc.path) { return proc }
        #endif
        if let url = Bundle.main.executableURL, FileManager.default.fileExists(atPath: url.path) { return url.resolvingSymlinksInPath() }
        let arg0 = CommandLine.arguments.first ?? ""
        if arg0.contains("/") {
            let url = URL(fileURLWithPath: arg0).resolvingSymlinksInPath()
            if FileManager.default.fileExists(atPath: url.path) { return url }
        }
        throw TEESetupError("cannot locate the running executable to measure it")
    }
}

/// Operator-provided SEV-SNP certificates (`--attestation-certs DIR`): `vcek.{der,pem,crt,cer}` (or `vlek.*`),
/// `ask.*` (or `asvk.*`), `ark.*`, or AMD KDS's `cert_chain.pem` (ASK then ARK).
public enum SNPCertificateFiles {
    static let extensions = ["der", "pem", "crt", "cer"]

    /// VCEK or VLEK first, then ASK/ASVK and ARK when given (DER).
    public static func load(directory: URL) throws -> [[UInt8]] {
        try TEESetup.checkDirectory(directory)
        func find(_ stem: String) throws -> [[UInt8]]? {
            for ext in extensions {
                let url = directory.appendingPathComponent("\(stem).\(ext)")
                guard let data = FileManager.default.contents(atPath: url.path) else { continue }
                let certs = certificates(in: data)
                guard !certs.isEmpty else { throw TEESetupError("\(url.path) holds no certificate (DER or PEM)") }
                return certs
            }
            return nil
        }
        guard let endorsement = try find("vcek") ?? find("vlek") else {
            throw TEESetupError("--attestation-certs \(directory.path) has no vcek.der/vcek.pem (or vlek.*); get it from AMD KDS for this chip and TCB")
        }
        var chain = [endorsement[0]]
        if let bundle = try find("cert_chain") {
            chain += bundle
        } else {
            if let ask = try find("ask") ?? find("asvk") { chain += ask }
            if let ark = try find("ark") { chain += ark }
        }
        return chain
    }

    /// The certificates of a PEM bundle, or a single DER certificate.
    public static func certificates(in data: Data) -> [[UInt8]] {
        let bytes = [UInt8](data)
        if bytes.first == 0x30 { return [bytes] }
        let text = String(decoding: bytes, as: UTF8.self)
        var out = [[UInt8]]()
        var rest = Substring(text)
        while let b = rest.range(of: "-----BEGIN CERTIFICATE-----"),
            let e = rest.range(of: "-----END CERTIFICATE-----", range: b.upperBound..<rest.endIndex)
        {
            let body = rest[b.upperBound..<e.lowerBound].filter { !$0.isWhitespace }
            if let d = Data(base64Encoded: String(body)) { out.append([UInt8](d)) }
            rest = rest[e.upperBound...]
        }
        return out
    }
}
