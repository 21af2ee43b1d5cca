import BlindAITensor
import BlindAIKernels
import BlindAIGraph
import CBlindAIKernels

// Matrix products: MatMul, Gemm, MatMulInteger, com.microsoft FusedMatMul, and Det.

/// The geometry of a (batched, broadcast) matrix product op(A)[..., M, K] x op(B)[..., K, N].
/// 1-D operands are promoted as NumPy does (A: [1, K], B: [K, 1]) and the promoted dimension is dropped
/// from the output.
struct MatMulGeometry {
    var m = 0, n = 0, k = 0
    var lda = 0, ldb = 0
    var outShape: [Int] = []
    /// Element offsets of each batch's A and B matrix (one pair per output batch).
    var aOffsets: [Int] = []
    var bOffsets: [Int] = []
    /// True when B is shared by every batch and A's batches are contiguous: one GEMM with M * batches rows.
    var foldBatchIntoM = false
    var batchCount: Int { aOffsets.count }

    init(_ aShape: [Int], _ bShape: [Int], transA: Bool = false, transB: Bool = false) throws {
        guard !aShape.isEmpty, !bShape.isEmpty else {
            throw EngineError(.shapeMismatch, "MatMul needs operands of rank >= 1, got \(aShape) and \(bShape)")
        }
        var a = aShape, b = bShape
        let aVector = a.count == 1, bVector = b.count == 1
        var ta = transA, tb = transB
        if aVector { a = [1, a[0]]; ta = false }
        if bVector { b = [b[0], 1]; tb = false }
        let ar = a.count, br = b.count
        m = ta ? a[ar - 1] : a[ar - 2]
        let ka = ta ? a[ar - 2] : a[ar - 1]
        let kb = tb ? b[br - 1] : b[br - 2]
        n = tb ? b[br - 2] : b[br - 1]
        guard ka == kb else {
            throw EngineError(.shapeMismatch, "MatMul inner dimensions differ: A \(aShape) and B \(bShape) (\(ka) vs \(kb))")
        }
        k = ka
        lda = a[ar - 1]
        ldb = b[br - 1]
        let aBatch = Array(a[..<(ar - 2)]), bBatch = Array(b[..<(br - 2)])
        let batch = try Shape.broadcast([aBatch, bBatch])
        outShape = batch
        if !aVector { outShape.append(m) }
        if !bVector { outShape.append(n) }
        let batchCount = batch.reduce(1, *)
        let aMat = a[ar - 2] * a[ar - 1], bMat = b[br - 2] * b[br - 1]
        let bBatchCount = bBatch.reduce(1, *)
        if bBatchCount == 1 && !ta && batchCount > 0 && aBatch.reduce(1, *) == batchCount {
            foldBatchIntoM = true
        }
        if batchCount == 0 { return }
        // Broadcast strides of the batch dimensions, aligned to the output batch rank.
        let rank = batch.count
        func strides(_ s: [Int], _ matSize: Int) -> [Int] {
            var st = [Int](repeating: 0, count: rank)
            var acc = matSize
            for i in stride(from: s.count - 1, through: 0, by: -1) {
                if s[i] != 1 { st[rank - s.count + i] = acc }
                acc *= s[i]
            }
            return st
        }
        let sa = strides(aBatch, aMat), sb = strides(bBatch, bMat)
        aOffsets.reserveCapacity(batchCount)
        bOffsets.reserveCapacity(batchCount)
        var index = [Int](repeating: 0, count: rank)
        var oa = 0, ob = 0
        for _ in 0..<batchCount {
            aOffsets.append(oa)
            bOffsets.append(ob)
            var d = rank - 1
            while d >= 0 {
                index[d] += 1
                oa += sa[d]
                ob += sb[d]
                if index[d] < batch[d] { break }
                oa -= sa[d] * batch[d]
                ob -= sb[d] * batch[d]
                index[d] = 0
                d -= 1
            }
        }
    }
}

/// MatMul (and com.microsoft FusedMatMul: alpha, transA, transB).
struct MatMulOp: Operator {
    var transA = false
    var transB = false
    var alpha: Float = 1

    func run(_ inputs: [Tensor?], _ ctx: ExecutionContext) throws -> [Tensor] {
        let a = try inputs.required(0), b = try inputs.required(1)
        guard a.dataType == b.dataType else {
            throw EngineError(.typeMismatch, "MatMul inputs have different types: \(a.dataType) and \(b.dataType)")
        }
        let g = try MatMulGeometry(a.shape, b.shape, transA: transA, transB: transB)
        switch a.dataType {
        case .float32: return [try float32(a, b, g, ctx)]
        case .float16, .bfloat16:
            let r = try float32(try FloatWidening.toFloat32(a, ctx), try FloatWidening.toFloat32(b, ctx), g, ctx)
            return [try FloatWidening.fromFloat32(r, to: a.dataType, ctx)]
        case .float64: return [try generic(a, b, g, Double.self, ctx) { $0 + $1 * $2 }]
        case .int32: return [try generic(a, b, g, Int32.self, ctx) { $0 &+ $1 &* $2 }]
        case .int64: return [try generic(a, b, g, Int64.self, ctx) { $0 &+ $1 &* $2 }]
        case .uint32: return [try generic(a, b, g, UInt32.self, ctx) { $0 &+ $1 &* $2 }]
        case .uint64: return [try generic(a, b, g, UInt64.self, ctx) { $0 &+ $1 &* $2 }]
        default: throw EngineError(.typeMismatch, "MatMul does not support \(a.dataType) tensors")
        }
    }

    func float32(_ a: Tensor, _ b: Tensor, _ g: MatMulGeometry, _ ctx: ExecutionContext) throws -> Tensor {
        let out = try ctx.uninitialized(.float32, g.outShape)
        if out.count == 0 { return out }
        let pa = a.buffer(Float.self).baseAddress!, pb = b.buffer(Float.self).baseAddress!
        let pc = out.mutableBuffer(Float.self).baseAddress!
        let ta: Int32 = transA && a.rank > 1 ? 1 : 0, tb: Int32 = transB && b.rank > 1 ? 1 : 0
        if g.m == 1 && g.k > 0 {
            // Matrix-vector products (decoding, batch-1 classifiers): no packing, memory-bound loops.
            for i in 0..<g.batchCount {
                Gemv.run(transB: tb != 0, n: g.n, k: g.k, alpha: alpha, x: pa + g.aOffsets[i], b: pb + g.bOffsets[i], ldb: g.ldb,
                               accumulate: false, y: pc + i * g.n)
            }
            return out
        }
        if g.foldBatchIntoM {
            Gemm.sgemm(ta != 0, tb != 0, g.m * g.batchCount, g.n, g.k, alpha, pa, g.lda, pb, g.ldb, 0, pc, g.n)
            return out
        }
        let mn = g.m * g.n
        let perBatch = g.m * g.n * Swift.max(g.k, 1)
        let chunks = Parallel.chunks(g.batchCount, cost: perBatch, minimum: Gemm.parallelThreshold)
        if chunks > 1 && perBatch < Gemm.parallelThreshold {
            // Many small products (attention heads): split the batches across the cores.
            let sa = Parallel.Shared(pa), sb = Parallel.Shared(pb), sc = Parallel.Shared(pc)
            let per = (g.batchCount + chunks - 1) / chunks
            Parallel.forEach(chunks) { t in
                for i in (t * per)..<Swift.min(g.batchCount, (t + 1) * per) {
                    blindai_sgemm(ta, tb, g.m, g.n, g.k, alpha, sa.value + g.aOffsets[i], g.lda, sb.value + g.bOffsets[i], g.ldb, 0,
                                  sc.value + i * mn, g.n)
                }
            }
            return out
        }
        for i in 0..<g.batchCount {
            Gemm.sgemm(ta != 0, tb != 0, g.m, g.n, g.k, alpha, pa + g.aOffsets[i], g.lda, pb + g.bOffsets[i], g.ldb, 0, pc + i * mn, g.n)
        }
        return out
    }

    /// Portable loop (i-p-j order, contiguous inner loop) for the other element types.
    @inline(__always)
    func generic<T: EngineNumeric>(_ a: Tensor, _ b: Tensor, _ g: MatMulGeometry, _: T.Type, _ ctx: ExecutionContext,
                                   _ fma: (T, T, T) -> T) throws -> Tensor {
        let out = try ctx.zeros(T.dataType, g.outShape)
        if out.count == 0 { return out }
        let pa = a.buffer(T.self).baseAddress!, pb = b.buffer(T.self).baseAddress!
        let pc = out.mutableBuffer(T.self).baseAddress!
        let ta = transA && a.rank > 1, tb = transB && b.rank > 1
        let m = g.m, n = g.n, k = g.k, lda = g.lda, ldb = g.ldb
        for bi in 0..<g.batchCount {
            let A = pa + g.aOffsets[bi], B = pb + g.bOffsets[bi], C = pc + bi * m * n
            for i in 0..<m {
                let crow = C + i * n
                for p in 0..<k {
                    let av = ta ? A[p * lda + i] : A[i * lda + p]
                    if tb {
                        for j in 0..<n { crow[j] = fma(crow[j], av, B[j * ldb + p]) }
                    } else {
                        let brow = B + p * ldb
                        for j in 0..<n { crow[j] = fma(crow[j], av, brow[j]) }
                    }
                }
            }
        }
        if alpha != 1 {
            let s = T(clampingDouble: Double(alpha))
            for i in 0..<out.count { pc[i] = fma(T.zero, pc[i], s) }
        }
        return out
    }
}

/// y[n] (+)= alpha * x[k] * op(B)[k, n] for float32, split across the cores when large.
enum Gemv {
    static func run(transB: Bool, n: Int, k: Int, alpha: Float, x: UnsafePointer<Float>, b: UnsafePointer<Float>, ldb: Int,
                    accumulate: Bool, y: UnsafeMutablePointer<Float>) {
        if n <= 0 { return }
        let chunks = Parallel.chunks(n, cost: k, minimum: 1 << 17)
        if chunks == 1 {
            block(transB, 0..<n, k, alpha, x, b, ldb, accumulate, y)
            return
        }
        let per = ((n + chunks - 1) / chunks + 15) / 16 * 16
        let count = (n + per - 1) / per
        let sx = Parallel.Shared(x), sb = Parallel.Shared(b), sy = Parallel.Shared(y)
        Parallel.forEach(count) { t in
            block(transB, (t * per)..<Swift.min(n, (t + 1) * per), k, alpha, sx.value, sb.value, ldb, accumulate, sy.value)
        }
    }

    static func block(_ transB: Bool, _ cols: Range<Int>, _ k: Int, _ alpha: Float, _ x: UnsafePointer<Float>,
                      _ b: UnsafePointer<Float>, _ ldb: Int, _ accumulate: Bool, _ y: UnsafeMutablePointer<Float>) {
        let j0 = cols.lowerBound, nn = cols.count
        if nn <= 0 { return }
        if transB {
            // y[j] = dot(x, B[j, :]): eight independent partial sums per column.
            for j in cols {
                let row = b + j * ldb
                var acc = SIMD8<Float>(repeating: 0)
                var p = 0
                while p + 8 <= k {
                    let xv = UnsafeRawPointer(x + p).loadUnaligned(as: SIMD8<Float>.self)
                    let bv = UnsafeRawPointer(row + p).loadUnaligned(as: SIMD8<Float>.self)
                    acc += xv * bv
                    p += 8
                }
                var sum = acc.sum()
                while p < k { sum += x[p] * row[p]; p += 1 }
                y[j] = accumulate ? y[j] + alpha * sum : alpha * sum
            }
            return
        }
        // y += x[p] * B[p, :], four rows of B at a time.
        let t = UnsafeMutablePointer<Float>.allocate(capacity: nn)
        defer { t.deallocate() }
        t.update(repeating: 0, count: nn)
        var p = 0
        while p + 8 <= k {
            let a0 = x[p], a1 = x[p + 1], a2 = x[p + 2], a3 = x[p + 3], a4 = x[p + 4], a5 = x[p + 5], a6 = x[p + 6], a7 = x[p + 7]
            let r0 = b + p * ldb + j0, r1 = r0 + ldb, r2 = r1 + ldb, r3 = r2 + ldb
            let r4 = r3 + ldb, r5 = r4 + ldb, r6 = r5 + ldb, r7 = r6 + ldb
            for j in 0..<nn {
                t[j] += (a0 * r0[j] + a1 * r1[j]) + (a2 * r2[j] + a3 * r3[j]) + ((a4 * r4[j] + a5 * r5[j]) + (a6 * r6[j] + a7 * r7[j]))
            }
            p += 8
        }
        while p + 4 <= k {
            let a0 = x[p], a1 = x[p + 1], a2 = x[p + 2], a3 = x[p + 3]
            let r0 = b + p * ldb + j0, r1 = r0 + ldb, r2 = r1 + ldb, r3 = r2 + ldb
            for j in 0..<nn { t[j] += a0 * r0[j] + a1 * r1[j] + a2 * r2[j] + a3 * r3[j] }
            p += 4
        }
        while p < k {
            let a0 = x[p], r0 = b + p * ldb + j0
            for j in 0..<nn { t[j] += a0 * r0[j] }
            p += 1
        }
        let yo = y + j0
        if accumulate {
            for j in 0..<nn { yo[j] += alpha * t[j] }
        } else {
            for j in 0..<nn { yo[j] = alpha * t[j] }
        }
    }
}

/// Gemm: Y = alpha * op(A) * op(B) + beta * C, with C broadcast (unidirectionally) to [M, N].
struct GemmOp: Operator {
    let transA: Bool
    let transB: Bool
    let alpha: Float
    let beta: Float

    func run(_ inputs: [Tensor?], _ ctx: ExecutionContext) throws -> [Tensor] {
        let a = try inputs.required(0), b = try inputs.required(1)
        let c = inputs.optional(2)
        guard a.dataType == b.dataType, c == nil || c!.dataType == a.dataType else {
            throw EngineError(.typeMismatch, "Gemm inputs have different types")
        }
        guard a.rank == 2, b.rank == 2 else {
            throw EngineError(.shapeMismatch, "Gemm needs 2-D A and B, got \(a.shape) and \(b.shape)")
        }
        let m = transA ? a.shape[1] : a.shape[0], k = transA ? a.shape[0] : a.shape[1]
        let kb = transB ? b.shape[1] : b.shape[0], n = transB ? b.shape[0] : b.shape[1]
        guard k == kb else {
            throw EngineError(.shapeMismatch, "Gemm inner dimensions differ: A \(a.shape)\(transA ? "ᵀ" : "") and B \(b.shape)\(transB ? "ᵀ" : "")")
        }
        if let c {
            guard c.rank <= 2, (try? Shape.broadcast([c.shape, [m, n]])) == [m, n] else {
                throw EngineError(.shapeMismatch, "Gemm: C of shape \(c.shape) does not broadcast to [\(m), \(n)]")
            }
        }
        switch a.dataType {
        case .float32: return [try float32(a, b, c, m, n, k, ctx)]
        case .float16, .bfloat16:
            let r = try float32(try FloatWidening.toFloat32(a, ctx), try FloatWidening.toFloat32(b, ctx),
                                try c.map { try FloatWidening.toFloat32($0, ctx) }, m, n, k, ctx)
            return [try FloatWidening.fromFloat32(r, to: a.dataType, ctx)]
        case .float64: return [try generic(a, b, c, m, n, k, Double.self, ctx, { $0 + $1 }, { $0 * $1 })]
        case .int32: return [try generic(a, b, c, m, n, k, Int32.self, ctx, { $0 &+ $1 }, { $0 &* $1 })]
        case .int64: return [try generic(a, b, c, m, n, k, Int64.self, ctx, { $0 &+ $1 }, { $0 &* $1 })]
        case .uint32: return [try generic(a, b, c, m, n, k, UInt32.self, ctx, { $0 &+ $1 }, { $0 &* $1 })]
        case .uint64: return [try generic(a, b, c, m, n, k, UInt64.self, ctx, { $0 &+ $1 }, { $0 &* $1 })]
        default: throw EngineError(.typeMismatch, "Gemm does not support \(a.dataType) tensors")
        }
    }

    /// Writes beta * C broadcast to [m, n] into `dst`; false when there is nothing to add.
    @inline(__always)
    func fillBias<T: EngineNumeric>(_ c: Tensor?, _ dst: UnsafeMutablePointer<T>, _ m: Int, _ n: Int, _ scale: T, _ mul: (T, T) -> T) -> Bool {
        guard let c, beta != 0, m * n > 0 else { return false }
        let src = c.buffer(T.self).baseAddress!
        let cs = c.shape
        let rows = cs.count == 2 ? cs[0] : 1
        let cols = cs.count >= 1 ? cs[cs.count - 1] : 1
        for i in 0..<m {
            let srow = src + (rows == 1 ? 0 : i) * cols
            let drow = dst + i * n
            if cols == 1 {
                let v = mul(srow[0], scale)
                for j in 0..<n { drow[j] = v }
            } else {
                for j in 0..<n { drow[j] = mul(srow[j], scale) }
            }
        }
        return true
    }

    func float32(_ a: Tensor, _ b: Tensor, _ c: Tensor?, _ m: Int, _ n: Int, _ k: Int, _ ctx: ExecutionContext) throws -> Tensor {
        let out = try ctx.uninitialized(.float32, [m, n])
        if out.count == 0 { return out }
        let pc = out.mutableBuffer(Float.self).baseAddress!
        let hasBias = fillBias(c, pc, m, n, beta, { $0 * $1 })
        if m == 1 && !transA && k > 0 {
            Gemv.run(transB: transB, n: n, k: k, alpha: alpha, x: a.buffer(Float.self).baseAddress!,
                           b: b.buffer(Float.self).baseAddress!, ldb: b.shape[1], accumulate: hasBias, y: pc)
            return out
        }
        Gemm.sgemm(transA, transB, m, n, k, alpha, a.buffer(Float.self).baseAddress!, a.shape[1],
                         b.buffer(Float.self).baseAddress!, b.shape[1], hasBias ? 1 : 0, pc, n)
        return out
    }

    @inline(__always)
    func generic<T: EngineNumeric>(_ a: Tensor, _ b: Tensor, _ c: Tensor?, _ m: Int, _ n: Int, _ k: Int, _: T.Type,
                                   _ ctx: ExecutionContext, _ add: (T, T) -> T, _ mul: (T, T) -> T) throws -> Tensor {
        let out = try ctx.zeros(T.dataType, [m, n])
        if out.count == 0 { return out }
        let pc = out.mutableBuffer(T.self).baseAddress!
        let prod = try ctx.zeros(T.dataType, [m, n])
        let pp = prod.mutableBuffer(T.self).baseAddress!
        let pa = a.buffer(T.self).baseAddress!, pb = b.buffer(T.self).baseAddress!
        let lda = a.shape[1], ldb = b.shape[1]
        for i in 0..<m {
            let row = pp + i * n
            for p in 0..<k {
                let av = transA ? pa[p * lda + i] : pa[i * lda + p]
                if transB {
                    for j in 0..<n { row[j] = add(row[j], mul(av, pb[j * ldb + p])) }
                } else {
                    let brow = pb + p * ldb
                    for j in 0..<n { row[j] = add(row[j], mul(av, brow[j])) }
                }
            }
        }
        let al = T(clampingDouble: Double(alpha))
        let hasBias = fillBias(c, pc, m, n, T(clampingDouble: Double(beta)), mul)
        for i in 0..<m * n {
            let v = mul(pp[i], al)
            pc[i] = hasBias ? add(pc[i], v) : v
        }
        return out
    }
}

/// MatMulInteger: int32 product of (A - a_zero_point) and (B - b_zero_point), with MatMul broadcasting.
/// a_zero_point is a scalar or per row of A (M values); b_zero_point a scalar or per column of B (N values).
struct MatMulIntegerOp: Operator {
    func run(_ inputs: [Tensor?], _ ctx: ExecutionContext) throws -> [Tensor] {
        let a = try inputs.required(0), b = try inputs.required(1)
        let g = try MatMulGeometry(a.shape, b.shape)
        let azp = try QuantizedIntegers.zeroPoints(inputs.optional(2), expectedType: a.dataType, "a_zero_point")
        let bzp = try QuantizedIntegers.zeroPoints(inputs.optional(3), expectedType: b.dataType, "b_zero_point")
        let out = try IntegerMatMul.matmul(a, azp, b, bzp, g, ctx)
        return [out]
    }
}

enum IntegerMatMul {
    /// The int32 product of quantized operands with zero points (scalar, per row of A, per column of B).
    static func matmul(_ a: Tensor, _ azp: [Int32], _ b: Tensor, _ bzp: [Int32], _ g: MatMulGeometry,
                       _ ctx: ExecutionContext) throws -> Tensor {
        for t in [a, b] where ![.uint8, .int8, .uint16, .int16].contains(t.dataType) {
            throw EngineError(.typeMismatch, "expected 8-bit integer operands, got \(t.dataType)")
        }
        guard azp.count <= 1 || azp.count == g.m else {
            throw EngineError(.shapeMismatch, "a_zero_point has \(azp.count) values; expected 1 or \(g.m) (rows of A)")
        }
        guard bzp.count <= 1 || bzp.count == g.n else {
            throw EngineError(.shapeMismatch, "b_zero_point has \(bzp.count) values; expected 1 or \(g.n) (columns of B)")
        }
        // A rows are K long: a per-row zero point cycles every K elements over M rows.
        let ai = try QuantizedIntegers.int32Minus(a, zeroPoints: azp, perRowOf: g.k, ctx)
        let bi: Tensor
        if bzp.count <= 1 {
            bi = try QuantizedIntegers.int32Minus(b, zeroPoints: bzp, perRowOf: 1, ctx)
        } else {
            // Per column: subtract bzp[j] from column j.
            bi = try QuantizedIntegers.int32Minus(b, zeroPoints: [], perRowOf: 1, ctx)
            let p = bi.mutableBuffer(Int32.self)
            let n = g.n
            var i = 0
            while i < p.count {
                for j in 0..<n { p[i + j] = p[i + j] &- bzp[j] }
                i += n
            }
        }
        let out = try ctx.uninitialized(.int32, g.outShape)
        if out.count == 0 { return out }
        let pa = ai.buffer(Int32.self).baseAddress!, pb = bi.buffer(Int32.self).baseAddress!
        let pc = out.mutableBuffer(Int32.self).baseAddress!
        let mn = g.m * g.n
        for i in 0..<g.batchCount {
            Int32.gemm(transA: false, transB: false, m: g.m, n: g.n, k: g.k, a: pa + g.aOffsets[i], lda: g.lda,
                         b: pb + g.bOffsets[i], ldb: g.ldb, accumulate: false, c: pc + i * mn, ldc: g.n)
        }
        return out
    }
}

// MARK: - Det

struct DetOp: Operator {
    func run(_ inputs: [Tensor?], _ ctx: ExecutionContext) throws -> [Tensor] {
        let x = try inputs.required(0)
        guard x.rank >= 2, x.shape[x.rank - 1] == x.shape[x.rank - 2] else {
            throw EngineError(.shapeMismatch, "Det needs [*, M, M] matrices, got shape \(x.shape)")
        }
        guard x.dataType.isFloatingPoint else { throw EngineError(.typeMismatch, "Det does not support \(x.dataType) tensors") }
        let m = x.shape[x.rank - 1]
        let batchShape = Array(x.shape[..<(x.rank - 2)])
        let batches = batchShape.reduce(1, *)
        let v = try x.doubleValues()
        var dets = [Double](repeating: 1, count: batches)
        var a = [Double](repeating: 0, count: m * m)
        for bi in 0..<batches {
            for i in 0..<(m * m) { a[i] = v[bi * m * m + i] }
            var det = 1.0
            for col in 0..<m {
                var piv = col
                var best = Swift.abs(a[col * m + col])
                for r in (col + 1)..<Swift.max(m, col + 1) where Swift.abs(a[r * m + col]) > best {
                    best = Swift.abs(a[r * m + col])
                    piv = r
                }
                if best == 0 {
                    det = 0
                    break
                }
                if piv != col {
                    for j in 0..<m { a.swapAt(piv * m + j, col * m + j) }
                    det = -det
                }
                let p = a[col * m + col]
                det *= p
                for r in (col + 1)..<Swift.max(m, col + 1) {
                    let f = a[r * m + col] / p
                    if f == 0 { continue }
                    for j in col..<m { a[r * m + j] -= f * a[col * m + j] }
                }
            }
            dets[bi] = det
        }
        return [try CastOp.fromDoubles(dets, shape: batchShape, to: x.dataType, ctx)]
    }
}

extension StandardOperators {
    static func registerLinearAlgebra(_ r: inout OperatorRegistry) {
        r.register("MatMul") { _ in MatMulOp() }
        r.register("Gemm") { c in
            GemmOp(transA: try c.int("transA", default: 0) != 0, transB: try c.int("transB", default: 0) != 0,
                   alpha: try c.float("alpha", default: 1), beta: try c.float("beta", default: 1))
        }
        r.register("MatMulInteger") { _ in MatMulIntegerOp() }
        r.register("FusedMatMul", domain: "com.microsoft") { c in
            if try c.int("transBatchA", default: 0) != 0 || c.int("transBatchB", default: 0) != 0 {
                throw c.error(.invalidModel, "FusedMatMul with transBatchA/transBatchB is not supported")
            }
            return MatMulOp(transA: try c.int("transA", default: 0) != 0, transB: try c.int("transB", default: 0) != 0,
                            alpha: try c.float("alpha", default: 1))
        }
        r.register("Det") { _ in DetOp() }
    }
}

extension MatMulOp: ShapeInferring {
    func inferFacts(_ inputs: [ValueFact?], _ ctx: ShapeInferenceContext) throws -> [ValueFact] {
        guard ctx.is(["MatMul", "FusedMatMul"]) else { return [] }
        guard inputs.count >= 2, let a = inputs[0], let b = inputs[1] else { return [] }
        var out = ValueFact(dataType: a.dataType)
        guard var sa = a.shape, var sb = b.shape, !sa.isEmpty, !sb.isEmpty else { return [out] }
        let transA = ctx.int("transA", default: 0) != 0, transB = ctx.int("transB", default: 0) != 0
        let vecA = sa.count == 1, vecB = sb.count == 1
        if vecA { sa = [.known(1)] + sa }
        if vecB { sb = sb + [.known(1)] }
        if transA { sa.swapAt(sa.count - 1, sa.count - 2) }
        if transB { sb.swapAt(sb.count - 1, sb.count - 2) }
        let m = sa[sa.count - 2], ka = sa[sa.count - 1], kb = sb[sb.count - 2], n = sb[sb.count - 1]
        if let x = ka.value, let y = kb.value, x != y { throw ShapeFacts.Unknowable() }
        guard var batch = try ShapeFacts.broadcast([Array(sa.dropLast(2)), Array(sb.dropLast(2))]) else { return [out] }
        if !vecA { batch.append(m) }
        if !vecB { batch.append(n) }
        out.shape = batch
        return [out]
    }
}

extension GemmOp: ShapeInferring {
    func inferFacts(_ inputs: [ValueFact?], _ ctx: ShapeInferenceContext) throws -> [ValueFact] {
        guard ctx.is(["Gemm"]) else { return [] }
        guard inputs.count >= 2, let a = inputs[0], let b = inputs[1] else { return [] }
        var out = ValueFact(dataType: a.dataType)
        guard let sa = a.shape, let sb = b.shape, sa.count == 2, sb.count == 2 else { return [out] }
        let m = ctx.int("transA", default: 0) != 0 ? sa[1] : sa[0]
        let n = ctx.int("transB", default: 0) != 0 ? sb[0] : sb[1]
        out.shape = [m, n]
        return [out]
    }
}
