import ArgumentParser
import BlindAIGraph
import BlindAIONNX
import BlindAITensor
import Foundation

/// `blindai run MODEL.onnx --input NAME=FILE ... [--output-dir DIR]`
struct RunCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "run",
        abstract: "Run an ONNX model locally on tensors read from .npy or .pb files."
    )

    @Argument(help: "The ONNX model file.")
    var model: String

    @Option(name: .customLong("input"), help: "An input as NAME=FILE (.npy or ONNX TensorProto .pb). Repeat for each input.")
    var inputs: [String] = []

    @Option(name: .customLong("output-dir"), help: "Write each output as NAME.npy in this directory.")
    var outputDir: String?

    @Flag(name: .customLong("no-optimize"), help: "Run the plain plan (no constant folding or fusion).")
    var noOptimize = false

    func run() throws {
        do {
            let m = try ONNXModel(contentsOf: URL(fileURLWithPath: model), options: PlanOptions(optimize: !noOptimize))
            var feeds: [String: Tensor] = [:]
            for spec in inputs {
                guard let eq = spec.firstIndex(of: "=") else {
                    throw ValidationError("--input must be NAME=FILE, got '\(spec)'")
                }
                let name = String(spec[..<eq])
                feeds[name] = try TensorFiles.read(String(spec[spec.index(after: eq)...]))
            }
            // A single unnamed-looking input may be given without a name match only by its real name.
            let outputs = try m.run(feeds)
            if let outputDir {
                try FileManager.default.createDirectory(atPath: outputDir, withIntermediateDirectories: true)
                for info in m.outputs {
                    guard let t = outputs[info.name] else { continue }
                    let file = URL(fileURLWithPath: outputDir).appendingPathComponent(Self.fileName(info.name) + ".npy")
                    try NPY.encode(t).write(to: file)
                    print("\(info.name): \(t.dataType) \(t.shape) -> \(file.path)")
                }
            } else {
                for info in m.outputs {
                    guard let t = outputs[info.name] else { continue }
                    print("\(info.name): \(TensorFiles.summary(t))")
                }
            }
        } catch let e as EngineError {
            throw CLIError(message: e.description)
        }
    }

    /// A file name from an output name (which may contain '/' or ':').
    static func fileName(_ name: String) -> String {
        String(name.map { $0.isLetter || $0.isNumber || $0 == "_" || $0 == "-" || $0 == "." ? $0 : "_" })
    }
}

/// An error printed as one line, with a non-zero exit.
struct CLIError: Error, CustomStringConvertible {
    let message: String
    var description: String { message }
}
