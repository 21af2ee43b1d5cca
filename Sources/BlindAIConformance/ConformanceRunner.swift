import BlindAIGraph
import BlindAIONNX
import BlindAITensor
import Foundation

/// Runs tests in the ONNX backend-test layout: `model.onnx` plus `test_data_set_*/input_*.pb, output_*.pb`.
public struct ConformanceRunner: Sendable {
    public enum Outcome: Sendable, Equatable {
        case passed
        case failed(String)
        case skipped(String)
    }

    public var optimize: Bool
    /// Check every intermediate value against the shape facts inferred at plan time.
    public var verifyFacts = false
    public var absoluteTolerance: Double = 1e-4
    public var relativeTolerance: Double = 1e-3

    /// Operators deliberately not implemented: training-only operators and the sequence/optional/map types,
    /// which no inference model in scope uses. Tests whose only unsupported operators are these are skipped.
    public static let deliberatelyUnsupported: Set<String> = [
        "Adagrad", "Adam", "Momentum", "Gradient",
        "SequenceAt", "SequenceConstruct", "SequenceEmpty", "SequenceErase", "SequenceInsert", "SequenceLength",
        "SequenceMap", "SplitToSequence", "ConcatFromSequence",
        "Optional", "OptionalGetElement", "OptionalHasElement",
        // Image file decoding (JPEG, PNG, ...) inside the inference server is out of scope: clients send tensors.
        "ImageDecoder",
    ]

    public init(optimize: Bool = true) {
        self.optimize = optimize
    }

    /// Test directories under `paths`: each path is a test directory or a folder of them.
    public static func discover(_ paths: [String]) -> [URL] {
        var found: [URL] = []
        let fm = FileManager.default
        for p in paths {
            let url = URL(fileURLWithPath: p)
            if fm.fileExists(atPath: url.appendingPathComponent("model.onnx").path) {
                found.append(url)
                continue
            }
            let children = (try? fm.contentsOfDirectory(at: url, includingPropertiesForKeys: nil)) ?? []
            for c in children.sorted(by: { $0.lastPathComponent < $1.lastPathComponent })
            where fm.fileExists(atPath: c.appendingPathComponent("model.onnx").path) {
                found.append(c)
            }
        }
        return found
    }

    /// Runs one test directory.
    public func run(_ dir: URL) -> Outcome {
        let model: ONNXModel
        do {
            model = try ONNXModel(contentsOf: dir.appendingPathComponent("model.onnx"), options: PlanOptions(optimize: optimize, verifyFacts: verifyFacts))
        } catch let e as EngineError {
            if e.code == .unsupportedOperator {
                let names = Self.unsupportedNames(e.reason)
                if !names.isEmpty && names.allSatisfy({ Self.deliberatelyUnsupported.contains($0) }) {
                    return .skipped("deliberately unsupported: \(names.sorted().joined(separator: ", "))")
                }
            }
            if e.reason.contains("unsupported element type") || e.reason.contains("unsupported data type") {
                return .skipped("8-bit, 4-bit and 2-bit float and integer element types are deliberately unsupported")
            }
            if e.reason.contains("has type sequence") || e.reason.contains("has type optional") || e.reason.contains("has unsupported type typeProto") {
                return .skipped("sequence and optional types are deliberately unsupported")
            }
            return .failed("load: \(e)")
        } catch {
            return .failed("load: \(error)")
        }
        let fm = FileManager.default
        let sets = ((try? fm.contentsOfDirectory(at: dir, includingPropertiesForKeys: nil)) ?? [])
            .filter { $0.lastPathComponent.hasPrefix("test_data_set_") }
            .sorted { $0.lastPathComponent < $1.lastPathComponent }
        if sets.isEmpty { return .failed("no test_data_set_* directories") }
        for set in sets {
            do {
                let inputs = try Self.numbered(set, prefix: "input_")
                let expected = try Self.numbered(set, prefix: "output_")
                var feeds: [String: Tensor] = [:]
                for (i, (name, tensor)) in inputs.enumerated() {
                    if !name.isEmpty, model.inputs.contains(where: { $0.name == name }) {
                        feeds[name] = tensor
                    } else if i < model.inputs.count {
                        feeds[model.inputs[i].name] = tensor
                    }
                }
                let outputs = try model.run(feeds)
                for (i, (pbName, want)) in expected.enumerated() {
                    guard i < model.outputs.count else { return .failed("\(set.lastPathComponent): more expected outputs than model outputs") }
                    let name = pbName.isEmpty ? model.outputs[i].name : pbName
                    guard let got = outputs[name] ?? outputs[model.outputs[i].name] else {
                        return .failed("\(set.lastPathComponent): output '\(name)' missing")
                    }
                    if let problem = compare(got, want) {
                        return .failed("\(set.lastPathComponent): output '\(name)': \(problem)")
                    }
                }
            } catch {
                return .failed("\(set.lastPathComponent): \(error)")
            }
        }
        return .passed
    }

    static func numbered(_ dir: URL, prefix: String) throws -> [(String, Tensor)] {
        let files = ((try? FileManager.default.contentsOfDirectory(at: dir, includingPropertiesForKeys: nil)) ?? [])
            .filter { $0.lastPathComponent.hasPrefix(prefix) && $0.pathExtension == "pb" }
            .sorted { Int($0.deletingPathExtension().lastPathComponent.dropFirst(prefix.count)) ?? 0 < Int($1.deletingPathExtension().lastPathComponent.dropFirst(prefix.count)) ?? 0 }
        return try files.map { url in
            let data = try Data(contentsOf: url)
            let d = try ONNXTensor.decode(data)
            return (d.name, d.tensor)
        }
    }

    static func unsupportedNames(_ reason: String) -> [String] {
        // "unsupported operators: A (node 'x'), dom.B (node 'y')"
        guard let r = reason.range(of: "unsupported operators: ") else { return [] }
        return reason[r.upperBound...].components(separatedBy: "), ").compactMap { part in
            let name = part.split(separator: " ").first.map(String.init) ?? ""
            return name.split(separator: ".").last.map(String.init)
        }
    }

    /// nil when `got` matches `want` within tolerance.
    public func compare(_ got: Tensor, _ want: Tensor) -> String? {
        guard got.dataType == want.dataType else { return "type \(got.dataType), expected \(want.dataType)" }
        guard got.shape == want.shape else { return "shape \(got.shape), expected \(want.shape)" }
        switch want.dataType {
        case .float32, .float64, .float16, .bfloat16:
            guard let g = try? got.doubleValues(), let w = try? want.doubleValues() else { return "unreadable values" }
            for i in 0..<w.count {
                let a = g[i], b = w[i]
                if a.isNaN && b.isNaN { continue }
                if a == b { continue }
                if abs(a - b) > absoluteTolerance + relativeTolerance * abs(b) || a.isNaN != b.isNaN {
                    return "value #\(i) is \(a), expected \(b)"
                }
            }
        case .string:
            if got.strings != want.strings { return "strings differ: \(got.strings.prefix(4)) vs \(want.strings.prefix(4))" }
        case .bool:
            if got.scalars(as: Bool.self) != want.scalars(as: Bool.self) { return "bool values differ" }
        case .uint64:
            if got.scalars(as: UInt64.self) != want.scalars(as: UInt64.self) { return "values differ" }
        default:
            guard let g = try? got.intValues(), let w = try? want.intValues() else { return "unreadable values" }
            if let i = (0..<w.count).first(where: { g[$0] != w[$0] }) { return "value #\(i) is \(g[i]), expected \(w[i])" }
        }
        return nil
    }
}
