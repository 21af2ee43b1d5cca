import BlindAITensor
import BlindAIKernels
import BlindAIGraph
import CBlindAIKernels
import Foundation

// The com.microsoft attention family, as onnxruntime runs it on CPU: Attention (packed QKV weights),
// MultiHeadAttention and GroupQueryAttention (key/value caches). Kernels: BlindAIKernels/Attention.swift.

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
    static func registerContribAttention(_ r: inout OperatorRegistry) {
        r.register("Attention", domain: "com.microsoft") { c in
            guard let h = try c.int("num_heads"), h > 0 else { throw c.error(.invalidModel, "Attention needs num_heads > 0") }
            if try c.int("do_rotary", default: 0) != 0 { throw c.error(.invalidModel, "Attention with do_rotary is not supported") }
            return ContribAttentionOp(numHeads: h, qkvSizes: try c.ints("qkv_hidden_sizes"),
                                      unidirectional: try c.int("unidirectional", default: 0) != 0,
                                      maskFilter: try c.float("mask_filter_value", default: -10000), scale: try c.float("scale"),
                                      outputCount: c.outputCount)
        }
        r.register("MultiHeadAttention", domain: "com.microsoft") { c in
            guard let h = try c.int("num_heads"), h > 0 else { throw c.error(.invalidModel, "MultiHeadAttention needs num_heads > 0") }
            return MultiHeadAttentionOp(numHeads: h, maskFilter: try c.float("mask_filter_value", default: -10000), scale: try c.float("scale"),
                                        unidirectional: try c.int("unidirectional", default: 0) != 0, outputCount: c.outputCount)
        }
        r.register("GroupQueryAttention", domain: "com.microsoft") { c in
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
    }
}
