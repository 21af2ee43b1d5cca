import BlindAITensor
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
        case .sigmoid:
            for i in 0..<n {
                let v = p[i]
                p[i] = v >= 0 ? 1 / (1 + Foundation.exp(-v)) : Foundation.exp(v) / (1 + Foundation.exp(v))
            }
        case .tanh: for i in 0..<n { p[i] = Foundation.tanh(p[i]) }
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
        let y = try ctx.zeros(.float32, yShape)
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

        for d in 0..<dirs {
            let reverse = reverseOnly || d == 1
            let acts = activations[d]
            let wd = pw + d * gh * inputSize
            let rd = pr + d * gh * hidden
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
                    blindai_sgemm(0, 1, batch, gh, hidden, 1, hState, hidden, rd, hidden, 1, gates, gh)
                    for bi in 0..<batch where s < lengths[bi] {
                        let gp = gates + bi * gh
                        acts[0].apply(gp, hidden, clip: clip)
                        (hState + bi * hidden).update(from: gp, count: hidden)
                    }
                case .lstm:
                    blindai_sgemm(0, 1, batch, gh, hidden, 1, hState, hidden, rd, hidden, 1, gates, gh)
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
                        blindai_sgemm(0, 1, batch, gh, hidden, 1, hState, hidden, rd, hidden, 0, hr, gh)
                    } else {
                        blindai_sgemm(0, 1, batch, 2 * hidden, hidden, 1, hState, hidden, rd, hidden, 0, hr, gh)
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
                        blindai_sgemm(0, 1, batch, hidden, hidden, 1, rh, hidden, rd + 2 * hidden * hidden, hidden, 0, hr, gh)
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
