import BlindAIGraph
import BlindAIONNX
import BlindAITensor
import BlindAITestSupport
import Foundation
import Testing

/// Values a client controls must never crash the engine (a crash would stop every model of a server): non-finite
/// floats through every float kernel that converts, reduces or exponentiates, and extreme integers wherever an
/// input tensor decides a shape, a count or an index. Each run either succeeds or throws an `EngineError`.
@Suite struct HostileInputTests {
    static let nonFinite: [Float] = [.nan, .infinity, -.infinity, -0.0, .greatestFiniteMagnitude, -.greatestFiniteMagnitude,
                                     .leastNonzeroMagnitude, 1e30, -1e30, 88.8, -104, 3]

    /// A one-node model over a [3, 4] float input `x` (plus `extra` initializers), output `y`.
    func unaryModel(_ op: String, attributes: [Onnx_AttributeProto] = [], outputType: DataType = .float32, opset: Int64 = 18,
                    extraInputs: [(String, Tensor)] = []) throws -> ONNXModel {
        var b = ModelBuilder(opset: opset)
        b.input("x", .float32, [3, 4])
        for (name, t) in extraInputs { b.initializer(name, t) }
        b.node(op, ["x"] + extraInputs.map(\.0), ["y"], attributes: attributes)
        b.output("y", outputType, [])
        return try ONNXModel(serialized: b.data())
    }

    static let floatOps: [String] = [
        "Softmax", "LogSoftmax", "Hardmax", "Exp", "Log", "Sigmoid", "HardSigmoid", "Tanh", "Erf", "Sqrt", "Reciprocal",
        "Softplus", "Softsign", "Elu", "Selu", "Celu", "LeakyRelu", "Relu", "Mish", "HardSwish", "Round", "Floor", "Ceil",
        "Sign", "Abs", "Neg", "Sin", "Cos", "Tan", "Asin", "Acos", "Atan", "Sinh", "Cosh", "Asinh", "Acosh", "Atanh",
        "IsNaN", "IsInf", "ReduceMean", "ReduceMax", "ReduceMin", "ReduceSum", "ReduceProd", "ReduceL1", "ReduceL2",
        "ReduceLogSum", "ReduceLogSumExp", "ReduceSumSquare", "ArgMax", "ArgMin", "LpNormalization",
        "GlobalAveragePool", "GlobalMaxPool", "Shrink", "ThresholdedRelu", "Identity", "Gelu",
    ]

    @Test(arguments: floatOps)
    func nonFiniteFloatsDoNotCrash(op: String) throws {
        let outputType: DataType = op == "IsNaN" || op == "IsInf" ? .bool : op.hasPrefix("Arg") ? .int64 : .float32
        let model = try unaryModel(op, outputType: outputType, opset: op == "Gelu" ? 20 : 18)
        let x = Tensor(shape: [3, 4], scalars: Self.nonFinite)
        do { _ = try model.run(["x": x]) } catch is EngineError {}
    }

    @Test(arguments: [DataType.int8, .uint8, .int16, .uint16, .int32, .uint32, .int64, .uint64, .bool, .float16, .bfloat16])
    func castOfNonFiniteFloatsDoesNotCrash(to type: DataType) throws {
        let model = try unaryModel("Cast", attributes: [ModelBuilder.intAttribute("to", Int(type.rawValue))], outputType: type)
        let x = Tensor(shape: [3, 4], scalars: Self.nonFinite)
        do { _ = try model.run(["x": x]) } catch is EngineError {}
    }

    @Test func quantizeOfNonFiniteFloatsDoesNotCrash() throws {
        var b = ModelBuilder(opset: 18)
        b.input("x", .float32, [3, 4])
        b.initializer("s", Tensor(shape: [], scalars: [Float(0.5)]))
        b.initializer("z", Tensor(shape: [], scalars: [UInt8(3)]))
        b.node("QuantizeLinear", ["x", "s", "z"], ["q"])
        b.node("DynamicQuantizeLinear", ["x"], ["d", "ds", "dz"])
        b.output("q", .uint8, [3, 4])
        b.output("d", .uint8, [3, 4])
        b.output("ds", .float32, [])
        b.output("dz", .uint8, [])
        let model = try ONNXModel(serialized: b.data())
        do { _ = try model.run(["x": Tensor(shape: [3, 4], scalars: Self.nonFinite)]) } catch is EngineError {}
    }

    /// A one-node model whose int64 input `s` (of `count` elements) is a shape, count, index or size.
    func integerControlled(_ op: String, data: Tensor?, count: Int, attributes: [Onnx_AttributeProto] = [],
                           opset: Int64 = 18, more: [(String, Tensor)] = []) throws -> ONNXModel {
        var b = ModelBuilder(opset: opset)
        var inputs: [String] = []
        if let data {
            b.initializer("d", data)
            inputs.append("d")
        }
        b.input("s", .int64, [count])
        inputs.append("s")
        for (name, t) in more {
            b.initializer(name, t)
            inputs.append(name)
        }
        b.node(op, inputs, ["y"], attributes: attributes)
        b.output("y", data?.dataType ?? .float32, [])
        return try ONNXModel(serialized: b.data())
    }

    static let extremes: [[Int64]] = [
        [Int64.max], [Int64.min], [-1], [0], [1 << 40], [-(1 << 40)], [Int64.max, Int64.max], [1 << 31, 1 << 31],
        [-1, -1], [0, -1], [Int64.min, Int64.max],
    ]

    func runExtremes(_ model: (Int) throws -> ONNXModel, counts: [Int] = [1, 2]) throws {
        for values in Self.extremes where counts.contains(values.count) {
            let m = try model(values.count)
            do {
                _ = try m.run(["s": Tensor(shape: [values.count], scalars: values)], context: ExecutionContext(limits: TensorLimits(maxTensorBytes: 64 << 20, maxTensorElements: 16 << 20)))
            } catch is EngineError {}
        }
    }

    static let small = Tensor(shape: [2, 3], scalars: [Float](arrayLiteral: 1, 2, 3, 4, 5, 6))

    @Test func shapeTensorsFromTheClient() throws {
        try runExtremes { n in try integerControlled("Reshape", data: Self.small, count: n) }
        try runExtremes { n in try integerControlled("Expand", data: Self.small, count: n) }
        try runExtremes { n in try integerControlled("Tile", data: Self.small, count: n) }
        try runExtremes({ n in try integerControlled("ConstantOfShape", data: nil, count: n) })
    }

    @Test func indicesFromTheClient() throws {
        try runExtremes({ n in try integerControlled("Gather", data: Self.small, count: n) })
        try runExtremes({ n in try integerControlled("Gather", data: Self.small, count: n, attributes: [ModelBuilder.intAttribute("axis", 1)]) })
        try runExtremes({ n in try integerControlled("GatherElements", data: Tensor(shape: [2], scalars: [Float](arrayLiteral: 1, 2)), count: n) })
    }

    @Test func countsAndPadsFromTheClient() throws {
        try runExtremes({ n in
            try integerControlled("Pad", data: Tensor(shape: [2], scalars: [Float](arrayLiteral: 1, 2)), count: n)
        }, counts: [2])
        try runExtremes({ n in
            try integerControlled("TopK", data: Tensor(shape: [2], scalars: [Float](arrayLiteral: 1, 2)), count: n)
        }, counts: [1])
        try runExtremes({ n in
            try integerControlled("OneHot", data: nil, count: n, more: [
                ("depth", Tensor(shape: [], scalars: [Int64.max])), ("values", Tensor(shape: [2], scalars: [Float](arrayLiteral: 0, 1))),
            ])
        })
        try runExtremes({ n in
            try integerControlled("Slice", data: Tensor(shape: [2], scalars: [Float](arrayLiteral: 1, 2)), count: n, more: [
                ("ends", Tensor(shape: [1], scalars: [Int64.max])),
            ])
        }, counts: [1])
        try runExtremes({ n in
            try integerControlled("Split", data: Tensor(shape: [2], scalars: [Float](arrayLiteral: 1, 2)), count: n)
        })
    }

    /// Range(start, limit, delta) with `start` given at run time and the other two as initializers.
    func runRange<T: TensorElement>(_ start: T, _ limit: T, _ delta: T) throws {
        var b = ModelBuilder(opset: 18)
        b.input("a", T.dataType, [])
        b.initializer("l", Tensor(shape: [], scalars: [limit]))
        b.initializer("d", Tensor(shape: [], scalars: [delta]))
        b.node("Range", ["a", "l", "d"], ["y"])
        b.output("y", T.dataType, [])
        let m = try ONNXModel(serialized: b.data())
        do { _ = try m.run(["a": Tensor(shape: [], scalars: [start])]) } catch is EngineError {}
    }

    @Test func rangeWithHugeCounts() throws {
        for (start, limit, delta) in [(Int64(0), Int64.max, Int64(1)), (Int64.min, Int64.max, Int64(1)), (0, 10, 0), (Int64.max, Int64.min, -1)] {
            try runRange(start, limit, delta)
        }
        for (start, limit, delta) in [(Float(0), Float.infinity, Float(1)), (0, 1e30, 1e-30), (0, 1, .nan), (.nan, 1, 1), (0, 10, 0)] {
            try runRange(start, limit, delta)
        }
    }

    @Test func resizeWithHostileScalesAndSizes() throws {
        for scales in [[Float](arrayLiteral: 1, 1, .nan, 2), [1, 1, .infinity, 2], [1, 1, 1e30, 1e30], [1, 1, -1, 2], [1, 1, 0, 0]] {
            var b = ModelBuilder(opset: 18)
            b.input("x", .float32, [1, 1, 2, 2])
            b.initializer("roi", Tensor(shape: [0], scalars: [Float]()))
            b.input("scales", .float32, [4])
            b.node("Resize", ["x", "roi", "scales"], ["y"])
            b.output("y", .float32, [])
            let m = try ONNXModel(serialized: b.data())
            let x = Tensor(shape: [1, 1, 2, 2], scalars: [Float](arrayLiteral: 1, 2, 3, 4))
            do { _ = try m.run(["x": x, "scales": Tensor(shape: [4], scalars: scales)]) } catch is EngineError {}
        }
    }
}
