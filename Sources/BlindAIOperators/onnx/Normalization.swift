import BlindAITensor
import BlindAIKernels
import BlindAIGraph
import Foundation

// Normalizations: BatchNormalization, InstanceNormalization, LayerNormalization, GroupNormalization,
// RMSNormalization, LRN, LpNormalization, MeanVarianceNormalization, and the com.microsoft fused variants
// (SkipLayerNormalization, SimplifiedLayerNormalization, SkipSimplifiedLayerNormalization).
//
// Statistics are computed in two passes (mean, then the mean of squared deviations), which is accurate
// without a wider accumulator; float32 rows use 8-lane SIMD. float16/bfloat16 are computed in float32.

/// Row kernels shared by the normalizations.
enum NormKernels {
    /// Mean and (population) variance of n elements; with `centered` false, the mean is 0 and the variance
    /// is the mean of squares (RMS normalization).
    @inline(__always)
    static func stats<T: EngineFloat>(_ p: UnsafePointer<T>, _ n: Int, centered: Bool) -> (T, T) {
        if n == 0 { return (0, 0) }
        if T.self == Float.self {
            let f = UnsafeRawPointer(p).assumingMemoryBound(to: Float.self)
            let fn = Float(n)
            if !centered { return (0, T(SIMDRows.sumSquares(f, n) / fn)) }
            let mean = SIMDRows.sum(f, n) / fn
            return (T(mean), T(SIMDRows.sumSquaredDiff(f, n, mean) / fn))
        }
        let tn = T(n)
        if !centered {
            var s = T(0)
            for i in 0..<n { s += p[i] * p[i] }
            return (0, s / tn)
        }
        var s = T(0)
        for i in 0..<n { s += p[i] }
        let mean = s / tn
        var v = T(0)
        for i in 0..<n {
            let d = p[i] - mean
            v += d * d
        }
        return (mean, v / tn)
    }

    /// q[i] = p[i] * k + off.
    @inline(__always)
    static func affine<T: EngineFloat>(_ p: UnsafePointer<T>, _ q: UnsafeMutablePointer<T>, _ n: Int, _ k: T, _ off: T) {
        if T.self == Float.self {
            let f = UnsafeRawPointer(p).assumingMemoryBound(to: Float.self)
            let g = UnsafeMutableRawPointer(q).assumingMemoryBound(to: Float.self)
            let kv = SIMDRows.V(repeating: Float(k)), ov = SIMDRows.V(repeating: Float(off))
            var i = 0
            while i + 8 <= n {
                SIMDRows.store(SIMDRows.load(f + i) * kv + ov, g + i)
                i += 8
            }
            let kf = Float(k), of = Float(off)
            while i < n {
                g[i] = f[i] * kf + of
                i += 1
            }
            return
        }
        for i in 0..<n { q[i] = p[i] * k + off }
    }

    /// q[j] = (p[j] - mean) * inv * scale[j] (+ bias[j]).
    @inline(__always)
    static func scaled<T: EngineFloat>(_ p: UnsafePointer<T>, _ q: UnsafeMutablePointer<T>, _ n: Int, _ mean: T, _ inv: T,
                                       _ scale: UnsafePointer<T>, _ bias: UnsafePointer<T>?) {
        if T.self == Float.self {
            let f = UnsafeRawPointer(p).assumingMemoryBound(to: Float.self)
            let g = UnsafeMutableRawPointer(q).assumingMemoryBound(to: Float.self)
            let s = UnsafeRawPointer(scale).assumingMemoryBound(to: Float.self)
            let mv = SIMDRows.V(repeating: Float(mean)), iv = SIMDRows.V(repeating: Float(inv))
            let mf = Float(mean), inf = Float(inv)
            var i = 0
            if let bias {
                let b = UnsafeRawPointer(bias).assumingMemoryBound(to: Float.self)
                while i + 8 <= n {
                    let v = (SIMDRows.load(f + i) - mv) * iv * SIMDRows.load(s + i) + SIMDRows.load(b + i)
                    SIMDRows.store(v, g + i)
                    i += 8
                }
                while i < n {
                    g[i] = (f[i] - mf) * inf * s[i] + b[i]
                    i += 1
                }
            } else {
                while i + 8 <= n {
                    SIMDRows.store((SIMDRows.load(f + i) - mv) * iv * SIMDRows.load(s + i), g + i)
                    i += 8
                }
                while i < n {
                    g[i] = (f[i] - mf) * inf * s[i]
                    i += 1
                }
            }
            return
        }
        if let bias {
            for i in 0..<n { q[i] = (p[i] - mean) * inv * scale[i] + bias[i] }
        } else {
            for i in 0..<n { q[i] = (p[i] - mean) * inv * scale[i] }
        }
    }

    /// A parameter tensor (scale, bias) converted to `dt` and broadcast to `shape` (no copy when it already
    /// has that many elements).
    static func param(_ t: Tensor, _ dt: DataType, _ shape: [Int], _ what: String, _ ctx: ExecutionContext) throws -> Tensor {
        var t = t
        if t.dataType != dt { t = try CastOp.cast(t, to: dt, ctx) }
        let n = shape.reduce(1, *)
        if t.count == n { return t }
        let b = try Shape.broadcast([t.shape, shape])
        guard b == shape else {
            throw EngineError(.shapeMismatch, "\(what) of shape \(t.shape) does not broadcast to \(shape)")
        }
        return try Loops.broadcastCopy(t, to: shape, ctx)
    }

    /// Per-channel values of a small parameter tensor as doubles, checked to have `count` elements.
    static func channelValues(_ t: Tensor, _ count: Int, _ what: String) throws -> [Double] {
        let v = try t.doubleValues()
        guard v.count == count else {
            throw EngineError(.shapeMismatch, "\(what) has \(v.count) elements, expected \(count)")
        }
        return v
    }

    /// Converts a list of doubles to a tensor of `T`.
    static func tensor<T: EngineFloat>(_ values: [Double], _ shape: [Int], _: T.Type) -> Tensor {
        Tensor(shape: shape, scalars: values.map { T(double: $0) })
    }
}

/// Float types normalizations are computed in; half types are widened to float32.
private enum NormFloat {
    static func compute<R>(_ dt: DataType, _ what: String, _ body: (DataType) throws -> R) throws -> R {
        switch dt {
        case .float32, .float64, .float16, .bfloat16: return try body(ReduceSupport.isHalf(dt) ? .float32 : dt)
        default: throw EngineError(.typeMismatch, "\(what) does not support \(dt) tensors")
        }
    }
}

/// Widens a half-precision input to float32 (other types unchanged).
private func normWiden(_ t: Tensor, _ ctx: ExecutionContext) throws -> Tensor {
    ReduceSupport.isHalf(t.dataType) ? try FloatWidening.toFloat32(t, ctx) : t
}

/// Narrows results back to the original element type.
private func normNarrow(_ ts: [Tensor], to dt: DataType, _ ctx: ExecutionContext) throws -> [Tensor] {
    guard ReduceSupport.isHalf(dt) else { return ts }
    return try ts.map { try FloatWidening.fromFloat32($0, to: dt, ctx) }
}

// MARK: - LayerNormalization, RMSNormalization, SimplifiedLayerNormalization

/// Normalizes over the dimensions from `axis` on. `simplified` is RMS normalization (no mean, no bias).
/// Outputs: Y, then Mean and InvStdDev (LayerNormalization) or InvStdDev only (simplified, when
/// `simplifiedInvStdOutput`), as requested by `outputs`.
struct LayerNormOp: Operator {
    let axis: Int
    let epsilon: Float
    let simplified: Bool
    let outputs: Int

    func run(_ inputs: [Tensor?], _ ctx: ExecutionContext) throws -> [Tensor] {
        let x0 = try inputs.required(0)
        let scale0 = try inputs.required(1, "scale")
        let bias0 = simplified ? nil : inputs.optional(2)
        let what = simplified ? "RMS normalization" : "LayerNormalization"
        return try NormFloat.compute(x0.dataType, what) { dt in
            let x = try normWiden(x0, ctx)
            let ax = x.rank == 0 ? 0 : try Shape.axis(axis, rank: x.rank)
            let normShape = Array(x.shape[ax...])
            let rows = x.shape[..<ax].reduce(1, *)
            let d = normShape.reduce(1, *)
            let scale = try NormKernels.param(scale0, dt, normShape, "scale", ctx)
            let bias = try bias0.map { try NormKernels.param($0, dt, normShape, "bias", ctx) }
            let statShape = Array(x.shape[..<ax]) + [Int](repeating: 1, count: x.rank - ax)
            let res: [Tensor]
            if dt == .float64 {
                res = try run(x, scale, bias, rows, d, statShape, Double.self, ctx)
            } else {
                res = try run(x, scale, bias, rows, d, statShape, Float.self, ctx)
            }
            return try normNarrow(res, to: x0.dataType, ctx)
        }
    }

    private func run<T: EngineFloat>(_ x: Tensor, _ scale: Tensor, _ bias: Tensor?, _ rows: Int, _ d: Int, _ statShape: [Int],
                                     _: T.Type, _ ctx: ExecutionContext) throws -> [Tensor] {
        let y = try ctx.uninitialized(T.dataType, x.shape)
        let wantStats = outputs > 1
        let meanT = wantStats && !simplified ? try ctx.uninitialized(T.dataType, statShape) : nil
        let invT = wantStats ? try ctx.uninitialized(T.dataType, statShape) : nil
        if x.count > 0 {
            let src = x.buffer(T.self).baseAddress!, dst = y.mutableBuffer(T.self).baseAddress!
            let s = scale.buffer(T.self).baseAddress!
            let b = bias?.buffer(T.self).baseAddress
            let mp = meanT?.mutableBuffer(T.self).baseAddress, ip = invT?.mutableBuffer(T.self).baseAddress
            let eps = T(epsilon)
            for i in 0..<rows {
                let p = src + i * d
                let (mean, variance) = NormKernels.stats(p, d, centered: !simplified)
                let inv = 1 / (variance + eps).squareRoot()
                NormKernels.scaled(p, dst + i * d, d, mean, inv, s, b)
                mp?[i] = mean
                ip?[i] = inv
            }
        } else {
            if let meanT { meanT.storage.base.initializeMemory(as: UInt8.self, repeating: 0, count: meanT.byteCount) }
            if let invT { invT.storage.base.initializeMemory(as: UInt8.self, repeating: 0, count: invT.byteCount) }
        }
        var out = [y]
        if simplified {
            if let invT { out.append(invT) }
        } else {
            if let meanT { out.append(meanT) }
            if let invT { out.append(invT) }
        }
        return out
    }
}

/// com.microsoft SkipLayerNormalization / SkipSimplifiedLayerNormalization: normalizes input + skip (+ bias)
/// over the last dimension, then scales by gamma (+ beta). Outputs: output, mean, inv_std_var,
/// input_skip_bias_sum.
struct SkipLayerNormOp: Operator {
    let epsilon: Float
    let simplified: Bool

    func run(_ inputs: [Tensor?], _ ctx: ExecutionContext) throws -> [Tensor] {
        let x0 = try inputs.required(0)
        let skip0 = try inputs.required(1, "skip")
        let gamma0 = try inputs.required(2, "gamma")
        let beta0 = simplified ? nil : inputs.optional(3)
        let bias0 = simplified ? inputs.optional(3) : inputs.optional(4)
        return try NormFloat.compute(x0.dataType, "SkipLayerNormalization") { dt in
            guard x0.rank >= 1, let h = x0.shape.last else {
                throw EngineError(.shapeMismatch, "input must have rank >= 1, got shape \(x0.shape)")
            }
            let x = try normWiden(x0, ctx)
            var skip = try normWiden(skip0, ctx)
            if skip.dataType != dt { skip = try CastOp.cast(skip, to: dt, ctx) }
            guard skip.count > 0 || x.count == 0, skip.shape.last == h, x.count % Swift.max(skip.count, 1) == 0 else {
                throw EngineError(.shapeMismatch, "skip of shape \(skip.shape) does not match input of shape \(x.shape)")
            }
            let gamma = try NormKernels.param(gamma0, dt, [h], "gamma", ctx)
            let beta = try beta0.map { try NormKernels.param($0, dt, [h], "beta", ctx) }
            let bias = try bias0.map { try NormKernels.param($0, dt, [h], "bias", ctx) }
            let res: [Tensor]
            if dt == .float64 {
                res = try run(x, skip, gamma, beta, bias, h, Double.self, ctx)
            } else {
                res = try run(x, skip, gamma, beta, bias, h, Float.self, ctx)
            }
            return try normNarrow(res, to: x0.dataType, ctx)
        }
    }

    private func run<T: EngineFloat>(_ x: Tensor, _ skip: Tensor, _ gamma: Tensor, _ beta: Tensor?, _ bias: Tensor?, _ h: Int,
                                     _: T.Type, _ ctx: ExecutionContext) throws -> [Tensor] {
        let rows = h == 0 ? 0 : x.count / h
        let statShape = Array(x.shape.dropLast()) + [1]
        let y = try ctx.uninitialized(T.dataType, x.shape)
        let sum = try ctx.uninitialized(T.dataType, x.shape)
        let meanT = try ctx.zeros(T.dataType, statShape)
        let invT = try ctx.zeros(T.dataType, statShape)
        if rows > 0 {
            let src = x.buffer(T.self).baseAddress!, sk = skip.buffer(T.self).baseAddress!
            let skipRows = skip.count / h
            let g = gamma.buffer(T.self).baseAddress!
            let be = beta?.buffer(T.self).baseAddress, bi = bias?.buffer(T.self).baseAddress
            let dst = y.mutableBuffer(T.self).baseAddress!, sp = sum.mutableBuffer(T.self).baseAddress!
            let mp = meanT.mutableBuffer(T.self).baseAddress!, ip = invT.mutableBuffer(T.self).baseAddress!
            let eps = T(epsilon)
            for i in 0..<rows {
                let p = src + i * h, s = sk + (i % skipRows) * h, q = sp + i * h
                if let bi {
                    for j in 0..<h { q[j] = p[j] + s[j] + bi[j] }
                } else {
                    for j in 0..<h { q[j] = p[j] + s[j] }
                }
                let (mean, variance) = NormKernels.stats(UnsafePointer(q), h, centered: !simplified)
                let inv = 1 / (variance + eps).squareRoot()
                NormKernels.scaled(UnsafePointer(q), dst + i * h, h, mean, inv, g, be)
                mp[i] = mean
                ip[i] = inv
            }
        }
        return [y, meanT, invT, sum]
    }
}

// MARK: - InstanceNormalization, GroupNormalization

/// Normalizes each (n, group) block of an [N, C, ...] tensor; InstanceNormalization is one channel per group.
/// Scale and bias are per channel, or per group (GroupNormalization opset 18).
struct GroupNormOp: Operator {
    /// nil: one group per channel (InstanceNormalization).
    let groups: Int?
    let epsilon: Float

    func run(_ inputs: [Tensor?], _ ctx: ExecutionContext) throws -> [Tensor] {
        let x0 = try inputs.required(0)
        let scale = try inputs.required(1, "scale"), bias = try inputs.required(2, "bias")
        let what = groups == nil ? "InstanceNormalization" : "GroupNormalization"
        return try NormFloat.compute(x0.dataType, what) { dt in
            guard x0.rank >= 2 else { throw EngineError(.shapeMismatch, "\(what) needs an input of rank >= 2, got shape \(x0.shape)") }
            let x = try normWiden(x0, ctx)
            let c = x.shape[1]
            let g = groups ?? c
            guard g > 0, c % g == 0 else {
                throw EngineError(.invalidArgument, "\(what): \(c) channels cannot be split into \(g) groups")
            }
            let sv = try scale.doubleValues(), bv = try bias.doubleValues()
            func perChannel(_ v: [Double], _ name: String) throws -> [Double] {
                if v.count == c { return v }
                if v.count == g { return (0..<c).map { v[$0 / (c / g)] } }
                throw EngineError(.shapeMismatch, "\(what): \(name) has \(v.count) elements, expected \(c) (channels) or \(g) (groups)")
            }
            let sc = try perChannel(sv, "scale"), bc = try perChannel(bv, "bias")
            let y: Tensor
            if dt == .float64 {
                y = try run(x, g, sc, bc, Double.self, ctx)
            } else {
                y = try run(x, g, sc, bc, Float.self, ctx)
            }
            return try normNarrow([y], to: x0.dataType, ctx)
        }
    }

    private func run<T: EngineFloat>(_ x: Tensor, _ g: Int, _ scale: [Double], _ bias: [Double], _: T.Type, _ ctx: ExecutionContext) throws -> Tensor {
        let y = try ctx.uninitialized(T.dataType, x.shape)
        if x.count == 0 { return y }
        let n = x.shape[0], c = x.shape[1]
        let spatial = x.shape[2...].reduce(1, *)
        let cpg = c / g
        let d = cpg * spatial
        let src = x.buffer(T.self).baseAddress!, dst = y.mutableBuffer(T.self).baseAddress!
        let eps = T(epsilon)
        for i in 0..<n {
            for gi in 0..<g {
                let base = (i * g + gi) * d
                let (mean, variance) = NormKernels.stats(src + base, d, centered: true)
                let inv = 1 / (variance + eps).squareRoot()
                for ci in 0..<cpg {
                    let ch = gi * cpg + ci
                    let k = inv * T(double: scale[ch])
                    let off = T(double: bias[ch]) - mean * k
                    let o = base + ci * spatial
                    NormKernels.affine(src + o, dst + o, spatial, k, off)
                }
            }
        }
        return y
    }
}

// MARK: - BatchNormalization

struct BatchNormOp: Operator {
    let epsilon: Float
    let momentum: Float
    let training: Bool

    func run(_ inputs: [Tensor?], _ ctx: ExecutionContext) throws -> [Tensor] {
        let x0 = try inputs.required(0)
        let scale = try inputs.required(1, "scale"), bias = try inputs.required(2, "B")
        let mean = try inputs.required(3, "input_mean"), variance = try inputs.required(4, "input_var")
        return try NormFloat.compute(x0.dataType, "BatchNormalization") { dt in
            let x = try normWiden(x0, ctx)
            let c = x.rank >= 2 ? x.shape[1] : 1
            let n = x.rank >= 1 ? x.shape[0] : 1
            let spatial = x.rank >= 2 ? x.shape[2...].reduce(1, *) : 1
            let sv = try scale.doubleValues(), bv = try bias.doubleValues()
            let mv = try mean.doubleValues(), vv = try variance.doubleValues()
            // Per channel ([C]) or, for the old `spatial = 0` form, per channel and position ([C, D1, ...]).
            let p = sv.count
            guard p == c || (p == c * spatial && p > 0), bv.count == p, mv.count == p, vv.count == p else {
                throw EngineError(.shapeMismatch, "BatchNormalization: scale, B, mean and var must have \(c) elements (got \(sv.count), \(bv.count), \(mv.count), \(vv.count)) for input \(x.shape)")
            }
            var useMean = mv, useVar = vv
            var extra: [Tensor] = []
            if training {
                guard p == c else { throw EngineError(.invalidArgument, "BatchNormalization training mode needs per-channel parameters") }
                let (bm, bvar) = try batchStats(x, n, c, spatial)
                useMean = bm
                useVar = bvar
                let m = Double(momentum)
                let runMean = (0..<c).map { mv[$0] * m + bm[$0] * (1 - m) }
                let runVar = (0..<c).map { vv[$0] * m + bvar[$0] * (1 - m) }
                let outType = mean.dataType.isFloatingPoint ? mean.dataType : x0.dataType
                extra = [try CastOp.fromDoubles(runMean, shape: [c], to: outType, ctx), try CastOp.fromDoubles(runVar, shape: [c], to: outType, ctx)]
            }
            var k = [Double](repeating: 0, count: p), off = [Double](repeating: 0, count: p)
            for i in 0..<p {
                k[i] = sv[i] / (useVar[i] + Double(epsilon)).squareRoot()
                off[i] = bv[i] - useMean[i] * k[i]
            }
            let y: Tensor
            if dt == .float64 {
                y = try apply(x, n, c, spatial, k, off, Double.self, ctx)
            } else {
                y = try apply(x, n, c, spatial, k, off, Float.self, ctx)
            }
            return try normNarrow([y], to: x0.dataType, ctx) + extra
        }
    }

    private func batchStats(_ x: Tensor, _ n: Int, _ c: Int, _ spatial: Int) throws -> ([Double], [Double]) {
        let v = try x.doubleValues()
        var mean = [Double](repeating: 0, count: c), variance = [Double](repeating: 0, count: c)
        let count = Double(Swift.max(n * spatial, 1))
        for i in 0..<n { for ch in 0..<c { let o = (i * c + ch) * spatial; for s in 0..<spatial { mean[ch] += v[o + s] } } }
        for ch in 0..<c { mean[ch] /= count }
        for i in 0..<n { for ch in 0..<c { let o = (i * c + ch) * spatial; for s in 0..<spatial { let d = v[o + s] - mean[ch]; variance[ch] += d * d } } }
        for ch in 0..<c { variance[ch] /= count }
        return (mean, variance)
    }

    private func apply<T: EngineFloat>(_ x: Tensor, _ n: Int, _ c: Int, _ spatial: Int, _ k: [Double], _ off: [Double],
                                       _: T.Type, _ ctx: ExecutionContext) throws -> Tensor {
        let y = try ctx.uninitialized(T.dataType, x.shape)
        if x.count == 0 { return y }
        let src = x.buffer(T.self).baseAddress!, dst = y.mutableBuffer(T.self).baseAddress!
        let kt = k.map { T(double: $0) }, ot = off.map { T(double: $0) }
        if k.count == c {
            for i in 0..<n {
                for ch in 0..<c {
                    let o = (i * c + ch) * spatial
                    NormKernels.affine(src + o, dst + o, spatial, kt[ch], ot[ch])
                }
            }
        } else {
            let per = c * spatial
            for i in 0..<n {
                for j in 0..<per { dst[i * per + j] = src[i * per + j] * kt[j] + ot[j] }
            }
        }
        return y
    }
}

// MARK: - LRN

struct LRNOp: Operator {
    let size: Int
    let alpha: Float
    let beta: Float
    let bias: Float

    func run(_ inputs: [Tensor?], _ ctx: ExecutionContext) throws -> [Tensor] {
        let x0 = try inputs.required(0)
        return try NormFloat.compute(x0.dataType, "LRN") { dt in
            guard x0.rank >= 2 else { throw EngineError(.shapeMismatch, "LRN needs an input of rank >= 2, got shape \(x0.shape)") }
            guard size >= 1 else { throw EngineError(.invalidArgument, "LRN size must be >= 1, got \(size)") }
            let x = try normWiden(x0, ctx)
            let y = dt == .float64 ? try run(x, Double.self, ctx) : try run(x, Float.self, ctx)
            return try normNarrow([y], to: x0.dataType, ctx)
        }
    }

    private func run<T: EngineFloat>(_ x: Tensor, _: T.Type, _ ctx: ExecutionContext) throws -> Tensor {
        let y = try ctx.uninitialized(T.dataType, x.shape)
        if x.count == 0 { return y }
        let n = x.shape[0], c = x.shape[1], s = x.shape[2...].reduce(1, *)
        let before = (size - 1) / 2, after = size - 1 - before
        let src = x.buffer(T.self).baseAddress!, dst = y.mutableBuffer(T.self).baseAddress!
        let window = UnsafeMutablePointer<T>.allocate(capacity: s)
        defer { window.deallocate() }
        let a = T(alpha) / T(size), b = T(bias), e = -T(beta)
        for i in 0..<n {
            let base = src + i * c * s, obase = dst + i * c * s
            window.initialize(repeating: 0, count: s)
            // Channels [0, after) start the window of channel 0.
            for ch in 0..<Swift.min(after, c) { let p = base + ch * s; for k in 0..<s { window[k] += p[k] * p[k] } }
            for ch in 0..<c {
                let add = ch + after, drop = ch - before - 1
                if add < c { let p = base + add * s; for k in 0..<s { window[k] += p[k] * p[k] } }
                if drop >= 0 { let p = base + drop * s; for k in 0..<s { window[k] -= p[k] * p[k] } }
                let p = base + ch * s, q = obase + ch * s
                for k in 0..<s { q[k] = p[k] * T.pow(b + a * Swift.max(window[k], 0), e) }
            }
        }
        return y
    }
}

// MARK: - LpNormalization

struct LpNormOp: Operator {
    let axis: Int
    let p: Int

    func run(_ inputs: [Tensor?], _ ctx: ExecutionContext) throws -> [Tensor] {
        let x0 = try inputs.required(0)
        guard p == 1 || p == 2 else { throw EngineError(.invalidArgument, "LpNormalization supports p = 1 or 2, got \(p)") }
        return try NormFloat.compute(x0.dataType, "LpNormalization") { dt in
            let x = try normWiden(x0, ctx)
            let y = dt == .float64 ? try run(x, Double.self, ctx) : try run(x, Float.self, ctx)
            return try normNarrow([y], to: x0.dataType, ctx)
        }
    }

    private func run<T: EngineFloat>(_ x: Tensor, _: T.Type, _ ctx: ExecutionContext) throws -> Tensor {
        let y = try ctx.uninitialized(T.dataType, x.shape)
        if x.count == 0 { return y }
        let (a, r, b) = x.rank == 0 ? (1, 1, 1) : ReduceSupport.split(x.shape, try Shape.axis(axis, rank: x.rank))
        let src = x.buffer(T.self).baseAddress!, dst = y.mutableBuffer(T.self).baseAddress!
        let norms = UnsafeMutablePointer<T>.allocate(capacity: b)
        defer { norms.deallocate() }
        for i in 0..<a {
            let base = src + i * r * b, obase = dst + i * r * b
            norms.initialize(repeating: 0, count: b)
            for j in 0..<r {
                let row = base + j * b
                if p == 1 { for k in 0..<b { norms[k] += Swift.abs(row[k]) } } else { for k in 0..<b { norms[k] += row[k] * row[k] } }
            }
            for k in 0..<b {
                let v = p == 1 ? norms[k] : norms[k].squareRoot()
                norms[k] = v == 0 ? 0 : 1 / v
            }
            for j in 0..<r {
                let row = base + j * b, orow = obase + j * b
                for k in 0..<b { orow[k] = row[k] * norms[k] }
            }
        }
        return y
    }
}

// MARK: - MeanVarianceNormalization

/// (X - mean) / (sqrt(variance) + 1e-9) with statistics over `axes` (the ONNX function's definition).
struct MeanVarianceNormOp: Operator {
    let axes: [Int]

    func run(_ inputs: [Tensor?], _ ctx: ExecutionContext) throws -> [Tensor] {
        let x0 = try inputs.required(0)
        return try NormFloat.compute(x0.dataType, "MeanVarianceNormalization") { dt in
            let x = try normWiden(x0, ctx)
            var reduced = [Bool](repeating: false, count: x.rank)
            for a in axes {
                let axis = try Shape.axis(a, rank: x.rank)
                guard axis < x.rank else { throw EngineError(.invalidArgument, "MeanVarianceNormalization: axis \(a) for a scalar input") }
                reduced[axis] = true
            }
            let kept = (0..<x.rank).filter { !reduced[$0] }, red = (0..<x.rank).filter { reduced[$0] }
            let perm = kept + red
            let t = try ReduceSupport.permute(x, perm, ctx)
            let rows = kept.reduce(1) { $0 * x.shape[$1] }, d = red.reduce(1) { $0 * x.shape[$1] }
            let yt = dt == .float64 ? try run(t, rows, d, Double.self, ctx) : try run(t, rows, d, Float.self, ctx)
            var inverse = [Int](repeating: 0, count: perm.count)
            for (i, p) in perm.enumerated() { inverse[p] = i }
            let y = try ReduceSupport.permute(yt, inverse, ctx)
            return try normNarrow([y], to: x0.dataType, ctx)
        }
    }

    private func run<T: EngineFloat>(_ x: Tensor, _ rows: Int, _ d: Int, _: T.Type, _ ctx: ExecutionContext) throws -> Tensor {
        let y = try ctx.uninitialized(T.dataType, x.shape)
        if x.count == 0 { return y }
        let src = x.buffer(T.self).baseAddress!, dst = y.mutableBuffer(T.self).baseAddress!
        for i in 0..<rows {
            let (mean, variance) = NormKernels.stats(src + i * d, d, centered: true)
            let k = 1 / (variance.squareRoot() + T(1e-9))
            NormKernels.affine(src + i * d, dst + i * d, d, k, -mean * k)
        }
        return y
    }
}

// MARK: - Registration

extension StandardOperators {
    static func registerNormalization(_ r: inout OperatorRegistry) {
        r.register("BatchNormalization") { c in
            let trainingMode = try c.int("training_mode", default: 0) != 0
            return BatchNormOp(epsilon: try c.float("epsilon", default: 1e-5), momentum: try c.float("momentum", default: 0.9),
                               training: c.opset >= 14 && trainingMode)
        }
        r.register("InstanceNormalization") { c in
            GroupNormOp(groups: nil, epsilon: try c.float("epsilon", default: 1e-5))
        }
        r.register("GroupNormalization") { c in
            guard let g = try c.int("num_groups") else { throw c.error(.invalidModel, "GroupNormalization needs 'num_groups'") }
            return GroupNormOp(groups: g, epsilon: try c.float("epsilon", default: 1e-5))
        }
        r.register("LayerNormalization") { c in
            LayerNormOp(axis: try c.int("axis", default: -1), epsilon: try c.float("epsilon", default: 1e-5), simplified: false, outputs: c.outputCount)
        }
        r.register("RMSNormalization") { c in
            LayerNormOp(axis: try c.int("axis", default: -1), epsilon: try c.float("epsilon", default: 1e-5), simplified: true, outputs: 1)
        }
        // onnxruntime registers SimplifiedLayerNormalization in the default domain; exporters also use com.microsoft.
        for domain in ["", "com.microsoft"] {
            r.register("SimplifiedLayerNormalization", domain: domain) { c in
                LayerNormOp(axis: try c.int("axis", default: -1), epsilon: try c.float("epsilon", default: 1e-5), simplified: true, outputs: c.outputCount)
            }
        }
        r.register("LayerNormalization", domain: "com.microsoft") { c in
            LayerNormOp(axis: try c.int("axis", default: -1), epsilon: try c.float("epsilon", default: 1e-5), simplified: false, outputs: c.outputCount)
        }
        r.register("SkipLayerNormalization", domain: "com.microsoft") { c in
            SkipLayerNormOp(epsilon: try c.float("epsilon", default: 1e-12), simplified: false)
        }
        r.register("SkipSimplifiedLayerNormalization", domain: "com.microsoft") { c in
            SkipLayerNormOp(epsilon: try c.float("epsilon", default: 1e-12), simplified: true)
        }
        r.register("LRN") { c in
            guard let size = try c.int("size") else { throw c.error(.invalidModel, "LRN needs 'size'") }
            return LRNOp(size: size, alpha: try c.float("alpha", default: 1e-4), beta: try c.float("beta", default: 0.75),
                         bias: try c.float("bias", default: 1))
        }
        r.register("LpNormalization") { c in
            LpNormOp(axis: try c.int("axis", default: -1), p: try c.int("p", default: 2))
        }
        r.register("MeanVarianceNormalization") { c in
            MeanVarianceNormOp(axes: try c.ints("axes") ?? [0, 2, 3])
        }
    }
}

extension BatchNormOp: ShapeInferring {
    func inferFacts(_ inputs: [ValueFact?], _ ctx: ShapeInferenceContext) throws -> [ValueFact] {
        guard let x = inputs.first ?? nil else { return [] }
        return [ValueFact(dataType: x.dataType, shape: x.shape)]
    }
}

extension LayerNormOp: ShapeInferring {
    func inferFacts(_ inputs: [ValueFact?], _ ctx: ShapeInferenceContext) throws -> [ValueFact] {
        guard let x = inputs.first ?? nil else { return [] }
        return [ValueFact(dataType: x.dataType, shape: x.shape)]
    }
}

extension GroupNormOp: ShapeInferring {
    func inferFacts(_ inputs: [ValueFact?], _ ctx: ShapeInferenceContext) throws -> [ValueFact] {
        guard let x = inputs.first ?? nil else { return [] }
        return [ValueFact(dataType: x.dataType, shape: x.shape)]
    }
}
