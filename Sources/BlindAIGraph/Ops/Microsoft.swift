import BlindAITensor
import CBlindAIKernels
import Foundation

// MARK: - Float conversion helpers (attention computes in float32 for float16 / bfloat16 inputs)

enum AttentionFloats {
    static func isSupported(_ dt: DataType) -> Bool {
        dt == .float32 || dt == .float16 || dt == .bfloat16 || dt == .float64
    }

    /// Values of a mask / bias tensor as floats (bool: true -> 0, false -> `masked`).
    static func additive(_ t: Tensor, boolMasked: Float) throws -> [Float] {
        switch t.dataType {
        case .bool: return t.buffer(Bool.self).map { $0 ? 0 : boolMasked }
        case .float32: return Array(t.buffer(Float.self))
        case .float16: return t.buffer(Float16.self).map { Float($0) }
        case .bfloat16: return t.buffer(UInt16.self).map { Float(bitPattern: UInt32($0) << 16) }
        case .float64: return t.buffer(Double.self).map { Float($0) }
        default: throw EngineError(.typeMismatch, "attention mask must be bool or float, got \(t.dataType)")
        }
    }
}

/// Vectorised softmax for attention rows.
enum AttentionMath {
    /// exp(x) (Cephes-style range reduction and polynomial, about 1 ulp), written with selects and bit
    /// operations only so that loops calling it vectorise.
    @inline(__always)
    static func exp(_ v: Float) -> Float {
        let x0 = v < -87.3 ? -87.3 : (v > 88.3 ? 88.3 : v)
        // Round x / ln 2 to the nearest integer with the 1.5 * 2^23 trick; t's low bits hold that integer.
        let t = x0 * 1.44269504088896341 + 12582912.0
        let n = t - 12582912.0
        var x = x0 - n * 0.693359375
        x = x + n * 2.12194440e-4
        var p: Float = 1.9875691500e-4
        p = p * x + 1.3981999507e-3
        p = p * x + 8.3334519073e-3
        p = p * x + 4.1665795894e-2
        p = p * x + 1.6666665459e-1
        p = p * x + 5.0000001201e-1
        p = p * (x * x) + x + 1
        let scale = Float(bitPattern: (t.bitPattern &- 0x4B40_0000 &+ 127) &<< 23)
        return p * scale
    }

    /// In-place softmax of row[0..<n]; a row whose maximum is -inf (fully masked) becomes zeros.
    static func softmax(_ row: UnsafeMutablePointer<Float>, _ n: Int) {
        var m = -Float.infinity
        for j in 0..<n { let v = row[j]; m = v > m ? v : m }
        if m == -Float.infinity {
            for j in 0..<n { row[j] = 0 }
            return
        }
        for j in 0..<n { row[j] = exp(row[j] - m) }
        var sv = SIMD8<Float>(repeating: 0)
        var j = 0
        while j + 8 <= n {
            sv += UnsafeRawPointer(row + j).loadUnaligned(as: SIMD8<Float>.self)
            j += 8
        }
        var sum = sv.sum()
        while j < n { sum += row[j]; j += 1 }
        let inv = sum > 0 ? 1 / sum : 0
        for j in 0..<n { row[j] *= inv }
    }
}

/// A strided view of a [batch, heads, sequence, head_size] operand in float32: element (b, h, s, d) is at
/// base + b * batch + h * head + s * row + d.
struct AttentionView {
    var base: UnsafePointer<Float>
    var batch: Int
    var head: Int
    var row: Int
}

struct AttentionOutputView {
    var base: UnsafeMutablePointer<Float>
    var batch: Int
    var head: Int
    var row: Int
}

/// Scaled dot-product attention over strided views, with grouped heads (query head h reads key/value head
/// h / (qHeads / kvHeads)).
struct AttentionCore {
    var batch: Int
    var qHeads: Int
    var kvHeads: Int
    var qLength: Int
    var kvLength: Int
    var headSize: Int
    var valueHeadSize: Int
    var scale: Float
    var softcap: Float = 0
    /// Rounds every intermediate to bfloat16 as a bfloat16 reference computation does (bfloat16 inputs only).
    var emulateBF16 = false

    @inline(__always)
    static func bf16(_ f: Float) -> Float {
        if f.isNaN { return f }
        let bits = f.bitPattern
        return Float(bitPattern: (bits &+ (((bits >> 16) & 1) + 0x7FFF)) & 0xFFFF_0000)
    }

    /// Runs attention. `addBias(b, h, i, row)` adds the mask/bias of query row i (kvLength values) to the scores.
    /// `probe(stage, b, h, scores)` sees the [qLength, kvLength] scores of one head after each stage:
    /// 0 raw scaled QK, 1 after softcap, 2 after bias, 3 after softmax.
    func run(q: AttentionView, k: AttentionView, v: AttentionView, y: AttentionOutputView,
             addBias: ((Int, Int, Int, UnsafeMutablePointer<Float>) -> Void)?,
             probe: ((Int, Int, Int, UnsafePointer<Float>) -> Void)? = nil) {
        let S = qLength, T = kvLength
        let group = Swift.max(qHeads / Swift.max(kvHeads, 1), 1)
        let scores = UnsafeMutablePointer<Float>.allocate(capacity: Swift.max(S * T, 1))
        defer { scores.deallocate() }
        for b in 0..<batch {
            for h in 0..<qHeads {
                let kvh = h / group
                let qp = q.base + b * q.batch + h * q.head
                let kp = k.base + b * k.batch + kvh * k.head
                let vp = v.base + b * v.batch + kvh * v.head
                let yp = y.base + b * y.batch + h * y.head
                if T == 0 {
                    for i in 0..<S { for d in 0..<valueHeadSize { yp[i * y.row + d] = 0 } }
                    continue
                }
                if headSize > 0 {
                    blindai_sgemm(0, 1, S, T, headSize, scale, qp, q.row, kp, k.row, 0, scores, T)
                } else {
                    scores.initialize(repeating: 0, count: S * T)
                }
                if emulateBF16 { for i in 0..<(S * T) { scores[i] = Self.bf16(scores[i]) } }
                probe?(0, b, h, scores)
                if softcap > 0 {
                    let c = softcap
                    if emulateBF16 {
                        for i in 0..<(S * T) { scores[i] = Self.bf16(Self.bf16(Foundation.tanh(Self.bf16(scores[i] / c))) * c) }
                    } else {
                        for i in 0..<(S * T) { scores[i] = c * Foundation.tanh(scores[i] / c) }
                    }
                }
                probe?(1, b, h, scores)
                if let addBias {
                    for i in 0..<S { addBias(b, h, i, scores + i * T) }
                    if emulateBF16 { for i in 0..<(S * T) { scores[i] = Self.bf16(scores[i]) } }
                }
                probe?(2, b, h, scores)
                if emulateBF16 {
                    for i in 0..<S {
                        let row = scores + i * T
                        var m = -Float.infinity
                        for j in 0..<T where row[j] > m { m = row[j] }
                        if m == -Float.infinity { for j in 0..<T { row[j] = 0 }; continue }
                        var sum: Float = 0
                        for j in 0..<T {
                            let e = Self.bf16(Foundation.exp(Self.bf16(row[j] - m)))
                            row[j] = e
                            sum = j == 0 ? e : Self.bf16(sum + e)
                        }
                        for j in 0..<T { row[j] = Self.bf16(row[j] / sum) }
                    }
                }
                if !emulateBF16 {
                    for i in 0..<S { AttentionMath.softmax(scores + i * T, T) }
                }
                probe?(3, b, h, scores)
                if valueHeadSize > 0 {
                    blindai_sgemm(0, 0, S, valueHeadSize, T, 1, scores, T, vp, v.row, 0, yp, y.row)
                }
            }
        }
    }
}

/// Copies a strided [B, H, S, D] view into a contiguous [B, H, P + S, D] buffer after `past` (contiguous [B, H, P, D]).
func attentionConcat(past: UnsafePointer<Float>?, pastLength: Int, _ cur: AttentionView, batch: Int, heads: Int, length: Int, size: Int,
                     into dst: UnsafeMutablePointer<Float>) {
    let total = pastLength + length
    for b in 0..<batch {
        for h in 0..<heads {
            let d = dst + (b * heads + h) * total * size
            if let past, pastLength > 0 {
                d.update(from: past + (b * heads + h) * pastLength * size, count: pastLength * size)
            }
            let s = cur.base + b * cur.batch + h * cur.head
            for i in 0..<length {
                (d + (pastLength + i) * size).update(from: s + i * cur.row, count: size)
            }
        }
    }
}

// MARK: - ONNX Attention (opset 23+)

struct OnnxAttentionOp: Operator {
    let isCausal: Bool
    let qNumHeads: Int?
    let kvNumHeads: Int?
    let qkMode: Int
    let scale: Float?
    let softcap: Float
    let leftWindow: Int
    let rightWindow: Int
    let outputCount: Int

    func run(_ inputs: [Tensor?], _ ctx: ExecutionContext) throws -> [Tensor] {
        let Q = try inputs.required(0), K = try inputs.required(1, "K"), V = try inputs.required(2, "V")
        let dt = Q.dataType
        guard AttentionFloats.isSupported(dt) else { throw EngineError(.typeMismatch, "Attention does not support \(dt) tensors") }
        guard K.dataType == dt, V.dataType == dt else { throw EngineError(.typeMismatch, "Attention Q, K and V must have the same type") }
        guard Q.rank == K.rank, Q.rank == V.rank, Q.rank == 3 || Q.rank == 4 else {
            throw EngineError(.shapeMismatch, "Attention Q, K, V must all be 3-D or 4-D, got \(Q.shape), \(K.shape), \(V.shape)")
        }
        let B = Q.shape[0]
        guard K.shape[0] == B, V.shape[0] == B else { throw EngineError(.shapeMismatch, "Attention batch sizes differ: \(Q.shape), \(K.shape), \(V.shape)") }
        let Hq: Int, Hkv: Int, Sq: Int, Skv: Int, Dh: Int, Dv: Int
        if Q.rank == 3 {
            guard let qh = qNumHeads, let kvh = kvNumHeads, qh > 0, kvh > 0 else {
                throw EngineError(.invalidArgument, "Attention with 3-D inputs needs q_num_heads and kv_num_heads")
            }
            Hq = qh; Hkv = kvh
            guard Q.shape[2] % Hq == 0, K.shape[2] % Hkv == 0, V.shape[2] % Hkv == 0 else {
                throw EngineError(.shapeMismatch, "Attention hidden sizes \(Q.shape[2]), \(K.shape[2]), \(V.shape[2]) are not multiples of the head counts \(Hq), \(Hkv)")
            }
            Sq = Q.shape[1]; Skv = K.shape[1]
            Dh = Q.shape[2] / Hq
            Dv = V.shape[2] / Hkv
            guard K.shape[2] / Hkv == Dh else { throw EngineError(.shapeMismatch, "Attention Q and K head sizes differ") }
            guard V.shape[1] == Skv else { throw EngineError(.shapeMismatch, "Attention K and V sequence lengths differ") }
        } else {
            Hq = Q.shape[1]; Hkv = K.shape[1]; Sq = Q.shape[2]; Skv = K.shape[2]; Dh = Q.shape[3]; Dv = V.shape[3]
            guard K.shape[3] == Dh else { throw EngineError(.shapeMismatch, "Attention Q and K head sizes differ: \(Q.shape), \(K.shape)") }
            guard V.shape[1] == Hkv, V.shape[2] == Skv else { throw EngineError(.shapeMismatch, "Attention K \(K.shape) and V \(V.shape) do not agree") }
        }
        guard Hkv > 0, Hq % Hkv == 0 else { throw EngineError(.shapeMismatch, "Attention: q heads \(Hq) must be a multiple of kv heads \(Hkv)") }

        let pastK = inputs.optional(4), pastV = inputs.optional(5)
        guard (pastK == nil) == (pastV == nil) else { throw EngineError(.invalidArgument, "Attention: past_key and past_value must be given together") }
        var P = 0
        if let pk = pastK, let pv = pastV {
            guard pk.dataType == dt, pv.dataType == dt else { throw EngineError(.typeMismatch, "Attention past tensors must have the input type") }
            guard pk.rank == 4, pv.rank == 4, pk.shape[0] == B, pk.shape[1] == Hkv, pk.shape[3] == Dh,
                  pv.shape[0] == B, pv.shape[1] == Hkv, pv.shape[3] == Dv, pv.shape[2] == pk.shape[2] else {
                throw EngineError(.shapeMismatch, "Attention past_key \(pk.shape) / past_value \(pv.shape) do not match [\(B), \(Hkv), P, \(Dh)/\(Dv)]")
            }
            P = pk.shape[2]
        }
        let T = P + Skv
        var nonpad: [Int]? = nil
        if let np = inputs.optional(6) {
            let v = try np.intValues()
            guard v.count == B else { throw EngineError(.shapeMismatch, "Attention nonpad_kv_seqlen must have \(B) values, got \(v.count)") }
            guard pastK == nil else { throw EngineError(.invalidArgument, "Attention: nonpad_kv_seqlen cannot be combined with past_key") }
            // Values beyond these bounds mask nothing more (or everything), so clamping keeps the arithmetic safe.
            let bound = 2 * (T + Sq) + 2
            nonpad = v.map { Swift.min(Swift.max($0, -bound), bound) }
        }

        let qf = try FloatWidening.toFloat32(Q, ctx), kf = try FloatWidening.toFloat32(K, ctx), vf = try FloatWidening.toFloat32(V, ctx)
        func view(_ t: Tensor, heads: Int, size: Int) -> AttentionView {
            let p = t.buffer(Float.self).baseAddress!
            if t.rank == 3 { return AttentionView(base: p, batch: t.shape[1] * t.shape[2], head: size, row: heads * size) }
            return AttentionView(base: p, batch: t.shape[1] * t.shape[2] * t.shape[3], head: t.shape[2] * t.shape[3], row: t.shape[3])
        }
        var kView = view(kf, heads: Hkv, size: Dh), vView = view(vf, heads: Hkv, size: Dv)
        let qView = view(qf, heads: Hq, size: Dh)
        let wantPresent = outputCount > 1
        var presentK: Tensor? = nil, presentV: Tensor? = nil
        if pastK != nil || (wantPresent && Q.rank == 3) {
            let pk = try ctx.uninitialized(.float32, [B, Hkv, T, Dh])
            let pv = try ctx.uninitialized(.float32, [B, Hkv, T, Dv])
            let pkf = try pastK.map { try FloatWidening.toFloat32($0, ctx) }
            let pvf = try pastV.map { try FloatWidening.toFloat32($0, ctx) }
            attentionConcat(past: pkf?.buffer(Float.self).baseAddress, pastLength: P, kView, batch: B, heads: Hkv, length: Skv, size: Dh,
                            into: pk.mutableBuffer(Float.self).baseAddress!)
            attentionConcat(past: pvf?.buffer(Float.self).baseAddress, pastLength: P, vView, batch: B, heads: Hkv, length: Skv, size: Dv,
                            into: pv.mutableBuffer(Float.self).baseAddress!)
            presentK = pk
            presentV = pv
            kView = AttentionView(base: pk.buffer(Float.self).baseAddress!, batch: Hkv * T * Dh, head: T * Dh, row: Dh)
            vView = AttentionView(base: pv.buffer(Float.self).baseAddress!, batch: Hkv * T * Dv, head: T * Dv, row: Dv)
        } else if wantPresent {
            presentK = kf
            presentV = vf
        }

        // Mask, broadcast to [B, Hq, Sq, maskT] (positions past maskT are masked).
        var maskValues: [Float]? = nil
        var mStrides = [0, 0, 0, 0]
        var maskT = 0
        if let m = inputs.optional(3) {
            guard m.rank >= 1, m.rank <= 4 else { throw EngineError(.shapeMismatch, "Attention attn_mask must have rank 1 to 4, got \(m.shape)") }
            let dims = [Int](repeating: 1, count: 4 - m.rank) + m.shape
            let want = [B, Hq, Sq]
            for i in 0..<3 where dims[i] != 1 && dims[i] != want[i] {
                throw EngineError(.shapeMismatch, "Attention attn_mask of shape \(m.shape) does not broadcast to [\(B), \(Hq), \(Sq), \(T)]")
            }
            guard dims[3] <= T else { throw EngineError(.shapeMismatch, "Attention attn_mask last dimension \(dims[3]) exceeds the key length \(T)") }
            maskT = dims[3]
            let st = Shape.strides(dims)
            mStrides = (0..<4).map { dims[$0] == 1 ? 0 : st[$0] }
            maskValues = try AttentionFloats.additive(m, boolMasked: -.infinity)
        }
        let hasWindow = leftWindow >= 0 || rightWindow >= 0
        func offset(_ b: Int) -> Int {
            if pastK != nil { return P }
            if let nonpad { return nonpad[b] - Sq }
            return 0
        }
        let needBias = maskValues != nil || isCausal || hasWindow || nonpad != nil
        let left = leftWindow, right = rightWindow, causal = isCausal
        let out = try ctx.uninitialized(.float32, Q.rank == 3 ? [B, Sq, Hq * Dv] : [B, Hq, Sq, Dv])
        let yBase = out.mutableBuffer(Float.self).baseAddress!
        let yView = Q.rank == 3 ? AttentionOutputView(base: yBase, batch: Sq * Hq * Dv, head: Dv, row: Hq * Dv)
            : AttentionOutputView(base: yBase, batch: Hq * Sq * Dv, head: Sq * Dv, row: Dv)
        _ = try ctx.limits.checkedCount([Sq, T], .float32)
        var core = AttentionCore(batch: B, qHeads: Hq, kvHeads: Hkv, qLength: Sq, kvLength: T, headSize: Dh, valueHeadSize: Dv,
                                 scale: scale ?? 1 / Float(Dh).squareRoot())
        core.softcap = softcap
        var scaledQ: Tensor? = nil, scaledK: Tensor? = nil
        var qRun = qView, kRun = kView
        if dt == .bfloat16 {
            // Follow a bfloat16 computation: Q and K are each scaled by sqrt(scale), rounded, and so on.
            core.emulateBF16 = true
            let s = AttentionCore.bf16(Float((Double(scale ?? 1 / Float(Dh).squareRoot())).squareRoot()))
            core.scale = 1
            func scaled(_ v: AttentionView, heads: Int, len: Int) throws -> Tensor {
                let t = try ctx.uninitialized(.float32, [B, heads, len, Dh])
                let d = t.mutableBuffer(Float.self).baseAddress!
                for b in 0..<B { for h in 0..<heads { for i in 0..<len {
                    let src = v.base + b * v.batch + h * v.head + i * v.row
                    let o = d + ((b * heads + h) * len + i) * Dh
                    for e in 0..<Dh { o[e] = AttentionCore.bf16(src[e] * s) }
                } } }
                return t
            }
            let sq = try scaled(qView, heads: Hq, len: Sq), sk = try scaled(kView, heads: Hkv, len: T)
            scaledQ = sq; scaledK = sk
            qRun = AttentionView(base: sq.buffer(Float.self).baseAddress!, batch: Hq * Sq * Dh, head: Sq * Dh, row: Dh)
            kRun = AttentionView(base: sk.buffer(Float.self).baseAddress!, batch: Hkv * T * Dh, head: T * Dh, row: Dh)
        }
        let qkOut: Tensor? = outputCount > 3 ? try ctx.uninitialized(.float32, [B, Hq, Sq, T]) : nil
        let qkBase = qkOut?.mutableBuffer(Float.self).baseAddress
        let mode = qkMode
        withExtendedLifetime((qf, kf, vf, presentK, presentV, scaledQ, scaledK)) {
            (maskValues ?? []).withUnsafeBufferPointer { mask in
                let bias: ((Int, Int, Int, UnsafeMutablePointer<Float>) -> Void)? = !needBias ? nil : { b, h, i, row in
                    var lo = 0, hi = T - 1
                    let off = offset(b)
                    if causal { hi = Swift.min(hi, i + off) }
                    if left >= 0 { lo = Swift.max(lo, i + off - left) }
                    if right >= 0 { hi = Swift.min(hi, i + off + right) }
                    if let nonpad { hi = Swift.min(hi, nonpad[b] - 1) }
                    if mask.count > 0 {
                        let mrow = mask.baseAddress! + b * mStrides[0] + h * mStrides[1] + i * mStrides[2]
                        let ms = mStrides[3]
                        for j in 0..<Swift.min(maskT, T) { row[j] += mrow[j * ms] }
                        if maskT < T { for j in maskT..<T { row[j] = -.infinity } }
                    }
                    if lo > 0 { for j in 0..<Swift.min(lo, T) { row[j] = -.infinity } }
                    if hi < T - 1 { for j in Swift.max(hi + 1, 0)..<T { row[j] = -.infinity } }
                }
                let probe: ((Int, Int, Int, UnsafePointer<Float>) -> Void)? = qkBase.map { base in
                    { stage, b, h, scores in
                        if stage == mode {
                            (base + (b * Hq + h) * Sq * T).update(from: scores, count: Sq * T)
                        }
                    }
                }
                core.run(q: qRun, k: kRun, v: vView, y: yView, addBias: bias, probe: probe)
            }
        }
        var results = [try FloatWidening.fromFloat32(out, to: dt, ctx)]
        if outputCount > 1 {
            results.append(try FloatWidening.fromFloat32(presentK!, to: dt, ctx))
            results.append(try FloatWidening.fromFloat32(presentV!, to: dt, ctx))
        }
        if let qkOut {
            results.append(try FloatWidening.fromFloat32(qkOut, to: dt, ctx))
        }
        return results
    }
}

// MARK: - RotaryEmbedding (ONNX opset 23 and com.microsoft)

enum RotaryKernel {
    /// Rotates the first `rotaryDim` values of one head vector `x` (length headSize) into `y`.
    @inline(__always)
    static func rotate(_ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, headSize: Int, rotaryDim: Int,
                       cos: UnsafePointer<Float>, sin: UnsafePointer<Float>, interleaved: Bool) {
        let half = rotaryDim / 2
        if interleaved {
            for i in 0..<half {
                let a = x[2 * i], b = x[2 * i + 1]
                y[2 * i] = cos[i] * a - sin[i] * b
                y[2 * i + 1] = sin[i] * a + cos[i] * b
            }
        } else {
            for i in 0..<half {
                let a = x[i], b = x[i + half]
                y[i] = cos[i] * a - sin[i] * b
                y[i + half] = sin[i] * a + cos[i] * b
            }
        }
        if rotaryDim < headSize {
            for i in rotaryDim..<headSize { y[i] = x[i] }
        }
    }
}

struct RotaryEmbeddingOp: Operator {
    /// true for the com.microsoft signature (input, position_ids, cos_cache, sin_cache).
    let contrib: Bool
    let interleaved: Bool
    let numHeads: Int
    let rotaryDim: Int

    func run(_ inputs: [Tensor?], _ ctx: ExecutionContext) throws -> [Tensor] {
        let x = try inputs.required(0)
        let cosT: Tensor, sinT: Tensor, pos: Tensor?
        if contrib {
            pos = try inputs.required(1, "position_ids"); cosT = try inputs.required(2, "cos_cache"); sinT = try inputs.required(3, "sin_cache")
        } else {
            cosT = try inputs.required(1, "cos_cache"); sinT = try inputs.required(2, "sin_cache"); pos = inputs.optional(3)
        }
        guard AttentionFloats.isSupported(x.dataType) else { throw EngineError(.typeMismatch, "RotaryEmbedding does not support \(x.dataType)") }
        guard cosT.shape == sinT.shape else { throw EngineError(.shapeMismatch, "RotaryEmbedding cos_cache \(cosT.shape) and sin_cache \(sinT.shape) differ") }
        // Layout: element (b, s, n, d) at b * bs + s * ss + n * ns + d.
        let B: Int, S: Int, N: Int, H: Int, bs: Int, ss: Int, ns: Int
        if x.rank == 4 {
            // [batch, heads, sequence, head_size] (both the ONNX and the com.microsoft operator)
            B = x.shape[0]; N = x.shape[1]; S = x.shape[2]; H = x.shape[3]
            bs = N * S * H; ss = H; ns = S * H
        } else if x.rank == 3 {
            B = x.shape[0]; S = x.shape[1]
            var n = numHeads
            if n <= 0 {
                // Infer heads from the cache width when rotary_embedding_dim is the whole head.
                let half = cosT.shape.last ?? 0
                guard half > 0, x.shape[2] % (2 * half) == 0 else {
                    throw EngineError(.invalidArgument, "RotaryEmbedding with a 3-D input needs num_heads")
                }
                n = x.shape[2] / (2 * half)
            }
            guard x.shape[2] % n == 0 else { throw EngineError(.shapeMismatch, "RotaryEmbedding hidden size \(x.shape[2]) is not a multiple of num_heads \(n)") }
            N = n; H = x.shape[2] / n
            bs = S * N * H; ss = N * H; ns = H
        } else {
            throw EngineError(.shapeMismatch, "RotaryEmbedding input must be 3-D or 4-D, got \(x.shape)")
        }
        let rd = rotaryDim > 0 ? rotaryDim : H
        guard rd <= H, rd % 2 == 0 else { throw EngineError(.invalidArgument, "RotaryEmbedding rotary_embedding_dim \(rd) must be even and at most the head size \(H)") }
        let half = rd / 2
        guard cosT.shape.last == half else {
            throw EngineError(.shapeMismatch, "RotaryEmbedding cache last dimension \(cosT.shape.last ?? 0) must be rotary_embedding_dim / 2 = \(half)")
        }
        // Cache row for each (b, s).
        var rows = [Int](repeating: 0, count: B * S)
        if let pos {
            let p = try pos.intValues()
            guard cosT.rank == 2 else { throw EngineError(.shapeMismatch, "RotaryEmbedding cos_cache must be 2-D with position_ids, got \(cosT.shape)") }
            let maxPos = cosT.shape[0]
            if p.count == 1 && contrib {
                for b in 0..<B { for s in 0..<S { rows[b * S + s] = p[0] + s } }
            } else if p.count == B * S {
                rows = p
            } else {
                throw EngineError(.shapeMismatch, "RotaryEmbedding position_ids of shape \(pos.shape) do not match batch \(B) and sequence \(S)")
            }
            for r in rows where r < 0 || r >= maxPos {
                throw EngineError(.invalidArgument, "RotaryEmbedding position id \(r) is out of range for a cache of \(maxPos) positions")
            }
        } else {
            guard cosT.rank == 3, cosT.shape[0] == B, cosT.shape[1] == S else {
                throw EngineError(.shapeMismatch, "RotaryEmbedding without position_ids needs caches of shape [\(B), \(S), \(half)], got \(cosT.shape)")
            }
            for i in 0..<(B * S) { rows[i] = i }
        }
        let xf = try FloatWidening.toFloat32(x, ctx), cf = try FloatWidening.toFloat32(cosT, ctx), sf = try FloatWidening.toFloat32(sinT, ctx)
        let out = try ctx.uninitialized(.float32, x.shape)
        let src = xf.buffer(Float.self).baseAddress!, dst = out.mutableBuffer(Float.self).baseAddress!
        let cp = cf.buffer(Float.self).baseAddress!, sp = sf.buffer(Float.self).baseAddress!
        for b in 0..<B {
            for s in 0..<S {
                let r = rows[b * S + s]
                for n in 0..<N {
                    let o = b * bs + s * ss + n * ns
                    RotaryKernel.rotate(src + o, dst + o, headSize: H, rotaryDim: rd, cos: cp + r * half, sin: sp + r * half, interleaved: interleaved)
                }
            }
        }
        return [try FloatWidening.fromFloat32(out, to: x.dataType, ctx)]
    }
}

// MARK: - com.microsoft Attention

/// Masks of the contrib attention operators, as an additive value per (batch, query, key).
struct ContribAttentionMask {
    enum Kind { case none, lengths([Int], [Int]?), raw([Float], perQuery: Bool) }
    var kind: Kind
    var filter: Float
    var causal: Bool
    var past: Int
    var S: Int
    var T: Int

    init(_ t: Tensor?, batch B: Int, S: Int, T: Int, past: Int, filter: Float, causal: Bool) throws {
        self.filter = filter
        self.causal = causal
        self.past = past
        self.S = S
        self.T = T
        guard let t else { kind = .none; return }
        if t.rank == 1 {
            let v = try t.intValues()
            if v.count == B { kind = .lengths(v, nil) } else if v.count == 2 * B { kind = .lengths(Array(v[0..<B]), Array(v[B...])) } else {
                throw EngineError(.shapeMismatch, "attention mask_index of shape \(t.shape) does not match batch \(B)")
            }
        } else if t.rank == 2 {
            guard t.shape == [B, T] else { throw EngineError(.shapeMismatch, "attention mask of shape \(t.shape) must be [\(B), \(T)]") }
            kind = .raw(try t.doubleValues().map { Float($0) }, perQuery: false)
        } else if t.rank == 3 {
            guard t.shape == [B, S, T] else { throw EngineError(.shapeMismatch, "attention mask of shape \(t.shape) must be [\(B), \(S), \(T)]") }
            kind = .raw(try t.doubleValues().map { Float($0) }, perQuery: true)
        } else if t.rank == 4 {
            // [B, 1, max_sequence_length, max_sequence_length]: the block for (past..past+S, 0..T).
            guard t.shape[0] == B, t.shape[1] == 1, t.shape[2] >= past + S, t.shape[3] >= T else {
                throw EngineError(.shapeMismatch, "attention mask of shape \(t.shape) does not cover \(S) queries and \(T) keys")
            }
            _ = try TensorLimits.default.checkedCount([B, S, T], .float32)
            let all = try t.doubleValues()
            let M2 = t.shape[2], M3 = t.shape[3]
            var v = [Float](repeating: 0, count: B * S * T)
            for b in 0..<B { for i in 0..<S { for j in 0..<T { v[(b * S + i) * T + j] = Float(all[(b * M2 + past + i) * M3 + j]) } } }
            kind = .raw(v, perQuery: true)
        } else {
            throw EngineError(.shapeMismatch, "attention mask of shape \(t.shape) is not supported")
        }
    }

    func apply(_ b: Int, _ i: Int, _ row: UnsafeMutablePointer<Float>) {
        switch kind {
        case .none: break
        case .lengths(let ends, let starts):
            let e = ends[b], s = starts?[b] ?? 0
            for j in 0..<T where j >= e || j < s { row[j] += filter }
        case .raw(let v, let perQuery):
            let base = perQuery ? (b * S + i) * T : b * T
            for j in 0..<T where v[base + j] == 0 { row[j] += filter }
        }
        if causal {
            let last = past + i
            if last + 1 < T { for j in (last + 1)..<T { row[j] += filter } }
        }
    }
}

struct ContribAttentionOp: Operator {
    let numHeads: Int
    let qkvSizes: [Int]?
    let unidirectional: Bool
    let maskFilter: Float
    let scale: Float?
    let outputCount: Int

    func run(_ inputs: [Tensor?], _ ctx: ExecutionContext) throws -> [Tensor] {
        let x = try inputs.required(0), w = try inputs.required(1, "weights")
        let dt = x.dataType
        guard AttentionFloats.isSupported(dt) else { throw EngineError(.typeMismatch, "Attention does not support \(dt)") }
        guard x.rank == 3, w.rank == 2, w.shape[0] == x.shape[2] else {
            throw EngineError(.shapeMismatch, "Attention input \(x.shape) and weights \(w.shape) do not match")
        }
        let B = x.shape[0], S = x.shape[1], Din = x.shape[2]
        let total = w.shape[1]
        let sizes = qkvSizes ?? [total / 3, total / 3, total / 3]
        guard sizes.count == 3, sizes.allSatisfy({ $0 > 0 && $0 <= total }), sizes.reduce(0, +) == total, sizes[0] == sizes[1] else {
            throw EngineError(.shapeMismatch, "Attention qkv sizes \(sizes) do not match weights \(w.shape)")
        }
        let H = numHeads
        guard H > 0, sizes[0] % H == 0, sizes[2] % H == 0 else { throw EngineError(.invalidArgument, "Attention hidden sizes \(sizes) are not multiples of num_heads \(H)") }
        let Dh = sizes[0] / H, Dv = sizes[2] / H
        let xf = try FloatWidening.toFloat32(x, ctx), wf = try FloatWidening.toFloat32(w, ctx)
        // QKV = X W + bias: [B*S, total].
        let qkv = try ctx.uninitialized(.float32, [B * S, total])
        let qp = qkv.mutableBuffer(Float.self).baseAddress!
        if let bias = inputs.optional(2) {
            guard bias.count == total else { throw EngineError(.shapeMismatch, "Attention bias has \(bias.count) values, expected \(total)") }
            let bf = try FloatWidening.toFloat32(bias, ctx)
            let bp = bf.buffer(Float.self)
            for r in 0..<(B * S) { for c in 0..<total { qp[r * total + c] = bp[c] } }
            blindai_sgemm(0, 0, B * S, total, Din, 1, xf.buffer(Float.self).baseAddress!, Din, wf.buffer(Float.self).baseAddress!, total, 1, qp, total)
        } else {
            blindai_sgemm(0, 0, B * S, total, Din, 1, xf.buffer(Float.self).baseAddress!, Din, wf.buffer(Float.self).baseAddress!, total, 0, qp, total)
        }
        let base = UnsafePointer(qp)
        let qView = AttentionView(base: base, batch: S * total, head: Dh, row: total)
        var kView = AttentionView(base: base + sizes[0], batch: S * total, head: Dh, row: total)
        var vView = AttentionView(base: base + 2 * sizes[0], batch: S * total, head: Dv, row: total)
        var P = 0
        var present: Tensor? = nil
        let past = inputs.optional(4)
        if let past {
            guard Dh == Dv, past.rank == 5, past.shape[0] == 2, past.shape[1] == B, past.shape[2] == H, past.shape[4] == Dh else {
                throw EngineError(.shapeMismatch, "Attention past of shape \(past.shape) must be [2, \(B), \(H), P, \(Dh)]")
            }
            P = past.shape[3]
        }
        let T = P + S
        if past != nil || outputCount > 1 {
            guard Dh == Dv else { throw EngineError(.invalidArgument, "Attention present output needs equal key and value head sizes") }
            let pr = try ctx.uninitialized(.float32, [2, B, H, T, Dh])
            let prp = pr.mutableBuffer(Float.self).baseAddress!
            let pf = try past.map { try FloatWidening.toFloat32($0, ctx) }
            let pastBase = pf?.buffer(Float.self).baseAddress
            let half = B * H * P * Dh
            attentionConcat(past: pastBase, pastLength: P, kView, batch: B, heads: H, length: S, size: Dh, into: prp)
            attentionConcat(past: pastBase.map { $0 + half }, pastLength: P, vView, batch: B, heads: H, length: S, size: Dh, into: prp + B * H * T * Dh)
            kView = AttentionView(base: UnsafePointer(prp), batch: H * T * Dh, head: T * Dh, row: Dh)
            vView = AttentionView(base: UnsafePointer(prp + B * H * T * Dh), batch: H * T * Dh, head: T * Dh, row: Dh)
            present = pr
            _ = pf
        }
        let mask = try ContribAttentionMask(inputs.optional(3), batch: B, S: S, T: T, past: P, filter: maskFilter, causal: unidirectional)
        var biasValues: [Float]? = nil
        var biasBatchStride = 0
        if let ab = inputs.optional(5) {
            guard ab.rank == 4, ab.shape[0] == 1 || ab.shape[0] == B, ab.shape[1] == H, ab.shape[2] == S, ab.shape[3] == T else {
                throw EngineError(.shapeMismatch, "Attention attention_bias of shape \(ab.shape) must be [\(B) or 1, \(H), \(S), \(T)]")
            }
            biasValues = try AttentionFloats.additive(ab, boolMasked: 0)
            biasBatchStride = ab.shape[0] == 1 ? 0 : H * S * T
        }
        let out = try ctx.uninitialized(.float32, [B, S, H * Dv])
        let yView = AttentionOutputView(base: out.mutableBuffer(Float.self).baseAddress!, batch: S * H * Dv, head: Dv, row: H * Dv)
        _ = try ctx.limits.checkedCount([S, T], .float32)
        let core = AttentionCore(batch: B, qHeads: H, kvHeads: H, qLength: S, kvLength: T, headSize: Dh, valueHeadSize: Dv,
                                 scale: scale ?? 1 / Float(Dh).squareRoot())
        withExtendedLifetime((qkv, present, xf, wf)) {
            (biasValues ?? []).withUnsafeBufferPointer { ab in
                core.run(q: qView, k: kView, v: vView, y: yView, addBias: { b, h, i, row in
                    mask.apply(b, i, row)
                    if ab.count > 0 {
                        let s = ab.baseAddress! + b * biasBatchStride + (h * S + i) * T
                        for j in 0..<T { row[j] += s[j] }
                    }
                })
            }
        }
        var results = [try FloatWidening.fromFloat32(out, to: dt, ctx)]
        if outputCount > 1, let present { results.append(try FloatWidening.fromFloat32(present, to: dt, ctx)) }
        return results
    }
}

// MARK: - com.microsoft MultiHeadAttention

struct MultiHeadAttentionOp: Operator {
    let numHeads: Int
    let maskFilter: Float
    let scale: Float?
    let unidirectional: Bool
    let outputCount: Int

    func run(_ inputs: [Tensor?], _ ctx: ExecutionContext) throws -> [Tensor] {
        let query = try inputs.required(0)
        let dt = query.dataType
        guard AttentionFloats.isSupported(dt) else { throw EngineError(.typeMismatch, "MultiHeadAttention does not support \(dt)") }
        let H = numHeads
        guard H > 0 else { throw EngineError(.invalidArgument, "MultiHeadAttention needs num_heads > 0") }
        let key = inputs.optional(1), value = inputs.optional(2)
        let B = query.shape.first ?? 0
        let S: Int, Dh: Int, Dv: Int, L: Int
        let qf = try FloatWidening.toFloat32(query, ctx)
        var keep: [Tensor] = [qf]
        var qView: AttentionView, kView: AttentionView, vView: AttentionView
        var biasQ: [Float]? = nil, biasK: [Float]? = nil, biasV: [Float]? = nil
        let bias = try inputs.optional(3).map { try FloatWidening.toFloat32($0, ctx) }
        if query.rank == 5 {
            // Packed QKV: [B, S, H, 3, Dh].
            guard key == nil, value == nil, query.shape[2] == H, query.shape[3] == 3 else {
                throw EngineError(.shapeMismatch, "MultiHeadAttention packed query \(query.shape) must be [B, S, \(H), 3, head_size]")
            }
            S = query.shape[1]; Dh = query.shape[4]; Dv = Dh; L = S
            let p = qf.buffer(Float.self).baseAddress!
            qView = AttentionView(base: p, batch: S * H * 3 * Dh, head: 3 * Dh, row: H * 3 * Dh)
            kView = AttentionView(base: p + Dh, batch: S * H * 3 * Dh, head: 3 * Dh, row: H * 3 * Dh)
            vView = AttentionView(base: p + 2 * Dh, batch: S * H * 3 * Dh, head: 3 * Dh, row: H * 3 * Dh)
        } else {
            guard query.rank == 3, query.shape[2] % H == 0 else {
                throw EngineError(.shapeMismatch, "MultiHeadAttention query \(query.shape) must be [B, S, hidden] with hidden a multiple of \(H)")
            }
            S = query.shape[1]; Dh = query.shape[2] / H
            qView = AttentionView(base: qf.buffer(Float.self).baseAddress!, batch: S * H * Dh, head: Dh, row: H * Dh)
            guard let key else { throw EngineError(.invalidArgument, "MultiHeadAttention needs a key input") }
            let kf = try FloatWidening.toFloat32(key, ctx)
            keep.append(kf)
            let kp = kf.buffer(Float.self).baseAddress!
            if key.rank == 5 {
                // Packed KV: [B, L, H, 2, Dh].
                guard value == nil, key.shape[0] == B, key.shape[2] == H, key.shape[3] == 2, key.shape[4] == Dh else {
                    throw EngineError(.shapeMismatch, "MultiHeadAttention packed key \(key.shape) must be [\(B), L, \(H), 2, \(Dh)]")
                }
                L = key.shape[1]; Dv = Dh
                kView = AttentionView(base: kp, batch: L * H * 2 * Dh, head: 2 * Dh, row: H * 2 * Dh)
                vView = AttentionView(base: kp + Dh, batch: L * H * 2 * Dh, head: 2 * Dh, row: H * 2 * Dh)
            } else {
                guard let value else { throw EngineError(.invalidArgument, "MultiHeadAttention needs a value input") }
                let vf = try FloatWidening.toFloat32(value, ctx)
                keep.append(vf)
                let vp = vf.buffer(Float.self).baseAddress!
                if key.rank == 4 {
                    // Already projected: [B, H, L, Dh].
                    guard key.shape[0] == B, key.shape[1] == H, key.shape[3] == Dh, value.rank == 4, value.shape[0] == B, value.shape[1] == H, value.shape[2] == key.shape[2] else {
                        throw EngineError(.shapeMismatch, "MultiHeadAttention key \(key.shape) / value \(value.shape) must be [\(B), \(H), L, head_size]")
                    }
                    L = key.shape[2]; Dv = value.shape[3]
                    kView = AttentionView(base: kp, batch: H * L * Dh, head: L * Dh, row: Dh)
                    vView = AttentionView(base: vp, batch: H * L * Dv, head: L * Dv, row: Dv)
                } else {
                    guard key.rank == 3, value.rank == 3, key.shape[0] == B, value.shape[0] == B, key.shape[2] == H * Dh, value.shape[1] == key.shape[1], value.shape[2] % H == 0 else {
                        throw EngineError(.shapeMismatch, "MultiHeadAttention key \(key.shape) / value \(value.shape) do not match query \(query.shape)")
                    }
                    L = key.shape[1]; Dv = value.shape[2] / H
                    kView = AttentionView(base: kp, batch: L * H * Dh, head: Dh, row: H * Dh)
                    vView = AttentionView(base: vp, batch: L * H * Dv, head: Dv, row: H * Dv)
                }
            }
        }
        if let bias {
            let b = bias.buffer(Float.self)
            guard b.count == H * (2 * Dh + Dv) else { throw EngineError(.shapeMismatch, "MultiHeadAttention bias has \(b.count) values, expected \(H * (2 * Dh + Dv))") }
            biasQ = Array(b[0..<(H * Dh)])
            if !(key?.rank == 4) {
                biasK = Array(b[(H * Dh)..<(2 * H * Dh)])
                biasV = Array(b[(2 * H * Dh)...])
            }
        }
        // Apply biases into contiguous [B, H, len, D] copies when needed.
        func materialize(_ v: AttentionView, len: Int, size: Int, bias: [Float]?) throws -> AttentionView {
            guard let bias else { return v }
            let t = try ctx.uninitialized(.float32, [B, H, len, size])
            let d = t.mutableBuffer(Float.self).baseAddress!
            for b in 0..<B { for h in 0..<H { for i in 0..<len {
                let s = v.base + b * v.batch + h * v.head + i * v.row
                let o = d + ((b * H + h) * len + i) * size
                for e in 0..<size { o[e] = s[e] + bias[h * size + e] }
            } } }
            keep.append(t)
            return AttentionView(base: UnsafePointer(d), batch: H * len * size, head: len * size, row: size)
        }
        qView = try materialize(qView, len: S, size: Dh, bias: biasQ)
        kView = try materialize(kView, len: L, size: Dh, bias: biasK)
        vView = try materialize(vView, len: L, size: Dv, bias: biasV)
        var P = 0
        let pastK = inputs.optional(6), pastV = inputs.optional(7)
        if let pk = pastK, let pv = pastV {
            guard pk.rank == 4, pk.shape[0] == B, pk.shape[1] == H, pk.shape[3] == Dh, pv.shape == [B, H, pk.shape[2], Dv] else {
                throw EngineError(.shapeMismatch, "MultiHeadAttention past_key \(pk.shape) / past_value \(pv.shape) do not match")
            }
            P = pk.shape[2]
        }
        let T = P + L
        var presentK: Tensor? = nil, presentV: Tensor? = nil
        if P > 0 || outputCount > 1 {
            let pkT = try ctx.uninitialized(.float32, [B, H, T, Dh]), pvT = try ctx.uninitialized(.float32, [B, H, T, Dv])
            let pkf = try pastK.map { try FloatWidening.toFloat32($0, ctx) }, pvf = try pastV.map { try FloatWidening.toFloat32($0, ctx) }
            attentionConcat(past: pkf?.buffer(Float.self).baseAddress, pastLength: P, kView, batch: B, heads: H, length: L, size: Dh,
                            into: pkT.mutableBuffer(Float.self).baseAddress!)
            attentionConcat(past: pvf?.buffer(Float.self).baseAddress, pastLength: P, vView, batch: B, heads: H, length: L, size: Dv,
                            into: pvT.mutableBuffer(Float.self).baseAddress!)
            kView = AttentionView(base: pkT.buffer(Float.self).baseAddress!, batch: H * T * Dh, head: T * Dh, row: Dh)
            vView = AttentionView(base: pvT.buffer(Float.self).baseAddress!, batch: H * T * Dv, head: T * Dv, row: Dv)
            presentK = pkT; presentV = pvT
            keep += [pkf, pvf].compactMap { $0 }
        }
        let mask = try ContribAttentionMask(inputs.optional(4), batch: B, S: S, T: T, past: P, filter: maskFilter, causal: unidirectional)
        var abValues: [Float]? = nil
        var abBatch = 0, abHead = 0
        if let ab = inputs.optional(5) {
            guard ab.rank == 4, ab.shape[0] == 1 || ab.shape[0] == B, ab.shape[1] == 1 || ab.shape[1] == H, ab.shape[2] == S, ab.shape[3] == T else {
                throw EngineError(.shapeMismatch, "MultiHeadAttention attention_bias of shape \(ab.shape) must be [\(B) or 1, \(H) or 1, \(S), \(T)]")
            }
            abValues = try AttentionFloats.additive(ab, boolMasked: 0)
            abBatch = ab.shape[0] == 1 ? 0 : ab.shape[1] * S * T
            abHead = ab.shape[1] == 1 ? 0 : S * T
        }
        let out = try ctx.uninitialized(.float32, [B, S, H * Dv])
        let yView = AttentionOutputView(base: out.mutableBuffer(Float.self).baseAddress!, batch: S * H * Dv, head: Dv, row: H * Dv)
        _ = try ctx.limits.checkedCount([S, T], .float32)
        let core = AttentionCore(batch: B, qHeads: H, kvHeads: H, qLength: S, kvLength: T, headSize: Dh, valueHeadSize: Dv,
                                 scale: scale ?? 1 / Float(Dh).squareRoot())
        withExtendedLifetime((keep, presentK, presentV, bias)) {
            (abValues ?? []).withUnsafeBufferPointer { ab in
                core.run(q: qView, k: kView, v: vView, y: yView, addBias: { b, h, i, row in
                    mask.apply(b, i, row)
                    if ab.count > 0 {
                        let s = ab.baseAddress! + b * abBatch + h * abHead + i * T
                        for j in 0..<T { row[j] += s[j] }
                    }
                })
            }
        }
        var results = [try FloatWidening.fromFloat32(out, to: dt, ctx)]
        if outputCount > 1, let presentK, let presentV {
            results.append(try FloatWidening.fromFloat32(presentK, to: dt, ctx))
            results.append(try FloatWidening.fromFloat32(presentV, to: dt, ctx))
        }
        return results
    }
}

// MARK: - Element-wise contrib ops: BiasGelu, FastGelu (with bias), QuickGelu, BiasAdd

struct MicrosoftActivationOp: Operator {
    enum Kind: Sendable { case biasGelu, fastGelu, quickGelu(Float), biasAdd }
    let kind: Kind

    func run(_ inputs: [Tensor?], _ ctx: ExecutionContext) throws -> [Tensor] {
        let x = try inputs.required(0)
        switch x.dataType {
        case .float32: return [try apply(x, inputs, Float.self, ctx)]
        case .float64: return [try apply(x, inputs, Double.self, ctx)]
        case .float16, .bfloat16:
            let wide = try inputs.map { try $0.map { try FloatWidening.toFloat32($0, ctx) } }
            return [try FloatWidening.fromFloat32(try apply(try wide.required(0), wide, Float.self, ctx), to: x.dataType, ctx)]
        default: throw EngineError(.typeMismatch, "\(kind) does not support \(x.dataType) tensors")
        }
    }

    /// x + bias (bias broadcast along the last axis) or x itself.
    func addBias<T: EngineFloat>(_ x: Tensor, _ bias: Tensor?, _: T.Type, _ ctx: ExecutionContext) throws -> Tensor {
        guard let bias else { return x }
        guard bias.dataType == x.dataType else { throw EngineError(.typeMismatch, "bias type \(bias.dataType) differs from input type \(x.dataType)") }
        return try Loops.zip(x, bias, T.self, T.self, ctx) { $0 + $1 }
    }

    func apply<T: EngineFloat>(_ x: Tensor, _ inputs: [Tensor?], _: T.Type, _ ctx: ExecutionContext) throws -> Tensor {
        switch kind {
        case .biasGelu:
            let s = try addBias(x, try inputs.required(1, "bias"), T.self, ctx)
            return try Loops.map(s, T.self, T.self, ctx) { v in T(0.5) * v * (1 + T.erf(v * T(0.7071067811865476))) }
        case .fastGelu:
            let s = try addBias(x, inputs.optional(1), T.self, ctx)
            return try Loops.map(s, T.self, T.self, ctx) { v in
                T(0.5) * v * (1 + T.tanh(T(0.7978845608028654) * v * (1 + T(0.044715) * v * v)))
            }
        case .quickGelu(let alpha):
            let a = T(alpha)
            return try Loops.map(x, T.self, T.self, ctx) { v in
                let z = a * v
                let sig = z >= 0 ? 1 / (1 + T.exp(-z)) : T.exp(z) / (1 + T.exp(z))
                return v * sig
            }
        case .biasAdd:
            let bias = try inputs.required(1, "bias"), skip = try inputs.required(2, "skip")
            guard x.rank == 3, bias.rank == 1, bias.shape[0] == x.shape[2], skip.shape == x.shape else {
                throw EngineError(.shapeMismatch, "BiasAdd needs X [N, S, C], bias [C] and skip like X; got \(x.shape), \(bias.shape), \(skip.shape)")
            }
            guard skip.dataType == x.dataType else { throw EngineError(.typeMismatch, "BiasAdd skip type differs from X") }
            let s = try addBias(x, bias, T.self, ctx)
            return try Loops.zip(s, skip, T.self, T.self, ctx) { $0 + $1 }
        }
    }
}

// MARK: - EmbedLayerNormalization

struct EmbedLayerNormOp: Operator {
    let epsilon: Float
    let outputCount: Int

    func run(_ inputs: [Tensor?], _ ctx: ExecutionContext) throws -> [Tensor] {
        let ids = try inputs.required(0, "input_ids")
        let segIds = inputs.optional(1)
        let word = try inputs.required(2, "word_embedding"), posE = try inputs.required(3, "position_embedding")
        let segE = inputs.optional(4)
        let gamma = try inputs.required(5, "gamma"), beta = try inputs.required(6, "beta")
        let mask = inputs.optional(7), posIds = inputs.optional(8)
        guard ids.rank == 2 else { throw EngineError(.shapeMismatch, "EmbedLayerNormalization input_ids must be [batch, sequence], got \(ids.shape)") }
        let B = ids.shape[0], S = ids.shape[1]
        guard word.rank == 2, posE.rank == 2, word.shape[1] == posE.shape[1] else {
            throw EngineError(.shapeMismatch, "EmbedLayerNormalization embeddings \(word.shape) and \(posE.shape) must be [*, hidden]")
        }
        let Hd = word.shape[1]
        guard gamma.count == Hd, beta.count == Hd else { throw EngineError(.shapeMismatch, "EmbedLayerNormalization gamma/beta must have \(Hd) values") }
        if let segE { guard segE.rank == 2, segE.shape[1] == Hd else { throw EngineError(.shapeMismatch, "segment_embedding must be [*, \(Hd)]") } }
        let dt = word.dataType
        guard dt == .float32 || dt == .float16 || dt == .float64 else { throw EngineError(.typeMismatch, "EmbedLayerNormalization does not support \(dt)") }
        let idv = try ids.intValues()
        let segv = try segIds.map { try $0.intValues() }
        if let segv { guard segv.count == B * S else { throw EngineError(.shapeMismatch, "segment_ids must be [\(B), \(S)]") } }
        var positions = [Int](repeating: 0, count: B * S)
        if let posIds {
            let p = try posIds.intValues()
            if p.count == B * S { positions = p } else if p.count == S { for b in 0..<B { for s in 0..<S { positions[b * S + s] = p[s] } } } else {
                throw EngineError(.shapeMismatch, "position_ids of shape \(posIds.shape) do not match [\(B), \(S)]")
            }
        } else {
            for b in 0..<B { for s in 0..<S { positions[b * S + s] = s } }
        }
        let wf = try FloatWidening.toFloat32(word, ctx), pf = try FloatWidening.toFloat32(posE, ctx)
        let sf = try segE.map { try FloatWidening.toFloat32($0, ctx) }
        let gf = try FloatWidening.toFloat32(gamma, ctx), bf = try FloatWidening.toFloat32(beta, ctx)
        let out = try ctx.uninitialized(.float32, [B, S, Hd])
        let sumOut: Tensor? = outputCount > 2 ? try ctx.uninitialized(.float32, [B, S, Hd]) : nil
        let wp = wf.buffer(Float.self).baseAddress!, pp = pf.buffer(Float.self).baseAddress!
        let sp = sf?.buffer(Float.self).baseAddress
        let gp = gf.buffer(Float.self).baseAddress!, bp = bf.buffer(Float.self).baseAddress!
        let op = out.mutableBuffer(Float.self).baseAddress!
        let sump = sumOut?.mutableBuffer(Float.self).baseAddress
        let V = word.shape[0], Pmax = posE.shape[0], Sg = segE?.shape[0] ?? 0
        var row = [Float](repeating: 0, count: Hd)
        for t in 0..<(B * S) {
            let w = idv[t], p = positions[t]
            guard w >= 0 && w < V else { throw EngineError(.invalidArgument, "EmbedLayerNormalization word id \(w) out of range [0, \(V))") }
            guard p >= 0 && p < Pmax else { throw EngineError(.invalidArgument, "EmbedLayerNormalization position id \(p) out of range [0, \(Pmax))") }
            var mean: Float = 0
            for i in 0..<Hd { row[i] = wp[w * Hd + i] + pp[p * Hd + i] }
            if let sp, let segv {
                let g = segv[t]
                guard g >= 0 && g < Sg else { throw EngineError(.invalidArgument, "EmbedLayerNormalization segment id \(g) out of range [0, \(Sg))") }
                for i in 0..<Hd { row[i] += sp[g * Hd + i] }
            }
            if let sump { for i in 0..<Hd { sump[t * Hd + i] = row[i] } }
            for i in 0..<Hd { mean += row[i] }
            mean /= Float(Hd)
            var variance: Float = 0
            for i in 0..<Hd { let d = row[i] - mean; variance += d * d }
            variance /= Float(Hd)
            let inv = 1 / (variance + epsilon).squareRoot()
            for i in 0..<Hd { op[t * Hd + i] = (row[i] - mean) * inv * gp[i] + bp[i] }
        }
        let maskIndex = try ctx.zeros(.int32, [B])
        if let mask {
            let m = try mask.intValues()
            guard m.count == B * S else { throw EngineError(.shapeMismatch, "EmbedLayerNormalization mask must be [\(B), \(S)]") }
            let mi = maskIndex.mutableBuffer(Int32.self)
            for b in 0..<B { mi[b] = Int32(m[(b * S)..<(b * S + S)].filter { $0 != 0 }.count) }
        }
        var results = [try FloatWidening.fromFloat32(out, to: dt, ctx), maskIndex]
        if let sumOut { results.append(try FloatWidening.fromFloat32(sumOut, to: dt, ctx)) }
        return results
    }
}

// MARK: - com.microsoft GroupQueryAttention

/// GroupQueryAttention as onnxruntime runs it on CPU: BNSH key/value caches, per-batch valid lengths (seqlens_k),
/// causal attention over the cache plus the new tokens, optional rotary embedding, local window and softcap.
struct GroupQueryAttentionOp: Operator {
    let numHeads: Int
    let kvNumHeads: Int
    let scale: Float
    let softcap: Float
    let localWindow: Int
    let doRotary: Bool
    let rotaryInterleaved: Bool
    let outputCount: Int

    func run(_ inputs: [Tensor?], _ ctx: ExecutionContext) throws -> [Tensor] {
        let query = try inputs.required(0)
        let dt = query.dataType
        guard AttentionFloats.isSupported(dt) else { throw EngineError(.typeMismatch, "GroupQueryAttention does not support \(dt)") }
        guard query.rank == 3 else { throw EngineError(.shapeMismatch, "GroupQueryAttention query must be [batch, sequence, hidden], got \(query.shape)") }
        let B = query.shape[0], S = query.shape[1]
        let H = numHeads, Hk = kvNumHeads
        let key = inputs.optional(1), value = inputs.optional(2)
        let packed = key == nil
        let Dh: Int
        if packed {
            guard value == nil, query.shape[2] % (H + 2 * Hk) == 0 else {
                throw EngineError(.shapeMismatch, "GroupQueryAttention packed query width \(query.shape[2]) is not a multiple of \(H + 2 * Hk) heads")
            }
            Dh = query.shape[2] / (H + 2 * Hk)
        } else {
            guard let key, let value, query.shape[2] % H == 0 else {
                throw EngineError(.shapeMismatch, "GroupQueryAttention needs key and value, and a query width that is a multiple of num_heads")
            }
            Dh = query.shape[2] / H
            guard key.shape == [B, S, Hk * Dh], value.shape == [B, S, Hk * Dh], key.dataType == dt, value.dataType == dt else {
                throw EngineError(.shapeMismatch, "GroupQueryAttention key \(key.shape) / value \(value.shape) must be [\(B), \(S), \(Hk * Dh)]")
            }
        }
        let pastK = inputs.optional(3), pastV = inputs.optional(4)
        guard (pastK == nil) == (pastV == nil) else { throw EngineError(.invalidArgument, "GroupQueryAttention: past_key and past_value must be given together") }
        var pastLen = 0
        if let pk = pastK, let pv = pastV {
            guard pk.rank == 4, pk.shape[0] == B, pk.shape[1] == Hk, pk.shape[3] == Dh, pv.shape == pk.shape, pk.dataType == dt, pv.dataType == dt else {
                throw EngineError(.shapeMismatch, "GroupQueryAttention past_key \(pk.shape) / past_value \(pv.shape) must be [\(B), \(Hk), P, \(Dh)]")
            }
            pastLen = pk.shape[2]
        }
        let seqlens = try inputs.required(5, "seqlens_k").intValues()
        guard seqlens.count == B else { throw EngineError(.shapeMismatch, "GroupQueryAttention seqlens_k must have \(B) values") }
        guard let total = try inputs.required(6, "total_sequence_length").intValues().first, total >= S else {
            throw EngineError(.invalidArgument, "GroupQueryAttention total_sequence_length must be at least the sequence length \(S)")
        }
        let firstPrompt = S == total
        let presentLen = Swift.max(total, pastLen)
        for (b, v) in seqlens.enumerated() {
            let t = v + 1
            guard t >= 1, t <= presentLen, firstPrompt || t >= S else {
                throw EngineError(.invalidArgument, "GroupQueryAttention seqlens_k[\(b)] = \(v) is inconsistent with sequence length \(S) and cache length \(presentLen)")
            }
        }
        guard H > 0, Hk > 0, H % Hk == 0 else { throw EngineError(.invalidArgument, "GroupQueryAttention num_heads must be a multiple of kv_num_heads") }

        // Q, K, V as float [B, S, heads, Dh] copies (rotary embedding is applied in place).
        let qf = try FloatWidening.toFloat32(query, ctx)
        let kf = try key.map { try FloatWidening.toFloat32($0, ctx) }, vf = try value.map { try FloatWidening.toFloat32($0, ctx) }
        let q = try ctx.uninitialized(.float32, [B, S, H, Dh]), k = try ctx.uninitialized(.float32, [B, S, Hk, Dh])
        let v = try ctx.uninitialized(.float32, [B, S, Hk, Dh])
        do {
            let qd = q.mutableBuffer(Float.self).baseAddress!, kd = k.mutableBuffer(Float.self).baseAddress!, vd = v.mutableBuffer(Float.self).baseAddress!
            let qs = qf.buffer(Float.self).baseAddress!
            if packed {
                let w = (H + 2 * Hk) * Dh
                for t in 0..<(B * S) {
                    (qd + t * H * Dh).update(from: qs + t * w, count: H * Dh)
                    (kd + t * Hk * Dh).update(from: qs + t * w + H * Dh, count: Hk * Dh)
                    (vd + t * Hk * Dh).update(from: qs + t * w + (H + Hk) * Dh, count: Hk * Dh)
                }
            } else {
                qd.update(from: qs, count: q.count)
                kd.update(from: kf!.buffer(Float.self).baseAddress!, count: k.count)
                vd.update(from: vf!.buffer(Float.self).baseAddress!, count: v.count)
            }
        }
        func pastLength(_ b: Int) -> Int { firstPrompt ? 0 : seqlens[b] + 1 - S }
        if doRotary {
            guard let cosT = inputs.optional(7), let sinT = inputs.optional(8), cosT.rank == 2, cosT.shape == sinT.shape else {
                throw EngineError(.invalidArgument, "GroupQueryAttention with do_rotary needs 2-D cos_cache and sin_cache")
            }
            let half = cosT.shape[1], maxPos = cosT.shape[0]
            guard half > 0, 2 * half <= Dh else { throw EngineError(.shapeMismatch, "GroupQueryAttention rotary cache width \(half) exceeds head_size / 2") }
            let cf = try FloatWidening.toFloat32(cosT, ctx), sf = try FloatWidening.toFloat32(sinT, ctx)
            let cp = cf.buffer(Float.self).baseAddress!, sp = sf.buffer(Float.self).baseAddress!
            let qd = q.mutableBuffer(Float.self).baseAddress!, kd = k.mutableBuffer(Float.self).baseAddress!
            var tmp = [Float](repeating: 0, count: Dh)
            for b in 0..<B {
                for s in 0..<S {
                    let pos = pastLength(b) + s
                    guard pos >= 0, pos < maxPos else { throw EngineError(.invalidArgument, "GroupQueryAttention position \(pos) is outside the rotary cache of \(maxPos) positions") }
                    for (base, heads) in [(qd + (b * S + s) * H * Dh, H), (kd + (b * S + s) * Hk * Dh, Hk)] {
                        for h in 0..<heads {
                            let x = base + h * Dh
                            tmp.withUnsafeMutableBufferPointer { t in
                                RotaryKernel.rotate(UnsafePointer(x), t.baseAddress!, headSize: Dh, rotaryDim: 2 * half,
                                                    cos: cp + pos * half, sin: sp + pos * half, interleaved: rotaryInterleaved)
                                x.update(from: t.baseAddress!, count: Dh)
                            }
                        }
                    }
                }
            }
        }
        // Present caches: the valid past, then the new tokens; zeros beyond.
        let presentK = try ctx.zeros(.float32, [B, Hk, presentLen, Dh]), presentV = try ctx.zeros(.float32, [B, Hk, presentLen, Dh])
        do {
            let pkd = presentK.mutableBuffer(Float.self).baseAddress!, pvd = presentV.mutableBuffer(Float.self).baseAddress!
            let pkf = try pastK.map { try FloatWidening.toFloat32($0, ctx) }, pvf = try pastV.map { try FloatWidening.toFloat32($0, ctx) }
            let ks = k.buffer(Float.self).baseAddress!, vs = v.buffer(Float.self).baseAddress!
            for b in 0..<B {
                let p = pastLength(b)
                guard p + S <= presentLen, p <= pastLen || p == 0 else {
                    throw EngineError(.invalidArgument, "GroupQueryAttention seqlens_k[\(b)] needs \(p) cached tokens but the past holds \(pastLen)")
                }
                for h in 0..<Hk {
                    let o = (b * Hk + h) * presentLen * Dh
                    if p > 0, let pkf, let pvf {
                        let src = (b * Hk + h) * pastLen * Dh
                        (pkd + o).update(from: pkf.buffer(Float.self).baseAddress! + src, count: p * Dh)
                        (pvd + o).update(from: pvf.buffer(Float.self).baseAddress! + src, count: p * Dh)
                    }
                    for s in 0..<S {
                        (pkd + o + (p + s) * Dh).update(from: ks + ((b * S + s) * Hk + h) * Dh, count: Dh)
                        (pvd + o + (p + s) * Dh).update(from: vs + ((b * S + s) * Hk + h) * Dh, count: Dh)
                    }
                }
            }
        }
        let out = try ctx.uninitialized(.float32, [B, S, H * Dh])
        _ = try ctx.limits.checkedCount([S, presentLen], .float32)
        let qp = q.buffer(Float.self).baseAddress!, kp = presentK.buffer(Float.self).baseAddress!, vp = presentV.buffer(Float.self).baseAddress!
        let yp = out.mutableBuffer(Float.self).baseAddress!
        let window = localWindow
        for b in 0..<B {
            let p = pastLength(b)
            let keys = p + S
            let validLast = seqlens[b]  // keys past the batch's valid length (right padding) are masked
            var core = AttentionCore(batch: 1, qHeads: H, kvHeads: Hk, qLength: S, kvLength: keys, headSize: Dh, valueHeadSize: Dh,
                                     scale: scale > 0 ? scale : 1 / Float(Dh).squareRoot())
            core.softcap = softcap
            let qv = AttentionView(base: qp + b * S * H * Dh, batch: 0, head: Dh, row: H * Dh)
            let kv = AttentionView(base: kp + b * Hk * presentLen * Dh, batch: 0, head: presentLen * Dh, row: Dh)
            let vv = AttentionView(base: vp + b * Hk * presentLen * Dh, batch: 0, head: presentLen * Dh, row: Dh)
            let yv = AttentionOutputView(base: yp + b * S * H * Dh, batch: 0, head: Dh, row: H * Dh)
            withExtendedLifetime((q, presentK, presentV)) {
                core.run(q: qv, k: kv, v: vv, y: yv, addBias: { _, _, i, row in
                    let last = Swift.min(p + i, validLast)
                    if last + 1 < keys { for j in (last + 1)..<keys { row[j] = -.infinity } }
                    if window > 0 {
                        let first = last - window + 1
                        if first > 0 { for j in 0..<Swift.min(first, keys) { row[j] = -.infinity } }
                    }
                })
            }
        }
        var results = [try FloatWidening.fromFloat32(out, to: dt, ctx)]
        if outputCount > 1 {
            results.append(try FloatWidening.fromFloat32(presentK, to: dt, ctx))
            results.append(try FloatWidening.fromFloat32(presentV, to: dt, ctx))
        }
        return results
    }
}

extension StandardOperators {
    static func registerMicrosoft(_ r: inout OperatorRegistry) {
        // ONNX standard Attention (opset 23+) and RotaryEmbedding (opset 23).
        r.register("Attention") { c in
            let mode = try c.int("qk_matmul_output_mode", default: 0)
            guard (0...3).contains(mode) else { throw c.error(.invalidModel, "qk_matmul_output_mode must be 0 to 3, got \(mode)") }
            let left = try c.int("left_window_size", default: -1), right = try c.int("right_window_size", default: -1)
            guard left >= -1, right >= -1, left <= Int(Int32.max), right <= Int(Int32.max) else {
                throw c.error(.invalidModel, "window sizes must be -1 or non-negative")
            }
            var outputs = 0
            for (i, name) in c.node.outputs.enumerated() where !name.isEmpty { outputs = i + 1 }
            return OnnxAttentionOp(
                isCausal: try c.int("is_causal", default: 0) != 0,
                qNumHeads: try c.int("q_num_heads"), kvNumHeads: try c.int("kv_num_heads"),
                qkMode: mode, scale: try c.float("scale"), softcap: try c.float("softcap", default: 0),
                leftWindow: left, rightWindow: right, outputCount: outputs)
        }
        r.register("RotaryEmbedding") { c in
            RotaryEmbeddingOp(contrib: false, interleaved: try c.int("interleaved", default: 0) != 0,
                              numHeads: try c.int("num_heads", default: 0), rotaryDim: try c.int("rotary_embedding_dim", default: 0))
        }

        let ms = "com.microsoft"
        r.register("RotaryEmbedding", domain: ms) { c in
            RotaryEmbeddingOp(contrib: true, interleaved: try c.int("interleaved", default: 0) != 0,
                              numHeads: try c.int("num_heads", default: 0), rotaryDim: try c.int("rotary_embedding_dim", default: 0))
        }
        r.register("Attention", domain: ms) { c in
            guard let h = try c.int("num_heads"), h > 0 else { throw c.error(.invalidModel, "Attention needs num_heads > 0") }
            if try c.int("do_rotary", default: 0) != 0 { throw c.error(.invalidModel, "Attention with do_rotary is not supported") }
            return ContribAttentionOp(numHeads: h, qkvSizes: try c.ints("qkv_hidden_sizes"),
                                      unidirectional: try c.int("unidirectional", default: 0) != 0,
                                      maskFilter: try c.float("mask_filter_value", default: -10000), scale: try c.float("scale"),
                                      outputCount: c.outputCount)
        }
        r.register("MultiHeadAttention", domain: ms) { c in
            guard let h = try c.int("num_heads"), h > 0 else { throw c.error(.invalidModel, "MultiHeadAttention needs num_heads > 0") }
            return MultiHeadAttentionOp(numHeads: h, maskFilter: try c.float("mask_filter_value", default: -10000), scale: try c.float("scale"),
                                        unidirectional: try c.int("unidirectional", default: 0) != 0, outputCount: c.outputCount)
        }
        r.register("GroupQueryAttention", domain: ms) { c in
            guard let h = try c.int("num_heads"), let kvh = try c.int("kv_num_heads"), h > 0, kvh > 0, h % kvh == 0 else {
                throw c.error(.invalidModel, "GroupQueryAttention needs num_heads a positive multiple of kv_num_heads")
            }
            if try c.int("smooth_softmax", default: 0) != 0 { throw c.error(.invalidModel, "GroupQueryAttention smooth_softmax is not supported") }
            for i in 9..<12 where c.hasInput(i) {
                throw c.error(.invalidModel, "GroupQueryAttention input #\(i) (position_ids, attention_bias, head_sink) is not supported")
            }
            let window = try c.int("local_window_size", default: -1)
            guard window <= Int(Int32.max) else { throw c.error(.invalidModel, "local_window_size out of range") }
            return GroupQueryAttentionOp(numHeads: h, kvNumHeads: kvh, scale: try c.float("scale", default: 0),
                                         softcap: try c.float("softcap", default: 0), localWindow: window,
                                         doRotary: try c.int("do_rotary", default: 0) != 0,
                                         rotaryInterleaved: try c.int("rotary_interleaved", default: 0) != 0, outputCount: c.outputCount)
        }
        r.register("BiasGelu", domain: ms) { _ in MicrosoftActivationOp(kind: .biasGelu) }
        r.register("QuickGelu", domain: ms) { c in MicrosoftActivationOp(kind: .quickGelu(try c.float("alpha", default: 1.702))) }
        r.register("BiasAdd", domain: ms) { _ in MicrosoftActivationOp(kind: .biasAdd) }
        // FastGelu without bias is registered with the element-wise operators; this bias-aware version takes over
        // once that registration is removed (never registered twice).
        if !r.supports(domain: ms, opType: "FastGelu") {
            r.register("FastGelu", domain: ms) { _ in MicrosoftActivationOp(kind: .fastGelu) }
        }
        r.register("EmbedLayerNormalization", domain: ms) { c in
            EmbedLayerNormOp(epsilon: try c.float("epsilon", default: 1e-12), outputCount: c.outputCount)
        }
    }
}
