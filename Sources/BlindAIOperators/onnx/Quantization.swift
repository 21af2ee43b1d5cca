import BlindAITensor
import BlindAIKernels
import BlindAIGraph
import Foundation

// Quantization: QuantizeLinear, DequantizeLinear, DynamicQuantizeLinear, QLinearMatMul, and the com.microsoft
// quantized operators (QLinearAdd/Mul/Sigmoid/LeakyRelu/GlobalAveragePool/Concat, MatMulIntegerToFloat,
// DynamicQuantizeMatMul).

/// How scale and zero-point values map onto the elements of x, viewed as [outer, axisLength, inner]:
/// per tensor (one value), per axis (one value per index of `axis`) or blocked (blocks of `blockSize` along
/// `axis`, the other dimensions matching x).
struct QuantLayout {
    enum Mode { case perTensor, perAxis, blocked }
    let mode: Mode
    let outer: Int, axisLength: Int, inner: Int
    let blockSize: Int
    let blocks: Int

    init(x: [Int], scale: [Int], axis: Int, blockSize: Int) throws {
        let scaleCount = scale.reduce(1, *)
        if x.isEmpty || (scaleCount == 1 && (scale.count <= 1 || blockSize == 0)) {
            mode = .perTensor
            outer = 1; axisLength = 1; inner = x.reduce(1, *); self.blockSize = 0; blocks = 1
            return
        }
        let a = try Shape.axis(axis, rank: x.count)
        outer = x[..<a].reduce(1, *)
        axisLength = x[a]
        inner = x[(a + 1)...].reduce(1, *)
        if blockSize <= 0 {
            guard scale.count == 1, scale[0] == x[a] else {
                throw EngineError(.shapeMismatch, "scale of shape \(scale) does not match axis \(axis) of input \(x) (expected [\(x[a])])")
            }
            mode = .perAxis
            self.blockSize = 0
            blocks = x[a]
        } else {
            let nb = x[a] / blockSize + (x[a] % blockSize == 0 ? 0 : 1)  // (no overflow for any block_size)
            var expected = x
            expected[a] = nb
            guard scale == expected else {
                throw EngineError(.shapeMismatch, "blocked quantization: scale of shape \(scale) does not match input \(x) with block_size \(blockSize) on axis \(axis) (expected \(expected))")
            }
            mode = .blocked
            self.blockSize = blockSize
            blocks = nb
        }
    }

    /// Calls body(elementOffset, parameterOffset, parameterStride, count) for each run of elements.
    @inline(__always)
    func forEachRun(_ body: (Int, Int, Int, Int) -> Void) {
        switch mode {
        case .perTensor:
            body(0, 0, 0, inner)
        case .perAxis:
            var e = 0
            for _ in 0..<outer {
                for a in 0..<axisLength {
                    body(e, a, 0, inner)
                    e += inner
                }
            }
        case .blocked:
            var e = 0
            for o in 0..<outer {
                for a in 0..<axisLength {
                    body(e, (o * blocks + a / blockSize) * inner, 1, inner)
                    e += inner
                }
            }
        }
    }
}

enum QuantFamily {
    /// Scale values as Float (float32, float16 or bfloat16 scales).
    static func floats(_ t: Tensor, _ what: String) throws -> [Float] {
        switch t.dataType {
        case .float32: return Array(t.buffer(Float.self))
        case .float16: return t.buffer(Float16.self).map { Float($0) }
        case .bfloat16: return t.buffer(UInt16.self).map { Float(bitPattern: UInt32($0) << 16) }
        case .float64: return t.buffer(Double.self).map { Float($0) }
        default: throw EngineError(.typeMismatch, "\(what) must be a float tensor, got \(t.dataType)")
        }
    }

    static func isQuantizedType(_ t: DataType) -> Bool {
        [.uint8, .int8, .uint16, .int16].contains(t)
    }

    /// x as Float values (float32, float16, bfloat16, int32 inputs).
    static func inputFloats(_ x: Tensor) throws -> [Float] {
        switch x.dataType {
        case .float32: return Array(x.buffer(Float.self))
        case .float16: return x.buffer(Float16.self).map { Float($0) }
        case .bfloat16: return x.buffer(UInt16.self).map { Float(bitPattern: UInt32($0) << 16) }
        case .int32: return x.buffer(Int32.self).map { Float($0) }
        default: throw EngineError(.typeMismatch, "QuantizeLinear does not support \(x.dataType) inputs")
        }
    }

    /// y = saturate(round_half_even(x / scale) + zero_point) into `Q`.
    static func quantize<Q: EngineInteger>(_ x: UnsafeBufferPointer<Float>, shape: [Int], scales: [Float], zeroPoints: [Int32],
                                           layout: QuantLayout, _: Q.Type, _ ctx: ExecutionContext, half: Bool = false) throws -> Tensor {
        let out = try ctx.uninitialized(Q.dataType, shape)
        let d = out.mutableBuffer(Q.self).baseAddress!
        let px = x.baseAddress
        let hasZero = !zeroPoints.isEmpty
        guard let px else { return out }
        let lo = Float(Q.min), hi = Float(Q.max)
        scales.withUnsafeBufferPointer { sb in
            zeroPoints.withUnsafeBufferPointer { zb in
                let s = sb.baseAddress!
                layout.forEachRun { e, p, st, n in
                    for i in 0..<n {
                        var q = px[e + i] / s[p + i * st]
                        if half { q = Float(Float16(q)) }
                        var v = q.rounded(.toNearestOrEven)
                        if hasZero { v += Float(zb[p + i * st]) }
                        if v.isNaN { d[e + i] = 0; continue }
                        d[e + i] = v <= lo ? Q.min : (v >= hi ? Q.max : Q(v))
                    }
                }
            }
        }
        return out
    }
}

/// QuantizeLinear (opset 10+, with per-axis scales from 13, blocks and output_dtype from 21); also the
/// com.microsoft QuantizeLinear.
struct QuantizeLinearOp: Operator {
    let axis: Int
    let blockSize: Int
    let outputType: DataType?

    func run(_ inputs: [Tensor?], _ ctx: ExecutionContext) throws -> [Tensor] {
        let x = try inputs.required(0), s = try inputs.required(1, "y_scale")
        let zpT = inputs.optional(2)
        let target = zpT?.dataType ?? outputType ?? .uint8
        if let outputType, let zpT, zpT.dataType != outputType {
            throw EngineError(.typeMismatch, "output_dtype \(outputType) does not match y_zero_point type \(zpT.dataType)")
        }
        let layout = try QuantLayout(x: x.shape, scale: s.shape, axis: axis, blockSize: blockSize)
        if let zpT, zpT.shape.reduce(1, *) != s.count {
            throw EngineError(.shapeMismatch, "y_zero_point of shape \(zpT.shape) does not match y_scale of shape \(s.shape)")
        }
        let scales = try QuantFamily.floats(s, "y_scale")
        let zps = try zpT.map { try $0.intValues().map { Int32(truncatingIfNeeded: $0) } } ?? []
        let half = x.dataType == .float16 && s.dataType == .float16
        func go<Q: EngineInteger>(_: Q.Type) throws -> Tensor {
            if x.dataType == .float32 {
                return try QuantFamily.quantize(x.buffer(Float.self), shape: x.shape, scales: scales, zeroPoints: zps,
                                                layout: layout, Q.self, ctx)
            }
            let xf = try QuantFamily.inputFloats(x)
            return try xf.withUnsafeBufferPointer {
                try QuantFamily.quantize($0, shape: x.shape, scales: scales, zeroPoints: zps, layout: layout, Q.self, ctx, half: half)
            }
        }
        switch target {
        case .uint8: return [try go(UInt8.self)]
        case .int8: return [try go(Int8.self)]
        case .uint16: return [try go(UInt16.self)]
        case .int16: return [try go(Int16.self)]
        case .int32: return [try go(Int32.self)]
        default: throw EngineError(.typeMismatch, "QuantizeLinear: unsupported element type \(target) for the quantized output")
        }
    }
}

/// DequantizeLinear: y = (x - zero_point) * scale, computed in float32 and returned in the scale's type
/// (or output_dtype).
struct DequantizeLinearOp: Operator {
    let axis: Int
    let blockSize: Int
    let outputType: DataType?

    func run(_ inputs: [Tensor?], _ ctx: ExecutionContext) throws -> [Tensor] {
        let x = try inputs.required(0), s = try inputs.required(1, "x_scale")
        let zpT = inputs.optional(2)
        if let zpT, zpT.dataType != x.dataType {
            throw EngineError(.typeMismatch, "x_zero_point type \(zpT.dataType) differs from x type \(x.dataType)")
        }
        let layout = try QuantLayout(x: x.shape, scale: s.shape, axis: axis, blockSize: blockSize)
        if let zpT, zpT.shape.reduce(1, *) != s.count {
            throw EngineError(.shapeMismatch, "x_zero_point of shape \(zpT.shape) does not match x_scale of shape \(s.shape)")
        }
        let scales = try QuantFamily.floats(s, "x_scale")
        let zps = try zpT.map { try $0.intValues().map { Float($0) } } ?? []
        let target = outputType ?? s.dataType
        let out = try ctx.uninitialized(.float32, x.shape)
        let d = out.mutableBuffer(Float.self).baseAddress
        func go<X: EngineInteger>(_: X.Type) {
            guard let d, let px = x.buffer(X.self).baseAddress else { return }
            let hasZero = !zps.isEmpty
            scales.withUnsafeBufferPointer { sb in
                zps.withUnsafeBufferPointer { zb in
                    let sp = sb.baseAddress!
                    layout.forEachRun { e, p, st, n in
                        if hasZero {
                            for i in 0..<n { d[e + i] = (Float(px[e + i]) - zb[p + i * st]) * sp[p + i * st] }
                        } else {
                            for i in 0..<n { d[e + i] = Float(px[e + i]) * sp[p + i * st] }
                        }
                    }
                }
            }
        }
        switch x.dataType {
        case .uint8: go(UInt8.self)
        case .int8: go(Int8.self)
        case .uint16: go(UInt16.self)
        case .int16: go(Int16.self)
        case .int32: go(Int32.self)
        default: throw EngineError(.typeMismatch, "DequantizeLinear: unsupported element type \(x.dataType)")
        }
        switch target {
        case .float32: return [out]
        case .float16, .bfloat16: return [try FloatWidening.fromFloat32(out, to: target, ctx)]
        default: throw EngineError(.typeMismatch, "DequantizeLinear cannot produce \(target)")
        }
    }
}

/// DynamicQuantizeLinear: uint8 quantization with a scale and zero point computed from the data's range
/// (always including 0).
struct DynamicQuantizeLinearOp: Operator {
    func run(_ inputs: [Tensor?], _ ctx: ExecutionContext) throws -> [Tensor] {
        let x = try inputs.required(0)
        guard x.dataType == .float32 else {
            throw EngineError(.typeMismatch, "DynamicQuantizeLinear needs float32 input, got \(x.dataType)")
        }
        let (scale, zp) = QuantFamily.dynamicParameters(x.buffer(Float.self))
        let y = try QuantFamily.quantize(x.buffer(Float.self), shape: x.shape, scales: [scale], zeroPoints: [Int32(zp)],
                                         layout: try QuantLayout(x: x.shape, scale: [], axis: 0, blockSize: 0), UInt8.self, ctx)
        return [y, Tensor(scalar: scale), Tensor(scalar: zp)]
    }
}

extension QuantFamily {
    /// Scale and uint8 zero point covering [min(0, min x), max(0, max x)].
    static func dynamicParameters(_ x: UnsafeBufferPointer<Float>) -> (Float, UInt8) {
        var lo: Float = 0, hi: Float = 0
        for v in x {
            if v < lo { lo = v }
            if v > hi { hi = v }
        }
        let scale: Float = hi == lo ? 1 : (hi - lo) / 255
        let initial = 0 - lo / scale
        let clamped = Swift.max(0, Swift.min(255, initial))
        return (scale, UInt8(clamped.rounded(.toNearestOrEven)))
    }
}

/// QLinearMatMul: int32 product of the zero-point-shifted operands, requantized with
/// a_scale * b_scale / y_scale (computed in the scales' type) and y_zero_point.
/// Scales and zero points are scalars, or per row (a, y) / per column (b).
struct QLinearMatMulOp: Operator {
    func run(_ inputs: [Tensor?], _ ctx: ExecutionContext) throws -> [Tensor] {
        let a = try inputs.required(0), aS = try inputs.required(1, "a_scale"), aZ = inputs.optional(2)
        let b = try inputs.required(3), bS = try inputs.required(4, "b_scale"), bZ = inputs.optional(5)
        let yS = try inputs.required(6, "y_scale"), yZ = inputs.optional(7)
        let g = try MatMulGeometry(a.shape, b.shape)
        let azp = try QuantizedIntegers.zeroPoints(aZ, expectedType: a.dataType, "a_zero_point")
        let bzp = try QuantizedIntegers.zeroPoints(bZ, expectedType: b.dataType, "b_zero_point")
        let acc = try IntegerMatMul.matmul(a, azp, b, bzp, g, ctx)
        let outType = yZ?.dataType ?? a.dataType
        return [try QuantFamily.requantizeMatrix(acc, m: g.m, n: g.n, aScale: aS, bScale: bS, yScale: yS,
                                                 yZero: yZ, outType: outType, ctx)]
    }
}

extension QuantFamily {
    /// out[.., i, j] = saturate(round(acc * a_scale[i] * b_scale[j] / y_scale[i]) + y_zero_point[i]).
    static func requantizeMatrix(_ acc: Tensor, m: Int, n: Int, aScale: Tensor, bScale: Tensor, yScale: Tensor, yZero: Tensor?,
                                 outType: DataType, _ ctx: ExecutionContext) throws -> Tensor {
        let asv = try floats(aScale, "a_scale"), bsv = try floats(bScale, "b_scale"), ysv = try floats(yScale, "y_scale")
        let yzv = try yZero?.intValues() ?? [0]
        for (v, name, want) in [(asv.count, "a_scale", m), (bsv.count, "b_scale", n), (ysv.count, "y_scale", m), (yzv.count, "y_zero_point", m)] {
            guard v == 1 || v == want else {
                throw EngineError(.shapeMismatch, "\(name) has \(v) values, expected 1 or \(want)")
            }
        }
        let halfScales = aScale.dataType == .float16
        // Multiplier per (row, column), computed like the reference: in the scales' own precision.
        func mult(_ i: Int, _ j: Int) -> Double {
            let a = asv[asv.count == 1 ? 0 : i], b = bsv[bsv.count == 1 ? 0 : j], y = ysv[ysv.count == 1 ? 0 : i]
            if halfScales { return Double(Float16(a) * Float16(b) / Float16(y)) }
            return Double(a * b / y)
        }
        let perElement = asv.count > 1 || bsv.count > 1 || ysv.count > 1 || yzv.count > 1
        let src = acc.buffer(Int32.self)
        func go<Q: EngineInteger>(_: Q.Type) throws -> Tensor {
            let out = try ctx.uninitialized(Q.dataType, acc.shape)
            let d = out.mutableBuffer(Q.self)
            if acc.count == 0 { return out }
            if !perElement {
                let k = mult(0, 0), z = Double(yzv[0])
                for i in 0..<acc.count { d[i] = QuantizedIntegers.saturate(Double(src[i]) * k + z, Q.self) }
                return out
            }
            let rowMults = (0..<m).map { i in (0..<n).map { j in mult(i, j) } }
            var e = 0
            while e < acc.count {
                for i in 0..<m {
                    let z = Double(yzv[yzv.count == 1 ? 0 : i])
                    let km = rowMults[i]
                    for j in 0..<n { d[e + j] = QuantizedIntegers.saturate(Double(src[e + j]) * km[j] + z, Q.self) }
                    e += n
                }
            }
            return out
        }
        switch outType {
        case .uint8: return try go(UInt8.self)
        case .int8: return try go(Int8.self)
        default: throw EngineError(.typeMismatch, "quantized output must be uint8 or int8, got \(outType)")
        }
    }
}

/// Per-tensor quantization parameters of one operand of the com.microsoft QLinear* operators.
struct QuantParams {
    let scale: Float
    let zero: Float

    init(_ scale: Tensor?, _ zero: Tensor?, _ what: String) throws {
        guard let scale else { throw EngineError(.invalidArgument, "\(what) scale is missing") }
        let s = try QuantFamily.floats(scale, "\(what) scale")
        guard s.count == 1 else { throw EngineError(.invalidArgument, "\(what) scale must be a scalar, got \(s.count) values") }
        self.scale = s[0]
        if let zero {
            let z = try zero.intValues()
            guard z.count == 1 else { throw EngineError(.invalidArgument, "\(what) zero point must be a scalar, got \(z.count) values") }
            self.zero = Float(z[0])
        } else {
            self.zero = 0
        }
    }

    @inline(__always) func dequantize<Q: EngineInteger>(_ q: Q) -> Float { (Float(q) - zero) * scale }

    @inline(__always) func quantize<Q: EngineInteger>(_ v: Float, _: Q.Type) -> Q {
        let r = (v / scale).rounded(.toNearestOrEven) + zero
        if r.isNaN { return 0 }
        return r <= Float(Q.min) ? Q.min : (r >= Float(Q.max) ? Q.max : Q(r))
    }
}

/// com.microsoft QLinearAdd / QLinearMul: C = quantize(dequantize(A) op dequantize(B)) with broadcasting.
struct QLinearBinaryOp: Operator {
    let multiply: Bool

    func run(_ inputs: [Tensor?], _ ctx: ExecutionContext) throws -> [Tensor] {
        let a = try inputs.required(0), b = try inputs.required(3)
        guard a.dataType == b.dataType else { throw EngineError(.typeMismatch, "A and B must have the same type, got \(a.dataType) and \(b.dataType)") }
        let pa = try QuantParams(inputs.optional(1), inputs.optional(2), "A")
        let pb = try QuantParams(inputs.optional(4), inputs.optional(5), "B")
        let pc = try QuantParams(inputs.optional(6), inputs.optional(7), "C")
        // Scale ratios folded as onnxruntime does (the results match it bit for bit).
        let za = pa.zero, zb = pb.zero, zc = pc.zero
        func go<Q: EngineInteger>(_: Q.Type) throws -> Tensor {
            let lo = Float(Q.min), hi = Float(Q.max)
            @inline(__always) func q(_ v: Float) -> Q {
                let r = v.rounded(.toNearestOrEven) + zc
                if r.isNaN { return 0 }
                return r <= lo ? Q.min : (r >= hi ? Q.max : Q(r))
            }
            if multiply {
                let ratio = pa.scale * pb.scale / pc.scale
                return try Loops.zip(a, b, Q.self, Q.self, ctx) { x, y in q((Float(x) - za) * (Float(y) - zb) * ratio) }
            }
            let ra = pa.scale / pc.scale, rb = pb.scale / pc.scale
            return try Loops.zip(a, b, Q.self, Q.self, ctx) { x, y in q((Float(x) - za) * ra + (Float(y) - zb) * rb) }
        }
        switch a.dataType {
        case .uint8: return [try go(UInt8.self)]
        case .int8: return [try go(Int8.self)]
        default: throw EngineError(.typeMismatch, "QLinear\(multiply ? "Mul" : "Add") needs uint8 or int8 tensors, got \(a.dataType)")
        }
    }
}

/// com.microsoft QLinearSigmoid / QLinearLeakyRelu: an 8-bit lookup table built per run from the parameters.
struct QLinearUnaryOp: Operator {
    enum Kind: Sendable { case sigmoid, leakyRelu(Float) }
    let kind: Kind

    func run(_ inputs: [Tensor?], _ ctx: ExecutionContext) throws -> [Tensor] {
        let x = try inputs.required(0)
        let px = try QuantParams(inputs.optional(1), inputs.optional(2), "X")
        let py = try QuantParams(inputs.optional(3), inputs.optional(4), "Y")
        func f(_ v: Float) -> Float {
            switch kind {
            case .sigmoid: return v >= 0 ? 1 / (1 + Float.exp(-v)) : Float.exp(v) / (1 + Float.exp(v))
            case .leakyRelu(let alpha): return v >= 0 ? v : alpha * v
            }
        }
        func go<Q: EngineInteger>(_: Q.Type) throws -> Tensor {
            var table = [Q](repeating: 0, count: 256)
            for i in 0..<256 {
                let q = Q(truncatingIfNeeded: Q.isSigned ? i - 128 : i)
                table[Q.isSigned ? i : i] = py.quantize(f(px.dequantize(q)), Q.self)
            }
            let offset = Q.isSigned ? 128 : 0
            return try table.withUnsafeBufferPointer { t in
                try Loops.map(x, Q.self, Q.self, ctx) { t[Int(truncatingIfNeeded: $0) + offset] }
            }
        }
        switch x.dataType {
        case .uint8: return [try go(UInt8.self)]
        case .int8: return [try go(Int8.self)]
        default: throw EngineError(.typeMismatch, "quantized activations need uint8 or int8 tensors, got \(x.dataType)")
        }
    }
}

/// com.microsoft QLinearGlobalAveragePool (NCHW, or NHWC with channels_last).
struct QLinearGlobalAveragePoolOp: Operator {
    let channelsLast: Bool

    func run(_ inputs: [Tensor?], _ ctx: ExecutionContext) throws -> [Tensor] {
        let x = try inputs.required(0)
        let px = try QuantParams(inputs.optional(1), inputs.optional(2), "X")
        let py = try QuantParams(inputs.optional(3), inputs.optional(4), "Y")
        guard x.rank >= 3 else { throw EngineError(.shapeMismatch, "QLinearGlobalAveragePool needs rank >= 3, got \(x.shape)") }
        let n = x.shape[0]
        let c = channelsLast ? x.shape[x.rank - 1] : x.shape[1]
        let spatial = channelsLast ? x.shape[1..<(x.rank - 1)].reduce(1, *) : x.shape[2...].reduce(1, *)
        var outShape = [Int](repeating: 1, count: x.rank)
        outShape[0] = n
        outShape[channelsLast ? x.rank - 1 : 1] = c
        func go<Q: EngineInteger>(_: Q.Type) throws -> Tensor {
            let out = try ctx.uninitialized(Q.dataType, outShape)
            let s = x.buffer(Q.self), d = out.mutableBuffer(Q.self)
            let scale = px.scale / Float(Swift.max(spatial, 1))
            for b in 0..<n {
                for ch in 0..<c {
                    var acc = 0
                    if channelsLast {
                        for i in 0..<spatial { acc += Int(s[(b * spatial + i) * c + ch]) }
                    } else {
                        let base = (b * c + ch) * spatial
                        for i in 0..<spatial { acc += Int(s[base + i]) }
                    }
                    let v = (Float(acc) - px.zero * Float(spatial)) * scale
                    d[b * c + ch] = py.quantize(v, Q.self)
                }
            }
            return out
        }
        switch x.dataType {
        case .uint8: return [try go(UInt8.self)]
        case .int8: return [try go(Int8.self)]
        default: throw EngineError(.typeMismatch, "QLinearGlobalAveragePool needs uint8 or int8 tensors, got \(x.dataType)")
        }
    }
}

/// com.microsoft QLinearConcat: inputs (Y_scale, Y_zero_point, then X, X_scale, X_zero_point per input).
struct QLinearConcatOp: Operator {
    let axis: Int

    func run(_ inputs: [Tensor?], _ ctx: ExecutionContext) throws -> [Tensor] {
        let py = try QuantParams(inputs.optional(0), inputs.optional(1), "Y")
        guard inputs.count >= 5, (inputs.count - 2) % 3 == 0 else {
            throw EngineError(.invalidArgument, "QLinearConcat needs Y_scale, Y_zero_point and (X, X_scale, X_zero_point) triples, got \(inputs.count) inputs")
        }
        var xs: [(Tensor, QuantParams)] = []
        for i in stride(from: 2, to: inputs.count, by: 3) {
            xs.append((try inputs.required(i), try QuantParams(inputs.optional(i + 1), inputs.optional(i + 2), "X\((i - 2) / 3)")))
        }
        let first = xs[0].0
        let a = try Shape.axis(axis, rank: first.rank)
        var outShape = first.shape
        outShape[a] = 0
        for (t, _) in xs {
            guard t.dataType == first.dataType, t.rank == first.rank,
                  (0..<t.rank).allSatisfy({ $0 == a || t.shape[$0] == first.shape[$0] }) else {
                throw EngineError(.shapeMismatch, "QLinearConcat inputs do not match: \(first.shape) (\(first.dataType)) and \(t.shape) (\(t.dataType))")
            }
            outShape[a] += t.shape[a]
        }
        let outer = first.shape[..<a].reduce(1, *)
        let inner = first.shape[(a + 1)...].reduce(1, *)
        func go<Q: EngineInteger>(_: Q.Type) throws -> Tensor {
            let out = try ctx.uninitialized(Q.dataType, outShape)
            let d = out.mutableBuffer(Q.self)
            let rowOut = outShape[a] * inner
            var col = 0
            for (t, p) in xs {
                let block = t.shape[a] * inner
                let s = t.buffer(Q.self)
                let same = p.scale == py.scale && p.zero == py.zero
                for o in 0..<outer {
                    let src = o * block, dst = o * rowOut + col
                    if same {
                        for i in 0..<block { d[dst + i] = s[src + i] }
                    } else {
                        for i in 0..<block { d[dst + i] = py.quantize(p.dequantize(s[src + i]), Q.self) }
                    }
                }
                col += block
            }
            return out
        }
        switch first.dataType {
        case .uint8: return [try go(UInt8.self)]
        case .int8: return [try go(Int8.self)]
        default: throw EngineError(.typeMismatch, "QLinearConcat needs uint8 or int8 tensors, got \(first.dataType)")
        }
    }
}

/// com.microsoft MatMulIntegerToFloat (A, B, a_scale, b_scale, a_zero_point, b_zero_point, bias) and
/// DynamicQuantizeMatMul (A float, B, b_scale, b_zero_point, bias; A quantized to uint8 on the fly).
struct MatMulIntegerToFloatOp: Operator {
    let dynamic: Bool

    func run(_ inputs: [Tensor?], _ ctx: ExecutionContext) throws -> [Tensor] {
        var a = try inputs.required(0)
        let b = try inputs.required(1)
        let aScale: [Float], aZero: [Int32], bScaleT: Tensor, bZeroT: Tensor?, biasT: Tensor?
        if dynamic {
            guard a.dataType == .float32 else { throw EngineError(.typeMismatch, "DynamicQuantizeMatMul needs float32 A, got \(a.dataType)") }
            let (s, z) = QuantFamily.dynamicParameters(a.buffer(Float.self))
            a = try QuantFamily.quantize(a.buffer(Float.self), shape: a.shape, scales: [s], zeroPoints: [Int32(z)],
                                         layout: try QuantLayout(x: a.shape, scale: [], axis: 0, blockSize: 0), UInt8.self, ctx)
            aScale = [s]
            aZero = [Int32(z)]
            bScaleT = try inputs.required(2, "b_scale")
            bZeroT = inputs.optional(3)
            biasT = inputs.optional(4)
        } else {
            aScale = try QuantFamily.floats(try inputs.required(2, "a_scale"), "a_scale")
            bScaleT = try inputs.required(3, "b_scale")
            aZero = try QuantizedIntegers.zeroPoints(inputs.optional(4), expectedType: a.dataType, "a_zero_point")
            bZeroT = inputs.optional(5)
            biasT = inputs.optional(6)
        }
        guard aScale.count == 1 else { throw EngineError(.invalidArgument, "a_scale must be a scalar, got \(aScale.count) values") }
        let g = try MatMulGeometry(a.shape, b.shape)
        let bScale = try QuantFamily.floats(bScaleT, "b_scale")
        let bZero = try QuantizedIntegers.zeroPoints(bZeroT, expectedType: b.dataType, "b_zero_point")
        guard bScale.count == 1 || bScale.count == g.n else {
            throw EngineError(.shapeMismatch, "b_scale has \(bScale.count) values, expected 1 or \(g.n)")
        }
        guard aZero.count <= 1 else { throw EngineError(.invalidArgument, "a_zero_point must be a scalar") }
        let acc = try IntegerMatMul.matmul(a, aZero, b, bZero, g, ctx)
        var bias: [Float]?
        if let biasT {
            let v = try QuantFamily.floats(biasT, "bias")
            guard v.count == g.n else { throw EngineError(.shapeMismatch, "bias has \(v.count) values, expected \(g.n)") }
            bias = v
        }
        let out = try ctx.uninitialized(.float32, acc.shape)
        let s = acc.buffer(Int32.self), d = out.mutableBuffer(Float.self)
        let n = g.n
        let mults = (0..<n).map { aScale[0] * bScale[bScale.count == 1 ? 0 : $0] }
        var e = 0
        while e < acc.count {
            for j in 0..<n { d[e + j] = Float(s[e + j]) * mults[j] + (bias?[j] ?? 0) }
            e += n
        }
        return [out]
    }
}

extension StandardOperators {
    static func registerQuantization(_ r: inout OperatorRegistry) {
        for domain in ["", "com.microsoft"] {
            r.register("QuantizeLinear", domain: domain) { c in
                var outType: DataType?
                if let o = try c.int("output_dtype"), o != 0 {
                    guard let dt = DataType(rawValue: o), QuantFamily.isQuantizedType(dt) || dt == .int32 else {
                        throw c.error(.invalidModel, "QuantizeLinear: unsupported element type \(o) for output_dtype")
                    }
                    outType = dt
                }
                return QuantizeLinearOp(axis: try c.int("axis", default: 1), blockSize: try c.int("block_size", default: 0), outputType: outType)
            }
            r.register("DequantizeLinear", domain: domain) { c in
                var outType: DataType?
                if let o = try c.int("output_dtype"), o != 0 {
                    guard let dt = DataType(rawValue: o), [.float32, .float16, .bfloat16].contains(dt) else {
                        throw c.error(.invalidModel, "DequantizeLinear: unsupported element type \(o) for output_dtype")
                    }
                    outType = dt
                }
                return DequantizeLinearOp(axis: try c.int("axis", default: 1), blockSize: try c.int("block_size", default: 0), outputType: outType)
            }
        }
        r.register("DynamicQuantizeLinear") { _ in DynamicQuantizeLinearOp() }
        r.register("QLinearMatMul") { _ in QLinearMatMulOp() }
        let ms = "com.microsoft"
        r.register("QLinearAdd", domain: ms) { _ in QLinearBinaryOp(multiply: false) }
        r.register("QLinearMul", domain: ms) { _ in QLinearBinaryOp(multiply: true) }
        r.register("QLinearSigmoid", domain: ms) { _ in QLinearUnaryOp(kind: .sigmoid) }
        r.register("QLinearLeakyRelu", domain: ms) { c in QLinearUnaryOp(kind: .leakyRelu(try c.float("alpha", default: 0.01))) }
        r.register("QLinearGlobalAveragePool", domain: ms) { c in QLinearGlobalAveragePoolOp(channelsLast: try c.int("channels_last", default: 0) != 0) }
        r.register("QLinearConcat", domain: ms) { c in QLinearConcatOp(axis: try c.int("axis", default: 0)) }
        r.register("MatMulIntegerToFloat", domain: ms) { _ in MatMulIntegerToFloatOp(dynamic: false) }
        r.register("DynamicQuantizeMatMul", domain: ms) { _ in MatMulIntegerToFloatOp(dynamic: true) }
    }
}
