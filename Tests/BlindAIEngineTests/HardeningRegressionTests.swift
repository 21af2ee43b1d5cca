import BlindAIGraph
import BlindAIONNX
import BlindAITensor
import BlindAITestSupport
import Foundation
import Testing

/// One regression test per trap of the hardening issue (item 1 and each bullet of item 2). Before the fixes each
/// of these stopped the process (an overflow, a conversion of an out-of-range double, or a run-time exclusivity
/// violation that only a release build checks); CI runs this suite against the debug and the release build.
/// scripts/hostile-models.py sends the same models to `blindai run` and to a live release server.
@Suite struct HardeningRegressionTests {
    static let i32max = Int(Int32.max)
    static let hugeEmpty = [0, i32max, i32max, i32max]

    /// A model of one node over the given inputs (declared with `dims`) and initializers.
    static func model(_ op: String, inputs: [(String, DataType, [Int?])], initializers: [(String, Tensor)] = [],
                      attributes: [Onnx_AttributeProto] = [], outputs: [String] = ["y"], opset: Int64 = 18,
                      domain: String = "", domainVersion: Int64 = 1) throws -> ONNXModel {
        var b = ModelBuilder(opset: opset)
        b.importDomain(domain, version: domainVersion)
        for (name, type, dims) in inputs { b.input(name, type, dims) }
        for (name, t) in initializers { b.initializer(name, t) }
        b.node(op, inputs.map(\.0) + initializers.map(\.0), outputs, domain: domain, attributes: attributes)
        for o in outputs { b.output(o, .float32, []) }
        return try ONNXModel(serialized: b.data())
    }

    /// An empty float tensor of `shape`, made over storage directly as a decoder without checks would.
    static func empty(_ shape: [Int]) -> Tensor {
        Tensor(dataType: .float32, shape: shape, storage: TensorStorage(byteCount: 0))
    }

    // MARK: item 1

    /// DFT over every transform kind (trivial, Stockham, direct sum, Bluestein, real-input halves), forward and
    /// inverse, against a direct sum in double precision. In a release build these trapped in FFT.direct.
    @Test(arguments: [1, 5, 16, 48, 67, 96, 127])
    func dftOfEveryKindRunsAndIsRight(n: Int) throws {
        for (inverse, complex) in [(false, true), (true, true), (false, false)] {
            let c = complex ? 2 : 1
            var rng = SystemRandomNumberGenerator()
            let values = (0..<(n * c)).map { _ in Float.random(in: -1...1, using: &rng) }
            // The axis is the third input (opset 20); the second, dft_length, is left out.
            var b = ModelBuilder(opset: 20)
            b.input("x", .float32, [1, n, c])
            b.initializer("a", Tensor(scalar: Int64(1)))
            b.node("DFT", ["x", "", "a"], ["y"], attributes: [ModelBuilder.intAttribute("inverse", inverse ? 1 : 0)])
            b.output("y", .float32, [])
            let model = try ONNXModel(serialized: b.data())
            let y = try #require(try model.run(["x": Tensor(shape: [1, n, c], scalars: values)])["y"])
            #expect(y.shape == [1, n, 2])
            let out = y.scalars(as: Float.self)
            let sign = inverse ? 1.0 : -1.0
            for k in 0..<n {
                var re = 0.0, im = 0.0
                for j in 0..<n {
                    let a = sign * 2 * Double.pi * Double(j * k % n) / Double(n)
                    let xr = Double(values[j * c]), xi = complex ? Double(values[j * c + 1]) : 0
                    re += xr * Foundation.cos(a) - xi * Foundation.sin(a)
                    im += xr * Foundation.sin(a) + xi * Foundation.cos(a)
                }
                if inverse { re /= Double(n); im /= Double(n) }
                #expect(Swift.abs(Double(out[2 * k]) - re) < 1e-4 && Swift.abs(Double(out[2 * k + 1]) - im) < 1e-4,
                        "n \(n) inverse \(inverse) complex \(complex) bin \(k)")
            }
        }
    }

    /// Softmax over NaN and infinities (a trap was reported in its SIMD exp); the result follows IEEE rules.
    @Test func softmaxOverNonFiniteValues() throws {
        let m = try Self.model("Softmax", inputs: [("x", .float32, [2, 9])], attributes: [ModelBuilder.intAttribute("axis", -1)])
        let x = Tensor(shape: [2, 9], scalars: [Float.nan, .infinity, -.infinity, 0, 1, 2, 3, 4, 5] + [Float](repeating: .infinity, count: 9))
        let y = try #require(try m.run(["x": x])["y"]).scalars(as: Float.self)
        let allNaN = y.allSatisfy(\.isNaN)
        #expect(allNaN, "a row with NaN or +inf in it softmaxes to NaN, as in onnxruntime")
    }

    // MARK: item 2, first bullet: empty tensors with huge dimensions

    @Test func checkedCountRefusesEmptyTensorsWhoseStridesOverflow() {
        expectCode(.memoryLimit) { _ = try TensorLimits.default.checkedCount(Self.hugeEmpty, .float32) }
        expectCode(.memoryLimit) { _ = try TensorLimits.default.checkedCount([2, 0, 1 << 62, 4], .float32) }
        #expect((try? TensorLimits.default.checkedCount([0, 1 << 15, 1 << 15], .float32)) == 0)
        #expect((try? TensorLimits.default.checkedCount([3, 1 << 10], .float32)) == 3 << 10)
    }

    @Test(arguments: ["Transpose", "Flatten", "DepthToSpace", "Split", "Det", "Concat", "Slice", "Identity"])
    func emptyTensorWithHugeDimensionsIsRefused(op: String) throws {
        var attributes: [Onnx_AttributeProto] = []
        var initializers: [(String, Tensor)] = []
        var outputs = ["y"]
        switch op {
        case "Transpose": attributes = [ModelBuilder.intsAttribute("perm", [3, 2, 1, 0])]
        case "Flatten": attributes = [ModelBuilder.intAttribute("axis", 2)]
        case "DepthToSpace": attributes = [ModelBuilder.intAttribute("blocksize", 2)]
        case "Split": attributes = [ModelBuilder.intAttribute("axis", 1), ModelBuilder.intAttribute("num_outputs", 2)]; outputs = ["y", "z"]
        case "Concat": attributes = [ModelBuilder.intAttribute("axis", 1)]
        case "Slice": initializers = [("s", Tensor(shape: [1], scalars: [Int64(0)])), ("e", Tensor(shape: [1], scalars: [Int64(1)]))]
        default: break
        }
        var b = ModelBuilder(opset: 18)
        b.input("x", .float32, [nil, nil, nil, nil])
        for (n, t) in initializers { b.initializer(n, t) }
        b.node(op, op == "Concat" ? ["x", "x"] : ["x"] + initializers.map(\.0), outputs, attributes: attributes)
        for o in outputs { b.output(o, .float32, []) }
        let m = try ONNXModel(serialized: b.data())
        expectCode(.memoryLimit) { _ = try m.run(["x": Self.empty(Self.hugeEmpty)]) }
    }

    /// ConstantOfShape([0, 2^62, 4]) into Flatten: folded while the model loads, which trapped at upload.
    @Test func constantOfShapeWithHugeDimensionsFoldedAtLoad() throws {
        for optimize in [true, false] {
            var b = ModelBuilder(opset: 18)
            b.initializer("s", Tensor(shape: [3], scalars: [Int64(0), 1 << 62, 4]))
            b.node("ConstantOfShape", ["s"], ["c"])
            b.node("Flatten", ["c"], ["f"], attributes: [ModelBuilder.intAttribute("axis", 2)])
            b.node("Shape", ["f"], ["y"])
            b.output("y", .int64, [])
            // The optimised plan may answer from shape facts alone ([0, 4]: the product with 0 is known) and never
            // make the tensor; otherwise making it is refused. Either is right; trapping is not.
            do {
                let m = try ONNXModel(serialized: b.data(), options: PlanOptions(optimize: optimize))
                let y = try #require(try m.run([:])["y"])
                #expect(optimize && y.scalars(as: Int64.self) == [0, 4], "optimize \(optimize): \(y.scalars(as: Int64.self))")
            } catch let e as EngineError {
                #expect(e.code == .memoryLimit, "\(e)")
            }
        }
    }

    /// Reshape of an empty tensor to a shape whose volume overflows.
    @Test func reshapeOfAnEmptyTensorToHugeDimensions() throws {
        let m = try Self.model("Reshape", inputs: [("x", .float32, [0])],
                               initializers: [("s", Tensor(shape: [3], scalars: [Int64(0), 1 << 62, 4]))],
                               attributes: [ModelBuilder.intAttribute("allowzero", 1)], opset: 14)
        expectCode(.memoryLimit) { _ = try m.run(["x": Tensor(shape: [0], scalars: [Float]())]) }
    }

    // MARK: item 2, second bullet: Range

    @Test func rangeWhoseCountIsFarBelowZero() throws {
        var b = ModelBuilder(opset: 18)
        for n in ["s", "l", "d"] { b.input(n, .int64, []) }
        b.node("Range", ["s", "l", "d"], ["y"])
        b.output("y", .int64, [])
        let m = try ONNXModel(serialized: b.data())
        let y = try #require(try m.run(["s": Tensor(scalar: Int64.max), "l": Tensor(scalar: Int64.min), "d": Tensor(scalar: Int64(1))])["y"])
        #expect(y.shape == [0])

        var f = ModelBuilder(opset: 18)
        for n in ["s", "l", "d"] { f.input(n, .float32, []) }
        f.node("Range", ["s", "l", "d"], ["y"])
        f.output("y", .float32, [])
        let fm = try ONNXModel(serialized: f.data())
        // (l - s) / d is -inf: an empty range, not a trap.
        let fy = try #require(try fm.run(["s": Tensor(scalar: Float(3e38)), "l": Tensor(scalar: Float(-3e38)), "d": Tensor(scalar: Float(1e-38))])["y"])
        #expect(fy.shape == [0])
        // And +inf: over any limit.
        expectCode(.memoryLimit) {
            _ = try fm.run(["s": Tensor(scalar: Float(-3e38)), "l": Tensor(scalar: Float(3e38)), "d": Tensor(scalar: Float(1e-38))])
        }
    }

    // MARK: item 2, third bullet

    @Test func resizeKeepingAspectRatioToAHugeSize() throws {
        var b = ModelBuilder(opset: 18)
        b.input("x", .float32, [1, 1, 2, 2])
        b.input("sizes", .int64, [2])
        var policy = Onnx_AttributeProto()
        policy.name = "keep_aspect_ratio_policy"
        policy.type = .string
        policy.s = Data("not_smaller".utf8)
        b.node("Resize", ["x", "", "", "sizes"], ["y"], attributes: [policy, ModelBuilder.intsAttribute("axes", [2, 3])])
        b.output("y", .float32, [])
        let m = try ONNXModel(serialized: b.data())
        expectCode(.memoryLimit) {
            _ = try m.run(["x": Tensor(shape: [1, 1, 2, 2], scalars: [Float](repeating: 1, count: 4)),
                           "sizes": Tensor(shape: [2], scalars: [Int64(1) << 62, 1])])
        }
    }

    @Test func col2ImWhoseBlockSizesMultiplyPastInt() throws {
        let big = Int64(Int32.max)
        let m = try Self.model("Col2Im", inputs: [("x", .float32, [1, 1, 1])],
                               initializers: [("image", Tensor(shape: [3], scalars: [big, big, big])),
                                              ("block", Tensor(shape: [3], scalars: [big, big, big]))])
        expectCode(.invalidArgument) { _ = try m.run(["x": Tensor(shape: [1, 1, 1], scalars: [Float(1)])]) }
    }

    @Test func affineGridWithAnEmptyBatchAndHugeSize() throws {
        var b = ModelBuilder(opset: 20)
        b.input("theta", .float32, [0, 2, 3])
        b.input("size", .int64, [4])
        b.node("AffineGrid", ["theta", "size"], ["y"])
        b.output("y", .float32, [])
        let m = try ONNXModel(serialized: b.data())
        let big = Int64(Int32.max)
        expectCode(.memoryLimit) {
            _ = try m.run(["theta": Tensor(shape: [0, 2, 3], scalars: [Float]()), "size": Tensor(shape: [4], scalars: [Int64(0), 1, big, big])])
        }
        // An empty batch with a reasonable size is an empty grid, computed without the base coordinates.
        let y = try #require(try m.run(["theta": Tensor(shape: [0, 2, 3], scalars: [Float]()), "size": Tensor(shape: [4], scalars: [Int64(0), 1, 64, 64])])["y"])
        #expect(y.shape == [0, 64, 64, 2])
    }

    @Test(arguments: ["Conv", "ConvTranspose"])
    func convolutionWithAHugeGroup(op: String) throws {
        #expect(throws: EngineError.self) {
            _ = try Self.model(op, inputs: [("x", .float32, [1, 4, 4, 4])],
                               initializers: [("w", Tensor(shape: [4, 4, 3, 3], scalars: [Float](repeating: 1, count: 144)))],
                               attributes: [ModelBuilder.intAttribute("group", 1 << 62)])
        }
    }

    @Test func roiAlignWithHugeOutputSizes() throws {
        #expect(throws: EngineError.self) {
            _ = try Self.model("RoiAlign", inputs: [("x", .float32, [1, 1, 4, 4])],
                               initializers: [("rois", Tensor(shape: [1, 4], scalars: [Float(0), 0, 2, 2])),
                                              ("bi", Tensor(shape: [1], scalars: [Int64(0)]))],
                               attributes: [ModelBuilder.intAttribute("output_height", 1 << 40),
                                            ModelBuilder.intAttribute("output_width", 1 << 40)])
        }
    }

    static func tfIdf(minGram: Int, maxGram: Int, maxSkip: Int, counts: [Int], indexes: [Int], pool: [Int]) throws -> ONNXModel {
        var mode = Onnx_AttributeProto()
        mode.name = "mode"
        mode.type = .string
        mode.s = Data("TF".utf8)
        var b = ModelBuilder(opset: 9)
        b.input("x", .int64, [4])
        b.node("TfIdfVectorizer", ["x"], ["y"], attributes: [
            mode, ModelBuilder.intAttribute("min_gram_length", minGram), ModelBuilder.intAttribute("max_gram_length", maxGram),
            ModelBuilder.intAttribute("max_skip_count", maxSkip), ModelBuilder.intsAttribute("ngram_counts", counts),
            ModelBuilder.intsAttribute("ngram_indexes", indexes), ModelBuilder.intsAttribute("pool_int64s", pool),
        ])
        b.output("y", .float32, [])
        return try ONNXModel(serialized: b.data())
    }

    @Test func tfIdfWithExtremeIndexesAndSkips() throws {
        #expect(throws: EngineError.self) {
            _ = try Self.tfIdf(minGram: 1, maxGram: 1, maxSkip: 0, counts: [0], indexes: [Int(Int64.max)], pool: [7])
        }
        // A skip past the row is as good as the row's length: the bigram (7, 1) is found with skips 1 and 2.
        let m = try Self.tfIdf(minGram: 2, maxGram: 2, maxSkip: Int(Int64.max), counts: [0, 0], indexes: [0], pool: [7, 1])
        let y = try #require(try m.run(["x": Tensor(shape: [4], scalars: [Int64(7), 3, 1, 1])])["y"])
        #expect(y.scalars(as: Float.self) == [2])
    }

    // MARK: item 2, fourth bullet: shape inference at load

    @Test func declaredDimensionsOfInt64MaxLoadAndRun() throws {
        let huge = Int(Int64.max)
        var b = ModelBuilder(opset: 18)
        b.input("x", .float32, [1, 1, huge, huge])
        b.initializer("w", Tensor(shape: [1, 1, 3, 3], scalars: [Float](repeating: 1, count: 9)))
        b.node("Concat", ["x", "x"], ["c"], attributes: [ModelBuilder.intAttribute("axis", 2)])
        b.node("MaxPool", ["x"], ["p"], attributes: [ModelBuilder.intsAttribute("kernel_shape", [2, 2]), ModelBuilder.intsAttribute("pads", [1, 1, 1, 1])])
        b.node("Conv", ["x", "w"], ["v"], attributes: [ModelBuilder.intsAttribute("pads", [1, 1, 1, 1])])
        b.node("Split", ["x"], ["s1", "s2"], attributes: [ModelBuilder.intAttribute("axis", 3), ModelBuilder.intAttribute("num_outputs", 2)])
        for o in ["c", "p", "v", "s1", "s2"] { b.output(o, .float32, []) }
        for optimize in [true, false] {
            // Declared dimensions are checked against the feeds, so the real input is refused, but loading (where the
            // facts are computed) must not trap.
            let m = try ONNXModel(serialized: b.data(), options: PlanOptions(optimize: optimize))
            expectCode(.shapeMismatch) { _ = try m.run(["x": Tensor(shape: [1, 1, 4, 4], scalars: [Float](repeating: 1, count: 16))]) }
        }
    }

    // MARK: item 2, fifth bullet

    /// NaN ranks as the largest value, as in onnxruntime: first with largest = 1, last with largest = 0.
    @Test func topKOrdersNaNAsTheLargest() throws {
        let values: [Float] = [1, .nan, 3, -.infinity, 2, .nan]
        for (largest, expectIndices) in [(1, [Int64(1), 5, 2, 4]), (0, [Int64(3), 0, 4, 2])] {
            var b = ModelBuilder(opset: 11)
            b.input("x", .float32, [6])
            b.initializer("k", Tensor(shape: [1], scalars: [Int64(4)]))
            b.node("TopK", ["x", "k"], ["v", "i"], attributes: [ModelBuilder.intAttribute("largest", largest)])
            b.output("v", .float32, [])
            b.output("i", .int64, [])
            let m = try ONNXModel(serialized: b.data())
            let out = try m.run(["x": Tensor(shape: [6], scalars: values)])
            #expect(try #require(out["i"]).scalars(as: Int64.self) == expectIndices, "largest \(largest)")
        }
    }

    @Test func arrayFeatureExtractorOverAnEmptyTensorWithHugeDimensions() throws {
        let m = try Self.model("ArrayFeatureExtractor", inputs: [("x", .float32, [nil, nil, nil]), ("i", .int64, [1])],
                               domain: "ai.onnx.ml", domainVersion: 3)
        expectCode(.memoryLimit) {
            _ = try m.run(["x": Self.empty([Self.i32max, Self.i32max, 0]), "i": Tensor(shape: [1], scalars: [Int64(0)])])
        }
    }
}

/// Bool bytes from outside the process (an .npy file, a model's raw data) may hold any value; a Swift `Bool` whose
/// byte is neither 0 nor 1 is undefined behaviour, so readers store them as 0 or 1 (found by reviewing the fuzz
/// targets' readers).
@Suite struct BoolBytesTests {
    @Test func npyBoolBytesBecomeZeroOrOne() throws {
        let header = "{'descr': '|b1', 'fortran_order': False, 'shape': (4,), }"
        let padded = header + String(repeating: " ", count: (64 - (10 + header.utf8.count + 1) % 64) % 64) + "\n"
        var data = Data([0x93] + Array("NUMPY".utf8) + [1, 0])
        data.append(contentsOf: [UInt8(padded.utf8.count & 0xFF), UInt8(padded.utf8.count >> 8)])
        data.append(contentsOf: Array(padded.utf8))
        data.append(contentsOf: [0, 1, 2, 255])
        let t = try NPY.decode(data)
        let bytes = Array(UnsafeRawBufferPointer(start: t.storage.base, count: 4))
        #expect(bytes == [0, 1, 1, 1])
        #expect(t.scalars(as: Bool.self) == [false, true, true, true])
    }

    @Test func modelBoolInitializerBytesBecomeZeroOrOne() throws {
        var b = ModelBuilder(opset: 18)
        b.initializer("c", .bool, [4], raw: Data([0, 7, 1, 200]))
        b.node("Identity", ["c"], ["y"])
        b.output("y", .bool, [4])
        for optimize in [true, false] {
            let m = try ONNXModel(serialized: b.data(), options: PlanOptions(optimize: optimize))
            let y = try #require(try m.run([:])["y"])
            #expect(Array(UnsafeRawBufferPointer(start: y.storage.base, count: 4)) == [0, 1, 1, 1])
        }
    }
}
