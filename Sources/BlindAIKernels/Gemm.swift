import BlindAITensor
import CBlindAIKernels

// GEMM for the linear-algebra, convolution and quantization operators (MatMul, Gemm, Conv, ConvTranspose,
// ConvInteger, QLinearConv, QLinearMatMul, ...): float32 through the SIMD kernels of CBlindAIKernels
// (blindai_sgemm, split across the cores), float64 and int32 through portable loops.

/// Element types the GEMM-based kernels work on: float32 (through `blindai_sgemm`), float64 and int32
/// (through portable loops; int32 arithmetic wraps like C).
package protocol GemmScalar: TensorElement {
    /// C[m,n] (+)= op(A)[m,k] * op(B)[k,n], row-major; `accumulate` false overwrites C.
    static func gemm(transA: Bool, transB: Bool, m: Int, n: Int, k: Int,
                       a: UnsafePointer<Self>, lda: Int, b: UnsafePointer<Self>, ldb: Int,
                       accumulate: Bool, c: UnsafeMutablePointer<Self>, ldc: Int)
    static func gemmAdd(_ x: Self, _ y: Self) -> Self
    static func gemmMul(_ x: Self, _ y: Self) -> Self
}

extension Float: GemmScalar {
    package static func gemm(transA: Bool, transB: Bool, m: Int, n: Int, k: Int,
                                  a: UnsafePointer<Float>, lda: Int, b: UnsafePointer<Float>, ldb: Int,
                                  accumulate: Bool, c: UnsafeMutablePointer<Float>, ldc: Int) {
        Gemm.sgemm(transA, transB, m, n, k, 1, a, lda, b, ldb, accumulate ? 1 : 0, c, ldc)
    }
    @inlinable @inline(__always) package static func gemmAdd(_ x: Float, _ y: Float) -> Float { x + y }
    @inlinable @inline(__always) package static func gemmMul(_ x: Float, _ y: Float) -> Float { x * y }
}

extension Double: GemmScalar {
    package static func gemm(transA: Bool, transB: Bool, m: Int, n: Int, k: Int,
                                  a: UnsafePointer<Double>, lda: Int, b: UnsafePointer<Double>, ldb: Int,
                                  accumulate: Bool, c: UnsafeMutablePointer<Double>, ldc: Int) {
        Gemm.portable(transA: transA, transB: transB, m: m, n: n, k: k, a: a, lda: lda, b: b, ldb: ldb,
                       accumulate: accumulate, c: c, ldc: ldc)
    }
    @inlinable @inline(__always) package static func gemmAdd(_ x: Double, _ y: Double) -> Double { x + y }
    @inlinable @inline(__always) package static func gemmMul(_ x: Double, _ y: Double) -> Double { x * y }
}

extension Int32: GemmScalar {
    /// Exact integer GEMM. Quantized operands are small (8- or 16-bit after zero-point shifts), so the
    /// product is computed with the float32 SIMD GEMM over slices of K short enough that every partial sum
    /// is an integer below 2^24 (exact in float32); the slices are summed in int32.
    package static func gemm(transA: Bool, transB: Bool, m: Int, n: Int, k: Int,
                       a: UnsafePointer<Int32>, lda: Int, b: UnsafePointer<Int32>, ldb: Int,
                       accumulate: Bool, c: UnsafeMutablePointer<Int32>, ldc: Int) {
        let macs = m.multipliedReportingOverflow(by: n).partialValue.multipliedReportingOverflow(by: k)
        if m <= 0 || n <= 0 || k <= 0 || (!macs.overflow && macs.partialValue < 1 << 15) {
            Gemm.portable(transA: transA, transB: transB, m: m, n: n, k: k, a: a, lda: lda, b: b, ldb: ldb,
                           accumulate: accumulate, c: c, ldc: ldc)
            return
        }
        // Float copies of op(A) [m, k] and op(B) [k, n], with their largest magnitudes.
        let fa = UnsafeMutablePointer<Float>.allocate(capacity: m * k)
        let fb = UnsafeMutablePointer<Float>.allocate(capacity: k * n)
        let fc = UnsafeMutablePointer<Float>.allocate(capacity: m * n)
        defer { fa.deallocate(); fb.deallocate(); fc.deallocate() }
        var maxA: Int64 = 0, maxB: Int64 = 0
        for i in 0..<m {
            for p in 0..<k {
                let v = transA ? a[p * lda + i] : a[i * lda + p]
                maxA = Swift.max(maxA, Int64(v.magnitude))
                fa[i * k + p] = Float(v)
            }
        }
        for p in 0..<k {
            for j in 0..<n {
                let v = transB ? b[j * ldb + p] : b[p * ldb + j]
                maxB = Swift.max(maxB, Int64(v.magnitude))
                fb[p * n + j] = Float(v)
            }
        }
        let limit: Int64 = 1 << 24
        if maxA > limit || maxB > limit || (maxA > 0 && maxB > limit / maxA) {
            Gemm.portable(transA: transA, transB: transB, m: m, n: n, k: k, a: a, lda: lda, b: b, ldb: ldb,
                           accumulate: accumulate, c: c, ldc: ldc)
            return
        }
        if !accumulate {
            for i in 0..<m { (c + i * ldc).update(repeating: 0, count: n) }
        }
        if maxA == 0 || maxB == 0 { return }
        let slice = Swift.max(1, Int(limit / (maxA * maxB)))
        var p0 = 0
        while p0 < k {
            let kc = Swift.min(slice, k - p0)
            Gemm.sgemm(false, false, m, n, kc, 1, fa + p0, k, fb + p0 * n, n, 0, fc, n)
            for i in 0..<m {
                let crow = c + i * ldc, frow = fc + i * n
                for j in 0..<n { crow[j] = crow[j] &+ Int32(frow[j]) }
            }
            p0 += kc
        }
    }
    @inlinable @inline(__always) package static func gemmAdd(_ x: Int32, _ y: Int32) -> Int32 { x &+ y }
    @inlinable @inline(__always) package static func gemmMul(_ x: Int32, _ y: Int32) -> Int32 { x &* y }
}

package enum Gemm {
    /// Multiply-accumulates below which a GEMM stays on one thread: about 40 µs of work, where waking a second
    /// thread stops paying (at 1 << 19, GPT-2 [2, 16] ran 1.65 ms instead of 1.31 ms; resnet18 is unaffected).
    package static let parallelThreshold = 1 << 22

    /// Portable GEMM: i-p-j order so that the inner loop runs over contiguous rows of B and C when B is not
    /// transposed (vectorisable). Transposed B is first copied to a row-major buffer by blocks of K.

    @inlinable
    package static func portable<T: GemmScalar>(transA: Bool, transB: Bool, m: Int, n: Int, k: Int,
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
                for j in 0..<n { crow[j] = T.gemmAdd(crow[j], T.gemmMul(av, brow[j])) }
            }
        }
    }

    /// Runs body(rows, columns) over chunks of an [m, n] GEMM output across the cores: column chunks (multiples of
    /// the 16-wide micro-tile, at least `minColumns`) unless N is small, then row chunks (multiples of the 6-high
    /// micro-tile, where prepacked A panels start too; at least `minRows`). About `parts` chunks, claimed
    /// dynamically; one call over the whole output when the product is small.
    package static func split(_ m: Int, _ n: Int, _ k: Int, parts: Int, minColumns: Int = 16, minRows: Int = 6,
                          _ body: @Sendable (_ rows: Range<Int>, _ columns: Range<Int>) -> Void) {
        let macs = m.multipliedReportingOverflow(by: n).partialValue.multipliedReportingOverflow(by: Swift.max(k, 1))
        if Parallel.workers == 1 || (!macs.overflow && macs.partialValue < parallelThreshold) || (n < 32 && m < 24) {
            body(0..<m, 0..<n)
            return
        }
        if n >= 64 || n >= m {
            let per = Swift.max(((n + parts - 1) / parts + 15) / 16 * 16, minColumns)
            Parallel.forEach((n + per - 1) / per) { t in body(0..<m, (t * per)..<Swift.min(n, (t + 1) * per)) }
        } else {
            let per = Swift.max(((m + parts - 1) / parts + 5) / 6 * 6, minRows)
            Parallel.forEach((m + per - 1) / per) { t in body((t * per)..<Swift.min(m, (t + 1) * per), 0..<n) }
        }
    }

    /// blindai_sgemm_packed_a over a whole prepacked A [m, k]. A few chunks per thread: when a core stalls (a busy
    /// host, another process), the others take its share; A is already packed, so smaller chunks cost no extra
    /// packing of A.
    package static func sgemmPackedA(_ pa: UnsafePointer<Float>, _ m: Int, _ n: Int, _ k: Int, _ b: UnsafePointer<Float>, _ ldb: Int,
                             _ beta: Float, _ c: UnsafeMutablePointer<Float>, _ ldc: Int) {
        let sa = Parallel.Shared(pa), sb = Parallel.Shared(b), sc = Parallel.Shared(c)
        split(m, n, k, parts: Parallel.workers * 3, minColumns: 64, minRows: 24) { rows, cols in
            blindai_sgemm_packed_a(sa.value, m, rows.lowerBound, rows.count, 0, cols.count, k, 1, sb.value + cols.lowerBound, ldb,
                                   beta, sc.value + rows.lowerBound * ldc + cols.lowerBound, ldc)
        }
    }

    /// blindai_sgemm split across the cores, one chunk per thread.
    package static func sgemm(_ transA: Bool, _ transB: Bool, _ m: Int, _ n: Int, _ k: Int, _ alpha: Float,
                      _ a: UnsafePointer<Float>, _ lda: Int, _ b: UnsafePointer<Float>, _ ldb: Int,
                      _ beta: Float, _ c: UnsafeMutablePointer<Float>, _ ldc: Int) {
        let ta: Int32 = transA ? 1 : 0, tb: Int32 = transB ? 1 : 0
        let pa = Parallel.Shared(a), pb = Parallel.Shared(b), pc = Parallel.Shared(c)
        split(m, n, k, parts: Parallel.workers) { rows, cols in
            let i0 = rows.lowerBound, j0 = cols.lowerBound
            let ai = transA ? pa.value + i0 : pa.value + i0 * lda
            let bj = transB ? pb.value + j0 * ldb : pb.value + j0
            blindai_sgemm(ta, tb, rows.count, cols.count, k, alpha, ai, lda, bj, ldb, beta, pc.value + i0 * ldc + j0, ldc)
        }
    }
}
