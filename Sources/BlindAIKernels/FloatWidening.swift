import BlindAITensor

/// Reduced-precision floats computed in float32: the one place that widens float16, bfloat16 (and float64) inputs
/// to float32 and narrows float32 results back. Narrowing rounds to nearest even; a NaN becomes bfloat16's
/// canonical quiet NaN (0x7FC0), as `Cast` does.
package enum FloatWidening {
    /// `t` as a float32 tensor (no copy when it already is one). Any non-float type is a type mismatch.
    package static func toFloat32(_ t: Tensor, _ ctx: ExecutionContext) throws -> Tensor {
        switch t.dataType {
        case .float32: return t
        case .float16: return try convert(t, Float16.self, to: .float32, Float.self, ctx) { Float($0) }
        case .bfloat16: return try convert(t, UInt16.self, to: .float32, Float.self, ctx) { Float(bitPattern: UInt32($0) << 16) }
        case .float64: return try convert(t, Double.self, to: .float32, Float.self, ctx) { Float($0) }
        default: throw EngineError(.typeMismatch, "expected a float tensor, got \(t.dataType)")
        }
    }

    /// A float32 tensor converted to `target` (float32 itself, float16, bfloat16 or float64).
    package static func fromFloat32(_ t: Tensor, to target: DataType, _ ctx: ExecutionContext) throws -> Tensor {
        switch target {
        case .float32: return t
        case .float16: return try convert(t, Float.self, to: .float16, Float16.self, ctx) { Float16($0) }
        case .bfloat16: return try convert(t, Float.self, to: .bfloat16, UInt16.self, ctx) { bfloat16Bits($0) }
        case .float64: return try convert(t, Float.self, to: .float64, Double.self, ctx) { Double($0) }
        default: throw EngineError(.typeMismatch, "cannot convert float32 results to \(target)")
        }
    }

    /// Element by element from storage `S` into a new tensor of type `target` with storage `D` (bfloat16 is stored
    /// as UInt16, which is why this is not `Loops.map`: that one checks the storage type against the tensor type).
    @inline(__always)
    private static func convert<S: TensorElement, D: TensorElement>(_ t: Tensor, _: S.Type, to target: DataType, _: D.Type,
                                                                      _ ctx: ExecutionContext, _ f: (S) -> D) throws -> Tensor {
        let out = try ctx.uninitialized(target, t.shape)
        let s = t.buffer(S.self), d = out.mutableBuffer(D.self)
        for i in 0..<s.count { d[i] = f(s[i]) }
        return out
    }

    /// A float32 tensor converted to float16.
    package static func toFloat16(_ t: Tensor, _ ctx: ExecutionContext) throws -> Tensor {
        try fromFloat32(t, to: .float16, ctx)
    }

    /// The bfloat16 bits of `f`, rounded to nearest even.
    @inlinable @inline(__always)
    package static func bfloat16Bits(_ f: Float) -> UInt16 {
        if f.isNaN { return 0x7FC0 }
        let bits = f.bitPattern
        let rounding = ((bits >> 16) & 1) + 0x7FFF
        return UInt16(truncatingIfNeeded: (bits &+ rounding) >> 16)
    }
}
