import ArgumentParser
import BlindAIAttestation
import BlindAIClient
import BlindAIReceipts
import Foundation

/// Options shared by the client commands (`attest`, `upload`, `predict`, `models`, `unload`).
struct ClientOptions: ParsableArguments {
    @Option(name: .customLong("server"), help: "Server address HOST:PORT. Default: $BLINDAI_SERVER, else localhost:8000.")
    var server: String?

    @Option(name: .customLong("policy"), help: "Attestation policy (JSON) the server must satisfy; `blindai serve` prints it and writes it with --write-policy. Default: $BLINDAI_POLICY.")
    var policy: String?

    @Option(name: .customLong("api-key"), help: "API key. Default: $BLINDAI_API_KEY.")
    var apiKey: String?

    @Flag(name: .customLong("allow-simulated"), help: "Accept a server in the simulated TEE even if the policy does not (development only: it proves nothing).")
    var allowSimulated = false

    @Flag(name: .customLong("json"), help: "Print the result as JSON.")
    var json = false

    static func environment(_ name: String) -> String? {
        ProcessInfo.processInfo.environment[name].flatMap { $0.isEmpty ? nil : $0 }
    }

    func loadPolicy() throws -> AttestationPolicy {
        guard let path = policy ?? Self.environment("BLINDAI_POLICY") else {
            throw CLIError(message: """
                no attestation policy: give --policy FILE (or set BLINDAI_POLICY). The policy says which server you trust; \
                `blindai serve --write-policy FILE` writes the one for a server you run yourself.
                """)
        }
        do {
            return try AttestationPolicy.load(contentsOf: URL(fileURLWithPath: path))
        } catch {
            throw CLIError(message: "policy \(path): \(error.reason)")
        }
    }

    /// Connects and attests; prints the simulated-TEE warnings.
    func connect() async throws -> BlindAIClient {
        let policy = try loadPolicy()
        if allowSimulated {
            warn("--allow-simulated: a server in the SIMULATED TEE is accepted; its attestation proves nothing (development only)")
        }
        let client = try await BlindAIClient.connect(
            to: server ?? Self.environment("BLINDAI_SERVER") ?? "localhost:8000", policy: policy,
            apiKey: apiKey ?? Self.environment("BLINDAI_API_KEY"), allowSimulated: allowSimulated)
        if await client.attestation.isSimulated, !allowSimulated {
            warn("the server runs in a SIMULATED TEE (allowed by the policy): its attestation proves nothing (development only)")
        }
        return client
    }

    /// Connects, runs `body`, closes; client errors become one clear line and exit status 1.
    func run(_ body: (BlindAIClient) async throws -> Void) async throws {
        do {
            let client = try await connect()
            do {
                try await body(client)
            } catch {
                await client.close()
                throw error
            }
            await client.close()
        } catch let e as BlindAIClientError {
            if case .attestation = e {
                warn("the server was NOT trusted: nothing was sent to it.")
            }
            throw CLIError(message: e.description)
        }
    }
}

func warn(_ message: String) {
    FileHandle.standardError.write(Data("warning: \(message)\n".utf8))
}

func printJSON<T: Encodable>(_ value: T) throws {
    let e = JSONEncoder()
    e.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
    print(String(decoding: try e.encode(value), as: UTF8.self))
}

func formatBytes(_ n: Int64) -> String {
    let units = ["B", "KiB", "MiB", "GiB", "TiB"]
    var v = Double(n)
    var i = 0
    while v >= 1024, i < units.count - 1 {
        v /= 1024
        i += 1
    }
    return i == 0 ? "\(n) B" : String(format: "%.1f %@", v, units[i])
}

func describe(_ info: TensorInfo) -> String {
    "\(info.name) \(info.datatype) [\(info.shape.map { $0 < 0 ? "?" : String($0) }.joined(separator: ", "))]"
}

// MARK: - attest

struct AttestCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "attest", abstract: "Attest a server: verify its TEE evidence against the policy and show what was verified.")

    @OptionGroup var options: ClientOptions

    struct Output: Encodable {
        var server: String
        var tlsKeySHA256: String
        var claims: VerifiedClaims
        var claimsDocument: ClaimsDocument?
    }

    func run() async throws {
        try await options.run { client in
            let a = await client.attestation
            if options.json {
                try printJSON(Output(server: a.address.description, tlsKeySHA256: a.tlsKeySHA256, claims: a.claims, claimsDocument: a.claimsDocument))
            } else {
                print(AttestationText.lines(a).joined(separator: "\n"))
            }
        }
    }
}

/// Human description of an attestation.
enum AttestationText {
    static func lines(_ a: AttestedServer, indent: String = "  ") -> [String] {
        let c = a.claims
        var tee = c.tee == .tdx ? "Intel TDX" : "AMD SEV-SNP"
        if c.simulated { tee += ", SIMULATED (development only: proves nothing)" }
        var lines = ["Server \(a.address) is trusted: its evidence satisfies the policy."]
        lines.append("\(indent)TEE             \(tee)")
        if let snp = c.snp {
            lines.append("\(indent)report          SEV-SNP report version \(snp.reportVersion), \(snp.product.rawValue), signed by \(snp.signer.rawValue), VMPL \(snp.vmpl), TCB \(snp.reportedTCB)")
        } else if let tdx = c.tdx {
            lines.append("\(indent)report          TDX quote version \(tdx.quoteVersion), TCB \(tdx.tcb.map { "\($0.status)" } ?? "not evaluated")")
        }
        lines.append("\(indent)measurement     \(c.measurement)")
        lines.append("\(indent)debug           \(c.debug ? "ON" : "off")")
        lines.append("\(indent)TLS key         bound to the evidence (SHA-256 of the server's public key \(a.tlsKeySHA256)); pinned for this session")
        if let doc = a.claimsDocument {
            let server = [doc.attributes["server"], doc.attributes["serverVersion"]].compactMap { $0 }.joined(separator: " ")
            lines.append("\(indent)claims          \(server.isEmpty ? "" : server + ", ")issued \(doc.issuedAt)")
        }
        return lines
    }
}

// MARK: - upload

struct UploadCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "upload", abstract: "Upload an ONNX model to an attested server.")

    @Argument(help: "The ONNX model file.")
    var model: String

    @Option(name: .customLong("name"), help: "Name of the model on the server. Default: the file name without extension.")
    var name: String?

    @Flag(name: .customLong("shared"), help: "Let every API key run the model (default: only yours).")
    var shared = false

    @OptionGroup var options: ClientOptions

    func run() async throws {
        let url = URL(fileURLWithPath: model)
        guard FileManager.default.fileExists(atPath: url.path) else { throw CLIError(message: "\(model) does not exist") }
        let size = ((try? FileManager.default.attributesOfItem(atPath: url.path)[.size]) as? NSNumber)?.int64Value ?? 0
        let modelName = name ?? BlindAIClient.modelName(forFile: url)
        try await options.run { client in
            let bar = size >= 4 << 20 && !options.json ? ProgressBar(label: "uploading \(url.lastPathComponent)") : nil
            let onProgress: (@Sendable (UploadProgress) -> Void)? = bar.map { b in { @Sendable p in b.update(p) } }
            let uploaded = try await client.uploadModel(at: url, name: modelName, shared: shared ? true : nil, progress: onProgress)
            bar?.finish()
            if options.json {
                try printJSON(UploadOutput(uploaded))
            } else {
                print("Uploaded '\(uploaded.name)' (version \(uploaded.version), \(formatBytes(Int64(uploaded.size))), SHA-256 \(uploaded.sha256))\(uploaded.replaced ? ", replacing the previous version" : "")")
                for i in uploaded.inputs { print("  input   \(describe(i))") }
                for o in uploaded.outputs { print("  output  \(describe(o))") }
            }
        }
    }

    struct UploadOutput: Encodable {
        var name: String, version: String, sha256: String, size: Int, shared: Bool, replaced: Bool
        var inputs: [TensorInfo], outputs: [TensorInfo]
        init(_ u: UploadedModel) {
            (name, version, sha256, size, shared, replaced, inputs, outputs) = (u.name, u.version, u.sha256, u.size, u.shared, u.replaced, u.inputs, u.outputs)
        }
    }
}

/// A one-line progress bar on standard error.
final class ProgressBar: Sendable {
    let label: String
    private let last = LockedInt()
    private let lastQuarter = LockedInt()
    private let interactive = isatty(2) != 0

    init(label: String) { self.label = label }

    func update(_ p: UploadProgress) {
        let percent = Int(p.fraction * 100)
        guard last.exchange(percent) != percent else { return }
        if interactive {
            let width = 30
            let filled = min(width, percent * width / 100)
            let line = "\r\(label) [\(String(repeating: "#", count: filled))\(String(repeating: "-", count: width - filled))] \(percent)% \(formatBytes(p.sent)) of \(formatBytes(p.total))"
            FileHandle.standardError.write(Data(line.utf8))
        } else if lastQuarter.exchange(percent / 25) != percent / 25 {
            FileHandle.standardError.write(Data("\(label): \(percent)% (\(formatBytes(p.sent)) of \(formatBytes(p.total)))\n".utf8))
        }
    }

    func finish() {
        if interactive { FileHandle.standardError.write(Data("\n".utf8)) }
    }
}

/// An integer behind a lock.
final class LockedInt: @unchecked Sendable {
    private let lock = NSLock()
    private var value = -1

    func exchange(_ new: Int) -> Int {
        lock.lock()
        defer { lock.unlock() }
        let old = value
        value = new
        return old
    }
}

// MARK: - predict

struct PredictCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "predict", abstract: "Run a model on an attested server with inputs read from .npy files.")

    @Argument(help: "The model name on the server.")
    var model: String

    @Option(name: .customLong("input"), help: "An input as NAME=FILE.npy (or just FILE.npy when the model has one input). Repeat for each input.")
    var inputs: [String] = []

    @Option(name: .customLong("output-dir"), help: "Write each output as NAME.npy in this directory.")
    var outputDir: String?

    @Option(name: .customLong("top"), help: "For a classifier: print the K most likely classes of each row of each floating-point output.")
    var top: Int?

    @Option(name: .customLong("repeat"), help: "Benchmarks: after the prediction, run it N more times on the same attested session and print each latency (ms) as a JSON line on standard error.")
    var repeatCount: Int = 0

    @Option(name: .customLong("model-sha256"), help: "Run only if the model has this SHA-256 (64 hex digits): the server refuses, and runs nothing, when the model of that name was replaced.")
    var modelSHA256: String?

    @Option(name: .customLong("receipt"), help: "Ask the server for a signed receipt and save it, with the evidence needed to check it later, to this JSON file (blindai receipt verify).")
    var receipt: String?

    @OptionGroup var options: ClientOptions

    func validate() throws {
        guard !inputs.isEmpty else { throw ValidationError("give at least one --input NAME=FILE.npy") }
        if let top, top < 1 { throw ValidationError("--top must be at least 1") }
        if let modelSHA256, ModelDigest.normalized(modelSHA256) == nil {
            throw ValidationError("--model-sha256 must be 64 hex digits")
        }
        guard repeatCount >= 0 else { throw ValidationError("--repeat must be 0 or more") }
    }

    func run() async throws {
        // Read every file before connecting: a typo should not cost an attestation.
        var named: [String: Tensor] = [:]
        var unnamed: Tensor?
        for spec in inputs {
            let (name, path): (String?, String)
            if let eq = spec.firstIndex(of: "="), !FileManager.default.fileExists(atPath: spec) {
                (name, path) = (String(spec[..<eq]), String(spec[spec.index(after: eq)...]))
            } else {
                (name, path) = (nil, spec)
            }
            let tensor: Tensor
            do {
                tensor = try Tensor(npyFile: URL(fileURLWithPath: path))
            } catch let e as BlindAIClientError {
                throw CLIError(message: e.description)
            }
            if let name { named[name] = tensor } else {
                guard unnamed == nil else { throw ValidationError("only one --input may omit its NAME=") }
                unnamed = tensor
            }
        }
        try await options.run { client in
            if let unnamed {
                let meta = try await client.metadata(of: model)
                guard meta.inputs.count == 1, let only = meta.inputs.first else {
                    throw CLIError(message: "'\(model)' has inputs \(meta.inputs.map(\.name).joined(separator: ", ")): give each as --input NAME=FILE.npy")
                }
                named[only.name] = unnamed
            }
            let result = try await client.infer(model: model, inputs: named, requireModelSHA256: modelSHA256, receipt: receipt != nil)
            var outputs = result.outputs
            if let receipt, let file = result.receipt {
                try file.jsonData().write(to: URL(fileURLWithPath: receipt), options: .atomic)
                FileHandle.standardError.write(Data("receipt saved to \(receipt) (check it with: blindai receipt verify \(receipt) --policy POLICY.json)\n".utf8))
            }
            if !options.json, let digest = result.modelSHA256 {
                print("model: \(result.modelName) version \(result.modelVersion ?? "?") sha256 \(digest)")
            }
            if repeatCount > 0 {
                var latencies: [Double] = []
                for _ in 0..<repeatCount {
                    let start = ContinuousClock.now
                    // The same request as the first (a required digest, a receipt): what the latency includes.
                    outputs = try await client.infer(model: model, inputs: named, requireModelSHA256: modelSHA256, receipt: receipt != nil).outputs
                    let d = ContinuousClock.now - start
                    latencies.append(Double(d.components.seconds) * 1e3 + Double(d.components.attoseconds) / 1e15)
                }
                FileHandle.standardError.write(Data("{\"latencies_ms\":[\(latencies.map { String($0) }.joined(separator: ","))]}\n".utf8))
            }
            var written: [String: String] = [:]
            if let outputDir {
                try FileManager.default.createDirectory(atPath: outputDir, withIntermediateDirectories: true)
                for (name, t) in outputs {
                    let file = URL(fileURLWithPath: outputDir).appendingPathComponent(RunCommand.fileName(name) + ".npy")
                    try t.npy().write(to: file)
                    written[name] = file.path
                }
            }
            let ranked = try top.map { k in try outputs.compactMapValues { try TopK.rank($0, k: k) } } ?? [:]
            if options.json {
                var out: [String: PredictOutput] = [:]
                for (name, t) in outputs {
                    out[name] = PredictOutput(datatype: t.datatype.rawValue, shape: t.shape, file: written[name],
                                              data: written[name] == nil && t.datatype != .bytes ? try t.doubles() : nil,
                                              strings: written[name] == nil && t.datatype == .bytes ? try t.strings() : nil, top: ranked[name])
                }
                try printJSON(out)
                return
            }
            for name in outputs.keys.sorted() {
                let t = outputs[name]!
                if let file = written[name] { print("\(name): \(t.datatype.rawValue) \(t.shape) -> \(file)") } else { print("\(name): \(t)") }
                if let rows = ranked[name] {
                    for (r, row) in rows.enumerated() {
                        let label = rows.count > 1 ? "  row \(r): " : "  top \(row.count): "
                        print(label + row.map { "class \($0.index) (\(String(format: "%.1f", $0.probability * 100))%)" }.joined(separator: ", "))
                    }
                }
            }
        }
    }

    struct PredictOutput: Encodable {
        var datatype: String
        var shape: [Int]
        var file: String?
        var data: [Double]?
        var strings: [String]?
        var top: [[TopK.Entry]]?
    }
}

/// Top-K classes of a classifier output: each row of the last dimension, as probabilities (softmax unless the
/// row already is a probability distribution).
enum TopK {
    struct Entry: Encodable, Equatable {
        var index: Int
        var probability: Double
        var score: Double
    }

    static func rank(_ t: Tensor, k: Int) throws -> [[Entry]]? {
        guard [.fp32, .fp64, .fp16, .bf16].contains(t.datatype), let classes = t.shape.last, classes > 0, t.count > 0 else { return nil }
        let values = try t.doubles()
        return stride(from: 0, to: values.count, by: classes).map { start in
            let row = Array(values[start..<(start + classes)])
            let probabilities = probabilities(row)
            return row.indices.sorted { row[$0] > row[$1] }.prefix(k).map { Entry(index: $0, probability: probabilities[$0], score: row[$0]) }
        }
    }

    static func probabilities(_ row: [Double]) -> [Double] {
        let sum = row.reduce(0, +)
        if row.allSatisfy({ $0 >= 0 && $0 <= 1 }), abs(sum - 1) < 1e-3 { return row }
        let m = row.max() ?? 0
        let e = row.map { Foundation.exp($0 - m) }
        let s = e.reduce(0, +)
        return e.map { $0 / s }
    }
}

// MARK: - models, unload

struct ModelsCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "models", abstract: "List the models of an attested server that you may use.")

    @OptionGroup var options: ClientOptions

    func run() async throws {
        try await options.run { client in
            let models = try await client.models()
            if options.json {
                try printJSON(models)
            } else if models.isEmpty {
                print("No models.")
            } else {
                let width = max(4, models.map(\.name.count).max() ?? 4)
                print("NAME".padding(toLength: width, withPad: " ", startingAt: 0) + "  VERSION  STATE")
                for m in models {
                    print(m.name.padding(toLength: width, withPad: " ", startingAt: 0) + "  " + (m.version ?? "-").padding(toLength: 7, withPad: " ", startingAt: 0) + "  " + m.state)
                }
            }
        }
    }
}

struct UnloadCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "unload", abstract: "Unload a model from an attested server.")

    @Argument(help: "The model name.")
    var model: String

    @OptionGroup var options: ClientOptions

    func run() async throws {
        try await options.run { client in
            try await client.unloadModel(model)
            if options.json { try printJSON(["unloaded": model]) } else { print("Unloaded '\(model)'.") }
        }
    }
}
