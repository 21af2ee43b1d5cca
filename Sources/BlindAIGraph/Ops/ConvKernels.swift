import BlindAITensor
import CBlindAIKernels

// Helpers shared by the linear-algebra, convolution and quantization families (MatMul, Gemm, Conv,
// ConvTranspose, ConvInteger, QLinearConv, QLinearMatMul, ...). Names carry a `ConvFamily`/`CF` prefix so that
// they cannot clash with helpers of other families.

/// Element types the GEMM-based kernels work on: float32 (through `blindai_sgemm`), float64 and int32
/// (through portable loops; int32 arithmetic wraps like C).
protocol CFScalar: TensorElement {
    /// C[m,n] (+)= op(A)[m,k] * op(B)[k,n], row-major; `accumulate` false overwrites C.
    static func cfGemm(transA: Bool, transB: Bool, m: Int, n: Int, k: Int,
                       a: UnsafePointer<Self>, lda: Int, b: UnsafePointer<Self>, ldb: Int,
                       accumulate: Bool, c: UnsafeMutablePointer<Self>, ldc: Int)
    static func cfAdd(_ x: Self, _ y: Self) -> Self
    static func cfMul(_ x: Self, _ y: Self) -> Self
}

extension Float: CFScalar {
    static func cfGemm(transA: Bool, transB: Bool, m: Int, n: Int, k: Int,
                                  a: UnsafePointer<Float>, lda: Int, b: UnsafePointer<Float>, ldb: Int,
                                  accumulate: Bool, c: UnsafeMutablePointer<Float>, ldc: Int) {
        blindai_sgemm(transA ? 1 : 0, transB ? 1 : 0, m, n, k, 1, a, lda, b, ldb, accumulate ? 1 : 0, c, ldc)
    }
    @inline(__always) static func cfAdd(_ x: Float, _ y: Float) -> Float { x + y }
    @inline(__always) static func cfMul(_ x: Float, _ y: Float) -> Float { x * y }
}

extension Double: CFScalar {
    static func cfGemm(transA: Bool, transB: Bool, m: Int, n: Int, k: Int,
                                  a: UnsafePointer<Double>, lda: Int, b: UnsafePointer<Double>, ldb: Int,
                                  accumulate: Bool, c: UnsafeMutablePointer<Double>, ldc: Int) {
        cfPortableGemm(transA: transA, transB: transB, m: m, n: n, k: k, a: a, lda: lda, b: b, ldb: ldb,
                       accumulate: accumulate, c: c, ldc: ldc)
    }
    @inline(__always) static func cfAdd(_ x: Double, _ y: Double) -> Double { x + y }
    @inline(__always) static func cfMul(_ x: Double, _ y: Double) -> Double { x * y }
}

extension Int32: CFScalar {
    static func cfGemm(transA: Bool, transB: Bool, m: Int, n: Int, k: Int,
                                  a: UnsafePointer<Int32>, lda: Int, b: UnsafePointer<Int32>, ldb: Int,
                                  accumulate: Bool, c: UnsafeMutablePointer<Int32>, ldc: Int) {
        cfPortableGemm(transA: transA, transB: transB, m: m, n: n, k: k, a: a, lda: lda, b: b, ldb: ldb,
                       accumulate: accumulate, c: c, ldc: ldc)
    }
    @inline(__always) static func cfAdd(_ x: Int32, _ y: Int32) -> Int32 { x &+ y }
    @inline(__always) static func cfMul(_ x: Int32, _ y: Int32) -> Int32 { x &* y }
}

/// Portable GEMM: i-p-j order so that the inner loop runs over contiguous rows of B and C when B is not
/// transposed (vectorisable). Transposed B is first copied to a row-major buffer by blocks of K.

func cfPortableGemm<T: CFScalar>(transA: Bool, transB: Bool, m: Int, n: Int, k: Int,
                                 a: UnsafePointer<T>, lda: Int, b: UnsafePointer<T>, ldb: Int,
                                 accumulate: Bool, c: UnsafeMutablePointer<T>, ldc: Int) {
    if m <= 0 || n <= 0 { return }
    if !accumulate {
        for i in 0..<m { (c + i * ldc).initialize(repeating: T.zero, count: n) }
    }
    if k <= 0 { return }
    var bRows = b
    var bStride = ldb
    var scratch: UnsafeMutablePointer<T>?
    if transB {
        // B is [n, k]: make a [k, n] row-major copy.
        let s = UnsafeMutablePointer<T>.allocate(capacity: k * n)
        for j in 0..<n {
            let src = b + j * ldb
            for p in 0..<k { s[p * n + j] = src[p] }
        }
        scratch = s
        bRows = UnsafePointer(s)
        bStride = n
    }
    defer { scratch?.deallocate() }
    for i in 0..<m {
        let crow = c + i * ldc
        for p in 0..<k {
            let av = transA ? a[p * lda + i] : a[i * lda + p]
            let brow = bRows + p * bStride
            for j in 0..<n { crow[j] = T.cfAdd(crow[j], T.cfMul(av, brow[j])) }
        }
    }
}

enum ConvFamily {
    /// float16 or bfloat16 tensor converted to float32 (for the float32 kernels), or the tensor itself.
    static func toFloat32(_ t: Tensor, _ ctx: ExecutionContext) throws -> Tensor {
        switch t.dataType {
        case .float32: return t
        case .float16:
            let out = try ctx.uninitialized(.float32, t.shape)
            let s = t.buffer(Float16.self), d = out.mutableBuffer(Float.self)
            for i in 0..<t.count { d[i] = Float(s[i]) }
            return out
        case .bfloat16:
            let out = try ctx.uninitialized(.float32, t.shape)
            let s = t.buffer(UInt16.self), d = out.mutableBuffer(Float.self)
            for i in 0..<t.count { d[i] = Float(bitPattern: UInt32(s[i]) << 16) }
            return out
        case .float64:
            let out = try ctx.uninitialized(.float32, t.shape)
            let s = t.buffer(Double.self), d = out.mutableBuffer(Float.self)
            for i in 0..<t.count { d[i] = Float(s[i]) }
            return out
        default:
            throw EngineError(.typeMismatch, "expected a float tensor, got \(t.dataType)")
        }
    }

    /// A float32 tensor converted to `target` (float16 or bfloat16, round to nearest even).
    static func fromFloat32(_ t: Tensor, to target: DataType, _ ctx: ExecutionContext) throws -> Tensor {
        switch target {
        case .float32: return t
        case .float16:
            let out = try ctx.uninitialized(.float16, t.shape)
            let s = t.buffer(Float.self), d = out.mutableBuffer(Float16.self)
            for i in 0..<t.count { d[i] = Float16(s[i]) }
            return out
        case .bfloat16:
            let out = try ctx.uninitialized(.bfloat16, t.shape)
            let s = t.buffer(Float.self), d = out.mutableBuffer(UInt16.self)
            for i in 0..<t.count { d[i] = bfloat16Bits(s[i]) }
            return out
        default:
            throw EngineError(.typeMismatch, "cannot convert float32 results to \(target)")
        }
    }

    @inline(__always)
    static func bfloat16Bits(_ f: Float) -> UInt16 {
        if f.isNaN { return 0x7FC0 }
        let bits = f.bitPattern
        let rounding = ((bits >> 16) & 1) + 0x7FFF
        return UInt16(truncatingIfNeeded: (bits &+ rounding) >> 16)
    }

    /// Values of a uint8/int8 (or other integer) tensor as an int32 tensor minus `zeroPoint` (broadcast per
    /// the given index function when not scalar).
    static func int32Minus(_ t: Tensor, zeroPoints: [Int32], perRowOf rowLength: Int, _ ctx: ExecutionContext) throws -> Tensor {
        let out = try ctx.uninitialized(.int32, t.shape)
        let d = out.mutableBuffer(Int32.self)
        func fill<S: EngineInteger>(_: S.Type) {
            let s = t.buffer(S.self)
            if zeroPoints.count <= 1 {
                let z = zeroPoints.first ?? 0
                for i in 0..<t.count { d[i] = Int32(truncatingIfNeeded: s[i]) &- z }
            } else {
                // zero point i applies to the i-th block of `rowLength` elements, cycling.
                let nz = zeroPoints.count
                var i = 0
                var block = 0
                while i < t.count {
                    let z = zeroPoints[block % nz]
                    let end = Swift.min(i + rowLength, t.count)
                    for j in i..<end { d[j] = Int32(truncatingIfNeeded: s[j]) &- z }
                    i = end
                    block += 1
                }
            }
        }
        switch t.dataType {
        case .uint8: fill(UInt8.self)
        case .int8: fill(Int8.self)
        case .uint16: fill(UInt16.self)
        case .int16: fill(Int16.self)
        case .int32: fill(Int32.self)
        default: throw EngineError(.typeMismatch, "expected an 8-bit integer tensor, got \(t.dataType)")
        }
        return out
    }

    /// Zero points of an optional integer tensor (empty when absent).
    static func zeroPoints(_ t: Tensor?, expectedType: DataType?, _ what: String) throws -> [Int32] {
        guard let t else { return [] }
        if let expectedType, t.dataType != expectedType {
            throw EngineError(.typeMismatch, "\(what) must be \(expectedType), got \(t.dataType)")
        }
        return try t.intValues().map { Int32(truncatingIfNeeded: $0) }
    }

    /// Round half to even, then saturate to the range of `Q`.
    @inline(__always)
    static func saturate<Q: EngineInteger>(_ v: Double, _: Q.Type) -> Q {
        let r = v.rounded(.toNearestOrEven)
        if r.isNaN { return 0 }
        if r <= Double(Q.min) { return Q.min }
        if r >= Double(Q.max) { return Q.max }
        return Q(r)
    }
}
