import BlindAIGraph
import BlindAIONNX
import BlindAITensor
import BlindAITestSupport
import Foundation
import Testing

extension ModelBuilder {
    mutating func int64s(_ name: String, _ values: [Int], shape: [Int]? = nil) {
        initializer(name, Tensor(shape: shape ?? [values.count], scalars: values.map { Int64($0) }))
    }

    mutating func floats(_ name: String, _ shape: [Int], seed: Int = 1) {
        let n = shape.reduce(1, *)
        initializer(name, Tensor(shape: shape, scalars: (0..<n).map { Float(($0 * 7 + seed * 13) % 17) / 17 - 0.5 }))
    }
}

func dims(_ f: ValueFact) -> [String]? { f.shape?.map(\.description) }

/// Static shape facts: inferred through the plan, used to fold Shape chains, never taken from declared outputs.
@Suite struct ShapeInferenceTests {
    static func ramp(_ shape: [Int]) -> Tensor {
        Tensor(shape: shape, scalars: (0..<shape.reduce(1, *)).map { Float($0 % 11) - 5 })
    }

    /// Conv → Relu → MaxPool → Flatten → Gemm with a symbolic batch.
    func cnn() throws -> ONNXModel {
        var b = ModelBuilder()
        b.input("x", .float32, [nil, 3, 32, 32])
        b.floats("w", [8, 3, 3, 3])
        b.floats("bias", [8])
        b.floats("fc", [8 * 16 * 16, 10], seed: 2)
        b.node("Conv", ["x", "w", "bias"], ["c"], attributes: [ModelBuilder.intsAttribute("pads", [1, 1, 1, 1]),
                                                              ModelBuilder.intsAttribute("kernel_shape", [3, 3])])
        b.node("Relu", ["c"], ["r"])
        b.node("MaxPool", ["r"], ["p"], attributes: [ModelBuilder.intsAttribute("kernel_shape", [2, 2]),
                                                      ModelBuilder.intsAttribute("strides", [2, 2])])
        b.node("Flatten", ["p"], ["f"])
        b.node("Gemm", ["f", "fc"], ["y"])
        b.node("Softmax", ["y"], ["probs"])
        b.output("probs", .float32, [nil, 10])
        return try ONNXModel(serialized: b.data())
    }

    @Test func factsFlowThroughACNN() throws {
        let m = try cnn()
        let f = m.plan.outputFacts[0]
        #expect(f.dataType == .float32)
        #expect(dims(f) == ["N", "10"])
        #expect(dims(m.plan.inputFacts[0]) == ["N", "3", "32", "32"])
        let out = try m.run(["x": Self.ramp([2, 3, 32, 32])])
        #expect(out["probs"]?.shape == [2, 10])
    }

    @Test func factsMatchEveryIntermediateValue() throws {
        // verifyFacts checks every value produced against its fact and throws on a mismatch.
        var b = ModelBuilder()
        b.input("x", .float32, [nil, 3, 32, 32])
        b.floats("w", [8, 3, 3, 3])
        b.node("Conv", ["x", "w"], ["c"], attributes: [ModelBuilder.intsAttribute("strides", [2, 2])])
        b.node("Shape", ["c"], ["s"])
        b.int64s("two", [2])
        b.node("Gather", ["s", "two"], ["h"])
        b.node("ReduceMean", ["c"], ["m"], attributes: [ModelBuilder.intsAttribute("axes", [2, 3])])
        b.node("Transpose", ["m"], ["t"], attributes: [ModelBuilder.intsAttribute("perm", [0, 2, 3, 1])])
        b.node("Cast", ["h"], ["hf"], attributes: [ModelBuilder.intAttribute("to", DataType.float32.rawValue)])
        b.node("Mul", ["t", "hf"], ["y"])
        b.output("y", .float32, [])
        let data = try b.data()
        for optimize in [true, false] {
            let m = try ONNXModel(serialized: data, options: PlanOptions(optimize: optimize, verifyFacts: true))
            let out = try m.run(["x": Self.ramp([1, 3, 32, 32])])
            #expect(out["y"]?.shape == [1, 1, 1, 8])
            #expect(dims(m.plan.outputFacts[0]) == ["N", "1", "1", "8"])
        }
    }

    /// x → Shape → Gather(0) → Unsqueeze → Concat(-1) → Reshape(x): the torch `x.view(x.size(0), -1)` pattern.
    func flattenByShape(batch: Int?) throws -> Data {
        var b = ModelBuilder()
        b.input("x", .float32, [batch, 3, 4])
        b.int64s("zero", [0], shape: [])
        b.int64s("axes", [0])
        b.int64s("minus1", [-1])
        b.node("Shape", ["x"], ["s"])
        b.node("Gather", ["s", "zero"], ["n"])
        b.node("Unsqueeze", ["n", "axes"], ["n1"])
        b.node("Concat", ["n1", "minus1"], ["spec"], attributes: [ModelBuilder.intAttribute("axis", 0)])
        b.node("Reshape", ["x", "spec"], ["y"])
        b.node("Size", ["x"], ["size"])
        b.output("y", .float32, [batch, 12])
        b.output("size", .int64, [])
        return try b.data()
    }

    @Test func shapeChainsOfStaticShapesAreFolded() throws {
        let m = try ONNXModel(serialized: flattenByShape(batch: 2))
        #expect(m.plan.stepOpTypes == ["Reshape"])
        #expect(dims(m.plan.outputFacts[0]) == ["2", "12"])
        let out = try m.run(["x": Self.ramp([2, 3, 4])])
        #expect(out["y"]?.shape == [2, 12])
        #expect(out["y"]?.scalars(as: Float.self) == Self.ramp([2, 3, 4]).scalars(as: Float.self))
        #expect(out["size"]?.scalars(as: Int64.self) == [24])
        // The plain plan runs every node and gives the same result.
        let plain = try ONNXModel(serialized: flattenByShape(batch: 2), options: PlanOptions(optimize: false))
        #expect(plain.plan.stepCount == 6)
        #expect(try plain.run(["x": Self.ramp([2, 3, 4])])["y"]?.shape == [2, 12])
    }

    @Test func symbolicDimensionsAreNotFolded() throws {
        let m = try ONNXModel(serialized: flattenByShape(batch: nil))
        #expect(m.plan.stepOpTypes.contains("Shape"))
        #expect(m.plan.stepOpTypes.contains("Size"))
        // -1 against a symbolic batch is not known (the batch of the spec is not proven to be x's).
        #expect(dims(m.plan.outputFacts[0]) == ["N", "?"])
        for n in [1, 5] {
            let out = try m.run(["x": Self.ramp([n, 3, 4])])
            #expect(out["y"]?.shape == [n, 12])
            #expect(out["size"]?.scalars(as: Int64.self) == [Int64(n * 12)])
        }
    }

    @Test func knownDimensionsOfAPartlySymbolicShapeAreFolded() throws {
        // Shape(x)[2] * Shape(x)[1] is 12 even though x's batch is symbolic; Shape(x)[0] is not known.
        var b = ModelBuilder()
        b.input("x", .float32, [nil, 3, 4])
        b.int64s("i1", [1])
        b.int64s("i2", [2])
        b.int64s("i0", [0])
        b.node("Shape", ["x"], ["s"])
        b.node("Gather", ["s", "i1"], ["d1"])
        b.node("Gather", ["s", "i2"], ["d2"])
        b.node("Mul", ["d1", "d2"], ["inner"])
        b.node("Gather", ["s", "i0"], ["n"])
        b.node("Concat", ["n", "inner"], ["spec"], attributes: [ModelBuilder.intAttribute("axis", 0)])
        b.node("Reshape", ["x", "spec"], ["y"])
        b.output("y", .float32, [nil, nil])
        let m = try ONNXModel(serialized: b.data(), options: PlanOptions(verifyFacts: true))
        #expect(m.plan.stepOpTypes == ["Shape", "Gather", "Concat", "Reshape"])
        #expect(dims(m.plan.outputFacts[0]) == ["N", "12"])
        let out = try m.run(["x": Self.ramp([3, 3, 4])])
        #expect(out["y"]?.shape == [3, 12])
    }

    @Test func wrongDeclaredOutputShapesAreIgnored() throws {
        // The model says [5, 5] int32; the real output is [2, 3] float32.
        var b = ModelBuilder()
        b.input("x", .float32, [2, 3])
        b.node("Relu", ["x"], ["r"])
        b.node("Shape", ["r"], ["s"])
        b.node("Identity", ["r"], ["y"])
        b.output("y", .int32, [5, 5])
        b.output("s", .float32, [7])
        let m = try ONNXModel(serialized: b.data())
        #expect(m.plan.outputFacts[0].dataType == .float32)
        #expect(dims(m.plan.outputFacts[0]) == ["2", "3"])
        #expect(m.plan.outputFacts[1].knownElements == [2, 3])
        let x = Tensor(shape: [2, 3], scalars: [Float](arrayLiteral: -1, 2, -3, 4, -5, 6))
        let out = try m.run(["x": x])
        #expect(out["y"]?.shape == [2, 3])
        #expect(out["y"]?.dataType == .float32)
        #expect(out["y"]?.scalars(as: Float.self) == [0, 2, 0, 4, 0, 6])
        #expect(out["s"]?.scalars(as: Int64.self) == [2, 3])
    }

    @Test func fixedInputDimensionsAreChecked() throws {
        // A declared input of a top-level graph is checked on every run, so its fixed dimensions are facts.
        var b = ModelBuilder()
        b.input("x", .float32, [4, 2])
        b.node("Shape", ["x"], ["s"])
        b.output("s", .int64, [2])
        let m = try ONNXModel(serialized: b.data())
        #expect(m.plan.stepCount == 0)
        #expect(try m.run(["x": Self.ramp([4, 2])])["s"]?.scalars(as: Int64.self) == [4, 2])
        // A wrong input is refused rather than answered from the folded shape.
        #expect(throws: EngineError.self) { try m.run(["x": Self.ramp([3, 2])]) }
    }

    @Test func shapeRulesOfCommonOperators() throws {
        var b = ModelBuilder()
        b.input("a", .float32, [nil, 16, 8])
        b.input("ids", .int64, [nil, 5])
        b.floats("w", [8, 4])
        b.floats("table", [100, 8])
        b.int64s("starts", [1])
        b.int64s("ends", [-1])
        b.int64s("axes", [1])
        b.node("MatMul", ["a", "w"], ["mm"])                       // [N, 16, 4]
        b.node("Transpose", ["mm"], ["tr"], attributes: [ModelBuilder.intsAttribute("perm", [0, 2, 1])])  // [N, 4, 16]
        b.node("Slice", ["tr", "starts", "ends", "axes"], ["sl"])  // [N, 2, 16]
        b.node("Gather", ["table", "ids"], ["emb"])                // [N, 5, 8]
        b.node("Concat", ["a", "a"], ["cat"], attributes: [ModelBuilder.intAttribute("axis", 1)])  // [N, 32, 8]
        b.node("ReduceSum", ["cat", "axes"], ["rs"], attributes: [ModelBuilder.intAttribute("keepdims", 0)])  // [N, 8]
        b.node("LayerNormalization", ["emb", "table_row", "table_row"], ["ln"])
        b.node("Squeeze", ["one"], ["sq"])
        b.node("Equal", ["ids", "ids"], ["eq"])
        b.floats("table_row", [8])
        b.floats("one", [1, 3, 1])
        for o in ["sl", "emb", "cat", "rs", "ln", "sq", "eq"] { b.output(o, .float32, []) }
        let m = try ONNXModel(serialized: b.data(), options: PlanOptions(optimize: false, verifyFacts: true))
        let f = m.plan.outputFactsByName
        #expect(f["sl"].flatMap(dims) == ["N", "2", "16"])
        #expect(f["emb"].flatMap(dims) == ["N", "5", "8"])
        #expect(f["cat"].flatMap(dims) == ["N", "32", "8"])
        #expect(f["rs"].flatMap(dims) == ["N", "8"])
        #expect(f["ln"].flatMap(dims) == ["N", "5", "8"])
        #expect(f["sq"].flatMap(dims) == ["3"])
        #expect(f["eq"]?.dataType == .bool)
        let ids = Tensor(shape: [2, 5], scalars: (0..<10).map { Int64($0 * 9) })
        let out = try m.run(["a": Self.ramp([2, 16, 8]), "ids": ids])
        #expect(out["sl"]?.shape == [2, 2, 16])
        #expect(out["rs"]?.shape == [2, 8])
    }
}
