import BlindAITensor

/// Data-movement kernels of the shape, indexing and other operators that move elements without reading them
/// (ShapeOps.swift, Indexing.swift, ...). Elements are moved by their byte size (1, 2, 4 or 8 bytes), never interpreted, so one
/// specialised kernel serves every element type; string tensors take separate paths over their `[String]`.
package enum ShapeKernels {
    // MARK: Views and allocation

    /// Checks the element count of a string output against the limits.
    package static func stringCount(_ shape: [Int], _ ctx: ExecutionContext) throws -> Int {
        try ctx.limits.checkedCount(shape, .string)
    }

    /// Normalises an axis for `rank`, with an error that names the operator.
    package static func axis(_ a: Int, rank: Int, _ what: String) throws -> Int {
        let v = a < 0 ? a + rank : a
        guard v >= 0 && v < rank else {
            throw EngineError(.invalidArgument, "\(what): axis \(a) is out of range for rank \(rank)")
        }
        return v
    }

    /// The product of `dims`, checked for overflow.
    package static func product<C: Collection>(_ dims: C) throws -> Int where C.Element == Int {
        try SizeMath.product(dims, "shape \(Array(dims))", code: .memoryLimit)
    }

    // MARK: Strided copy

    /// Collapses a strided view: drops size-1 dimensions and merges dimensions that are contiguous in the source.
    /// Returns nil when the view is empty.
    package static func collapse(shape: [Int], strides: [Int]) -> (shape: [Int], strides: [Int])? {
        var s: [Int] = []
        var st: [Int] = []
        s.reserveCapacity(shape.count)
        st.reserveCapacity(shape.count)
        for i in 0..<shape.count {
            let d = shape[i]
            if d == 0 { return nil }
            if d == 1 { continue }
            if let last = s.last, st[st.count - 1] == strides[i] * d {
                s[s.count - 1] = last * d
                st[st.count - 1] = strides[i]
            } else {
                s.append(d)
                st.append(strides[i])
            }
        }
        return (s, st)
    }

    /// Writes the strided view (`offset`, `shape`, `strides`, in elements) of `src` contiguously into `dst`.
    package static func stridedCopy(from src: UnsafeRawPointer, to dst: UnsafeMutableRawPointer, elementSize: Int,
                            offset: Int, shape: [Int], strides: [Int]) {
        guard let (dims, st) = collapse(shape: shape, strides: strides) else { return }
        switch elementSize {
        case 1: stridedCopyTyped(src, dst, UInt8.self, offset, dims, st)
        case 2: stridedCopyTyped(src, dst, UInt16.self, offset, dims, st)
        case 4: stridedCopyTyped(src, dst, UInt32.self, offset, dims, st)
        case 8: stridedCopyTyped(src, dst, UInt64.self, offset, dims, st)
        default:
            // Not used by any supported type; kept correct for completeness.
            let idx = indices(offset: offset, shape: dims, strides: st)
            for (o, i) in idx.enumerated() {
                (dst + o * elementSize).copyMemory(from: src + i * elementSize, byteCount: elementSize)
            }
        }
    }

    /// Source element indices of a strided view, in output order (for string tensors and small index work).
    package static func indices(offset: Int, shape: [Int], strides: [Int]) -> [Int] {
        let total = shape.reduce(1, *)
        var out = [Int](repeating: 0, count: total)
        if total == 0 { return out }
        let n = shape.count
        if n == 0 { out[0] = offset; return out }
        var index = [Int](repeating: 0, count: n)
        var pos = offset
        for o in 0..<total {
            out[o] = pos
            var d = n - 1
            while d >= 0 {
                index[d] += 1
                pos += strides[d]
                if index[d] < shape[d] { break }
                pos -= strides[d] * shape[d]
                index[d] = 0
                d -= 1
            }
        }
        return out
    }

    /// Calls `body(outOffset, inOffset)` for every combination of the first `outerCount` dimensions, where the
    /// output is contiguous with `rowSize` elements per combination.
    @inlinable @inline(__always)
    package static func forEachOuter(_ dims: [Int], _ strides: [Int], outerCount: Int, rowSize: Int, offset: Int,
                             _ body: (Int, Int) -> Void) {
        if outerCount == 0 { body(0, offset); return }
        var index = [Int](repeating: 0, count: outerCount)
        var pos = offset
        var out = 0
        while true {
            body(out, pos)
            out += rowSize
            var d = outerCount - 1
            while d >= 0 {
                index[d] += 1
                pos += strides[d]
                if index[d] < dims[d] { break }
                pos -= strides[d] * dims[d]
                index[d] = 0
                d -= 1
            }
            if d < 0 { return }
        }
    }

    @inlinable @inline(__always)
    package static func stridedCopyTyped<E: FixedWidthInteger & SIMDScalar>(_ srcRaw: UnsafeRawPointer, _ dstRaw: UnsafeMutableRawPointer, _: E.Type,
                                                      _ offset: Int, _ dims: [Int], _ st: [Int]) {
        let src = srcRaw.assumingMemoryBound(to: E.self)
        let dst = dstRaw.assumingMemoryBound(to: E.self)
        let n = dims.count
        if n == 0 { dst[0] = src[offset]; return }
        let inner = dims[n - 1]
        let istride = st[n - 1]
        if istride == 1 {
            let bytes = inner * MemoryLayout<E>.stride
            forEachOuter(dims, st, outerCount: n - 1, rowSize: inner, offset: offset) { o, i in
                UnsafeMutableRawPointer(dst + o).copyMemory(from: src + i, byteCount: bytes)
            }
            return
        }
        // A dimension that is contiguous in the source (other than the innermost): the copy is a set of 2-D
        // transposes between it and the innermost dimension, done in tiles.
        if let j = (0..<(n - 1)).last(where: { st[$0] == 1 }), dims[j] >= 4 && inner >= 4 {
            transposeTiles(src, dst, offset, dims, st, j)
            return
        }
        if n >= 2 && st[n - 2] == 1 {
            // A short innermost dimension after a contiguous one (DepthToSpace, interleaving): read the contiguous
            // source runs and write with the short output stride.
            let rows = dims[n - 2]
            forEachOuter(dims, st, outerCount: n - 2, rowSize: rows * inner, offset: offset) { o, i in
                for c in 0..<inner {
                    let d = dst + o + c
                    let s = src + i + c * istride
                    for r in 0..<rows { d[r * inner] = s[r] }
                }
            }
            return
        }
        forEachOuter(dims, st, outerCount: n - 1, rowSize: inner, offset: offset) { o, i in
            let d = dst + o
            let s = src + i
            for c in 0..<inner { d[c] = s[c * istride] }
        }
    }

    /// Copies a strided view whose dimension `j` has source stride 1 and whose innermost dimension has output
    /// stride 1: a set of 2-D transposes, done in tiles of 4×4 blocks (four short vector loads, four vector stores),
    /// so that neither side is walked one element at a time with a large stride.
    package static func transposeTiles<E: FixedWidthInteger & SIMDScalar>(_ src: UnsafePointer<E>, _ dst: UnsafeMutablePointer<E>, _ offset: Int,
                                                                  _ dims: [Int], _ st: [Int], _ j: Int) {
        let n = dims.count
        let inner = dims[n - 1]
        let istride = st[n - 1]
        let rows = dims[j]
        // Output strides (the output is contiguous in `dims` order).
        var ost = [Int](repeating: 1, count: n)
        for d in stride(from: n - 2, through: 0, by: -1) { ost[d] = ost[d + 1] * dims[d + 1] }
        let rowStride = ost[j]
        // Outer dimensions: all but j and the innermost.
        var outerDims: [Int] = [], outerIn: [Int] = [], outerOut: [Int] = []
        for d in 0..<(n - 1) where d != j {
            outerDims.append(dims[d]); outerIn.append(st[d]); outerOut.append(ost[d])
        }
        let tile = 32
        let m = outerDims.count
        var index = [Int](repeating: 0, count: m)
        var ipos = offset, opos = 0
        while true {
            let s0 = src + ipos, d0 = dst + opos
            var r0 = 0
            while r0 < rows {
                let r1 = Swift.min(r0 + tile, rows)
                var c0 = 0
                while c0 < inner {
                    let c1 = Swift.min(c0 + tile, inner)
                    var r = r0
                    while r + 4 <= r1 {
                        var c = c0
                        while c + 4 <= c1 {
                            let p = s0 + r + c * istride
                            let a0 = UnsafeRawPointer(p).loadUnaligned(as: SIMD4<E>.self)
                            let a1 = UnsafeRawPointer(p + istride).loadUnaligned(as: SIMD4<E>.self)
                            let a2 = UnsafeRawPointer(p + 2 * istride).loadUnaligned(as: SIMD4<E>.self)
                            let a3 = UnsafeRawPointer(p + 3 * istride).loadUnaligned(as: SIMD4<E>.self)
                            let q = d0 + r * rowStride + c
                            UnsafeMutableRawPointer(q).storeBytes(of: SIMD4(a0[0], a1[0], a2[0], a3[0]), as: SIMD4<E>.self)
                            UnsafeMutableRawPointer(q + rowStride).storeBytes(of: SIMD4(a0[1], a1[1], a2[1], a3[1]), as: SIMD4<E>.self)
                            UnsafeMutableRawPointer(q + 2 * rowStride).storeBytes(of: SIMD4(a0[2], a1[2], a2[2], a3[2]), as: SIMD4<E>.self)
                            UnsafeMutableRawPointer(q + 3 * rowStride).storeBytes(of: SIMD4(a0[3], a1[3], a2[3], a3[3]), as: SIMD4<E>.self)
                            c += 4
                        }
                        while c < c1 {
                            for k in 0..<4 { d0[(r + k) * rowStride + c] = s0[r + k + c * istride] }
                            c += 1
                        }
                        r += 4
                    }
                    while r < r1 {
                        for c in c0..<c1 { d0[r * rowStride + c] = s0[r + c * istride] }
                        r += 1
                    }
                    c0 = c1
                }
                r0 = r1
            }
            var d = m - 1
            while d >= 0 {
                index[d] += 1
                ipos += outerIn[d]
                opos += outerOut[d]
                if index[d] < outerDims[d] { break }
                ipos -= outerIn[d] * outerDims[d]
                opos -= outerOut[d] * outerDims[d]
                index[d] = 0
                d -= 1
            }
            if d < 0 { break }
        }
    }

    /// A new tensor holding the strided view of `x` (offset, shape and strides in elements of `x`).
    package static func view(_ x: Tensor, offset: Int, shape: [Int], strides: [Int], _ ctx: ExecutionContext) throws -> Tensor {
        if x.dataType == .string {
            let n = try stringCount(shape, ctx)
            let src = x.strings
            if n == 0 { return Tensor(shape: shape, strings: []) }
            let idx = indices(offset: offset, shape: shape, strides: strides)
            return Tensor(shape: shape, strings: idx.map { src[$0] })
        }
        let out = try ctx.uninitialized(x.dataType, shape)
        if out.count > 0 {
            stridedCopy(from: UnsafeRawPointer(x.storage.base), to: out.storage.base, elementSize: x.dataType.byteSize,
                        offset: offset, shape: shape, strides: strides)
        }
        return out
    }

    /// `x` transposed by `perm` (a validated permutation of its axes).
    package static func transpose(_ x: Tensor, perm: [Int], _ ctx: ExecutionContext) throws -> Tensor {
        let inStrides = Shape.strides(x.shape)
        let shape = perm.map { x.shape[$0] }
        if perm == Array(0..<perm.count) { return x }
        let strides = perm.map { inStrides[$0] }
        return try view(x, offset: 0, shape: shape, strides: strides, ctx)
    }

    /// `x` broadcast to `shape` (Expand, Tile), with rows copied, filled or gathered by element size.
    package static func broadcast(_ x: Tensor, to shape: [Int], _ ctx: ExecutionContext) throws -> Tensor {
        if x.dataType == .string { return try Loops.broadcastCopy(x, to: shape, ctx) }
        let out = try ctx.uninitialized(x.dataType, shape)
        if out.count == 0 { return out }
        let plan = BroadcastPlan(outShape: shape, inputShapes: [x.shape])
        switch x.dataType.byteSize {
        case 1: broadcastRows(plan, x, out, UInt8.self)
        case 2: broadcastRows(plan, x, out, UInt16.self)
        case 4: broadcastRows(plan, x, out, UInt32.self)
        default: broadcastRows(plan, x, out, UInt64.self)
        }
        return out
    }

    package static func broadcastRows<E: FixedWidthInteger>(_ plan: BroadcastPlan, _ x: Tensor, _ out: Tensor, _: E.Type) {
        let src = UnsafePointer(x.storage.base.assumingMemoryBound(to: E.self))
        let dst = out.storage.base.assumingMemoryBound(to: E.self)
        plan.forEachRow { o, offs, count, strides in
            let s = src + offs[0], d = dst + o
            switch strides[0] {
            case 1: d.update(from: s, count: count)
            case 0: d.update(repeating: s[0], count: count)
            default:
                let st = strides[0]
                for i in 0..<count { d[i] = s[i * st] }
            }
        }
    }

    // MARK: Element values

    /// One element of `t` at `index` as raw bits in a 64-bit word (little endian), for fills.
    package static func rawElement(_ t: Tensor, _ index: Int) -> UInt64 {
        var v: UInt64 = 0
        let size = t.dataType.byteSize
        withUnsafeMutableBytes(of: &v) { p in
            p.baseAddress!.copyMemory(from: UnsafeRawPointer(t.storage.base) + index * size, byteCount: size)
        }
        return v
    }

    /// Fills `count` elements of `size` bytes at `dst` with the element whose bits are `value`.
    package static func fill(_ dst: UnsafeMutableRawPointer, count: Int, elementSize: Int, value: UInt64) {
        if count <= 0 { return }
        switch elementSize {
        case 1: dst.assumingMemoryBound(to: UInt8.self).update(repeating: UInt8(truncatingIfNeeded: value), count: count)
        case 2: dst.assumingMemoryBound(to: UInt16.self).update(repeating: UInt16(truncatingIfNeeded: value), count: count)
        case 4: dst.assumingMemoryBound(to: UInt32.self).update(repeating: UInt32(truncatingIfNeeded: value), count: count)
        default: dst.assumingMemoryBound(to: UInt64.self).update(repeating: value, count: count)
        }
    }

    /// The bits of the number `v` as an element of `dt` (for constants such as one, zero or pad values).
    package static func rawValue(_ v: Double, as dt: DataType) -> UInt64 {
        switch dt {
        case .float32: return UInt64(Float(v).bitPattern)
        case .float64: return v.bitPattern
        case .float16: return UInt64(Float16(Float(v)).bitPattern)
        case .bfloat16:
            let f = Float(v)
            if f.isNaN { return 0x7FC0 }
            let bits = f.bitPattern
            return UInt64((bits &+ (((bits >> 16) & 1) + 0x7FFF)) >> 16)
        case .bool: return v != 0 ? 1 : 0
        case .int8: return UInt64(UInt8(bitPattern: Int8(clampingDouble: v)))
        case .uint8: return UInt64(UInt8(clampingDouble: v))
        case .int16: return UInt64(UInt16(bitPattern: Int16(clampingDouble: v)))
        case .uint16: return UInt64(UInt16(clampingDouble: v))
        case .int32: return UInt64(UInt32(bitPattern: Int32(clampingDouble: v)))
        case .uint32: return UInt64(UInt32(clampingDouble: v))
        case .int64: return UInt64(bitPattern: Int64(clampingDouble: v))
        case .uint64: return UInt64(clampingDouble: v)
        case .string: return 0
        }
    }

    /// Copies `count` elements; `src` and `dst` are element indices.
    @inlinable @inline(__always)
    package static func copy(_ src: UnsafeRawPointer, _ si: Int, _ dst: UnsafeMutableRawPointer, _ di: Int, count: Int, elementSize: Int) {
        if count > 0 {
            (dst + di * elementSize).copyMemory(from: src + si * elementSize, byteCount: count * elementSize)
        }
    }
}

/// Element types whose integer values can be read from an index tensor without converting the whole tensor.
package enum ShapeIndexReader {
    /// Reads index tensor values (int32 or int64) one at a time.
    package static func values(_ t: Tensor, _ what: String) throws -> [Int] {
        switch t.dataType {
        case .int64:
            let b = t.buffer(Int64.self)
            return [Int](unsafeUninitializedCapacity: b.count) { o, n in
                for i in 0..<b.count { o[i] = Int(b[i]) }
                n = b.count
            }
        case .int32:
            let b = t.buffer(Int32.self)
            return [Int](unsafeUninitializedCapacity: b.count) { o, n in
                for i in 0..<b.count { o[i] = Int(b[i]) }
                n = b.count
            }
        default:
            do { return try t.intValues() } catch {
                throw EngineError(.typeMismatch, "\(what) must be an integer tensor, got \(t.dataType)")
            }
        }
    }
}
