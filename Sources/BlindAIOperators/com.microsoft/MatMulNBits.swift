import BlindAITensor
import BlindAIKernels
import BlindAIGraph
import Foundation

// com.microsoft MatMulNBits: Y = A × Wᵀ (+ bias) where W [N, K] is block-quantized to 2, 4 or 8 bits, the weight
// format of int4/int8 language-model exports (onnxruntime's MatMulNBits quantizer).
//
// B is uint8 [N, k_blocks, blob_size] (k_blocks = ceil(K / block_size), blob_size = block_size * bits / 8), values
// packed low bits first (`BlockQuantized`); scales [N * k_blocks] of A's type; zero points either uint8 packed the same
// way per row of blocks, or of A's type, and 2^(bits - 1) when absent; g_idx (int32 [K]) gives each k's block when
// present; bias [N]. A [..., K] -> Y [..., N].
//
// The weights stay quantized in memory: each run dequantizes one tile of 64 output columns at a time into a [K, 64]
// float buffer (per worker) and multiplies it with the float32 GEMM, so a run never holds a float copy of W.

struct MatMulNBitsOp: Operator {
    let k: Int
    let n: Int
    let bits: Int
    let blockSize: Int

    var kBlocks: Int { (k + blockSize - 1) / blockSize }
    var blobSize: Int { blockSize * bits / 8 }

    /// Output columns dequantized together.
    static let tile = 64

    /// The output shape from A's: the one rule the kernel and the shape facts share.
    static func outputShape<D>(a: [D], n: D) -> [D]? {
        guard let _ = a.last else { return nil }
        return Array(a.dropLast()) + [n]
    }

    func run(_ inputs: [Tensor?], _ ctx: ExecutionContext) throws -> [Tensor] {
        let a = try inputs.required(0), b = try inputs.required(1, "B"), scales = try inputs.required(2, "scales")
        let zeroPoints = inputs.optional(3), gIdx = inputs.optional(4), bias = inputs.optional(5)
        guard [.float32, .float16, .bfloat16].contains(a.dataType) else {
            throw EngineError(.typeMismatch, "MatMulNBits: A must be float32, float16 or bfloat16, got \(a.dataType)")
        }
        guard a.rank >= 1, a.shape[a.rank - 1] == k else {
            throw EngineError(.shapeMismatch, "MatMulNBits: A's last dimension must be K = \(k), A has shape \(a.shape)")
        }
        guard b.dataType == .uint8, b.shape == [n, kBlocks, blobSize] else {
            throw EngineError(.shapeMismatch, "MatMulNBits: B must be uint8 [N, k_blocks, blob_size] = [\(n), \(kBlocks), \(blobSize)], got \(b.dataType) \(b.shape)")
        }
        guard scales.dataType == a.dataType, scales.count == n * kBlocks else {
            throw EngineError(.shapeMismatch, "MatMulNBits: scales must be \(a.dataType) with N * k_blocks = \(n * kBlocks) values, got \(scales.dataType) \(scales.shape)")
        }
        if let zeroPoints {
            let packed = n * BlockQuantized.packedBytes(kBlocks, bits: bits)
            guard (zeroPoints.dataType == .uint8 && zeroPoints.count == packed) || (zeroPoints.dataType == a.dataType && zeroPoints.count == n * kBlocks) else {
                throw EngineError(.shapeMismatch, "MatMulNBits: zero_points must be uint8 with \(packed) packed values or \(a.dataType) with \(n * kBlocks) values, "
                                  + "got \(zeroPoints.dataType) \(zeroPoints.shape)")
            }
        }
        var groups: [Int]?
        if let gIdx {
            guard gIdx.dataType == .int32, gIdx.count == k else {
                throw EngineError(.shapeMismatch, "MatMulNBits: g_idx must be int32 with K = \(k) values, got \(gIdx.dataType) \(gIdx.shape)")
            }
            let g = gIdx.buffer(Int32.self).map { Int($0) }
            guard g.allSatisfy({ $0 >= 0 && $0 < kBlocks }) else {
                throw EngineError(.invalidArgument, "MatMulNBits: g_idx values must be block indices in 0..<\(kBlocks)")
            }
            groups = g
        }
        if let bias, bias.dataType != a.dataType || bias.count != n {
            throw EngineError(.shapeMismatch, "MatMulNBits: bias must be \(a.dataType) with N = \(n) values, got \(bias.dataType) \(bias.shape)")
        }
        guard let shape = Self.outputShape(a: a.shape, n: n) else { throw EngineError(.shapeMismatch, "MatMulNBits: A must have rank >= 1") }
        let m = a.count / k
        // float32 views of A, the scales, float zero points and the bias.
        let wide = { (t: Tensor) throws -> Tensor in t.dataType == .float32 ? t : try FloatWidening.toFloat32(t, ctx) }
        let af = try wide(a), sf = try wide(scales), bf = try bias.map(wide)
        let zf = try zeroPoints.flatMap { $0.dataType == .uint8 ? nil : try wide($0) }
        let zq = zeroPoints.flatMap { $0.dataType == .uint8 ? $0 : nil }
        let out = try ctx.uninitialized(.float32, shape)
        if out.count > 0 {
            let tile = Self.tile
            _ = try SizeMath.mul(k, tile, "MatMulNBits tile buffer")
            let tiles = (n + tile - 1) / tile
            let kernel = Kernel(k: k, n: n, bits: bits, blockSize: blockSize, kBlocks: kBlocks, blobSize: blobSize, groups: groups)
            let pa = Parallel.Shared(af.buffer(Float.self).baseAddress!), pb = Parallel.Shared(UnsafePointer(b.storage.base.assumingMemoryBound(to: UInt8.self)))
            let ps = Parallel.Shared(sf.buffer(Float.self).baseAddress!), py = Parallel.Shared(out.mutableBuffer(Float.self).baseAddress!)
            let pzq = Parallel.Shared(zq.map { UnsafePointer($0.storage.base.assumingMemoryBound(to: UInt8.self)) })
            let pzf = Parallel.Shared(zf.map { $0.buffer(Float.self).baseAddress! })
            let cost = (k * tile).multipliedReportingOverflow(by: Swift.max(m, 1))
            let chunks = Parallel.chunks(tiles, cost: cost.overflow ? Int.max : cost.partialValue, minimum: 1 << 18)
            let per = (tiles + chunks - 1) / chunks
            Parallel.forEach(chunks) { c in
                let w = UnsafeMutablePointer<Float>.allocate(capacity: k * tile)
                defer { w.deallocate() }
                for t in (c * per)..<Swift.min(tiles, (c + 1) * per) {
                    let n0 = t * tile, width = Swift.min(tile, n - n0)
                    kernel.dequantize(columns: n0..<(n0 + width), b: pb.value, scales: ps.value, zeroPoints: pzq.value, floatZeroPoints: pzf.value, into: w)
                    Gemm.sgemm(false, false, m, width, k, 1, pa.value, k, w, width, 0, py.value + n0, n)
                }
            }
            if let bf {
                let y = out.mutableBuffer(Float.self), bv = bf.buffer(Float.self)
                for i in 0..<m { for j in 0..<n { y[i * n + j] += bv[j] } }
            }
        }
        return [a.dataType == .float32 ? out : try FloatWidening.fromFloat32(out, to: a.dataType, ctx)]
    }

    /// Dequantization of tiles of W.
    private struct Kernel {
        let k: Int, n: Int, bits: Int, blockSize: Int, kBlocks: Int, blobSize: Int
        let groups: [Int]?

        /// w[kk * width + j] = W[columns.lowerBound + j, kk] for kk in 0..<K: the tile as the right-hand side of a GEMM.
        func dequantize(columns: Range<Int>, b: UnsafePointer<UInt8>, scales: UnsafePointer<Float>, zeroPoints: UnsafePointer<UInt8>?,
                        floatZeroPoints: UnsafePointer<Float>?, into w: UnsafeMutablePointer<Float>) {
            let width = columns.count
            for (j, col) in columns.enumerated() {
                let row = b + col * kBlocks * blobSize
                let rowScales = scales + col * kBlocks
                func zero(_ block: Int) -> Float {
                    if let floatZeroPoints { return floatZeroPoints[col * kBlocks + block] }
                    return BlockQuantized.zeroPoint(zeroPoints, row: col, block: block, blocksPerRow: kBlocks, bits: bits)
                }
                if let groups {
                    for kk in 0..<k {
                        let g = groups[kk]
                        // Values stay in their blob order: k's value is at its position kk in the row.
                        let q = BlockQuantized.value(row + (kk / blockSize) * blobSize, kk % blockSize, bits: bits)
                        w[kk * width + j] = (Float(q) - zero(g)) * rowScales[g]
                    }
                    continue
                }
                for blk in 0..<kBlocks {
                    let scale = rowScales[blk], z = zero(blk)
                    let blob = row + blk * blobSize
                    let start = blk * blockSize, end = Swift.min(k, start + blockSize)
                    for kk in start..<end {
                        w[kk * width + j] = (Float(BlockQuantized.value(blob, kk - start, bits: bits)) - z) * scale
                    }
                }
            }
        }
    }
}

extension MatMulNBitsOp: ShapeInferring {
    func inferFacts(_ inputs: [ValueFact?], _ ctx: ShapeInferenceContext) throws -> [ValueFact] {
        guard let a = inputs.first ?? nil else { return [] }
        var out = ValueFact(dataType: a.dataType)
        if let s = a.shape {
            guard let last = s.last, last.value.map({ $0 == k }) ?? true else { throw ShapeFacts.Unknowable() }
            out.shape = Self.outputShape(a: s, n: .known(n))
        }
        return [out]
    }
}

extension StandardOperators {
    static func registerMatMulNBits(_ r: inout OperatorRegistry) {
        r.register("MatMulNBits", domain: "com.microsoft") { c in
            guard let k = try c.int("K"), let n = try c.int("N"), (1...(1 << 24)).contains(k), (1...(1 << 24)).contains(n) else {
                throw c.error(.invalidModel, "MatMulNBits needs K and N between 1 and 2^24")
            }
            let bits = try c.int("bits", default: 4)
            guard [2, 4, 8].contains(bits) else { throw c.error(.invalidModel, "MatMulNBits: bits must be 2, 4 or 8, got \(bits)") }
            guard let blockSize = try c.int("block_size"), blockSize >= 16, blockSize <= 1 << 16, blockSize & (blockSize - 1) == 0 else {
                throw c.error(.invalidModel, "MatMulNBits: block_size must be a power of 2 from 16 to 65536")
            }
            return MatMulNBitsOp(k: k, n: n, bits: bits, blockSize: blockSize)
        }
    }
}
