import BlindAITensor
import BlindAIKernels
import BlindAIGraph
import CBlindAIKernels
import Foundation

// RNN, GRU and LSTM (forward, reverse, bidirectional; layouts 0 and 1; sequence_lens; clip; activations with
// alpha/beta). Computed in float32: the input projection X*W^T for every time step is one GEMM, then each step
// adds H*R^T with another GEMM and applies the gate functions row by row.

/// A gate activation function with its alpha/beta.
enum RecurrentActivation: Sendable {
    case sigmoid, tanh, relu, softsign, softplus
    case affine(Float, Float), leakyRelu(Float), thresholdedRelu(Float), scaledTanh(Float, Float)
    case hardSigmoid(Float, Float), elu(Float)

    /// Parses activation names, consuming alpha/beta values in order for the functions that take them.
    static func parse(_ names: [String], alphas: [Float], betas: [Float]) throws -> [RecurrentActivation] {
        var ai = 0, bi = 0
        func alpha(_ d: Float) -> Float { defer { ai += 1 }; return ai < alphas.count ? alphas[ai] : d }
        func beta(_ d: Float) -> Float { defer { bi += 1 }; return bi < betas.count ? betas[bi] : d }
        return try names.map { name in
            switch name.lowercased() {
            case "sigmoid": return .sigmoid
            case "tanh": return .tanh
            case "relu": return .relu
            case "softsign": return .softsign
            case "softplus": return .softplus
            case "affine": return .affine(alpha(1), beta(0))
            case "leakyrelu": return .leakyRelu(alpha(0.01))
            case "thresholdedrelu": return .thresholdedRelu(alpha(1))
            case "scaledtanh": return .scaledTanh(alpha(1), beta(1))
            case "hardsigmoid": return .hardSigmoid(alpha(0.2), beta(0.5))
            case "elu": return .elu(alpha(1))
            default: throw EngineError(.invalidModel, "unsupported recurrent activation '\(name)'")
            }
        }
    }

    /// Applies the function in place to `n` values, clipping them first to [-clip, clip] when clip is set.
    @inline(__always)
    func apply(_ p: UnsafeMutablePointer<Float>, _ n: Int, clip: Float?) {
        if let c = clip {
            for i in 0..<n { p[i] = Swift.min(Swift.max(p[i], -c), c) }
        }
        switch self {
        case .sigmoid: RecurrentMath.sigmoid(p, n)
        case .tanh: RecurrentMath.tanh(p, n)
        case .relu: for i in 0..<n { p[i] = Swift.max(p[i], 0) }
        case .softsign: for i in 0..<n { p[i] = p[i] / (1 + Swift.abs(p[i])) }
        case .softplus: for i in 0..<n { let v = p[i]; p[i] = v > 20 ? v : Foundation.log(1 + Foundation.exp(v)) }
        case .affine(let a, let b): for i in 0..<n { p[i] = a * p[i] + b }
        case .leakyRelu(let a): for i in 0..<n { p[i] = p[i] >= 0 ? p[i] : a * p[i] }
        case .thresholdedRelu(let a): for i in 0..<n { p[i] = p[i] > a ? p[i] : 0 }
        case .scaledTanh(let a, let b): for i in 0..<n { p[i] = a * Foundation.tanh(b * p[i]) }
        case .hardSigmoid(let a, let b): for i in 0..<n { p[i] = Swift.max(0, Swift.min(1, a * p[i] + b)) }
        case .elu(let a): for i in 0..<n { p[i] = p[i] >= 0 ? p[i] : a * (Foundation.exp(p[i]) - 1) }
        }
    }
}

/// Vectorised tanh and sigmoid for the gates: a rational approximation of tanh on [-7.9, 7.9] (saturating
/// outside), absolute error below 4e-7, eight lanes at a time. sigmoid(x) = 0.5 + 0.5 tanh(x / 2).
enum RecurrentMath {
    @usableFromInline static let bound: Float = 7.90531110763549805

    /// tanh of values already clamped to [-bound, bound].
    @inline(__always)
    static func tanh8(_ c: SIMD8<Float>) -> SIMD8<Float> {
        let x2 = c * c
        var p = SIMD8<Float>(repeating: -2.76076847742355e-16)
        p = p * x2 + SIMD8(repeating: 2.00018790482477e-13)
        p = p * x2 + SIMD8(repeating: -8.60467152213735e-11)
        p = p * x2 + SIMD8(repeating: 5.12229709037114e-08)
        p = p * x2 + SIMD8(repeating: 1.48572235717979e-05)
        p = p * x2 + SIMD8(repeating: 6.37261928875436e-04)
        p = p * x2 + SIMD8(repeating: 4.89352455891786e-03)
        p = p * c
        var q = SIMD8<Float>(repeating: 1.19825839466702e-06)
        q = q * x2 + SIMD8(repeating: 1.18534705686654e-04)
        q = q * x2 + SIMD8(repeating: 2.26843463243900e-03)
        q = q * x2 + SIMD8(repeating: 4.89352518554385e-03)
        return p / q
    }

    @inline(__always)
    static func tanh1(_ x: Float) -> Float {
        let c = Swift.min(Swift.max(x, -bound), bound)
        let x2 = c * c
        var p: Float = -2.76076847742355e-16
        p = p * x2 + 2.00018790482477e-13
        p = p * x2 + -8.60467152213735e-11
        p = p * x2 + 5.12229709037114e-08
        p = p * x2 + 1.48572235717979e-05
        p = p * x2 + 6.37261928875436e-04
        p = p * x2 + 4.89352455891786e-03
        p = p * c
        var q: Float = 1.19825839466702e-06
        q = q * x2 + 1.18534705686654e-04
        q = q * x2 + 2.26843463243900e-03
        q = q * x2 + 4.89352518554385e-03
        return x.isNaN ? x : p / q
    }

    /// Clamps to [-limit, limit] (a plain loop the compiler vectorises).
    @inline(__always)
    static func clamp(_ p: UnsafeMutablePointer<Float>, _ n: Int, _ limit: Float) {
        for i in 0..<n {
            let v = p[i]
            p[i] = v < -limit ? -limit : (v > limit ? limit : v)
        }
    }

    static func tanh(_ p: UnsafeMutablePointer<Float>, _ n: Int) {
        clamp(p, n, bound)
        var i = 0
        while i + 8 <= n {
            let raw = UnsafeMutableRawPointer(p + i)
            let v = raw.loadUnaligned(as: SIMD8<Float>.self)
            raw.storeBytes(of: tanh8(v), as: SIMD8<Float>.self)
            i += 8
        }
        while i < n { p[i] = tanh1(p[i]); i += 1 }
    }

    static func sigmoid(_ p: UnsafeMutablePointer<Float>, _ n: Int) {
        clamp(p, n, 2 * bound)
        var i = 0
        let half = SIMD8<Float>(repeating: 0.5)
        while i + 8 <= n {
            let raw = UnsafeMutableRawPointer(p + i)
            let v = raw.loadUnaligned(as: SIMD8<Float>.self)
            raw.storeBytes(of: half + half * tanh8(v * half), as: SIMD8<Float>.self)
            i += 8
        }
        while i < n { p[i] = 0.5 + 0.5 * tanh1(0.5 * p[i]); i += 1 }
    }
}

extension RecurrentMath {
    /// Batch sizes up to this use the dot-product kernel below for the per-step recurrent product; larger ones
    /// use `blindai_sgemm`, whose packing of R on every call pays off only with several rows.
    static let smallBatch = 6

    /// C[m, n] (+)= A[m, k] * B[n, k]^T, all row-major with leading dimensions lda, ldb, ldc. `bt` is the same
    /// B already transposed ([k, n], leading dimension ldbt), which sgemm packs much faster (row copies).
    static func productTransB(_ m: Int, _ n: Int, _ k: Int, _ a: UnsafePointer<Float>, _ lda: Int,
                              _ b: UnsafePointer<Float>, _ ldb: Int, _ bt: UnsafePointer<Float>, _ ldbt: Int,
                              _ c: UnsafeMutablePointer<Float>, _ ldc: Int, accumulate: Bool) {
        if m <= 0 || n <= 0 { return }
        if m > smallBatch {
            blindai_sgemm(0, 0, m, n, k, 1, a, lda, bt, ldbt, accumulate ? 1 : 0, c, ldc)
            return
        }
        for i in 0..<m {
            let ar = UnsafeRawPointer(a + i * lda)
            let cr = c + i * ldc
            var j = 0
            // Four outputs at a time: the row of A is loaded once per four rows of B.
            while j + 4 <= n {
                let b0 = UnsafeRawPointer(b + j * ldb), b1 = UnsafeRawPointer(b + (j + 1) * ldb)
                let b2 = UnsafeRawPointer(b + (j + 2) * ldb), b3 = UnsafeRawPointer(b + (j + 3) * ldb)
                var s0 = SIMD8<Float>(), s1 = SIMD8<Float>(), s2 = SIMD8<Float>(), s3 = SIMD8<Float>()
                var p = 0
                while p + 8 <= k {
                    let o = p * 4
                    let x = ar.loadUnaligned(fromByteOffset: o, as: SIMD8<Float>.self)
                    s0 += x * b0.loadUnaligned(fromByteOffset: o, as: SIMD8<Float>.self)
                    s1 += x * b1.loadUnaligned(fromByteOffset: o, as: SIMD8<Float>.self)
                    s2 += x * b2.loadUnaligned(fromByteOffset: o, as: SIMD8<Float>.self)
                    s3 += x * b3.loadUnaligned(fromByteOffset: o, as: SIMD8<Float>.self)
                    p += 8
                }
                var r0 = horizontalSum(s0), r1 = horizontalSum(s1), r2 = horizontalSum(s2), r3 = horizontalSum(s3)
                let ap = a + i * lda
                while p < k {
                    let x = ap[p]
                    r0 += x * b[j * ldb + p]
                    r1 += x * b[(j + 1) * ldb + p]
                    r2 += x * b[(j + 2) * ldb + p]
                    r3 += x * b[(j + 3) * ldb + p]
                    p += 1
                }
                if accumulate {
                    cr[j] += r0; cr[j + 1] += r1; cr[j + 2] += r2; cr[j + 3] += r3
                } else {
                    cr[j] = r0; cr[j + 1] = r1; cr[j + 2] = r2; cr[j + 3] = r3
                }
                j += 4
            }
            while j < n {
                let bj = UnsafeRawPointer(b + j * ldb)
                var s = SIMD8<Float>()
                var p = 0
                while p + 8 <= k {
                    s += ar.loadUnaligned(fromByteOffset: p * 4, as: SIMD8<Float>.self) * bj.loadUnaligned(fromByteOffset: p * 4, as: SIMD8<Float>.self)
                    p += 8
                }
                var r = horizontalSum(s)
                while p < k { r += a[i * lda + p] * b[j * ldb + p]; p += 1 }
                cr[j] = accumulate ? cr[j] + r : r
                j += 1
            }
        }
    }

    @inline(__always)
    static func horizontalSum(_ v: SIMD8<Float>) -> Float {
        let h = v.lowHalf + v.highHalf
        return (h[0] + h[2]) + (h[1] + h[3])
    }
}

/// RNN, GRU or LSTM.
struct RecurrentOp: Operator {
    enum Kind: Sendable { case rnn, gru, lstm }
    let kind: Kind
    let directions: Int
    let reverseOnly: Bool
    /// Activations per direction (1 for RNN, 2 for GRU, 3 for LSTM each).
    let activations: [[RecurrentActivation]]
    let clip: Float?
    let hiddenSize: Int?
    let layout: Int
    let linearBeforeReset: Bool
    let inputForget: Bool

    var gateCount: Int {
        switch kind {
        case .rnn: 1
        case .gru: 3
        case .lstm: 4
        }
    }

    func run(_ inputs: [Tensor?], _ ctx: ExecutionContext) throws -> [Tensor] {
        let x = try inputs.required(0, "X")
        let dt = x.dataType
        switch dt {
        case .float32:
            return try compute(inputs, ctx)
        case .float64, .float16:
            // Computed in float32 and converted back.
            var converted: [Tensor?] = []
            for (i, t) in inputs.enumerated() {
                if let t, i != 4, t.dataType == dt { converted.append(try CastOp.cast(t, to: .float32, ctx)) } else { converted.append(t) }
            }
            return try compute(converted, ctx).map { try CastOp.cast($0, to: dt, ctx) }
        default:
            throw EngineError(.typeMismatch, "\(kind) does not support \(dt) tensors")
        }
    }

    private func checkFloat(_ t: Tensor, _ name: String) throws {
        guard t.dataType == .float32 else { throw EngineError(.typeMismatch, "\(name) must have the element type of X, got \(t.dataType)") }
    }

    private func compute(_ inputs: [Tensor?], _ ctx: ExecutionContext) throws -> [Tensor] {
        let x = try inputs.required(0, "X"), w = try inputs.required(1, "W"), r = try inputs.required(2, "R")
        try checkFloat(w, "W")
        try checkFloat(r, "R")
        guard x.rank == 3 else { throw EngineError(.shapeMismatch, "X must have rank 3, got shape \(x.shape)") }
        let seq = layout == 0 ? x.shape[0] : x.shape[1]
        let batch = layout == 0 ? x.shape[1] : x.shape[0]
        let inputSize = x.shape[2]
        let dirs = directions
        let g = gateCount
        guard r.rank == 3, r.shape[0] == dirs else {
            throw EngineError(.shapeMismatch, "R must have shape [\(dirs), \(g)*hidden, hidden], got \(r.shape)")
        }
        let hidden = r.shape[2]
        if let hs = hiddenSize, hs != hidden {
            throw EngineError(.shapeMismatch, "hidden_size is \(hs) but R has shape \(r.shape)")
        }
        let gh = g * hidden
        guard r.shape[1] == gh else { throw EngineError(.shapeMismatch, "R must have shape [\(dirs), \(gh), \(hidden)], got \(r.shape)") }
        guard w.shape == [dirs, gh, inputSize] else {
            throw EngineError(.shapeMismatch, "W must have shape [\(dirs), \(gh), \(inputSize)], got \(w.shape)")
        }
        let b = inputs.optional(3)
        if let b {
            try checkFloat(b, "B")
            guard b.shape == [dirs, 2 * gh] else { throw EngineError(.shapeMismatch, "B must have shape [\(dirs), \(2 * gh)], got \(b.shape)") }
        }
        var lengths = [Int](repeating: seq, count: batch)
        if let sl = inputs.optional(4) {
            let v = try sl.intValues()
            guard v.count == batch else { throw EngineError(.shapeMismatch, "sequence_lens must have \(batch) values, got shape \(sl.shape)") }
            for (i, l) in v.enumerated() {
                guard l >= 0 && l <= seq else { throw EngineError(.invalidArgument, "sequence_lens[\(i)] = \(l) is outside [0, \(seq)]") }
                lengths[i] = l
            }
        }
        let stateShape = layout == 0 ? [dirs, batch, hidden] : [batch, dirs, hidden]
        let initialH = inputs.optional(5)
        if let h = initialH {
            try checkFloat(h, "initial_h")
            guard h.shape == stateShape else { throw EngineError(.shapeMismatch, "initial_h must have shape \(stateShape), got \(h.shape)") }
        }
        var initialC: Tensor?
        var peepholes: Tensor?
        if kind == .lstm {
            initialC = inputs.optional(6)
            if let c = initialC {
                try checkFloat(c, "initial_c")
                guard c.shape == stateShape else { throw EngineError(.shapeMismatch, "initial_c must have shape \(stateShape), got \(c.shape)") }
            }
            peepholes = inputs.optional(7)
            if let p = peepholes {
                try checkFloat(p, "P")
                guard p.shape == [dirs, 3 * hidden] else { throw EngineError(.shapeMismatch, "P must have shape [\(dirs), \(3 * hidden)], got \(p.shape)") }
            }
        }

        let yShape = layout == 0 ? [seq, dirs, batch, hidden] : [batch, seq, dirs, hidden]
        // Y is fully written unless some sequences are shorter (their tail stays zero).
        let y = lengths.allSatisfy({ $0 == seq }) ? try ctx.uninitialized(.float32, yShape) : try ctx.zeros(.float32, yShape)
        let yh = try ctx.uninitialized(.float32, stateShape)
        let yc = try ctx.uninitialized(.float32, stateShape)
        // Scratch: the input projection for all steps, gates for one step, the recurrent product, states.
        let xw = try ctx.uninitialized(.float32, [Swift.max(seq * batch, 1), gh])
        let scratch = try ctx.zeros(.float32, [4 * batch * gh + 4 * batch * hidden + hidden])
        let sp = scratch.mutableBuffer(Float.self).baseAddress!
        let gates = sp
        let hr = sp + batch * gh
        let rh = sp + 2 * batch * gh          // GRU: r (.) H_prev
        let hState = sp + 3 * batch * gh
        let cState = hState + batch * hidden
        let temp = cState + batch * hidden    // per-row scratch of `hidden`
        let px = x.buffer(Float.self).baseAddress!
        let pw = w.buffer(Float.self).baseAddress!
        let pr = r.buffer(Float.self).baseAddress!
        let pxw = xw.mutableBuffer(Float.self).baseAddress!
        let py = y.mutableBuffer(Float.self).baseAddress!
        let pyh = yh.mutableBuffer(Float.self).baseAddress!
        let pyc = yc.mutableBuffer(Float.self).baseAddress!
        let maxLength = lengths.max() ?? 0
        let rtStorage = try ctx.uninitialized(.float32, [batch > RecurrentMath.smallBatch ? gh * hidden : 1])
        let prt = rtStorage.mutableBuffer(Float.self).baseAddress!

        for d in 0..<dirs {
            let reverse = reverseOnly || d == 1
            let acts = activations[d]
            let wd = pw + d * gh * inputSize
            let rd = pr + d * gh * hidden
            // R^T ([hidden, gh]) for the sgemm path at larger batch sizes.
            if batch > RecurrentMath.smallBatch {
                for i in 0..<gh {
                    for j in 0..<hidden { prt[j * gh + i] = rd[i * hidden + j] }
                }
            }
            let rt = UnsafePointer(prt)
            // X * W^T for every (t, b) row (rows follow X's layout).
            if seq * batch > 0 {
                blindai_sgemm(0, 1, seq * batch, gh, inputSize, 1, px, inputSize, wd, inputSize, 0, pxw, gh)
            }
            // Biases: Wb + Rb for every gate, except GRU's hidden gate keeps Rbh apart when linear_before_reset.
            var bias = [Float](repeating: 0, count: gh)
            var rbh = [Float](repeating: 0, count: hidden)
            if let b {
                let pb = b.buffer(Float.self).baseAddress! + d * 2 * gh
                for i in 0..<gh { bias[i] = pb[i] + pb[gh + i] }
                if kind == .gru {
                    for i in 0..<hidden { rbh[i] = pb[gh + 2 * hidden + i] }
                    // The hidden gate's Rbh is applied with the recurrent product (inside or outside r).
                    for i in 0..<hidden { bias[2 * hidden + i] = pb[2 * hidden + i] }
                }
            }
            // Initial states.
            for bi in 0..<batch {
                let o = layout == 0 ? (d * batch + bi) * hidden : (bi * dirs + d) * hidden
                if let h = initialH {
                    (hState + bi * hidden).update(from: h.buffer(Float.self).baseAddress! + o, count: hidden)
                } else {
                    (hState + bi * hidden).update(repeating: 0, count: hidden)
                }
                if let c = initialC {
                    (cState + bi * hidden).update(from: c.buffer(Float.self).baseAddress! + o, count: hidden)
                } else {
                    (cState + bi * hidden).update(repeating: 0, count: hidden)
                }
            }
            let pp = peepholes.map { $0.buffer(Float.self).baseAddress! + d * 3 * hidden }

            for s in 0..<maxLength {
                // Gather this step's projected inputs (with biases) into `gates`.
                for bi in 0..<batch where s < lengths[bi] {
                    let t = reverse ? lengths[bi] - 1 - s : s
                    let row = layout == 0 ? t * batch + bi : bi * seq + t
                    let src = pxw + row * gh, dst = gates + bi * gh
                    for i in 0..<gh { dst[i] = src[i] + bias[i] }
                }
                switch kind {
                case .rnn:
                    RecurrentMath.productTransB(batch, gh, hidden, hState, hidden, rd, hidden, rt, gh, gates, gh, accumulate: true)
                    for bi in 0..<batch where s < lengths[bi] {
                        let gp = gates + bi * gh
                        acts[0].apply(gp, hidden, clip: clip)
                        (hState + bi * hidden).update(from: gp, count: hidden)
                    }
                case .lstm:
                    RecurrentMath.productTransB(batch, gh, hidden, hState, hidden, rd, hidden, rt, gh, gates, gh, accumulate: true)
                    for bi in 0..<batch where s < lengths[bi] {
                        let gp = gates + bi * gh
                        let gi = gp, go = gp + hidden, gf = gp + 2 * hidden, gc = gp + 3 * hidden
                        let cp = cState + bi * hidden, hp = hState + bi * hidden
                        if let pp {
                            for k in 0..<hidden {
                                gi[k] += pp[k] * cp[k]
                                gf[k] += pp[2 * hidden + k] * cp[k]
                            }
                        }
                        acts[0].apply(gi, hidden, clip: clip)
                        if inputForget {
                            for k in 0..<hidden { gf[k] = 1 - gi[k] }
                        } else {
                            acts[0].apply(gf, hidden, clip: clip)
                        }
                        acts[1].apply(gc, hidden, clip: clip)
                        for k in 0..<hidden { cp[k] = gf[k] * cp[k] + gi[k] * gc[k] }
                        if let pp {
                            for k in 0..<hidden { go[k] += pp[hidden + k] * cp[k] }
                        }
                        acts[0].apply(go, hidden, clip: clip)
                        temp.update(from: cp, count: hidden)
                        acts[2].apply(temp, hidden, clip: nil)
                        for k in 0..<hidden { hp[k] = go[k] * temp[k] }
                    }
                case .gru:
                    // z and r: gates[:, 0..<2H] += H_prev * R[z,r]^T.
                    if linearBeforeReset {
                        RecurrentMath.productTransB(batch, gh, hidden, hState, hidden, rd, hidden, rt, gh, hr, gh, accumulate: false)
                    } else {
                        RecurrentMath.productTransB(batch, 2 * hidden, hidden, hState, hidden, rd, hidden, rt, gh, hr, gh, accumulate: false)
                    }
                    for bi in 0..<batch where s < lengths[bi] {
                        let gp = gates + bi * gh, hrp = hr + bi * gh
                        for k in 0..<(2 * hidden) { gp[k] += hrp[k] }
                        acts[0].apply(gp, 2 * hidden, clip: clip)
                        if linearBeforeReset {
                            let rr = gp + hidden, gH = gp + 2 * hidden, hh = hrp + 2 * hidden
                            for k in 0..<hidden { gH[k] += rr[k] * (hh[k] + rbh[k]) }
                        } else {
                            let rr = gp + hidden, hp = hState + bi * hidden, dst = rh + bi * hidden
                            for k in 0..<hidden { dst[k] = rr[k] * hp[k] }
                        }
                    }
                    if !linearBeforeReset {
                        // gates[:, 2H..<3H] += (r (.) H_prev) * R_h^T + Rbh.
                        RecurrentMath.productTransB(batch, hidden, hidden, rh, hidden, rd + 2 * hidden * hidden, hidden, rt + 2 * hidden, gh,
                                                    hr, gh, accumulate: false)
                        for bi in 0..<batch where s < lengths[bi] {
                            let gH = gates + bi * gh + 2 * hidden, hrp = hr + bi * gh
                            for k in 0..<hidden { gH[k] += hrp[k] + rbh[k] }
                        }
                    }
                    for bi in 0..<batch where s < lengths[bi] {
                        let gp = gates + bi * gh, z = gp, hcand = gp + 2 * hidden, hp = hState + bi * hidden
                        acts[1].apply(hcand, hidden, clip: clip)
                        for k in 0..<hidden { hp[k] = (1 - z[k]) * hcand[k] + z[k] * hp[k] }
                    }
                }
                // Y at each batch entry's own time index.
                for bi in 0..<batch where s < lengths[bi] {
                    let t = reverse ? lengths[bi] - 1 - s : s
                    let o = layout == 0 ? ((t * dirs + d) * batch + bi) * hidden : ((bi * seq + t) * dirs + d) * hidden
                    (py + o).update(from: hState + bi * hidden, count: hidden)
                }
            }
            for bi in 0..<batch {
                let o = layout == 0 ? (d * batch + bi) * hidden : (bi * dirs + d) * hidden
                (pyh + o).update(from: hState + bi * hidden, count: hidden)
                (pyc + o).update(from: cState + bi * hidden, count: hidden)
            }
        }
        return kind == .lstm ? [y, yh, yc] : [y, yh]
    }
}

extension StandardOperators {
    static func registerRecurrent(_ r: inout OperatorRegistry) {
        r.register("RNN") { c in try buildRecurrent(.rnn, &c) }
        r.register("GRU") { c in try buildRecurrent(.gru, &c) }
        r.register("LSTM") { c in try buildRecurrent(.lstm, &c) }
    }

    private static func buildRecurrent(_ kind: RecurrentOp.Kind, _ c: inout OpBuildContext) throws -> any Operator {
        let direction = try c.string("direction", default: "forward")
        let dirs: Int
        switch direction {
        case "forward", "reverse": dirs = 1
        case "bidirectional": dirs = 2
        default: throw c.error(.invalidModel, "unknown direction '\(direction)'")
        }
        let perDirection: Int
        let defaults: [String]
        switch kind {
        case .rnn: perDirection = 1; defaults = ["Tanh"]
        case .gru: perDirection = 2; defaults = ["Sigmoid", "Tanh"]
        case .lstm: perDirection = 3; defaults = ["Sigmoid", "Tanh", "Tanh"]
        }
        var names = try c.strings("activations") ?? []
        if names.isEmpty {
            names = Array([[String]](repeating: defaults, count: dirs).joined())
        } else if names.count == perDirection && dirs == 2 {
            names += names
        }
        guard names.count == perDirection * dirs else {
            throw c.error(.invalidModel, "\(kind) with direction \(direction) needs \(perDirection * dirs) activations, got \(names.count)")
        }
        let acts = try RecurrentActivation.parse(names, alphas: try c.floats("activation_alpha") ?? [],
                                                 betas: try c.floats("activation_beta") ?? [])
        let perDir = (0..<dirs).map { Array(acts[($0 * perDirection)..<(($0 + 1) * perDirection)]) }
        let layout = try c.int("layout", default: 0)
        guard layout == 0 || layout == 1 else { throw c.error(.invalidModel, "layout must be 0 or 1, got \(layout)") }
        let clip = try c.float("clip")
        if let clip, !(clip > 0) { throw c.error(.invalidModel, "clip must be positive, got \(clip)") }
        return RecurrentOp(kind: kind, directions: dirs, reverseOnly: direction == "reverse", activations: perDir,
                           clip: clip, hiddenSize: try c.int("hidden_size"), layout: layout,
                           linearBeforeReset: try c.int("linear_before_reset", default: 0) != 0,
                           inputForget: try c.int("input_forget", default: 0) != 0)
    }
}
