import BlindAITensor
import CBlindAIKernels
import Foundation

// Text and sequence-model operators: TfIdfVectorizer, SwiGLU, LinearAttention and FlexAttention.

// MARK: - TfIdfVectorizer

/// A child link in the n-gram trie: (parent node, token).
fileprivate struct TextTrieKey: Hashable {
    let node: Int32
    let token: Int64
}

/// TfIdfVectorizer: counts the pool's n-grams (with skips) in each row of an int or string input.
struct TextTfIdfVectorizerOp: Operator {
    enum Mode { case tf, idf, tfidf }
    let mode: Mode
    let minGram: Int
    let maxGram: Int
    let maxSkip: Int
    let outputSize: Int
    /// Output column of each n-gram id - 1.
    let ngramIndexes: [Int]
    let weights: [Float]
    /// Trie: per node its n-gram id (0 = none) and number of children; children by (node, token).
    fileprivate let nodeIds: [Int32]
    fileprivate let childCounts: [Int32]
    fileprivate let children: [TextTrieKey: Int32]
    /// For string pools: each pool string's token.
    let stringTokens: [String: Int64]?

    init(mode: Mode, minGram: Int, maxGram: Int, maxSkip: Int, ngramCounts: [Int], ngramIndexes: [Int],
         weights: [Float], poolInts: [Int]?, poolStrings: [String]?) throws {
        self.mode = mode
        self.minGram = minGram
        self.maxGram = maxGram
        self.maxSkip = maxSkip
        self.weights = weights
        self.ngramIndexes = ngramIndexes
        var pool: [Int64]
        if let poolStrings {
            var map: [String: Int64] = [:]
            pool = []
            pool.reserveCapacity(poolStrings.count)
            for s in poolStrings {
                if let t = map[s] { pool.append(t) } else {
                    let t = Int64(map.count)
                    map[s] = t
                    pool.append(t)
                }
            }
            stringTokens = map
        } else {
            pool = (poolInts ?? []).map { Int64($0) }
            stringTokens = nil
        }
        guard let maxIndex = ngramIndexes.max() else {
            throw EngineError(.invalidModel, "TfIdfVectorizer: ngram_indexes is empty")
        }
        guard ngramIndexes.allSatisfy({ $0 >= 0 }) else {
            throw EngineError(.invalidModel, "TfIdfVectorizer: ngram_indexes has negative values")
        }
        // The output has maxIndex + 1 columns: bounded so that the size (and maxIndex + 1) cannot overflow.
        guard maxIndex < 1 << 30 else {
            throw EngineError(.invalidModel, "TfIdfVectorizer: ngram_indexes value \(maxIndex) is over \(1 << 30)")
        }
        outputSize = maxIndex + 1
        if mode != .tf && !weights.isEmpty && weights.count < outputSize {
            throw EngineError(.invalidModel, "TfIdfVectorizer: \(weights.count) weights for \(outputSize) outputs")
        }
        var ids: [Int32] = [0]
        var counts: [Int32] = [0]
        var links: [TextTrieKey: Int32] = [:]
        var ngramId = 1
        for (level, start) in ngramCounts.enumerated() {
            let size = level + 1
            let end = level + 1 < ngramCounts.count ? ngramCounts[level + 1] : pool.count
            guard start >= 0, start <= end, end <= pool.count else {
                throw EngineError(.invalidModel, "TfIdfVectorizer: ngram_counts \(ngramCounts) do not fit a pool of \(pool.count) items")
            }
            let grams = (end - start) / size
            if grams == 0 { continue }
            if size < minGram || size > maxGram {
                ngramId += grams
                continue
            }
            for g in 0..<grams {
                var node: Int32 = 0
                for t in 0..<size {
                    let key = TextTrieKey(node: node, token: pool[start + g * size + t])
                    if let child = links[key] {
                        node = child
                    } else {
                        let child = Int32(ids.count)
                        ids.append(0)
                        counts.append(0)
                        links[key] = child
                        counts[Int(node)] += 1
                        node = child
                    }
                }
                guard ngramId <= ngramIndexes.count else {
                    throw EngineError(.invalidModel, "TfIdfVectorizer: the pool has more n-grams than ngram_indexes (\(ngramIndexes.count))")
                }
                ids[Int(node)] = Int32(ngramId)
                ngramId += 1
            }
        }
        nodeIds = ids
        childCounts = counts
        children = links
    }

    func run(_ inputs: [Tensor?], _ ctx: ExecutionContext) throws -> [Tensor] {
        let x = try inputs.required(0)
        var tokens: [Int64]
        switch x.dataType {
        case .string:
            guard let map = stringTokens else {
                throw EngineError(.typeMismatch, "TfIdfVectorizer: string input but the pool is pool_int64s")
            }
            tokens = x.strings.map { map[$0] ?? -1 }
        case .int32, .int64:
            guard stringTokens == nil else {
                throw EngineError(.typeMismatch, "TfIdfVectorizer: \(x.dataType) input but the pool is pool_strings")
            }
            tokens = x.dataType == .int64 ? Array(x.buffer(Int64.self)) : x.buffer(Int32.self).map { Int64($0) }
        default:
            throw EngineError(.typeMismatch, "TfIdfVectorizer does not support \(x.dataType) tensors")
        }
        let rows: Int, width: Int, outShape: [Int]
        switch x.rank {
        case 0: rows = 1; width = 1; outShape = [outputSize]
        case 1: rows = 1; width = x.shape[0]; outShape = [outputSize]
        case 2: rows = x.shape[0]; width = x.shape[1]; outShape = [rows, outputSize]
        default: throw EngineError(.shapeMismatch, "TfIdfVectorizer: input must be [C] or [N, C], got \(x.shape)")
        }
        let out = try ctx.zeros(.float32, outShape)
        if out.count == 0 || width == 0 || nodeIds.count <= 1 { return [out] }
        let y = out.mutableBuffer(Float.self)
        let outputSize = self.outputSize
        nodeIds.withUnsafeBufferPointer { ids in
            childCounts.withUnsafeBufferPointer { childCount in
                ngramIndexes.withUnsafeBufferPointer { columns in
                    tokens.withUnsafeBufferPointer { tok in
                        for row in 0..<rows {
                            let base = row * width
                            let outBase = row * outputSize
                            var startSize = minGram
                            // A skip wider than the row finds no n-gram of two or more items: max_skip_count
                            // (any int64 from the model) is clamped to the row, so skip + 1 cannot overflow.
                            for skip in 1...(Swift.min(maxSkip, width) + 1) {
                                var s = 0
                                while s < width {
                                    let (span, overflow) = skip.multipliedReportingOverflow(by: startSize - 1)
                                    if overflow || span >= width - s { break }
                                    var node: Int32 = 0
                                    var size = 1
                                    var item = s
                                    while childCount[Int(node)] > 0 && size <= maxGram && item < width {
                                        guard let child = children[TextTrieKey(node: node, token: tok[base + item])] else { break }
                                        let id = Int(ids[Int(child)])
                                        if size >= startSize && id != 0 {
                                            y[outBase + columns[id - 1]] += 1
                                        }
                                        node = child
                                        size += 1
                                        item += skip
                                    }
                                    s += 1
                                }
                                // Unigrams do not depend on the skip: count them once.
                                if startSize == 1 {
                                    startSize += 1
                                    if startSize > maxGram { break }
                                }
                            }
                        }
                    }
                }
            }
        }
        switch mode {
        case .tf: break
        case .idf:
            if weights.isEmpty {
                for i in 0..<y.count where y[i] > 0 { y[i] = 1 }
            } else {
                for row in 0..<(out.count / outputSize) {
                    for i in 0..<outputSize { let p = row * outputSize + i; y[p] = y[p] > 0 ? weights[i] : 0 }
                }
            }
        case .tfidf:
            if !weights.isEmpty {
                for row in 0..<(out.count / outputSize) {
                    for i in 0..<outputSize { let p = row * outputSize + i; y[p] *= weights[i] }
                }
            }
        }
        return [out]
    }
}

// MARK: - SwiGLU

/// SwiGLU: Y = A * sigmoid(alpha * A) * B, for inputs of identical shape.
struct TextSwiGLUOp: Operator {
    let alpha: Float

    func run(_ inputs: [Tensor?], _ ctx: ExecutionContext) throws -> [Tensor] {
        let a = try inputs.required(0), b = try inputs.required(1)
        guard a.dataType == b.dataType else {
            throw EngineError(.typeMismatch, "SwiGLU: A is \(a.dataType) but B is \(b.dataType)")
        }
        guard a.shape == b.shape else {
            throw EngineError(.shapeMismatch, "SwiGLU: A \(a.shape) and B \(b.shape) must have the same shape (no broadcasting)")
        }
        switch a.dataType {
        case .float32: return [try apply(a, b, Float.self, Float.self, ctx)]
        case .float64: return [try apply(a, b, Double.self, Double.self, ctx)]
        case .float16: return [try apply(a, b, Float16.self, Float.self, ctx)]
        case .bfloat16:
            let y = try apply(CastOp.cast(a, to: .float32, ctx), CastOp.cast(b, to: .float32, ctx), Float.self, Float.self, ctx)
            return [try CastOp.cast(y, to: .bfloat16, ctx)]
        default: throw EngineError(.typeMismatch, "SwiGLU does not support \(a.dataType) tensors")
        }
    }

    /// Elements of type T computed in precision C.
    func apply<T: EngineFloat, C: EngineFloat>(_ a: Tensor, _ b: Tensor, _: T.Type, _: C.Type, _ ctx: ExecutionContext) throws -> Tensor {
        let out = try ctx.uninitialized(T.dataType, a.shape)
        let pa = a.buffer(T.self), pb = b.buffer(T.self)
        let po = out.mutableBuffer(T.self)
        let al = C(alpha)
        for i in 0..<out.count {
            let x = C(pa[i])
            let s = 1 / (1 + C.exp(-al * x))
            po[i] = T(x * s * C(pb[i]))
        }
        return out
    }
}

// MARK: - LinearAttention

/// LinearAttention: the linear / gated / delta / gated-delta recurrences over packed [B, T, H*D] inputs,
/// computed in float32 with the state (B, H_kv, d_k, d_v).
struct TextLinearAttentionOp: Operator {
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
fileprivate protocol TextAttentionScalar: EngineFloat {
    /// C[m, n] = alpha * A[m, k] * op(B), op(B) = B[k, n] or B[n, k]^T; all row-major and contiguous.
    static func textGemm(transB: Bool, _ m: Int, _ n: Int, _ k: Int, _ alpha: Self,
                         _ a: UnsafePointer<Self>, _ b: UnsafePointer<Self>, _ c: UnsafeMutablePointer<Self>)
}

extension Float: TextAttentionScalar {
    fileprivate static func textGemm(transB: Bool, _ m: Int, _ n: Int, _ k: Int, _ alpha: Float,
                                     _ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, _ c: UnsafeMutablePointer<Float>) {
        blindai_sgemm(0, transB ? 1 : 0, m, n, k, alpha, a, k, b, transB ? k : n, 0, c, n)
    }
}

extension Double: TextAttentionScalar {
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
struct TextFlexAttentionOp: Operator {
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
    fileprivate func compute<W: TextAttentionScalar>(_ q0: Tensor, _ k0: Tensor, _ v0: Tensor, _ modType: DataType, _ inputs: [Tensor?],
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
    static func registerText(_ r: inout OperatorRegistry) {
        r.register("TfIdfVectorizer", since: 9) { c in
            let modeName = try c.string("mode") ?? ""
            let mode: TextTfIdfVectorizerOp.Mode
            switch modeName {
            case "TF": mode = .tf
            case "IDF": mode = .idf
            case "TFIDF": mode = .tfidf
            default: throw c.error(.invalidModel, "TfIdfVectorizer: mode must be TF, IDF or TFIDF, got '\(modeName)'")
            }
            let minGram = try c.int("min_gram_length", default: 1)
            let maxGram = try c.int("max_gram_length", default: 1)
            let maxSkip = try c.int("max_skip_count", default: 0)
            guard minGram >= 1, maxGram >= minGram, maxSkip >= 0 else {
                throw c.error(.invalidModel, "TfIdfVectorizer: need 1 <= min_gram_length (\(minGram)) <= max_gram_length (\(maxGram)) and max_skip_count (\(maxSkip)) >= 0")
            }
            let poolInts = try c.ints("pool_int64s"), poolStrings = try c.strings("pool_strings")
            guard (poolInts == nil) != (poolStrings == nil) else {
                throw c.error(.invalidModel, "TfIdfVectorizer: exactly one of pool_int64s and pool_strings must be set")
            }
            do {
                return try TextTfIdfVectorizerOp(
                    mode: mode, minGram: minGram, maxGram: maxGram, maxSkip: maxSkip,
                    ngramCounts: try c.ints("ngram_counts") ?? [], ngramIndexes: try c.ints("ngram_indexes") ?? [],
                    weights: try c.floats("weights") ?? [], poolInts: poolInts, poolStrings: poolStrings)
            } catch let e as EngineError {
                throw c.error(e.code, e.reason)
            }
        }
        r.register("SwiGLU") { c in TextSwiGLUOp(alpha: try c.float("alpha", default: 1)) }
        let linearAttention: @Sendable (inout OpBuildContext) throws -> any Operator = { c in
            let ruleName = try c.string("update_rule", default: "gated_delta")
            guard let rule = TextLinearAttentionOp.Rule(rawValue: ruleName) else {
                throw c.error(.invalidModel, "LinearAttention: update_rule must be linear, gated, delta or gated_delta, got '\(ruleName)'")
            }
            guard let qHeads = try c.int("q_num_heads"), let kvHeads = try c.int("kv_num_heads"),
                  qHeads > 0, kvHeads > 0, qHeads % kvHeads == 0 else {
                throw c.error(.invalidModel, "LinearAttention: q_num_heads must be a positive multiple of kv_num_heads (both are required)")
            }
            return TextLinearAttentionOp(rule: rule, qHeads: qHeads, kvHeads: kvHeads, scale: try c.float("scale", default: 0))
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
            return TextFlexAttentionOp(scale: try c.float("scale"), precision: precision, scoreMod: scoreMod, probMod: probMod,
                                       scoreOffset: formal, probOffset: formal + (scoreMod?.captured.count ?? 0))
        }
    }
}
