import BlindAITensor

/// Data-movement kernels shared by the shape, indexing and generator operators (ShapeOps.swift, Indexing.swift,
/// Generators.swift). Elements are moved by their byte size (1, 2, 4 or 8 bytes), never interpreted, so one
/// specialised kernel serves every element type; string tensors take separate paths over their `[String]`.
enum ShapeKernels {
    // MARK: Views and allocation

    /// Allocates an output of `shape` for `dataType` (strings: an array of empty strings, checked against the limits).
    static func allocate(_ dataType: DataType, _ shape: [Int], _ ctx: ExecutionContext) throws -> Tensor {
        try ctx.uninitialized(dataType, shape)
    }

    /// Checks the element count of a string output against the limits.
    static func stringCount(_ shape: [Int], _ ctx: ExecutionContext) throws -> Int {
        try ctx.limits.checkedCount(shape, .string)
    }

    /// Normalises an axis for `rank`, with an error that names the operator.
    static func axis(_ a: Int, rank: Int, _ what: String) throws -> Int {
        let v = a < 0 ? a + rank : a
        guard v >= 0 && v < rank else {
            throw EngineError(.invalidArgument, "\(what): axis \(a) is out of range for rank \(rank)")
        }
        return v
    }

    /// The product of `dims`, checked for overflow.
    static func product<C: Collection>(_ dims: C) throws -> Int where C.Element == Int {
        var n = 1
        for d in dims {
            let (m, o) = n.multipliedReportingOverflow(by: d)
            guard !o else { throw EngineError(.memoryLimit, "shape \(Array(dims)) overflows") }
            n = m
        }
        return n
    }

    // MARK: Strided copy

    /// Collapses a strided view: drops size-1 dimensions and merges dimensions that are contiguous in the source.
    /// Returns nil when the view is empty.
    static func collapse(shape: [Int], strides: [Int]) -> (shape: [Int], strides: [Int])? {
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
    static func stridedCopy(from src: UnsafeRawPointer, to dst: UnsafeMutableRawPointer, elementSize: Int,
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
    static func indices(offset: Int, shape: [Int], strides: [Int]) -> [Int] {
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
    @inline(__always)
    static func forEachOuter(_ dims: [Int], _ strides: [Int], outerCount: Int, rowSize: Int, offset: Int,
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

    @inline(__always)
    static func stridedCopyTyped<E: FixedWidthInteger>(_ srcRaw: UnsafeRawPointer, _ dstRaw: UnsafeMutableRawPointer, _: E.Type,
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
        if n >= 2 && st[n - 2] == 1 {
            // A batch of 2-D transposes: out[r, c] = in[r + c * istride]. Copy in square tiles so that both the
            // reads and the writes stay in cache.
            let rows = dims[n - 2]
            let tile = 64 / MemoryLayout<E>.stride * 2
            forEachOuter(dims, st, outerCount: n - 2, rowSize: rows * inner, offset: offset) { o, i in
                var r0 = 0
                while r0 < rows {
                    let r1 = Swift.min(r0 + tile, rows)
                    var c0 = 0
                    while c0 < inner {
                        let c1 = Swift.min(c0 + tile, inner)
                        for r in r0..<r1 {
                            let d = dst + o + r * inner
                            let s = src + i + r
                            for c in c0..<c1 { d[c] = s[c * istride] }
                        }
                        c0 = c1
                    }
                    r0 = r1
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

    /// A new tensor holding the strided view of `x` (offset, shape and strides in elements of `x`).
    static func view(_ x: Tensor, offset: Int, shape: [Int], strides: [Int], _ ctx: ExecutionContext) throws -> Tensor {
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
    static func transpose(_ x: Tensor, perm: [Int], _ ctx: ExecutionContext) throws -> Tensor {
        let inStrides = Shape.strides(x.shape)
        let shape = perm.map { x.shape[$0] }
        if perm == Array(0..<perm.count) { return x }
        let strides = perm.map { inStrides[$0] }
        return try view(x, offset: 0, shape: shape, strides: strides, ctx)
    }

    // MARK: Element values

    /// One element of `t` at `index` as raw bits in a 64-bit word (little endian), for fills.
    static func rawElement(_ t: Tensor, _ index: Int) -> UInt64 {
        var v: UInt64 = 0
        let size = t.dataType.byteSize
        withUnsafeMutableBytes(of: &v) { p in
            p.baseAddress!.copyMemory(from: UnsafeRawPointer(t.storage.base) + index * size, byteCount: size)
        }
        return v
    }

    /// Fills `count` elements of `size` bytes at `dst` with the element whose bits are `value`.
    static func fill(_ dst: UnsafeMutableRawPointer, count: Int, elementSize: Int, value: UInt64) {
        if count <= 0 { return }
        switch elementSize {
        case 1: dst.assumingMemoryBound(to: UInt8.self).update(repeating: UInt8(truncatingIfNeeded: value), count: count)
        case 2: dst.assumingMemoryBound(to: UInt16.self).update(repeating: UInt16(truncatingIfNeeded: value), count: count)
        case 4: dst.assumingMemoryBound(to: UInt32.self).update(repeating: UInt32(truncatingIfNeeded: value), count: count)
        default: dst.assumingMemoryBound(to: UInt64.self).update(repeating: value, count: count)
        }
    }

    /// The bits of the number `v` as an element of `dt` (for constants such as one, zero or pad values).
    static func rawValue(_ v: Double, as dt: DataType) -> UInt64 {
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
    @inline(__always)
    static func copy(_ src: UnsafeRawPointer, _ si: Int, _ dst: UnsafeMutableRawPointer, _ di: Int, count: Int, elementSize: Int) {
        if count > 0 {
            (dst + di * elementSize).copyMemory(from: src + si * elementSize, byteCount: count * elementSize)
        }
    }
}

/// Element types whose integer values can be read from an index tensor without converting the whole tensor.
enum ShapeIndexReader {
    /// Reads index tensor values (int32 or int64) one at a time.
    static func values(_ t: Tensor, _ what: String) throws -> [Int] {
        switch t.dataType {
        case .int64:
            let b = t.buffer(Int64.self)
            var out = [Int](repeating: 0, count: b.count)
            for i in 0..<b.count { out[i] = Int(b[i]) }
            return out
        case .int32:
            let b = t.buffer(Int32.self)
            var out = [Int](repeating: 0, count: b.count)
            for i in 0..<b.count { out[i] = Int(b[i]) }
            return out
        default:
            do { return try t.intValues() } catch {
                throw EngineError(.typeMismatch, "\(what) must be an integer tensor, got \(t.dataType)")
            }
        }
    }
}
