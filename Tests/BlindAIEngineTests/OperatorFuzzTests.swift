import BlindAIGraph
import BlindAIOperators
import BlindAIONNX
import BlindAITensor
import BlindAITestSupport
import Foundation
import Testing

/// Whoever may upload a model controls its attributes, and whoever may run it controls its inputs: neither may
/// crash the process (a trap would stop every model of a server). For every registered operator this builds
/// one-node models with extreme attribute values and odd input shapes and values, compiles them and runs them
/// under small limits. Any outcome but a trap passes: an error is the expected answer to nonsense. The cases
/// come from a fixed seed, so a failure reproduces.
@Suite struct OperatorFuzzTests {
    /// SplitMix64: a small deterministic generator.
    struct Generator: RandomNumberGenerator {
        var state: UInt64
        mutating func next() -> UInt64 {
            state &+= 0x9E37_79B9_7F4A_7C15
            var z = state
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return z ^ (z >> 31)
        }
    }

    static let extremeInts: [Int64] = [Int64.max, Int64.min, -1, 0, 1, 2, 3, -2, 1 << 40, -(1 << 40), Int64(Int32.max), Int64(Int32.min)]
    static let extremeFloats: [Float] = [.nan, .infinity, -.infinity, 0, -1, 1e30, -1e30, .leastNonzeroMagnitude, 0.5]

    static let intAttributes = [
        "axis", "keepdims", "k", "to", "group", "blocksize", "batch_dims", "p", "count_include_pad", "ceil_mode",
        "storage_order", "start", "end", "largest", "sorted", "num_outputs", "exclusive", "reverse", "select_last_index",
        "detect_positive", "detect_negative", "noop_with_empty_axes", "transA", "transB", "upper", "center_point_box",
        "output_height", "output_width", "sampling_ratio", "seed", "dtype", "hidden_size", "layout", "direction_int",
        "stash_type", "num_groups", "block_size", "allowzero", "saturate", "new_axis", "time_axis", "batch_axis",
        "onesided", "inverse", "periodic", "output_datatype", "coordinate_transformation_mode_int", "exclude_outside",
        "align_corners", "keep_aspect_ratio_policy_int", "interleaved", "rotary_embedding_dim", "num_heads", "softcap",
        "bits", "gather_axis", "quantize_axis", "K", "N",
    ]
    static let intsAttributes = [
        "axes", "perm", "kernel_shape", "pads", "strides", "dilations", "output_padding", "output_shape", "shape",
        "split", "starts", "ends", "repeats", "sizes", "blocksize", "value_ints", "image_shape",
    ]
    static let floatAttributes = [
        "alpha", "beta", "gamma", "epsilon", "bias", "lambd", "ratio", "mean", "scale", "high", "low", "spatial_scale",
        "extrapolation_value", "cubic_coeff_a", "momentum", "min", "max", "value_float", "fmod",
    ]
    static let stringAttributes: [(String, [String])] = [
        ("mode", ["constant", "reflect", "edge", "wrap", "nearest", "linear", "cubic", "DCR", "CRD", "bilinear", "", "bogus"]),
        ("auto_pad", ["NOTSET", "SAME_UPPER", "SAME_LOWER", "VALID", "bogus"]),
        ("direction", ["forward", "reverse", "bidirectional", "LEFT", "RIGHT", "bogus"]),
        ("coordinate_transformation_mode", ["half_pixel", "asymmetric", "tf_crop_and_resize", "align_corners", "bogus"]),
        ("nearest_mode", ["round_prefer_floor", "floor", "ceil", "bogus"]),
        ("reduction", ["none", "add", "mul", "max", "min", "bogus"]),
        ("approximate", ["none", "tanh", "bogus"]),
        ("keep_aspect_ratio_policy", ["stretch", "not_larger", "not_smaller", "bogus"]),
        ("equation", ["ij,jk->ik", "i,i", "...ii->...i", "ab", "->", "a...,...a->", "bogus,,->"]),
    ]
    /// Small shapes, and empty ones whose other dimensions are as large as the limits allow (their strides and
    /// trailing products are what overflowed before the volume rule of `TensorLimits.checkedCount`).
    static let shapes: [[Int]] = [[2, 3], [1, 2, 3, 4], [], [0, 3], [3], [1, 1, 2, 2, 2], [2, 0],
                                  [0, 2048, 2048], [2048, 0, 2048], [1, 0, 1024, 4096], [0, 4 << 20]]

    func attribute(_ name: String, _ rng: inout Generator) -> Onnx_AttributeProto {
        var a = Onnx_AttributeProto()
        a.name = name
        if Self.intAttributes.contains(name) {
            a.type = .int
            a.i = Self.extremeInts.randomElement(using: &rng)!
        } else if Self.intsAttributes.contains(name) {
            a.type = .ints
            a.ints = (0..<Int.random(in: 0...6, using: &rng)).map { _ in Self.extremeInts.randomElement(using: &rng)! }
        } else if Self.floatAttributes.contains(name) {
            a.type = .float
            a.f = Self.extremeFloats.randomElement(using: &rng)!
        } else if let (_, values) = Self.stringAttributes.first(where: { $0.0 == name }) {
            a.type = .string
            a.s = Data(values.randomElement(using: &rng)!.utf8)
        }
        return a
    }

    func input(_ shape: [Int], _ type: DataType, _ rng: inout Generator) -> Tensor {
        let n = shape.reduce(1, *)
        switch type {
        case _ where n == 0: return try! Tensor(zeros: type, shape: shape, limits: TensorLimits(maxTensorBytes: 1 << 40, maxTensorElements: 1 << 40))
        case .int64: return Tensor(shape: shape, scalars: (0..<n).map { _ in Self.extremeInts.randomElement(using: &rng)! })
        case .int32: return Tensor(shape: shape, scalars: (0..<n).map { _ in Int32(truncatingIfNeeded: Self.extremeInts.randomElement(using: &rng)!) })
        case .bool: return Tensor(shape: shape, scalars: (0..<n).map { _ in Bool.random(using: &rng) })
        default: return Tensor(shape: shape, scalars: (0..<n).map { _ in Self.extremeFloats.randomElement(using: &rng)! })
        }
    }

    /// Operators that need structures these cases cannot give (subgraphs) or that only repeat others.
    static let skipped: Set<String> = ["If", "Loop", "Scan", "SequenceMap"]

    static var operators: [String] {
        StandardOperators.registry.operatorNames.filter { name in
            let op = name.components(separatedBy: "::").last ?? name
            return !skipped.contains(op)
        }
    }

    @Test(arguments: operators)
    func operatorSurvivesNonsense(_ qualified: String) throws {
        let parts = qualified.components(separatedBy: "::")
        let domain = parts[0], op = parts[1]
        var rng = Generator(state: UInt64(truncatingIfNeeded: qualified.hashValue == 0 ? 1 : qualified.utf8.reduce(7) { $0 &* 31 &+ UInt64($1) }))
        let allAttributeNames = Self.intAttributes + Self.intsAttributes + Self.floatAttributes + Self.stringAttributes.map(\.0)
        let small = TensorLimits(maxTensorBytes: 16 << 20, maxTensorElements: 4 << 20)
        // 40 cases per operator in the suite; BLINDAI_FUZZ_CASES=N for a longer hunt.
        let cases = ProcessInfo.processInfo.environment["BLINDAI_FUZZ_CASES"].flatMap { Int($0) } ?? 40
        if let seed = ProcessInfo.processInfo.environment["BLINDAI_FUZZ_SEED"].flatMap({ UInt64($0) }) { rng.state ^= seed }
        for _ in 0..<cases {
            let inputCount = Int.random(in: 0...4, using: &rng)
            var b = ModelBuilder(opset: [13, 17, 18, 21].randomElement(using: &rng)!)
            b.importDomain(domain)
            var feeds: [String: Tensor] = [:]
            var names: [String] = []
            for i in 0..<inputCount {
                let type: DataType = [.float32, .float32, .int64, .int32, .bool].randomElement(using: &rng)!
                let shape = Self.shapes.randomElement(using: &rng)!
                let name = "x\(i)"
                // Some inputs are initializers, so that the planner folds and infers shapes from their values too.
                if Bool.random(using: &rng) {
                    b.initializer(name, input(shape, type, &rng))
                } else {
                    b.input(name, type, shape.map { $0 })
                    feeds[name] = input(shape, type, &rng)
                }
                names.append(Bool.random(using: &rng) || i == 0 ? name : "")
            }
            let attributes = (0..<Int.random(in: 0...4, using: &rng)).map { _ in attribute(allAttributeNames.randomElement(using: &rng)!, &rng) }
            var unique: [String: Onnx_AttributeProto] = [:]
            for a in attributes { unique[a.name] = a }
            let outputs = (0..<Int.random(in: 1...3, using: &rng)).map { "y\($0)" }
            b.node(op, names, outputs, domain: domain, attributes: Array(unique.values).sorted { $0.name < $1.name })
            for o in outputs { b.output(o, .float32, []) }
            for optimize in [true, false] {
                do {
                    let m = try ONNXModel(serialized: b.data(), options: PlanOptions(optimize: optimize, limits: small))
                    _ = try m.run(feeds, context: ExecutionContext(limits: small))
                } catch {}
            }
        }
    }
}
