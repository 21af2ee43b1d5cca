import BlindAIGraph
import BlindAIONNX
import BlindAITensor
import BlindAITestSupport
import Foundation
import Testing

/// Bad input of every kind gives a clear engine error, never a crash.
@Suite struct LoadingTests {
    func addModel() throws -> Data {
        var b = ModelBuilder()
        b.input("x", .float32, [2, 3])
        b.input("y", .float32, [nil, 3])
        b.node("Add", ["x", "y"], ["z"])
        b.node("Relu", ["z"], ["out"])
        b.output("out", .float32, [2, 3])
        return try b.data()
    }

    @Test func runsASmallModel() throws {
        let m = try ONNXModel(serialized: addModel())
        let x = Tensor(shape: [2, 3], scalars: [Float](arrayLiteral: 1, -2, 3, -4, 5, -6))
        let y = Tensor(shape: [1, 3], scalars: [Float](arrayLiteral: 1, 1, 1))
        let out = try m.run(["x": x, "y": y])
        #expect(out["out"]?.scalars(as: Float.self) == [2, 0, 4, 0, 6, 0])
    }

    @Test func emptyFileIsRejected() {
        expectCode(.invalidModel) { _ = try ONNXModel(serialized: Data()) }
    }

    @Test func garbageIsRejected() {
        var rng = SystemRandomNumberGenerator()
        let garbage = Data((0..<4096).map { _ in UInt8.random(in: 0...255, using: &rng) })
        expectCode(.invalidModel) { _ = try ONNXModel(serialized: garbage) }
        expectCode(.invalidModel) { _ = try ONNXModel(serialized: Data("hello, I am not a model".utf8)) }
    }

    @Test func truncatedFilesAreRejectedAtEveryLength() throws {
        let data = try addModel()
        // Every prefix either fails with an engine error or (rarely, at a field boundary) loads a smaller valid
        // graph; none may crash.
        for n in stride(from: 0, to: data.count, by: 3) {
            do {
                _ = try ONNXModel(serialized: data.prefix(n))
            } catch let e as EngineError {
                #expect(!e.reason.isEmpty)
            }
        }
    }

    @Test func cyclesAreRejected() throws {
        var b = ModelBuilder()
        b.input("x", .float32, [1])
        b.node("Add", ["x", "b"], ["a"], name: "first")
        b.node("Relu", ["a"], ["b"], name: "second")
        b.output("b", .float32, [1])
        expectCode(.graphCycle) { _ = try ONNXModel(serialized: b.data()) }
    }

    @Test func undefinedValuesAreRejected() throws {
        var b = ModelBuilder()
        b.input("x", .float32, [1])
        b.node("Add", ["x", "nowhere"], ["y"])
        b.output("y", .float32, [1])
        expectCode(.invalidModel) { _ = try ONNXModel(serialized: b.data()) }
    }

    @Test func everyUnsupportedOperatorIsListedAtOnce() throws {
        var b = ModelBuilder()
        b.input("x", .float32, [1])
        b.node("FrobnicateA", ["x"], ["y"], name: "n1")
        b.node("Relu", ["y"], ["z"])
        b.node("FrobnicateB", ["z"], ["w"], name: "n2", domain: "com.example")
        b.output("w", .float32, [1])
        do {
            _ = try ONNXModel(serialized: b.data())
            Issue.record("unsupported ops were accepted")
        } catch let e as EngineError {
            #expect(e.code == .unsupportedOperator)
            #expect(e.reason.contains("FrobnicateA (node 'n1')"))
            #expect(e.reason.contains("com.example.FrobnicateB (node 'n2')"))
        }
    }

    @Test func missingAndUnknownInputs() throws {
        let m = try ONNXModel(serialized: addModel())
        let x = Tensor(shape: [2, 3], scalars: [Float](repeating: 1, count: 6))
        expectCode(.missingInput) { _ = try m.run(["x": x]) }
        expectCode(.unknownInput) { _ = try m.run(["x": x, "y": x, "extra": x]) }
    }

    @Test func wrongTypeRankAndShape() throws {
        let m = try ONNXModel(serialized: addModel())
        let good = Tensor(shape: [2, 3], scalars: [Float](repeating: 1, count: 6))
        let ints = Tensor(shape: [2, 3], scalars: [Int32](repeating: 1, count: 6))
        expectCode(.typeMismatch) { _ = try m.run(["x": ints, "y": good]) }
        expectCode(.shapeMismatch) { _ = try m.run(["x": good.reshaped([6]), "y": good]) }
        expectCode(.shapeMismatch) { _ = try m.run(["x": good.reshaped([3, 2]), "y": good]) }
        // y's first dimension is symbolic: any size is accepted by the declaration, and broadcasting then decides.
        let y4 = Tensor(shape: [4, 3], scalars: [Float](repeating: 1, count: 12))
        expectCode(.shapeMismatch) { _ = try m.run(["x": good, "y": y4]) }
    }

    @Test func shapesOverTheMemoryLimitFailCleanly() throws {
        var b = ModelBuilder()
        b.input("a", .float32, [nil, 1])
        b.input("b", .float32, [1, nil])
        b.node("Add", ["a", "b"], ["c"])
        b.output("c", .float32, [nil, nil])
        let limits = TensorLimits(maxTensorBytes: 64 << 20, maxTensorElements: 16 << 20)
        let m = try ONNXModel(serialized: b.data(), options: PlanOptions(limits: limits))
        let a = try Tensor(zeros: .float32, shape: [100_000, 1])
        let bb = try Tensor(zeros: .float32, shape: [1, 100_000])
        expectCode(.memoryLimit) { _ = try m.run(["a": a, "b": bb]) }
        // The same model still works on sane inputs afterwards.
        let small = try m.run(["a": a.reshaped([100_000, 1]), "b": Tensor(shape: [1, 1], scalars: [Float(1)])])
        #expect(small["c"]?.shape == [100_000, 1])
    }

    @Test func constantsAreFoldedInTheOptimisedPlanOnly() throws {
        var b = ModelBuilder()
        b.input("x", .float32, [3])
        b.initializer("c1", Tensor(shape: [3], scalars: [Float](arrayLiteral: 1, 2, 3)))
        b.initializer("c2", Tensor(shape: [3], scalars: [Float](arrayLiteral: 10, 20, 30)))
        b.node("Mul", ["c1", "c2"], ["c3"])
        b.node("Relu", ["c3"], ["c4"])
        b.node("Add", ["x", "c4"], ["y"])
        b.node("Neg", ["x"], ["unused"])
        b.output("y", .float32, [3])
        let data = try b.data()
        let optimised = try ONNXModel(serialized: data)
        let plain = try ONNXModel(serialized: data, options: PlanOptions(optimize: false))
        #expect(optimised.plan.stepOpTypes == ["Add"])
        #expect(plain.plan.stepCount == 4)
        let x = Tensor(shape: [3], scalars: [Float](arrayLiteral: 1, 1, 1))
        #expect(try optimised.run(["x": x])["y"]?.scalars(as: Float.self) == [11, 41, 91])
        #expect(try plain.run(["x": x])["y"]?.scalars(as: Float.self) == [11, 41, 91])
    }

    @Test func unsupportedIRVersionIsRejected() throws {
        var b = ModelBuilder(irVersion: 99)
        b.input("x", .float32, [1])
        b.node("Relu", ["x"], ["y"])
        b.output("y", .float32, [1])
        expectCode(.invalidModel) { _ = try ONNXModel(serialized: b.data()) }
    }

    @Test func initializerWithWrongByteCountIsRejected() throws {
        var b = ModelBuilder()
        b.input("x", .float32, [2])
        var t = Onnx_TensorProto()
        t.name = "w"
        t.dataType = 1
        t.dims = [1_000_000]
        t.rawData = Data(count: 8)
        b.proto.graph.initializer.append(t)
        b.node("Add", ["x", "w"], ["y"])
        b.output("y", .float32, [2])
        expectCode(.invalidModel) { _ = try ONNXModel(serialized: b.data()) }
    }

    @Test func externalDataIsReadAndConfined() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("blindai-ext-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let weights: [Float] = [5, 6, 7]
        try Data(bytes: weights, count: 12).write(to: dir.appendingPathComponent("w.bin"))
        func model(location: String) throws -> Data {
            var b = ModelBuilder()
            b.input("x", .float32, [3])
            var t = Onnx_TensorProto()
            t.name = "w"
            t.dataType = 1
            t.dims = [3]
            t.dataLocation = .external
            var loc = Onnx_StringStringEntryProto()
            loc.key = "location"
            loc.value = location
            t.externalData = [loc]
            b.proto.graph.initializer.append(t)
            b.node("Add", ["x", "w"], ["y"])
            b.output("y", .float32, [3])
            return try b.data()
        }
        let file = dir.appendingPathComponent("model.onnx")
        try model(location: "w.bin").write(to: file)
        let m = try ONNXModel(contentsOf: file)
        let y = try m.run(["x": Tensor(shape: [3], scalars: [Float](arrayLiteral: 1, 1, 1))])["y"]
        #expect(y?.scalars(as: Float.self) == [6, 7, 8])
        try model(location: "../../etc/passwd").write(to: file)
        expectCode(.invalidModel) { _ = try ONNXModel(contentsOf: file) }
        try model(location: "missing.bin").write(to: file)
        expectCode(.io) { _ = try ONNXModel(contentsOf: file) }
    }
}

func expectCode(_ code: EngineError.Code, sourceLocation: SourceLocation = #_sourceLocation, _ body: () throws -> Void) {
    do {
        try body()
        Issue.record("expected \(code.rawValue), but it succeeded", sourceLocation: sourceLocation)
    } catch let e as EngineError {
        #expect(e.code == code, "got \(e)", sourceLocation: sourceLocation)
    } catch {
        Issue.record("expected an EngineError \(code.rawValue), got \(error)", sourceLocation: sourceLocation)
    }
}
