import BlindAITensor
import BlindAIKernels
import BlindAIGraph
import Foundation

// com.microsoft GatherBlockQuantized: Gather over block-quantized weights, dequantized on the way out. This is how
// int4 and int8 exports of large language models (onnxruntime's MatMulNBits conventions) store their token
// embedding table: only the rows a request asks for are dequantized.
//
// Data is uint8, holding `8 / bits` values per byte along the last axis (bits 2, 4 or 8; the low bits hold the
// first value: `BlockQuantized`, shared with MatMulNBits), so the logical last dimension is the stored one times `8 / bits`. Scales have data's rank and the
// element type of the output (float32, float16 or bfloat16); along `quantize_axis` (the last axis) they have one
// entry per `block_size` values. Zero points, when given, are uint8 packed like the data along that axis; without
// them the zero point is 2^(bits - 1). Output: data's logical shape with `gather_axis` replaced by the indices'
// shape, value = (q - zero_point) * scale.
//
// Where onnxruntime differs: an index out of range is an error here (onnxruntime writes zeros), and gather_axis may be
// any axis other than the quantized one (onnxruntime requires 0 for uint8 data).

struct GatherBlockQuantizedOp: Operator {
    let gatherAxis: Int
    let quantizeAxis: Int
    let blockSize: Int
    let bits: Int

    /// Values per stored byte along the quantized (last) axis.
    var perByte: Int { 8 / bits }

    /// The output shape from data's stored shape and the indices' shape: the one computation the kernel and the
    /// shape facts share. Returns nil when an axis is out of range or is not allowed.
    static func outputShape<D>(data: [D], indices: [D], gatherAxis: Int, quantizeAxis: Int, widenLast: (D) -> D) -> [D]? {
        let rank = data.count
        guard rank >= 1 else { return nil }
        let g = gatherAxis < 0 ? gatherAxis + rank : gatherAxis
        let q = quantizeAxis < 0 ? quantizeAxis + rank : quantizeAxis
        guard g >= 0, g < rank, q == rank - 1, g != q else { return nil }
        var logical = data
        logical[rank - 1] = widenLast(data[rank - 1])
        return Array(logical[..<g]) + indices + Array(logical[(g + 1)...])
    }

    func run(_ inputs: [Tensor?], _ ctx: ExecutionContext) throws -> [Tensor] {
        let data = try inputs.required(0), indicesT = try inputs.required(1, "indices"), scales = try inputs.required(2, "scales")
        let zeroPoints = inputs.optional(3)
        guard data.dataType == .uint8 else {
            throw EngineError(.typeMismatch, "GatherBlockQuantized: data must be uint8 (packed \(bits)-bit values), got \(data.dataType)")
        }
        guard [.float32, .float16, .bfloat16].contains(scales.dataType) else {
            throw EngineError(.typeMismatch, "GatherBlockQuantized: scales must be float32, float16 or bfloat16, got \(scales.dataType)")
        }
        if let zeroPoints, zeroPoints.dataType != .uint8 {
            throw EngineError(.typeMismatch, "GatherBlockQuantized: zero_points must be uint8 like data, got \(zeroPoints.dataType)")
        }
        let rank = data.rank
        guard let shape = Self.outputShape(data: data.shape, indices: indicesT.shape, gatherAxis: gatherAxis, quantizeAxis: quantizeAxis,
                                           widenLast: { $0 * perByte }) else {
            throw EngineError(.invalidArgument, "GatherBlockQuantized: gather_axis \(gatherAxis) and quantize_axis \(quantizeAxis) must be "
                              + "distinct axes of data's rank \(rank), the quantized one the last (where the values are packed)")
        }
        let g = gatherAxis < 0 ? gatherAxis + rank : gatherAxis
        // Logical sizes: the last axis holds perByte values per stored byte.
        let columns = try SizeMath.mul(data.shape[rank - 1], perByte)
        let blocksPerRow = (columns + blockSize - 1) / blockSize
        var expectedScales = data.shape
        expectedScales[rank - 1] = blocksPerRow
        guard scales.shape == expectedScales else {
            throw EngineError(.shapeMismatch, "GatherBlockQuantized: scales have shape \(scales.shape), expected \(expectedScales) "
                              + "(data's shape with ceil(\(columns) / block_size \(blockSize)) blocks on the last axis)")
        }
        let zpPerRow = (blocksPerRow + perByte - 1) / perByte
        if let zeroPoints {
            var expected = expectedScales
            expected[rank - 1] = zpPerRow
            guard zeroPoints.shape == expected else {
                throw EngineError(.shapeMismatch, "GatherBlockQuantized: zero_points have shape \(zeroPoints.shape), expected \(expected) "
                                  + "(scales' shape with \(perByte) values per byte on the last axis)")
            }
        }
        let dim = data.shape[g]
        let idx = try IndexingIndices.normalized(indicesT, dim: dim, "GatherBlockQuantized")
        let outer = try SizeMath.product(data.shape[..<g])
        // Logical values from the gathered axis to the end, and the stored bytes and scale rows they span.
        let inner = try SizeMath.mul(SizeMath.product(data.shape[(g + 1)...]), perByte)
        let out = try ctx.uninitialized(.float32, shape)
        if out.count > 0 {
            let rowsPerSlice = inner / columns   // columns > 0: the output is not empty
            let rows = outer * idx.count
            let geometry = Geometry(bits: bits, blockSize: blockSize, columns: columns, blocksPerRow: blocksPerRow,
                                    rowsPerSlice: rowsPerSlice, dim: dim, count: idx.count)
            let wideScales = scales.dataType == .float32 ? scales : try FloatWidening.toFloat32(scales, ctx)
            let src = Parallel.Shared(UnsafePointer(data.storage.base.assumingMemoryBound(to: UInt8.self)))
            let sc = Parallel.Shared(wideScales.buffer(Float.self).baseAddress!)
            let zp = Parallel.Shared(zeroPoints.map { UnsafePointer($0.storage.base.assumingMemoryBound(to: UInt8.self)) })
            let dst = Parallel.Shared(out.mutableBuffer(Float.self).baseAddress!)
            let picks = Parallel.Shared(idx)
            let chunks = Parallel.chunks(rows, cost: inner)
            let per = (rows + chunks - 1) / chunks
            Parallel.forEach(chunks) { t in
                for r in (t * per)..<min(rows, (t + 1) * per) {
                    geometry.dequantizeSlice(r / geometry.count, picks.value[r % geometry.count], src.value, sc.value, zp.value,
                                             into: dst.value + r * inner)
                }
            }
        }
        return [scales.dataType == .float32 ? out : try FloatWidening.fromFloat32(out, to: scales.dataType, ctx)]
    }

    /// Sizes of one run, with the dequantization of one gathered slice.
    private struct Geometry {
        let bits: Int, blockSize: Int, columns: Int, blocksPerRow: Int, rowsPerSlice: Int, dim: Int, count: Int

        /// Writes the slice data[o, i, ...] (rowsPerSlice rows of `columns` logical values) as floats.
        func dequantizeSlice(_ o: Int, _ i: Int, _ data: UnsafePointer<UInt8>, _ scales: UnsafePointer<Float>,
                             _ zeroPoints: UnsafePointer<UInt8>?, into out: UnsafeMutablePointer<Float>) {
            let bytesPerRow = columns / (8 / bits)
            for r in 0..<rowsPerSlice {
                let row = (o * dim + i) * rowsPerSlice + r
                let bytes = data + row * bytesPerRow
                let rowScales = scales + row * blocksPerRow
                let dst = out + r * columns
                var c = 0
                for b in 0..<blocksPerRow {
                    let scale = rowScales[b]
                    let zero = BlockQuantized.zeroPoint(zeroPoints, row: row, block: b, blocksPerRow: blocksPerRow, bits: bits)
                    let end = Swift.min(columns, c + blockSize)
                    while c < end {
                        dst[c] = (Float(BlockQuantized.value(bytes, c, bits: bits)) - zero) * scale
                        c += 1
                    }
                }
            }
        }
    }
}

extension GatherBlockQuantizedOp: ShapeInferring {
    func inferFacts(_ inputs: [ValueFact?], _ ctx: ShapeInferenceContext) throws -> [ValueFact] {
        guard inputs.count >= 3, let data = inputs[0], let indices = inputs[1], let scales = inputs[2] else { return [] }
        var out = ValueFact(dataType: scales.dataType)
        guard let s = data.shape, let si = indices.shape else { return [out] }
        let perByte = self.perByte
        guard let shape = Self.outputShape(data: s, indices: si, gatherAxis: gatherAxis, quantizeAxis: quantizeAxis,
                                           widenLast: { d in d.value.map { .known($0 * perByte) } ?? .unknown }) else {
            throw ShapeFacts.Unknowable()
        }
        out.shape = shape
        return [out]
    }
}

extension StandardOperators {
    static func registerGatherBlockQuantized(_ r: inout OperatorRegistry) {
        r.register("GatherBlockQuantized", domain: "com.microsoft") { c in
            let blockSize = try c.int("block_size", default: 128)
            guard blockSize >= 16, blockSize <= 1 << 30, blockSize & (blockSize - 1) == 0 else {
                throw c.error(.invalidModel, "GatherBlockQuantized: block_size must be a power of 2 of at least 16, got \(blockSize)")
            }
            let bits = try c.int("bits", default: 4)
            guard [2, 4, 8].contains(bits) else {
                throw c.error(.invalidModel, "GatherBlockQuantized: bits must be 2, 4 or 8, got \(bits)")
            }
            let gatherAxis = try c.int("gather_axis", default: 0), quantizeAxis = try c.int("quantize_axis", default: 1)
            guard (-(1 << 20)...(1 << 20)).contains(gatherAxis), (-(1 << 20)...(1 << 20)).contains(quantizeAxis) else {
                throw c.error(.invalidModel, "GatherBlockQuantized: axis out of range")
            }
            return GatherBlockQuantizedOp(gatherAxis: gatherAxis, quantizeAxis: quantizeAxis, blockSize: blockSize, bits: bits)
        }
    }
}
