import BlindAITensor
import BlindAIKernels
import BlindAIGraph
import CBlindAIKernels
import Foundation

// The ONNX attention operators: Attention (opset 23+), RotaryEmbedding (opset 23; its com.microsoft twin is
// registered here too, one kernel for both), LinearAttention (opset 27 and ai.onnx.preview) and FlexAttention
// (ai.onnx.preview). The com.microsoft attention family is in com.microsoft/ContribAttention.swift; the kernels are in
// BlindAIKernels/Attention.swift.

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

// MARK: - LinearAttention

/// LinearAttention: the linear / gated / delta / gated-delta recurrences over packed [B, T, H*D] inputs,
/// computed in float32 with the state (B, H_kv, d_k, d_v).
struct LinearAttentionOp: Operator {
    enum Rule: String { case linear, gated, delta, gatedDelta = "gated_delta" }
    let rule: Rule
    let qHeads: Int
    let kvHeads: Int
    let scale: Float

    fileprivate func floats(_ t: Tensor, _ ctx: ExecutionContext, _ what: String) throws -> Tensor {
        switch t.dataType {
        case .float32: return t
        case .float16, .bfloat16, .float64: return try CastOp.cast(t, to: .float32, ctx)
        default: throw EngineError(.typeMismatch, "LinearAttention: \(what) must be a float tensor, got \(t.dataType)")
        }
    }

    func run(_ inputs: [Tensor?], _ ctx: ExecutionContext) throws -> [Tensor] {
        let query = try inputs.required(0, "query"), key = try inputs.required(1, "key"), value = try inputs.required(2, "value")
        let past = inputs.optional(3), decay = inputs.optional(4), beta = inputs.optional(5)
        let gating = rule == .gated || rule == .gatedDelta
        let delta = rule == .delta || rule == .gatedDelta
        guard gating == (decay != nil) else {
            throw EngineError(.invalidArgument, "LinearAttention: update_rule '\(rule.rawValue)' \(gating ? "requires" : "forbids") the decay input")
        }
        guard delta == (beta != nil) else {
            throw EngineError(.invalidArgument, "LinearAttention: update_rule '\(rule.rawValue)' \(delta ? "requires" : "forbids") the beta input")
        }
        for (name, t) in [("query", query), ("key", key), ("value", value)] where t.rank != 3 {
            throw EngineError(.shapeMismatch, "LinearAttention: \(name) must be rank 3 (B, T, H*D), got \(t.shape)")
        }
        let b = query.shape[0], steps = query.shape[1]
        guard query.shape[2] % qHeads == 0, value.shape[2] % kvHeads == 0 else {
            throw EngineError(.shapeMismatch, "LinearAttention: query \(query.shape) / value \(value.shape) last dims are not multiples of q_num_heads \(qHeads) / kv_num_heads \(kvHeads)")
        }
        let dk = query.shape[2] / qHeads, dv = value.shape[2] / kvHeads
        guard key.shape == [b, steps, kvHeads * dk], value.shape[0] == b, value.shape[1] == steps else {
            throw EngineError(.shapeMismatch, "LinearAttention: key \(key.shape) and value \(value.shape) do not match query \(query.shape) with \(qHeads) query heads and \(kvHeads) kv heads")
        }
        var perKeyDecay = false
        if let decay {
            guard decay.rank == 3, decay.shape[0] == b, decay.shape[1] == steps,
                  decay.shape[2] == kvHeads || decay.shape[2] == kvHeads * dk else {
                throw EngineError(.shapeMismatch, "LinearAttention: decay must be (B, T, H_kv) or (B, T, H_kv*d_k) = (\(b), \(steps), \(kvHeads) or \(kvHeads * dk)), got \(decay.shape)")
            }
            perKeyDecay = decay.shape[2] == kvHeads * dk && dk != 1
        }
        var betaPerHead = false
        if let beta {
            guard beta.rank == 3, beta.shape[0] == b, beta.shape[1] == steps, beta.shape[2] == kvHeads || beta.shape[2] == 1 else {
                throw EngineError(.shapeMismatch, "LinearAttention: beta must be (B, T, H_kv) or (B, T, 1), got \(beta.shape)")
            }
            betaPerHead = beta.shape[2] == kvHeads && kvHeads != 1
        }
        if let past, past.shape != [b, kvHeads, dk, dv] {
            throw EngineError(.shapeMismatch, "LinearAttention: past_state has shape \(past.shape), expected \([b, kvHeads, dk, dv])")
        }
        let stateType = past?.dataType ?? query.dataType
        let q = try floats(query, ctx, "query"), k = try floats(key, ctx, "key"), v = try floats(value, ctx, "value")
        let g = try decay.map { try floats($0, ctx, "decay") }
        let be = try beta.map { try floats($0, ctx, "beta") }
        let state = try ctx.zeros(.float32, [b, kvHeads, dk, dv])
        let st = state.mutableBuffer(Float.self).baseAddress!
        if let past {
            let p = try floats(past, ctx, "past_state").buffer(Float.self)
            for i in 0..<p.count { st[i] = p[i] }
        }
        let output = try ctx.uninitialized(.float32, [b, steps, qHeads * dv])
        let po = output.mutableBuffer(Float.self).baseAddress!
        let pq = q.buffer(Float.self).baseAddress!, pk = k.buffer(Float.self).baseAddress!, pv = v.buffer(Float.self).baseAddress!
        let pg = g?.buffer(Float.self).baseAddress, pb = be?.buffer(Float.self).baseAddress
        let group = qHeads / kvHeads
        let scale = self.scale == 0 ? 1 / Float(dk).squareRoot() : self.scale
        let decayWidth = g?.shape[2] ?? 0, betaWidth = be?.shape[2] ?? 0
        var vt = [Float](repeating: 0, count: dv)
        vt.withUnsafeMutableBufferPointer { vtb in
            let vtp = vtb.baseAddress!
            for bi in 0..<b {
                for t in 0..<steps {
                    let row = bi * steps + t
                    for h in 0..<kvHeads {
                        let s = st + (bi * kvHeads + h) * dk * dv
                        let kp = pk + row * kvHeads * dk + h * dk
                        let vp = pv + row * kvHeads * dv + h * dv
                        if let pg {
                            let gp = pg + row * decayWidth
                            for d in 0..<dk {
                                let f = Foundation.exp(perKeyDecay ? gp[h * dk + d] : gp[h])
                                let sr = s + d * dv
                                for m in 0..<dv { sr[m] *= f }
                            }
                        }
                        if let pb {
                            let bt = pb[row * betaWidth + (betaPerHead ? h : 0)]
                            for m in 0..<dv { vtp[m] = vp[m] }
                            for d in 0..<dk {
                                let kd = kp[d]
                                let sr = s + d * dv
                                for m in 0..<dv { vtp[m] -= sr[m] * kd }
                            }
                            for m in 0..<dv { vtp[m] *= bt }
                        } else {
                            for m in 0..<dv { vtp[m] = vp[m] }
                        }
                        for d in 0..<dk {
                            let kd = kp[d]
                            let sr = s + d * dv
                            for m in 0..<dv { sr[m] += kd * vtp[m] }
                        }
                        for j in 0..<group {
                            let hq = h * group + j
                            let qp = pq + row * qHeads * dk + hq * dk
                            let op = po + row * qHeads * dv + hq * dv
                            for m in 0..<dv { op[m] = 0 }
                            for d in 0..<dk {
                                let qd = qp[d] * scale
                                let sr = s + d * dv
                                for m in 0..<dv { op[m] += qd * sr[m] }
                            }
                        }
                    }
                }
            }
        }
        let y = query.dataType == .float32 ? output : try CastOp.cast(output, to: query.dataType, ctx)
        let present = stateType == .float32 ? state : try CastOp.cast(state, to: stateType, ctx)
        return [y, present]
    }
}

// MARK: - FlexAttention

/// Matrix products for FlexAttention in its softmax precision.
fileprivate protocol FlexAttentionScalar: EngineFloat {
    /// C[m, n] = alpha * A[m, k] * op(B), op(B) = B[k, n] or B[n, k]^T; all row-major and contiguous.
    static func textGemm(transB: Bool, _ m: Int, _ n: Int, _ k: Int, _ alpha: Self,
                         _ a: UnsafePointer<Self>, _ b: UnsafePointer<Self>, _ c: UnsafeMutablePointer<Self>)
}

extension Float: FlexAttentionScalar {
    fileprivate static func textGemm(transB: Bool, _ m: Int, _ n: Int, _ k: Int, _ alpha: Float,
                                     _ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, _ c: UnsafeMutablePointer<Float>) {
        blindai_sgemm(0, transB ? 1 : 0, m, n, k, alpha, a, k, b, transB ? k : n, 0, c, n)
    }
}

extension Double: FlexAttentionScalar {
    fileprivate static func textGemm(transB: Bool, _ m: Int, _ n: Int, _ k: Int, _ alpha: Double,
                                     _ a: UnsafePointer<Double>, _ b: UnsafePointer<Double>, _ c: UnsafeMutablePointer<Double>) {
        for i in 0..<m {
            let ci = c + i * n
            let ai = a + i * k
            if transB {
                for j in 0..<n {
                    let bj = b + j * k
                    var s = 0.0
                    for p in 0..<k { s += ai[p] * bj[p] }
                    ci[j] = alpha * s
                }
            } else {
                for j in 0..<n { ci[j] = 0 }
                for p in 0..<k {
                    let av = alpha * ai[p]
                    let bp = b + p * n
                    for j in 0..<n { ci[j] += av * bp[j] }
                }
            }
        }
    }
}

/// FlexAttention (ai.onnx.preview): softmax(score_mod(Q K^T * scale)) then prob_mod, times V, with GQA.
struct FlexAttentionOp: Operator {
    let scale: Float?
    /// The element type the modifier subgraphs see (softmax_precision), or nil for the default.
    let precision: DataType?
    let scoreMod: SubgraphPlan?
    let probMod: SubgraphPlan?
    let scoreOffset: Int
    let probOffset: Int

    func run(_ inputs: [Tensor?], _ ctx: ExecutionContext) throws -> [Tensor] {
        let q = try inputs.required(0, "Q"), k = try inputs.required(1, "K"), v = try inputs.required(2, "V")
        guard q.dataType.isFloatingPoint, k.dataType == q.dataType, v.dataType == q.dataType else {
            throw EngineError(.typeMismatch, "FlexAttention: Q, K and V must share one float type, got \(q.dataType), \(k.dataType), \(v.dataType)")
        }
        guard q.rank == 4, k.rank == 4, v.rank == 4 else {
            throw EngineError(.shapeMismatch, "FlexAttention: Q, K and V must be rank 4, got \(q.shape), \(k.shape), \(v.shape)")
        }
        let modType = precision ?? (q.dataType == .float64 ? .float64 : .float32)
        if modType == .float64 {
            return [try compute(q, k, v, modType, inputs, Double.self, ctx)]
        }
        return [try compute(q, k, v, modType, inputs, Float.self, ctx)]
    }

    /// The computation in W (float or double); the subgraphs see `modType` tensors.
    fileprivate func compute<W: FlexAttentionScalar>(_ q0: Tensor, _ k0: Tensor, _ v0: Tensor, _ modType: DataType, _ inputs: [Tensor?],
                                         _: W.Type, _ ctx: ExecutionContext) throws -> Tensor {
        let (batch, hq, l, e) = (q0.shape[0], q0.shape[1], q0.shape[2], q0.shape[3])
        let (hkv, s, ev) = (k0.shape[1], k0.shape[2], v0.shape[3])
        guard k0.shape[0] == batch, v0.shape[0] == batch, k0.shape[3] == e, v0.shape[1] == hkv, v0.shape[2] == s else {
            throw EngineError(.shapeMismatch, "FlexAttention: K \(k0.shape) and V \(v0.shape) do not match Q \(q0.shape)")
        }
        guard hkv > 0, hq % hkv == 0 else {
            throw EngineError(.shapeMismatch, "FlexAttention: q_num_heads \(hq) must be a multiple of kv_num_heads \(hkv)")
        }
        let group = hq / hkv
        func work(_ t: Tensor) throws -> Tensor { t.dataType == W.dataType ? t : try CastOp.cast(t, to: W.dataType, ctx) }
        /// Rounds through the subgraph type when it is narrower than W.
        func rounded(_ t: Tensor) throws -> Tensor {
            modType == W.dataType ? t : try CastOp.cast(CastOp.cast(t, to: modType, ctx), to: W.dataType, ctx)
        }
        func modify(_ t: Tensor, _ sub: SubgraphPlan, _ offset: Int, _ what: String) throws -> Tensor {
            let arg = modType == W.dataType ? t : try CastOp.cast(t, to: modType, ctx)
            let outs = try sub.run([arg], capturedFrom: inputs, at: offset, context: ctx)
            guard let r = outs.first else { throw EngineError(.invalidModel, "FlexAttention: \(what) produced no output") }
            guard r.shape == t.shape else {
                throw EngineError(.shapeMismatch, "FlexAttention: \(what) returned shape \(r.shape), expected \(t.shape)")
            }
            guard r.dataType.isFloatingPoint else {
                throw EngineError(.typeMismatch, "FlexAttention: \(what) returned \(r.dataType), expected a float tensor")
            }
            return try work(r)
        }
        let q = try work(q0), k = try work(k0), v = try work(v0)
        let scale = W(double: Double(self.scale ?? Float(1 / Double(e).squareRoot())))
        var scores = try ctx.uninitialized(W.dataType, [batch, hq, l, s])
        let pq = q.buffer(W.self).baseAddress!, pk = k.buffer(W.self).baseAddress!, pv = v.buffer(W.self).baseAddress!
        do {
            let ps = scores.mutableBuffer(W.self).baseAddress!
            for b in 0..<batch {
                for h in 0..<hq {
                    let kh = h / group
                    W.textGemm(transB: true, l, s, e, scale, pq + (b * hq + h) * l * e, pk + (b * hkv + kh) * s * e, ps + (b * hq + h) * l * s)
                }
            }
        }
        scores = try rounded(scores)
        if let scoreMod { scores = try modify(scores, scoreMod, scoreOffset, "score_mod") }
        // Scores this op allocated (no score_mod, no rounding) are normalised in place.
        let ownsScores = scoreMod == nil && modType == W.dataType
        var probs = ownsScores ? scores : try ctx.uninitialized(W.dataType, scores.shape)
        do {
            let src = scores.buffer(W.self).baseAddress!
            let dst = probs.mutableBuffer(W.self).baseAddress!
            let rows = batch * hq * l
            if s > 0 {
                for r in 0..<rows {
                    let x = src + r * s, y = dst + r * s
                    var mx = x[0]
                    for j in 1..<s where x[j] > mx || x[j].isNaN { mx = x[j] }
                    var sum: W = 0
                    for j in 0..<s { let ex = W.exp(x[j] - mx); y[j] = ex; sum += ex }
                    let inv = 1 / sum
                    for j in 0..<s { y[j] *= inv }
                }
            }
        }
        probs = try rounded(probs)
        if let probMod { probs = try modify(probs, probMod, probOffset, "prob_mod") }
        let out = try ctx.uninitialized(W.dataType, [batch, hq, l, ev])
        do {
            let pp = probs.buffer(W.self).baseAddress!
            let po = out.mutableBuffer(W.self).baseAddress!
            for b in 0..<batch {
                for h in 0..<hq {
                    let kh = h / group
                    W.textGemm(transB: false, l, ev, s, 1, pp + (b * hq + h) * l * s, pv + (b * hkv + kh) * s * ev, po + (b * hq + h) * l * ev)
                }
            }
        }
        return v0.dataType == W.dataType ? out : try CastOp.cast(out, to: v0.dataType, ctx)
    }
}

extension StandardOperators {
    static func registerAttention(_ r: inout OperatorRegistry) {
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

        r.register("RotaryEmbedding", domain: "com.microsoft") { c in
            RotaryEmbeddingOp(contrib: true, interleaved: try c.int("interleaved", default: 0) != 0,
                              numHeads: try c.int("num_heads", default: 0), rotaryDim: try c.int("rotary_embedding_dim", default: 0))
        }
        let linearAttention: @Sendable (inout OpBuildContext) throws -> any Operator = { c in
            let ruleName = try c.string("update_rule", default: "gated_delta")
            guard let rule = LinearAttentionOp.Rule(rawValue: ruleName) else {
                throw c.error(.invalidModel, "LinearAttention: update_rule must be linear, gated, delta or gated_delta, got '\(ruleName)'")
            }
            guard let qHeads = try c.int("q_num_heads"), let kvHeads = try c.int("kv_num_heads"),
                  qHeads > 0, kvHeads > 0, qHeads % kvHeads == 0 else {
                throw c.error(.invalidModel, "LinearAttention: q_num_heads must be a positive multiple of kv_num_heads (both are required)")
            }
            return LinearAttentionOp(rule: rule, qHeads: qHeads, kvHeads: kvHeads, scale: try c.float("scale", default: 0))
        }
        r.register("LinearAttention", since: 27, linearAttention)
        r.register("LinearAttention", domain: "ai.onnx.preview", linearAttention)
        r.register("FlexAttention", domain: "ai.onnx.preview") { c in
            var precision: DataType?
            if let p = try c.int("softmax_precision") {
                guard let t = DataType(rawValue: p), t.isFloatingPoint else {
                    throw c.error(.invalidModel, "FlexAttention: softmax_precision \(p) is not a float type")
                }
                precision = t
            }
            let formal = c.inputCount
            let scoreMod = c.has("score_mod") ? try c.subgraph("score_mod") : nil
            let probMod = c.has("prob_mod") ? try c.subgraph("prob_mod") : nil
            for (name, sub) in [("score_mod", scoreMod), ("prob_mod", probMod)] {
                if let sub, sub.plan.inputs.count != 1 || sub.plan.outputs.count != 1 {
                    throw c.error(.invalidModel, "FlexAttention: \(name) must have exactly one input and one output")
                }
            }
            return FlexAttentionOp(scale: try c.float("scale"), precision: precision, scoreMod: scoreMod, probMod: probMod,
                                       scoreOffset: formal, probOffset: formal + (scoreMod?.captured.count ?? 0))
        }
    }
}
