import BlindAITensor
import BlindAIKernels
import BlindAIGraph

// Gather and scatter operators. Indices are validated (negative values count from the end); elements are
// moved by byte size, and reductions dispatch once on the element type.

/// Reads an index tensor and normalises every value into [0, dim), or throws.
enum IndexingIndices {
    static func normalized(_ t: Tensor, dim: Int, _ what: String) throws -> [Int] {
        var v = try ShapeIndexReader.values(t, "\(what) indices")
        var bad: Int?
        v.withUnsafeMutableBufferPointer { b in
            for i in 0..<b.count {
                let x = b[i]
                let n = x < 0 ? x + dim : x
                if n < 0 || n >= dim { bad = x; return }
                b[i] = n
            }
        }
        if let bad {
            throw EngineError(.invalidArgument, "\(what): index \(bad) is out of range for an axis of size \(dim)")
        }
        return v
    }
}

/// Copies `count` elements of size E from `src + si` to `dst + di` (small counts copied by element).
@inline(__always)
private func indexingCopy<E: FixedWidthInteger>(_ src: UnsafePointer<E>, _ si: Int, _ dst: UnsafeMutablePointer<E>, _ di: Int, _ count: Int) {
    if count == 1 {
        dst[di] = src[si]
    } else if count <= 64 {
        for c in 0..<count { dst[di + c] = src[si + c] }
    } else {
        (dst + di).update(from: src + si, count: count)
    }
}

/// Gather along `axis`.
struct GatherOp: Operator {
    let axis: Int
    func run(_ inputs: [Tensor?], _ ctx: ExecutionContext) throws -> [Tensor] {
        let data = try inputs.required(0), indicesT = try inputs.required(1, "indices")
        guard data.rank >= 1 else { throw EngineError(.invalidArgument, "Gather: data must have rank >= 1") }
        let a = try ShapeKernels.axis(axis, rank: data.rank, "Gather")
        let dim = data.shape[a]
        let idx = try IndexingIndices.normalized(indicesT, dim: dim, "Gather")
        let shape = Array(data.shape[..<a]) + indicesT.shape + Array(data.shape[(a + 1)...])
        let outer = data.shape[..<a].reduce(1, *)
        let inner = data.shape[(a + 1)...].reduce(1, *)
        let n = idx.count
        if data.dataType == .string {
            var out = [String](repeating: "", count: try ShapeKernels.stringCount(shape, ctx))
            let src = data.strings
            var o = 0
            for p in 0..<outer {
                for j in 0..<n {
                    let s = (p * dim + idx[j]) * inner
                    for i in 0..<inner { out[o] = src[s + i]; o += 1 }
                }
            }
            return [Tensor(shape: shape, strings: out)]
        }
        let out = try ctx.uninitialized(data.dataType, shape)
        if out.count == 0 { return [out] }
        switch data.dataType.byteSize {
        case 1: gather(data, out, UInt8.self, idx, outer, dim, inner)
        case 2: gather(data, out, UInt16.self, idx, outer, dim, inner)
        case 4: gather(data, out, UInt32.self, idx, outer, dim, inner)
        default: gather(data, out, UInt64.self, idx, outer, dim, inner)
        }
        return [out]
    }

    private func gather<E: FixedWidthInteger>(_ data: Tensor, _ out: Tensor, _: E.Type, _ idx: [Int], _ outer: Int, _ dim: Int, _ inner: Int) {
        let src = UnsafePointer(data.storage.base.assumingMemoryBound(to: E.self))
        let dst = out.storage.base.assumingMemoryBound(to: E.self)
        let n = idx.count
        idx.withUnsafeBufferPointer { ib in
            var o = 0
            for p in 0..<outer {
                let base = p * dim
                for j in 0..<n {
                    indexingCopy(src, (base + ib[j]) * inner, dst, o, inner)
                    o += inner
                }
            }
        }
    }
}

/// GatherElements: out[i...] = data[i... with the axis coordinate replaced by indices[i...]].
struct GatherElementsOp: Operator {
    let axis: Int
    func run(_ inputs: [Tensor?], _ ctx: ExecutionContext) throws -> [Tensor] {
        let data = try inputs.required(0), indicesT = try inputs.required(1, "indices")
        let rank = data.rank
        guard rank >= 1, indicesT.rank == rank else {
            throw EngineError(.invalidArgument, "GatherElements: data \(data.shape) and indices \(indicesT.shape) must have the same rank >= 1")
        }
        let a = try ShapeKernels.axis(axis, rank: rank, "GatherElements")
        for k in 0..<rank where k != a && indicesT.shape[k] > data.shape[k] {
            throw EngineError(.shapeMismatch, "GatherElements: indices \(indicesT.shape) exceed data \(data.shape) on axis \(k)")
        }
        let offsets = try IndexingElements.offsets(indicesT, dataShape: data.shape, axis: a, "GatherElements")
        if data.dataType == .string {
            let src = data.strings
            return [Tensor(shape: indicesT.shape, strings: offsets.map { src[$0] })]
        }
        let out = try ctx.uninitialized(data.dataType, indicesT.shape)
        switch data.dataType.byteSize {
        case 1: IndexingElements.gather(data, out, UInt8.self, offsets)
        case 2: IndexingElements.gather(data, out, UInt16.self, offsets)
        case 4: IndexingElements.gather(data, out, UInt32.self, offsets)
        default: IndexingElements.gather(data, out, UInt64.self, offsets)
        }
        return [out]
    }
}

enum IndexingElements {
    /// For each element of `indices` (same rank as the data, each dimension no larger except on `axis`), the flat
    /// data offset it addresses along `axis`, with negative indices counted from the end; throws on any out of range.
    static func offsets(_ indices: Tensor, dataShape: [Int], axis a: Int, _ what: String) throws -> [Int] {
        switch indices.dataType {
        case .int64: return try offsets(indices.buffer(Int64.self), indices.shape, dataShape, a, what)
        case .int32: return try offsets(indices.buffer(Int32.self), indices.shape, dataShape, a, what)
        default:
            let v = try ShapeIndexReader.values(indices, "\(what) indices").map { Int64($0) }
            return try v.withUnsafeBufferPointer { try offsets($0, indices.shape, dataShape, a, what) }
        }
    }

    static func offsets<I: FixedWidthInteger>(_ ib: UnsafeBufferPointer<I>, _ indexShape: [Int], _ dataShape: [Int], _ a: Int,
                                              _ what: String) throws -> [Int] {
        let rank = indexShape.count
        let count = ib.count
        var out = [Int](repeating: 0, count: count)
        if count == 0 { return out }
        let ds = Shape.strides(dataShape)
        let sa = ds[a]
        let dim = dataShape[a]
        let last = indexShape[rank - 1]
        let innerStride = a == rank - 1 ? 0 : ds[rank - 1]
        let rows = count / last
        var bad: Int?
        out.withUnsafeMutableBufferPointer { ob in
            var index = [Int](repeating: 0, count: rank)
            var pos = 0  // data offset of the current row, without the axis coordinate
            var k = 0
            for _ in 0..<rows {
                for c in 0..<last {
                    var v = Int(ib[k])
                    if v < 0 { v += dim }
                    if v < 0 || v >= dim { bad = Int(ib[k]); v = 0 }
                    ob[k] = pos + c * innerStride + v * sa
                    k += 1
                }
                if bad != nil { return }
                var d = rank - 2
                while d >= 0 {
                    index[d] += 1
                    if d != a { pos += ds[d] }
                    if index[d] < indexShape[d] { break }
                    if d != a { pos -= ds[d] * indexShape[d] }
                    index[d] = 0
                    d -= 1
                }
            }
        }
        if let bad {
            throw EngineError(.invalidArgument, "\(what): index \(bad) is out of range for an axis of size \(dim)")
        }
        return out
    }

    static func gather<E: FixedWidthInteger>(_ data: Tensor, _ out: Tensor, _: E.Type, _ offsets: [Int]) {
        let src = data.storage.base.assumingMemoryBound(to: E.self)
        let dst = out.storage.base.assumingMemoryBound(to: E.self)
        offsets.withUnsafeBufferPointer { ob in
            for i in 0..<ob.count { dst[i] = src[ob[i]] }
        }
    }
}

/// GatherND with `batch_dims`.
struct GatherNDOp: Operator {
    let batchDims: Int
    func run(_ inputs: [Tensor?], _ ctx: ExecutionContext) throws -> [Tensor] {
        let data = try inputs.required(0), indicesT = try inputs.required(1, "indices")
        let b = batchDims
        guard indicesT.rank >= 1, data.rank >= 1 else {
            throw EngineError(.invalidArgument, "GatherND: data and indices must have rank >= 1")
        }
        guard b >= 0, b < Swift.min(data.rank, indicesT.rank) else {
            throw EngineError(.invalidArgument, "GatherND: batch_dims \(b) is out of range for data \(data.shape) and indices \(indicesT.shape)")
        }
        guard Array(data.shape[..<b]) == Array(indicesT.shape[..<b]) else {
            throw EngineError(.shapeMismatch, "GatherND: batch dimensions of data \(data.shape) and indices \(indicesT.shape) differ")
        }
        let k = indicesT.shape[indicesT.rank - 1]
        guard k <= data.rank - b else {
            throw EngineError(.invalidArgument, "GatherND: index tuples of length \(k) are too long for data \(data.shape) with batch_dims \(b)")
        }
        let shape = Array(indicesT.shape[..<(indicesT.rank - 1)]) + Array(data.shape[(b + k)...])
        _ = try ctx.limits.checkedCount(shape, data.dataType == .string ? .int64 : data.dataType)
        _ = try ctx.limits.checkedCount(Array(indicesT.shape.dropLast()), .int64)
        let batches = data.shape[..<b].reduce(1, *)
        let tuplesPerBatch = indicesT.shape[b..<(indicesT.rank - 1)].reduce(1, *)
        let slice = data.shape[(b + k)...].reduce(1, *)
        let batchSize = data.shape[b...].reduce(1, *)
        let strides = Shape.strides(Array(data.shape[b...]))
        let raw = try ShapeIndexReader.values(indicesT, "GatherND indices")
        // Source offset of every slice.
        var offsets = [Int](repeating: 0, count: batches * tuplesPerBatch)
        for bt in 0..<batches {
            for t in 0..<tuplesPerBatch {
                var off = bt * batchSize
                let base = (bt * tuplesPerBatch + t) * k
                for j in 0..<k {
                    let dim = data.shape[b + j]
                    var v = raw[base + j]
                    if v < 0 { v += dim }
                    guard v >= 0 && v < dim else {
                        throw EngineError(.invalidArgument, "GatherND: index \(raw[base + j]) is out of range for axis \(b + j) of size \(dim)")
                    }
                    off += v * strides[j]
                }
                offsets[bt * tuplesPerBatch + t] = off
            }
        }
        if data.dataType == .string {
            let src = data.strings
            var out = [String](repeating: "", count: try ShapeKernels.stringCount(shape, ctx))
            for (i, off) in offsets.enumerated() {
                for c in 0..<slice { out[i * slice + c] = src[off + c] }
            }
            return [Tensor(shape: shape, strings: out)]
        }
        let out = try ctx.uninitialized(data.dataType, shape)
        let size = data.dataType.byteSize
        for (i, off) in offsets.enumerated() {
            ShapeKernels.copy(UnsafeRawPointer(data.storage.base), off, out.storage.base, i * slice, count: slice, elementSize: size)
        }
        return [out]
    }
}

/// Scatter reductions.
enum IndexingReduction: Sendable {
    case none, add, mul, max, min

    init(_ name: String) throws {
        switch name {
        case "none": self = .none
        case "add": self = .add
        case "mul": self = .mul
        case "max": self = .max
        case "min": self = .min
        default: throw EngineError(.invalidModel, "unknown reduction '\(name)'")
        }
    }
}

enum IndexingScatter {
    /// Writes `count` consecutive update elements starting at `ui` into `out` at the element offsets
    /// `dst[i] + c` (for c in 0..<count), combining with the reduction. `out` is a fresh copy of the data.
    static func apply(_ out: Tensor, _ updates: Tensor, dst: [Int], count: Int, reduction: IndexingReduction, _ what: String) throws {
        if reduction == .none {
            let size = out.dataType.byteSize
            for (i, d) in dst.enumerated() {
                ShapeKernels.copy(UnsafeRawPointer(updates.storage.base), i * count, out.storage.base, d, count: count, elementSize: size)
            }
            return
        }
        switch out.dataType {
        case .float32: reduce(out, updates, Float.self, dst, count, reduction)
        case .float64: reduce(out, updates, Double.self, dst, count, reduction)
        case .float16: reduce(out, updates, Float16.self, dst, count, reduction)
        case .int8: reduce(out, updates, Int8.self, dst, count, reduction)
        case .uint8: reduce(out, updates, UInt8.self, dst, count, reduction)
        case .int16: reduce(out, updates, Int16.self, dst, count, reduction)
        case .uint16: reduce(out, updates, UInt16.self, dst, count, reduction)
        case .int32: reduce(out, updates, Int32.self, dst, count, reduction)
        case .uint32: reduce(out, updates, UInt32.self, dst, count, reduction)
        case .int64: reduce(out, updates, Int64.self, dst, count, reduction)
        case .uint64: reduce(out, updates, UInt64.self, dst, count, reduction)
        case .bool:
            let o = out.mutableBuffer(Bool.self), u = updates.buffer(Bool.self)
            for (i, d) in dst.enumerated() {
                for c in 0..<count {
                    let v = u[i * count + c]
                    switch reduction {
                    case .add, .max: o[d + c] = o[d + c] || v
                    case .mul, .min: o[d + c] = o[d + c] && v
                    case .none: o[d + c] = v
                    }
                }
            }
        default:
            throw EngineError(.typeMismatch, "\(what): reduction \(reduction) does not support \(out.dataType) tensors")
        }
    }

    static func reduce<T: EngineNumeric>(_ out: Tensor, _ updates: Tensor, _: T.Type, _ dst: [Int], _ count: Int, _ reduction: IndexingReduction) {
        switch reduction {
        case .add: combine(out, updates, T.self, dst, count) { $0 + $1 }
        case .mul: combine(out, updates, T.self, dst, count) { $0 * $1 }
        case .max: combine(out, updates, T.self, dst, count) { Swift.max($0, $1) }
        case .min: combine(out, updates, T.self, dst, count) { Swift.min($0, $1) }
        case .none: combine(out, updates, T.self, dst, count) { $1 }
        }
    }

    @inline(__always)
    static func combine<T: EngineNumeric>(_ out: Tensor, _ updates: Tensor, _: T.Type, _ dst: [Int], _ count: Int, _ f: (T, T) -> T) {
        let o = out.mutableBuffer(T.self), u = updates.buffer(T.self)
        for (i, d) in dst.enumerated() {
            for c in 0..<count { o[d + c] = f(o[d + c], u[i * count + c]) }
        }
    }

    /// A copy of `data` to scatter into.
    static func copy(_ data: Tensor, _ ctx: ExecutionContext) throws -> Tensor {
        let out = try ctx.uninitialized(data.dataType, data.shape)
        if data.dataType != .string && data.count > 0 {
            out.storage.base.copyMemory(from: data.storage.base, byteCount: data.byteCount)
        }
        return out
    }
}

/// ScatterND(data, indices, updates) with an optional reduction.
struct ScatterNDOp: Operator {
    let reduction: IndexingReduction
    func run(_ inputs: [Tensor?], _ ctx: ExecutionContext) throws -> [Tensor] {
        let data = try inputs.required(0), indicesT = try inputs.required(1, "indices"), updates = try inputs.required(2, "updates")
        guard updates.dataType == data.dataType else {
            throw EngineError(.typeMismatch, "ScatterND: updates are \(updates.dataType), data is \(data.dataType)")
        }
        guard indicesT.rank >= 1 else { throw EngineError(.invalidArgument, "ScatterND: indices must have rank >= 1") }
        let k = indicesT.shape[indicesT.rank - 1]
        guard k <= data.rank else {
            throw EngineError(.invalidArgument, "ScatterND: index tuples of length \(k) are too long for data \(data.shape)")
        }
        let expected = Array(indicesT.shape[..<(indicesT.rank - 1)]) + Array(data.shape[k...])
        guard updates.shape == expected else {
            throw EngineError(.shapeMismatch, "ScatterND: updates have shape \(updates.shape), expected \(expected)")
        }
        _ = try ctx.limits.checkedCount(Array(indicesT.shape.dropLast()), .int64)
        let raw = try ShapeIndexReader.values(indicesT, "ScatterND indices")
        let tuples = indicesT.shape.dropLast().reduce(1, *)
        let slice = data.shape[k...].reduce(1, *)
        let strides = Shape.strides(data.shape)
        var dst = [Int](repeating: 0, count: tuples)
        for t in 0..<tuples {
            var off = 0
            for j in 0..<k {
                let dim = data.shape[j]
                var v = raw[t * k + j]
                if v < 0 { v += dim }
                guard v >= 0 && v < dim else {
                    throw EngineError(.invalidArgument, "ScatterND: index \(raw[t * k + j]) is out of range for axis \(j) of size \(dim)")
                }
                off += v * strides[j]
            }
            dst[t] = off
        }
        if data.dataType == .string {
            guard reduction == .none else { throw EngineError(.typeMismatch, "ScatterND: reductions do not support string tensors") }
            var out = data.strings
            let u = updates.strings
            for (i, d) in dst.enumerated() {
                for c in 0..<slice { out[d + c] = u[i * slice + c] }
            }
            return [Tensor(shape: data.shape, strings: out)]
        }
        let out = try IndexingScatter.copy(data, ctx)
        try IndexingScatter.apply(out, updates, dst: dst, count: slice, reduction: reduction, "ScatterND")
        return [out]
    }
}

/// ScatterElements (and the deprecated Scatter): out[... idx ...] = updates[...] along `axis`.
struct ScatterElementsOp: Operator {
    let axis: Int
    let reduction: IndexingReduction
    func run(_ inputs: [Tensor?], _ ctx: ExecutionContext) throws -> [Tensor] {
        let data = try inputs.required(0), indicesT = try inputs.required(1, "indices"), updates = try inputs.required(2, "updates")
        let rank = data.rank
        guard updates.dataType == data.dataType else {
            throw EngineError(.typeMismatch, "ScatterElements: updates are \(updates.dataType), data is \(data.dataType)")
        }
        guard rank >= 1, indicesT.rank == rank, updates.shape == indicesT.shape else {
            throw EngineError(.shapeMismatch, "ScatterElements: data \(data.shape), indices \(indicesT.shape) and updates \(updates.shape) must have the same rank and indices the shape of updates")
        }
        let a = try ShapeKernels.axis(axis, rank: rank, "ScatterElements")
        for k in 0..<rank where k != a && indicesT.shape[k] > data.shape[k] {
            throw EngineError(.shapeMismatch, "ScatterElements: indices \(indicesT.shape) exceed data \(data.shape) on axis \(k)")
        }
        let dst = try IndexingElements.offsets(indicesT, dataShape: data.shape, axis: a, "ScatterElements")
        if data.dataType == .string {
            guard reduction == .none else { throw EngineError(.typeMismatch, "ScatterElements: reductions do not support string tensors") }
            var out = data.strings
            let u = updates.strings
            for (i, d) in dst.enumerated() { out[d] = u[i] }
            return [Tensor(shape: data.shape, strings: out)]
        }
        let out = try IndexingScatter.copy(data, ctx)
        try IndexingScatter.apply(out, updates, dst: dst, count: 1, reduction: reduction, "ScatterElements")
        return [out]
    }
}

/// TensorScatter (opset 24): writes `update` into a copy of the cache along `axis` at per-batch write indices.
struct TensorScatterOp: Operator {
    let axis: Int
    let circular: Bool
    func run(_ inputs: [Tensor?], _ ctx: ExecutionContext) throws -> [Tensor] {
        let past = try inputs.required(0, "past_cache"), update = try inputs.required(1, "update")
        let rank = past.rank
        guard update.dataType == past.dataType else {
            throw EngineError(.typeMismatch, "TensorScatter: update is \(update.dataType), past_cache is \(past.dataType)")
        }
        guard rank >= 2, update.rank == rank else {
            throw EngineError(.shapeMismatch, "TensorScatter: past_cache \(past.shape) and update \(update.shape) must have the same rank >= 2")
        }
        let a = try ShapeKernels.axis(axis, rank: rank, "TensorScatter")
        guard a >= 1 else { throw EngineError(.invalidArgument, "TensorScatter: axis must not be the batch axis") }
        for k in 0..<rank where k != a && past.shape[k] != update.shape[k] {
            throw EngineError(.shapeMismatch, "TensorScatter: past_cache \(past.shape) and update \(update.shape) differ on axis \(k)")
        }
        let maxSeq = past.shape[a], seq = update.shape[a]
        guard seq <= maxSeq else {
            throw EngineError(.shapeMismatch, "TensorScatter: update length \(seq) exceeds the cache length \(maxSeq)")
        }
        let batch = past.shape[0]
        var writes = [Int](repeating: 0, count: batch)
        if let w = inputs.optional(2) {
            writes = try ShapeIndexReader.values(w, "TensorScatter write_indices")
            guard writes.count == batch else {
                throw EngineError(.shapeMismatch, "TensorScatter: \(writes.count) write indices for a batch of \(batch)")
            }
        }
        for w in writes where w < 0 || (!circular && w + seq > maxSeq) {
            throw EngineError(.invalidArgument, "TensorScatter: write index \(w) with \(seq) updates is out of range for a cache of length \(maxSeq)")
        }
        _ = try ctx.limits.checkedCount(Array(past.shape[..<a]) + [seq], .int64)
        let prefixPerBatch = past.shape[1..<a].reduce(1, *)
        let inner = past.shape[(a + 1)...].reduce(1, *)
        // Destination offsets of each update row.
        var dst: [Int] = []
        dst.reserveCapacity(batch * prefixPerBatch * seq)
        for b in 0..<batch {
            for p in 0..<prefixPerBatch {
                let prefix = b * prefixPerBatch + p
                for s in 0..<seq {
                    var c = writes[b] + s
                    if circular { c %= maxSeq }
                    dst.append((prefix * maxSeq + c) * inner)
                }
            }
        }
        if past.dataType == .string {
            var out = past.strings
            let u = update.strings
            for (i, d) in dst.enumerated() {
                for c in 0..<inner { out[d + c] = u[i * inner + c] }
            }
            return [Tensor(shape: past.shape, strings: out)]
        }
        let out = try IndexingScatter.copy(past, ctx)
        try IndexingScatter.apply(out, update, dst: dst, count: inner, reduction: .none, "TensorScatter")
        return [out]
    }
}

extension StandardOperators {
    static func registerIndexing(_ r: inout OperatorRegistry) {
        r.register("Gather") { c in GatherOp(axis: try c.int("axis", default: 0)) }
        r.register("GatherElements") { c in GatherElementsOp(axis: try c.int("axis", default: 0)) }
        r.register("GatherND") { c in GatherNDOp(batchDims: try c.int("batch_dims", default: 0)) }
        r.register("ScatterND") { c in
            do { return ScatterNDOp(reduction: try IndexingReduction(try c.string("reduction", default: "none"))) } catch let e as EngineError {
                throw c.error(e.code, e.reason)
            }
        }
        r.register("ScatterElements") { c in
            do {
                return ScatterElementsOp(axis: try c.int("axis", default: 0),
                                         reduction: try IndexingReduction(try c.string("reduction", default: "none")))
            } catch let e as EngineError {
                throw c.error(e.code, e.reason)
            }
        }
        r.register("Scatter") { c in ScatterElementsOp(axis: try c.int("axis", default: 0), reduction: .none) }
        r.register("TensorScatter") { c in
            let mode = try c.string("mode", default: "linear")
            guard mode == "linear" || mode == "circular" else { throw c.error(.invalidModel, "TensorScatter: unknown mode '\(mode)'") }
            return TensorScatterOp(axis: try c.int("axis", default: -2), circular: mode == "circular")
        }
    }
}

extension GatherOp: ShapeInferring {
    func inferFacts(_ inputs: [ValueFact?], _ ctx: ShapeInferenceContext) throws -> [ValueFact] {
        guard ctx.is(["Gather"]) else { return [] }
        guard inputs.count >= 2, let data = inputs[0], let indices = inputs[1] else { return [] }
        var out = ValueFact(dataType: data.dataType)
        guard let s = data.shape, let si = indices.shape else { return [out] }
        guard s.count >= 1 else { throw ShapeFacts.Unknowable() }
        let a = try ShapeFacts.axis(ctx.int("axis", default: 0), rank: s.count)
        out.shape = Array(s[..<a]) + si + Array(s[(a + 1)...])
        // Picking entries of a shape vector: Shape(x)[i].
        if s.count == 1, let e = data.elements, let idx = ctx.intValues(1, inputs), si.count <= 1 {
            var picked: [DimFact] = []
            for i in idx {
                let j = i < 0 ? i + e.count : i
                guard j >= 0 && j < e.count else { throw ShapeFacts.Unknowable() }
                picked.append(e[j])
            }
            out.elements = picked
        }
        return [out]
    }
}
