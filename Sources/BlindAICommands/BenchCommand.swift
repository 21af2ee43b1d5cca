import ArgumentParser
import BlindAIGraph
import BlindAIONNX
import BlindAITensor
import Foundation

/// `blindai bench MODEL.onnx [--input NAME=FILE ...] [--iterations N]`: load time and inference latency.
/// Inputs not given are filled with deterministic pseudo-random values of the declared type and shape
/// (symbolic dimensions take `--dim-default`).
struct BenchCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench",
        abstract: "Measure model load time and inference latency (compare with scripts/bench-vs-onnxruntime.py)."
    )

    @Argument(help: "The ONNX model file.") var model: String
    @Option(name: .customLong("input"), help: "An input as NAME=FILE; others are generated.") var inputs: [String] = []
    @Option(help: "Timed iterations.") var iterations = 20
    @Option(help: "Untimed warm-up iterations.") var warmup = 3
    @Option(name: .customLong("dim-default"), help: "Size used for symbolic dimensions of generated inputs.") var dimDefault = 1
    @Flag(name: .customLong("no-optimize"), help: "Run the plain plan.") var noOptimize = false
    @Flag(help: "Print one JSON object instead of text.") var json = false
    @Flag(name: .customLong("on-request"),
          help: "For harnesses that interleave the engine with something else: after loading and warming up, print 'ready', then run once for each line read on standard input and print that run's milliseconds; stop at end of input.")
    var onRequest = false

    func run() throws {
        do {
            let t0 = DispatchTime.now().uptimeNanoseconds
            let m = try ONNXModel(contentsOf: URL(fileURLWithPath: model), options: PlanOptions(optimize: !noOptimize))
            let loadMs = Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e6
            var feeds: [String: Tensor] = [:]
            for spec in inputs {
                guard let eq = spec.firstIndex(of: "=") else { throw ValidationError("--input must be NAME=FILE") }
                feeds[String(spec[..<eq])] = try TensorFiles.read(String(spec[spec.index(after: eq)...]))
            }
            var seed: UInt64 = 42
            for info in m.inputs where feeds[info.name] == nil {
                feeds[info.name] = try Self.generate(info, dimDefault: dimDefault, seed: &seed)
            }
            for _ in 0..<warmup { _ = try m.run(feeds) }
            if onRequest {
                // Unbuffered writes: the harness waits for each line.
                FileHandle.standardOutput.write(Data("ready\n".utf8))
                while readLine() != nil {
                    let s = DispatchTime.now().uptimeNanoseconds
                    _ = try m.run(feeds)
                    let ms = Double(DispatchTime.now().uptimeNanoseconds - s) / 1e6
                    FileHandle.standardOutput.write(Data("\(ms)\n".utf8))
                }
                return
            }
            var times: [Double] = []
            for _ in 0..<max(iterations, 1) {
                let s = DispatchTime.now().uptimeNanoseconds
                _ = try m.run(feeds)
                times.append(Double(DispatchTime.now().uptimeNanoseconds - s) / 1e6)
            }
            let mean = times.reduce(0, +) / Double(times.count)
            times.sort()
            let median = times[times.count / 2]
            let p90 = times[min(times.count - 1, Int(Double(times.count) * 0.9))]
            if json {
                print("{\"model\": \"\(model)\", \"load_ms\": \(loadMs), \"median_ms\": \(median), \"mean_ms\": \(mean), \"p90_ms\": \(p90), \"min_ms\": \(times[0]), \"steps\": \(m.plan.stepCount)}")
            } else {
                print(String(format: "load %.1f ms, %d steps; inference median %.3f ms, p90 %.3f ms, min %.3f ms (%d runs)",
                             loadMs, m.plan.stepCount, median, p90, times[0], times.count))
            }
        } catch let e as EngineError {
            throw CLIError(message: e.description)
        }
    }

    /// A deterministic input for a declared value (xorshift; floats in [-1, 1), integers in [0, 10)).
    static func generate(_ info: ValueInfo, dimDefault: Int, seed: inout UInt64) throws -> Tensor {
        let dt = info.dataType ?? .float32
        let shape = (info.shape ?? []).map { $0.value ?? dimDefault }
        let t = try Tensor(zeros: dt, shape: shape)
        func next() -> UInt64 {
            seed ^= seed << 13; seed ^= seed >> 7; seed ^= seed << 17
            return seed
        }
        switch dt {
        case .float32:
            let b = t.mutableBuffer(Float.self)
            for i in 0..<b.count { b[i] = Float(next() % 2000) / 1000 - 1 }
        case .float64:
            let b = t.mutableBuffer(Double.self)
            for i in 0..<b.count { b[i] = Double(next() % 2000) / 1000 - 1 }
        case .int64:
            let b = t.mutableBuffer(Int64.self)
            for i in 0..<b.count { b[i] = Int64(next() % 10) }
        case .int32:
            let b = t.mutableBuffer(Int32.self)
            for i in 0..<b.count { b[i] = Int32(next() % 10) }
        case .bool:
            let b = t.mutableBuffer(Bool.self)
            for i in 0..<b.count { b[i] = true }
        default: break
        }
        return t
    }
}
