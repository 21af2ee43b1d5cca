import BlindAITensor
import BlindAIKernels
import BlindAIGraph
import CBlindAIKernels
import Foundation

// com.microsoft fused element-wise activations: BiasGelu, FastGelu (with bias), QuickGelu, BiasAdd.

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

extension StandardOperators {
    static func registerFusedActivations(_ r: inout OperatorRegistry) {
        r.register("BiasGelu", domain: "com.microsoft") { _ in MicrosoftActivationOp(kind: .biasGelu) }
        r.register("QuickGelu", domain: "com.microsoft") { c in MicrosoftActivationOp(kind: .quickGelu(try c.float("alpha", default: 1.702))) }
        r.register("BiasAdd", domain: "com.microsoft") { _ in MicrosoftActivationOp(kind: .biasAdd) }
        r.register("FastGelu", domain: "com.microsoft") { _ in MicrosoftActivationOp(kind: .fastGelu) }
    }
}
