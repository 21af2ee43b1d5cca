import BlindAITensor
import BlindAIKernels
import BlindAIGraph
import CBlindAIKernels
import Foundation

// com.microsoft EmbedLayerNormalization: word + position (+ segment) embeddings, then layer normalization.

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

extension StandardOperators {
    static func registerEmbedLayerNormalization(_ r: inout OperatorRegistry) {
        r.register("EmbedLayerNormalization", domain: "com.microsoft") { c in
            EmbedLayerNormOp(epsilon: try c.float("epsilon", default: 1e-12), outputCount: c.outputCount)
        }
    }
}
