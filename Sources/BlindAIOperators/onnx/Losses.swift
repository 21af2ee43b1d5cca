import BlindAITensor
import BlindAIKernels
import BlindAIGraph
import CBlindAIKernels
import Foundation

// SoftmaxCrossEntropyLoss and NegativeLogLikelihoodLoss.

// MARK: - NegativeLogLikelihoodLoss, SoftmaxCrossEntropyLoss

enum LossReduction: String, Sendable { case none, sum, mean }

struct LossOp: Operator {
    /// true: SoftmaxCrossEntropyLoss (scores in, optional log_prob out); false: NegativeLogLikelihoodLoss.
    let softmax: Bool
    let reduction: LossReduction
    let ignoreIndex: Int?
    let wantLogProb: Bool

    func run(_ inputs: [Tensor?], _ ctx: ExecutionContext) throws -> [Tensor] {
        let x0 = try inputs.required(0)
        let target = try inputs.required(1, softmax ? "labels" : "target")
        let weight = inputs.optional(2)
        let name = softmax ? "SoftmaxCrossEntropyLoss" : "NegativeLogLikelihoodLoss"
        guard x0.rank >= 2 else { throw EngineError(.shapeMismatch, "\(name) needs an input of rank >= 2, got shape \(x0.shape)") }
        guard target.shape == [x0.shape[0]] + Array(x0.shape[2...]) else {
            throw EngineError(.shapeMismatch, "\(name): target shape \(target.shape) does not match input shape \(x0.shape) (expected [N, d1, ...])")
        }
        switch x0.dataType {
        case .float32: return try compute(x0, target, weight, Float.self, ctx)
        case .float64: return try compute(x0, target, weight, Double.self, ctx)
        case .float16, .bfloat16:
            let r = try compute(try FloatWidening.toFloat32(x0, ctx), target, weight, Float.self, ctx)
            return try r.map { try FloatWidening.fromFloat32($0, to: x0.dataType, ctx) }
        default: throw EngineError(.typeMismatch, "\(name) does not support \(x0.dataType) tensors")
        }
    }

    private func compute<T: EngineFloat>(_ x: Tensor, _ target: Tensor, _ weight: Tensor?, _: T.Type, _ ctx: ExecutionContext) throws -> [Tensor] {
        let n = x.shape[0], c = x.shape[1]
        let d = x.shape[2...].reduce(1, *)
        let logp = softmax ? try SoftmaxOp.apply(.logSoftmax, x, n, c, d, T.self, ctx) : x
        let labels = try target.intValues()
        var w: [Double]? = nil
        if let weight {
            w = try weight.doubleValues()
            guard w!.count == c else { throw EngineError(.shapeMismatch, "weight has \(w!.count) elements, expected \(c) classes") }
        }
        let lp = logp.buffer(T.self).baseAddress!
        let count = n * d
        var losses = [Double](repeating: 0, count: count)
        var weightSum = 0.0
        for i in 0..<n {
            for j in 0..<d {
                let t = labels[i * d + j]
                if let ig = ignoreIndex, t == ig { continue }
                guard t >= 0 && t < c else {
                    throw EngineError(.invalidArgument, "target value \(t) is out of range for \(c) classes")
                }
                let wt = w?[t] ?? 1
                losses[i * d + j] = -Double(lp[(i * c + t) * d + j]) * wt
                weightSum += wt
            }
        }
        let loss: Tensor
        switch reduction {
        case .none:
            loss = try CastOp.fromDoubles(losses, shape: target.shape, to: T.dataType, ctx)
        case .sum:
            loss = Tensor(scalar: T(double: losses.reduce(0, +)))
        case .mean:
            loss = Tensor(scalar: T(double: losses.reduce(0, +) / weightSum))
        }
        return softmax && wantLogProb ? [loss, logp] : [loss]
    }
}

extension StandardOperators {
    static func registerLosses(_ r: inout OperatorRegistry) {
        for (name, softmax) in [("SoftmaxCrossEntropyLoss", true), ("NegativeLogLikelihoodLoss", false)] {
            r.register(name) { c in
                let red = try c.string("reduction", default: "mean")
                guard let reduction = LossReduction(rawValue: red) else {
                    throw c.error(.invalidModel, "reduction must be none, sum or mean, got '\(red)'")
                }
                return LossOp(softmax: softmax, reduction: reduction, ignoreIndex: try c.int("ignore_index"), wantLogProb: c.outputCount > 1)
            }
        }
    }
}
