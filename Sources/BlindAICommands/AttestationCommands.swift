import ArgumentParser
import BlindAIAttestation
import Foundation

/// `blindai attestation ...`: offline verification of attestation evidence.
public struct AttestationCommand: AsyncParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "attestation", abstract: "Verify SEV-SNP and TDX attestation evidence.", subcommands: [Verify.self])

    public init() {}

    public struct Verify: AsyncParsableCommand {
        public static let configuration = CommandConfiguration(
            commandName: "verify",
            abstract: "Verify evidence and print the verified claims as JSON.",
            discussion: """
                Give one of: --evidence FILE (an evidence bundle from the server's attestation endpoint), \
                --report FILE --vcek FILE [--chain FILE] [--collateral DIR|CRL] (an SEV-SNP report), or --quote FILE --collateral DIR|FILE \
                (a TDX quote; its PCK CRL, Root CA CRL and QE identity are required). \
                Without --policy, only authenticity and the safety defaults are checked (debug refused, nothing expired or revoked, \
                no simulated evidence, no migration agent) and the measurement is printed. Exits non-zero with the reason when \
                verification fails.
                """)

        @Option(help: "Evidence bundle JSON (as returned by the attestation endpoint).")
        var evidence: String?

        @Option(help: "SEV-SNP report (1184 bytes, raw).")
        var report: String?

        @Option(help: "VCEK or VLEK certificate (DER or PEM).")
        var vcek: String?

        @Option(help: "ASK/ASVK and ARK certificates (PEM bundle or DER). Default: the pinned AMD certificates.")
        var chain: String?

        @Option(help: "TDX quote (v4 or v5).")
        var quote: String?

        @Option(help: "TDX collateral: a directory (tcbInfo_fmspc_<fmspc>.json, qeIdentity.json, CRLs, issuer chains) or a QuoteCollateralV3 JSON file. SEV-SNP: a directory with AMD's vcek_crl.der/vlek_crl.der, or one CRL file (DER).")
        var collateral: String?

        @Option(help: "Policy manifest (JSON). See docs/attestation.md.")
        var policy: String?

        @Option(help: "Verification time, ISO 8601 (default: now).")
        var at: String?

        @Option(help: "With --evidence: the 32-byte nonce (hex) this client sent, to check the channel binding.")
        var nonce: String?

        @Option(help: "With --evidence and --nonce: the TLS certificate (DER or PEM) the connection presented.")
        var tlsCertificate: String?

        @Flag(help: "Accept evidence from the simulated TEE. Never use this for production decisions.")
        var allowSimulated = false

        public init() {}

        public func validate() throws {
            let modes = [evidence != nil, report != nil || vcek != nil, quote != nil].filter { $0 }.count
            guard modes == 1 else { throw ValidationError("give exactly one of --evidence, --report/--vcek, or --quote") }
            if report != nil || vcek != nil, report == nil || vcek == nil { throw ValidationError("--report needs --vcek (and the reverse)") }
            if chain != nil, report == nil { throw ValidationError("--chain goes with --report") }
            if collateral != nil, quote == nil, report == nil { throw ValidationError("--collateral goes with --quote or --report") }
            if (nonce != nil) != (tlsCertificate != nil) { throw ValidationError("--nonce and --tls-certificate go together") }
            if nonce != nil, evidence == nil { throw ValidationError("--nonce goes with --evidence") }
        }

        public func run() async throws {
            let time: Date
            if let at {
                guard let parsed = try? Date(at, strategy: .iso8601) else { throw ValidationError("--at \"\(at)\" is not an ISO 8601 time") }
                time = parsed
            } else {
                time = Date()
            }
            var policy = AttestationPolicy.authenticityOnly
            if let path = self.policy {
                policy = try AttestationPolicy.load(contentsOf: URL(fileURLWithPath: path))
            }
            if allowSimulated {
                FileHandle.standardError.write(Data("warning: --allow-simulated: evidence from the simulated TEE is accepted; it proves nothing about the server\n".utf8))
                policy.allowSimulated = true
            }
            let verifier = AttestationVerifier(policy: policy)
            do {
                let claims: VerifiedClaims
                if let evidence {
                    let bundle = try EvidenceBundle.decode(json: try Self.read(evidence))
                    var binding: ChannelBindingExpectation?
                    if let nonce, let tlsCertificate {
                        guard let n = Self.hex(nonce) else { throw ValidationError("--nonce is not hex") }
                        binding = try ChannelBindingExpectation(nonce: n, tlsCertificateDER: try Self.der(try Self.read(tlsCertificate)))
                    } else {
                        FileHandle.standardError.write(Data("note: no --nonce/--tls-certificate: the channel binding is not checked\n".utf8))
                    }
                    claims = try await verifier.verify(bundle: bundle, binding: binding, at: time)
                } else if let report, let vcek {
                    let chainCerts = try chain.map { Self.certificates(try Self.read($0)) } ?? []
                    let reportBytes = [UInt8](try Self.read(report))
                    var crl: [UInt8]?
                    if let collateral {
                        if try Self.isDirectory(collateral) {
                            let signer = try SNPReport(bytes: reportBytes).signer ?? .vcek
                            crl = SNPCollateral.files(inDirectory: URL(fileURLWithPath: collateral))[SNPCollateral.crlFileName(for: signer)]
                        } else {
                            crl = [UInt8](try Self.read(collateral))
                        }
                    }
                    claims = try verifier.verifySNP(
                        report: reportBytes, endorsementKey: [UInt8](try Self.read(vcek)), chain: chainCerts, crl: crl, at: time)
                } else if let quote {
                    let bytes = [UInt8](try Self.read(quote))
                    var collateralFiles = TDXCollateral()
                    if let collateral {
                        collateralFiles = try Self.isDirectory(collateral)
                            ? TDXCollateral.load(directory: URL(fileURLWithPath: collateral), fmspc: try TDXVerifier.fmspc(ofQuote: bytes))
                            : try TDXCollateral.load(quoteCollateralV3JSON: [UInt8](try Self.read(collateral)))
                    }
                    claims = try await verifier.verifyTDX(quote: bytes, collateral: collateralFiles, at: time)
                } else {
                    throw ValidationError("nothing to verify")
                }
                print(claims.jsonString())
                if self.policy == nil {
                    FileHandle.standardError.write(Data("measurement: \(claims.measurement)\n".utf8))
                }
            } catch let error as AttestationError {
                FileHandle.standardError.write(Data("verification failed: \(error.code.rawValue): \(error.reason)\n".utf8))
                throw ExitCode(1)
            }
        }

        /// Whether the `--collateral` path is a directory (it must exist).
        static func isDirectory(_ path: String) throws -> Bool {
            var isDirectory: ObjCBool = false
            guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else {
                throw ValidationError("--collateral \(path) does not exist")
            }
            return isDirectory.boolValue
        }

        static func read(_ path: String) throws -> Data {
            guard let d = FileManager.default.contents(atPath: path) else { throw ValidationError("cannot read \(path)") }
            return d
        }

        static func hex(_ text: String) -> [UInt8]? {
            let chars = Array(text.utf8)
            guard chars.count % 2 == 0 else { return nil }
            var out = [UInt8]()
            var i = 0
            while i < chars.count {
                guard let b = UInt8(String(decoding: chars[i..<(i + 2)], as: UTF8.self), radix: 16) else { return nil }
                out.append(b)
                i += 2
            }
            return out
        }

        /// DER bytes of one certificate given as DER or PEM.
        static func der(_ data: Data) throws -> [UInt8] {
            guard let first = certificates(data).first else { throw ValidationError("no certificate found") }
            return first
        }

        /// Every certificate in a PEM bundle, or the single DER certificate.
        static func certificates(_ data: Data) -> [[UInt8]] {
            let bytes = [UInt8](data)
            if bytes.first == 0x30 { return [bytes] }
            let text = String(decoding: bytes, as: UTF8.self)
            var out = [[UInt8]]()
            var rest = Substring(text)
            while let b = rest.range(of: "-----BEGIN CERTIFICATE-----"), let e = rest.range(of: "-----END CERTIFICATE-----", range: b.upperBound..<rest.endIndex) {
                let body = rest[b.upperBound..<e.lowerBound].filter { !$0.isWhitespace }
                if let d = Data(base64Encoded: String(body)) { out.append([UInt8](d)) }
                rest = rest[e.upperBound...]
            }
            return out
        }
    }
}
