import BlindAIGraph
import BlindAIONNX
import BlindAITensor
import BlindAITestSupport
import Foundation
import Testing

/// Element-wise steps write over inputs they read last, only when no one else can see that memory.
@Suite struct InPlaceTests {
    static func values(_ n: Int) -> [Float] { (0..<n).map { Float($0 % 9) - 4 } }

    @Test func chainsOfElementwiseOpsGiveTheSameResults() throws {
        var b = ModelBuilder()
        b.input("x", .float32, [nil, 4])
        b.input("y", .float32, [nil, 4])
        b.node("Relu", ["x"], ["r"])          // x is a graph input: never overwritten
        b.node("Neg", ["r"], ["n"])           // r dies here: n may reuse it
        b.node("Add", ["n", "y"], ["s"])      // n dies here
        b.node("Sigmoid", ["s"], ["sg"])
        b.node("Mul", ["sg", "sg"], ["sq"])   // the same value twice: not in place
        b.node("Clip", ["sq", "lo", "hi"], ["out"])
        b.initializer("lo", Tensor(scalar: Float(0.1)))
        b.initializer("hi", Tensor(scalar: Float(0.5)))
        b.output("out", .float32, [nil, 4])
        let data = try b.data()
        let m = try ONNXModel(serialized: data)
        #expect(m.plan.inPlaceStepCount >= 3)
        let xs = Self.values(12), ys = Self.values(12).reversed().map { $0 / 2 }
        let x = Tensor(shape: [3, 4], scalars: xs), y = Tensor(shape: [3, 4], scalars: Array(ys))
        let out = try m.run(["x": x, "y": y])["out"]!.scalars(as: Float.self)
        let expected = zip(xs, ys).map { xv, yv -> Float in
            let s = -Swift.max(xv, 0) + yv
            let sg = 1 / (1 + Foundation.exp(-s))
            return Swift.min(Swift.max(sg * sg, 0.1), 0.5)
        }
        for (a, e) in zip(out, expected) { #expect(abs(a - e) < 1e-6) }
        // The caller's tensors are untouched.
        #expect(x.scalars(as: Float.self) == xs)
        #expect(y.scalars(as: Float.self) == Array(ys))
    }

    @Test func sharedStorageIsNeverOverwritten() throws {
        // i is an Identity of r (same storage): Neg reads r last but must not write over what i still shows.
        var b = ModelBuilder()
        b.input("x", .float32, [4])
        b.node("Relu", ["x"], ["r"])
        b.node("Identity", ["r"], ["i"])
        b.node("Neg", ["r"], ["n"])
        b.node("Exp", ["i"], ["e"])
        b.output("n", .float32, [4])
        b.output("e", .float32, [4])
        for optimize in [true, false] {
            let m = try ONNXModel(serialized: b.data(), options: PlanOptions(optimize: optimize))
            let out = try m.run(["x": Tensor(shape: [4], scalars: [Float](arrayLiteral: -1, 2, -3, 4))])
            #expect(out["n"]?.scalars(as: Float.self) == [0, -2, 0, -4])
            #expect(out["e"]?.scalars(as: Float.self) == [1, Foundation.exp(2), 1, Foundation.exp(4)])
        }
    }

    @Test func broadcastInputsAreNotReused() throws {
        // a [3,1] + b [3,4]: only b has the output's shape.
        var b = ModelBuilder()
        b.input("x", .float32, [3, 1])
        b.input("y", .float32, [3, 4])
        b.node("Abs", ["x"], ["a"])
        b.node("Abs", ["y"], ["c"])
        b.node("Sub", ["a", "c"], ["out"])
        b.output("out", .float32, [3, 4])
        let m = try ONNXModel(serialized: b.data())
        let x = Tensor(shape: [3, 1], scalars: [Float](arrayLiteral: 1, -2, 3))
        let y = Tensor(shape: [3, 4], scalars: Self.values(12))
        let out = try m.run(["x": x, "y": y])["out"]!
        #expect(out.shape == [3, 4])
        let ys = Self.values(12)
        #expect(out.scalars(as: Float.self) == (0..<12).map { abs([1, -2, 3][$0 / 4]) - abs(ys[$0]) })
    }

    @Test func concurrentRunsDoNotShareBuffers() throws {
        var b = ModelBuilder()
        b.input("x", .float32, [nil, 64])
        b.node("Relu", ["x"], ["r"])
        b.node("Mul", ["r", "two"], ["m"])
        b.node("Add", ["m", "r2"], ["s"])
        b.node("Neg", ["x"], ["nx"])
        b.node("Relu", ["nx"], ["r2"])
        b.node("Tanh", ["s"], ["out"])
        b.initializer("two", Tensor(scalar: Float(2)))
        b.output("out", .float32, [nil, 64])
        let m = try ONNXModel(serialized: b.data())
        let plan = m.plan
        let failures = Failures()
        DispatchQueue.concurrentPerform(iterations: 16) { i in
            let xs = (0..<(64 * (i + 1))).map { Float(($0 + i) % 13) / 4 - 1.5 }
            guard let out = try? plan.run(["x": Tensor(shape: [i + 1, 64], scalars: xs)])["out"] else { failures.add(); return }
            let expected = xs.map { Float(Foundation.tanh(Double(2 * Swift.max($0, 0) + Swift.max(-$0, 0)))) }
            for (a, e) in zip(out.scalars(as: Float.self), expected) where abs(a - e) > 1e-5 { failures.add(); return }
        }
        #expect(failures.count == 0)
    }
}

final class Failures: @unchecked Sendable {
    private let lock = NSLock()
    private var n = 0
    func add() { lock.lock(); n += 1; lock.unlock() }
    var count: Int { lock.lock(); defer { lock.unlock() }; return n }
}

/// Loading a model file reads large initializers straight into their tensors.
@Suite struct ModelFileTests {
    func model() throws -> (Data, Tensor) {
        var b = ModelBuilder()
        b.input("x", .float32, [2, 64])
        let w = Tensor(shape: [64, 32], scalars: (0..<(64 * 32)).map { Float($0 % 23) / 23 - 0.5 })
        b.initializer("w", w)
        b.initializer("bias", Tensor(shape: [32], scalars: (0..<32).map { Float($0) / 8 }))
        b.initializer("shape", Tensor(shape: [2], scalars: [Int64](arrayLiteral: 4, 16)))
        b.node("MatMul", ["x", "w"], ["mm"])
        b.node("Add", ["mm", "bias"], ["y"])
        b.node("Reshape", ["y", "shape"], ["out"])
        b.output("out", .float32, [4, 16])
        return (try b.data(), w)
    }

    @Test func fileAndBytesGiveTheSameResults() throws {
        let (data, _) = try model()
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("blindai-modelfile-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let url = dir.appendingPathComponent("model.onnx")
        try data.write(to: url)
        let x = Tensor(shape: [2, 64], scalars: (0..<128).map { Float($0 % 7) - 3 })
        let fromFile = try ONNXModel(contentsOf: url).run(["x": x])["out"]!
        let fromBytes = try ONNXModel(serialized: data).run(["x": x])["out"]!
        #expect(fromFile.shape == [4, 16])
        #expect(fromFile.scalars(as: Float.self) == fromBytes.scalars(as: Float.self))
        // The model keeps its interface, not its weights.
        let m = try ONNXModel(contentsOf: url)
        #expect(m.graph.initializers.isEmpty && m.graph.nodes.isEmpty)
        #expect(m.graph.inputs.map(\.name) == ["x"])
    }

    @Test func truncatedFilesFailCleanly() throws {
        let (data, _) = try model()
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("blindai-modelfile-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let url = dir.appendingPathComponent("model.onnx")
        for n in stride(from: 1, to: data.count, by: max(1, data.count / 97)) {
            try data.prefix(n).write(to: url)
            do {
                _ = try ONNXModel(contentsOf: url)
            } catch let e as EngineError {
                #expect(!e.reason.isEmpty)
            }
        }
    }
}
