import BlindAITensor
import BlindAIKernels
import BlindAIGraph
import CBlindAIKernels
import Foundation

// Activations that are not a kind of the element-wise UnaryOp: Swish, SwiGLU and Shrink.

// MARK: - Swish

struct SwishOp: Operator {
    let alpha: Float

    func run(_ inputs: [Tensor?], _ ctx: ExecutionContext) throws -> [Tensor] {
        let x = try inputs.required(0)
        switch x.dataType {
        case .float32: return [try swish(x, Float.self, ctx)]
        case .float64: return [try swish(x, Double.self, ctx)]
        case .float16: return [try swish(x, Float16.self, ctx)]
        case .bfloat16: return [try FloatWidening.fromFloat32(try swish(try FloatWidening.toFloat32(x, ctx), Float.self, ctx), to: .bfloat16, ctx)]
        default: throw EngineError(.typeMismatch, "Swish does not support \(x.dataType) tensors")
        }
    }

    private func swish<T: EngineFloat>(_ x: Tensor, _: T.Type, _ ctx: ExecutionContext) throws -> Tensor {
        let a = T(alpha)
        return try Loops.map(x, T.self, T.self, ctx) { v in
            v / (1 + SIMDRows.exp(-a * v))
        }
    }
}

// MARK: - SwiGLU

/// SwiGLU: Y = A * sigmoid(alpha * A) * B, for inputs of identical shape.
struct SwiGLUOp: Operator {
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

/// Shrink: x < -lambd ? x + bias : (x > lambd ? x - bias : 0).
struct ShrinkOp: Operator {
    let lambd: Float
    let bias: Float
    func run(_ inputs: [Tensor?], _ ctx: ExecutionContext) throws -> [Tensor] {
        let x = try inputs.required(0)
        switch x.dataType {
        case .float32: return [try float(x, Float.self, ctx)]
        case .float64: return [try float(x, Double.self, ctx)]
        case .float16: return [try float(x, Float16.self, ctx)]
        case .int8: return [try integer(x, Int8.self, ctx)]
        case .uint8: return [try integer(x, UInt8.self, ctx)]
        case .int16: return [try integer(x, Int16.self, ctx)]
        case .uint16: return [try integer(x, UInt16.self, ctx)]
        case .int32: return [try integer(x, Int32.self, ctx)]
        case .uint32: return [try integer(x, UInt32.self, ctx)]
        case .int64: return [try integer(x, Int64.self, ctx)]
        case .uint64: return [try integer(x, UInt64.self, ctx)]
        default: throw EngineError(.typeMismatch, "Shrink does not support \(x.dataType) tensors")
        }
    }

    func float<T: EngineFloat>(_ x: Tensor, _: T.Type, _ ctx: ExecutionContext) throws -> Tensor {
        let l = T(lambd), b = T(bias)
        return try Loops.map(x, T.self, T.self, ctx) { v in v < -l ? v + b : (v > l ? v - b : 0) }
    }

    func integer<T: EngineInteger>(_ x: Tensor, _: T.Type, _ ctx: ExecutionContext) throws -> Tensor {
        let l = Double(lambd), b = Double(bias)
        return try Loops.map(x, T.self, T.self, ctx) { v in
            let d = Double(v)
            return d < -l ? T(clampingDouble: d + b) : (d > l ? T(clampingDouble: d - b) : 0)
        }
    }
}

extension StandardOperators {
    static func registerActivations(_ r: inout OperatorRegistry) {
        r.register("Swish") { c in SwishOp(alpha: try c.float("alpha", default: 1)) }
        r.register("SwiGLU") { c in SwiGLUOp(alpha: try c.float("alpha", default: 1)) }
        r.register("Shrink") { c in ShrinkOp(lambd: try c.float("lambd", default: 0.5), bias: try c.float("bias", default: 0)) }
    }
}
