import ArgumentParser
import BlindAIAttestation
import BlindAIClient
import BlindAIReceipts
import Foundation

/// `blindai receipt ...`: offline verification of inference receipts (docs/receipts.md).
struct ReceiptCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "receipt", abstract: "Verify signed inference receipts, offline.", subcommands: [Verify.self])

    struct Verify: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "verify",
            abstract: "Verify a receipt file (blindai predict --receipt) and, when given, the tensors it describes.",
            discussion: """
                Checks the evidence in the file against the policy at the evidence's own issue time, that the receipt was \
                signed by the key the evidence's claims document names, that the receipt's time is within the evidence's \
                validity (the policy's maxEvidenceAgeSeconds, or 24 hours), and that each --input and --output file has the \
                digest the receipt records. Prints what the receipt states as JSON; exits non-zero with the code of the \
                failed check.
                """)

        @Argument(help: "The receipt file.")
        var file: String

        @Option(help: "The attestation policy (JSON) the evidence must satisfy.")
        var policy: String

        @Option(name: .customLong("input"), help: "An input as NAME=FILE.npy to check against the receipt. Repeat for each.")
        var inputs: [String] = []

        @Option(name: .customLong("output"), help: "An output as NAME=FILE.npy to check against the receipt. Repeat for each.")
        var outputs: [String] = []

        func run() async throws {
            let policy: AttestationPolicy
            do {
                policy = try AttestationPolicy.load(contentsOf: URL(fileURLWithPath: self.policy))
            } catch {
                throw ValidationError("--policy \(self.policy): \(error.reason)")
            }
            guard let data = FileManager.default.contents(atPath: file) else { throw ValidationError("cannot read \(file)") }
            let inputs = try Self.tensors(self.inputs, "--input"), outputs = try Self.tensors(self.outputs, "--output")
            do {
                let file = try ReceiptFile.decode(json: data)
                let verified = try await ReceiptVerifier.verify(file, policy: policy, inputs: inputs, outputs: outputs)
                let e = JSONEncoder()
                e.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
                FileHandle.standardOutput.write(try e.encode(Report(receipt: verified.receipt, tee: verified.claims.tee.rawValue,
                                                                      measurement: verified.claims.measurement,
                                                                      simulated: verified.claims.simulated,
                                                                      checkedInputs: inputs.keys.sorted(), checkedOutputs: outputs.keys.sorted())))
                FileHandle.standardOutput.write(Data("\n".utf8))
            } catch let e as ReceiptError {
                FileHandle.standardError.write(Data("receipt refused: \(e.code.rawValue): \(e.reason)\n".utf8))
                throw ExitCode(1)
            } catch let e as AttestationError {
                FileHandle.standardError.write(Data("receipt refused: \(e.code.rawValue): \(e.reason)\n".utf8))
                throw ExitCode(1)
            }
        }

        struct Report: Encodable {
            var receipt: Receipt
            var tee: String
            var measurement: String
            var simulated: Bool
            var checkedInputs: [String]
            var checkedOutputs: [String]
        }

        static func tensors(_ specs: [String], _ option: String) throws -> [String: Tensor] {
            var out: [String: Tensor] = [:]
            for spec in specs {
                guard let eq = spec.firstIndex(of: "=") else { throw ValidationError("\(option) must be NAME=FILE.npy") }
                let name = String(spec[..<eq]), path = String(spec[spec.index(after: eq)...])
                do {
                    out[name] = try Tensor(npyFile: URL(fileURLWithPath: path))
                } catch let e as BlindAIClientError {
                    throw ValidationError("\(option) \(spec): \(e.description)")
                }
            }
            return out
        }
    }
}
