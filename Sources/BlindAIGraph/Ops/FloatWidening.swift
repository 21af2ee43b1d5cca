import BlindAITensor

/// Reduced-precision floats computed in float32: the one place that widens float16, bfloat16 (and float64) inputs
/// to float32 and narrows float32 results back. Narrowing rounds to nearest even; a NaN becomes bfloat16's
/// canonical quiet NaN (0x7FC0), as `Cast` does.
enum FloatWidening {
    /// `t` as a float32 tensor (no copy when it already is one). Any non-float type is a type mismatch.
    static func toFloat32(_ t: Tensor, _ ctx: ExecutionContext) throws -> Tensor {
        switch t.dataType {
        case .float32: return t
        case .float16:
            let out = try ctx.uninitialized(.float32, t.shape)
            let s = t.buffer(Float16.self), d = out.mutableBuffer(Float.self)
            for i in 0..<s.count { d[i] = Float(s[i]) }
            return out
        case .bfloat16:
            let out = try ctx.uninitialized(.float32, t.shape)
            let s = t.buffer(UInt16.self), d = out.mutableBuffer(Float.self)
            for i in 0..<s.count { d[i] = Float(bitPattern: UInt32(s[i]) << 16) }
            return out
        case .float64:
            let out = try ctx.uninitialized(.float32, t.shape)
            let s = t.buffer(Double.self), d = out.mutableBuffer(Float.self)
            for i in 0..<s.count { d[i] = Float(s[i]) }
            return out
        default:
            throw EngineError(.typeMismatch, "expected a float tensor, got \(t.dataType)")
        }
    }

    /// A float32 tensor converted to `target` (float32 itself, float16, bfloat16 or float64).
    static func fromFloat32(_ t: Tensor, to target: DataType, _ ctx: ExecutionContext) throws -> Tensor {
        switch target {
        case .float32: return t
        case .float16:
            let out = try ctx.uninitialized(.float16, t.shape)
            let s = t.buffer(Float.self), d = out.mutableBuffer(Float16.self)
            for i in 0..<s.count { d[i] = Float16(s[i]) }
            return out
        case .bfloat16:
            let out = try ctx.uninitialized(.bfloat16, t.shape)
            let s = t.buffer(Float.self), d = out.mutableBuffer(UInt16.self)
            for i in 0..<s.count { d[i] = bfloat16Bits(s[i]) }
            return out
        case .float64:
            let out = try ctx.uninitialized(.float64, t.shape)
            let s = t.buffer(Float.self), d = out.mutableBuffer(Double.self)
            for i in 0..<s.count { d[i] = Double(s[i]) }
            return out
        default:
            throw EngineError(.typeMismatch, "cannot convert float32 results to \(target)")
        }
    }

    /// A float32 tensor converted to float16.
    static func toFloat16(_ t: Tensor, _ ctx: ExecutionContext) throws -> Tensor {
        try fromFloat32(t, to: .float16, ctx)
    }

    /// The bfloat16 bits of `f`, rounded to nearest even.
    @inline(__always)
    static func bfloat16Bits(_ f: Float) -> UInt16 {
        if f.isNaN { return 0x7FC0 }
        let bits = f.bitPattern
        let rounding = ((bits >> 16) & 1) + 0x7FFF
        return UInt16(truncatingIfNeeded: (bits &+ rounding) >> 16)
    }
}
