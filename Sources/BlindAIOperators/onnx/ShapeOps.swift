import BlindAITensor
import BlindAIKernels
import BlindAIGraph

// Shape and data-movement operators. Elements are moved by byte size (see ShapeKernels.swift), so every
// element type is handled by the same specialised kernels; strings take `[String]` paths.

/// Transpose: `perm` (default: reversed axes).
struct TransposeOp: Operator {
    let perm: [Int]?
    func run(_ inputs: [Tensor?], _ ctx: ExecutionContext) throws -> [Tensor] {
        let x = try inputs.required(0)
        let p = perm ?? Array((0..<x.rank).reversed())
        guard p.count == x.rank else {
            throw EngineError(.invalidArgument, "Transpose: perm \(p) has \(p.count) entries for an input of rank \(x.rank)")
        }
        var seen = [Bool](repeating: false, count: x.rank)
        for a in p {
            guard a >= 0 && a < x.rank && !seen[a] else {
                throw EngineError(.invalidArgument, "Transpose: perm \(p) is not a permutation of the axes of rank \(x.rank)")
            }
            seen[a] = true
        }
        return [try ShapeKernels.transpose(x, perm: p, ctx)]
    }
}

/// Concat along `axis`.
struct ConcatOp: Operator {
    let axis: Int
    func run(_ inputs: [Tensor?], _ ctx: ExecutionContext) throws -> [Tensor] {
        let xs = inputs.compactMap { $0 }
        guard let first = xs.first else { throw EngineError(.invalidArgument, "Concat needs at least one input") }
        let rank = first.rank
        guard rank > 0 else { throw EngineError(.invalidArgument, "Concat: inputs must have rank >= 1 (got scalars)") }
        let a = try ShapeKernels.axis(axis, rank: rank, "Concat")
        var outShape = first.shape
        outShape[a] = 0
        for x in xs {
            guard x.dataType == first.dataType else {
                throw EngineError(.typeMismatch, "Concat: inputs have different types \(first.dataType) and \(x.dataType)")
            }
            guard x.rank == rank else {
                throw EngineError(.shapeMismatch, "Concat: inputs have different ranks: \(first.shape) and \(x.shape)")
            }
            for k in 0..<rank where k != a && x.shape[k] != first.shape[k] {
                throw EngineError(.shapeMismatch, "Concat: shapes \(first.shape) and \(x.shape) differ outside axis \(a)")
            }
            outShape[a] += x.shape[a]
        }
        if xs.count == 1 { return [first] }
        let outer = first.shape[..<a].reduce(1, *)
        let inner = first.shape[(a + 1)...].reduce(1, *)
        let outBlock = outShape[a] * inner
        if first.dataType == .string {
            var out = [String](repeating: "", count: try ShapeKernels.stringCount(outShape, ctx))
            var off = 0
            for x in xs {
                let block = x.shape[a] * inner
                let s = x.strings
                for o in 0..<outer {
                    for i in 0..<block { out[o * outBlock + off + i] = s[o * block + i] }
                }
                off += block
            }
            return [Tensor(shape: outShape, strings: out)]
        }
        let out = try ctx.uninitialized(first.dataType, outShape)
        let size = first.dataType.byteSize
        let dst = out.storage.base
        var off = 0
        for x in xs {
            let block = x.shape[a] * inner
            let src = UnsafeRawPointer(x.storage.base)
            if block > 0 {
                if outer == 1 {
                    ShapeKernels.copy(src, 0, dst, off, count: block, elementSize: size)
                } else {
                    for o in 0..<outer {
                        ShapeKernels.copy(src, o * block, dst, o * outBlock + off, count: block, elementSize: size)
                    }
                }
            }
            off += block
        }
        return [out]
    }
}

/// Split along `axis` into the node's outputs: sizes from the `split` attribute (before opset 13), the `split`
/// input (opset 13+), or equal parts (`num_outputs` from opset 18; the last part may be smaller).
struct SplitOp: Operator {
    let axis: Int
    let splitAttr: [Int]?
    let outputs: Int
    let numOutputs: Int?

    func run(_ inputs: [Tensor?], _ ctx: ExecutionContext) throws -> [Tensor] {
        let x = try inputs.required(0)
        let a = try ShapeKernels.axis(axis, rank: x.rank, "Split")
        let dim = x.shape[a]
        var sizes: [Int]
        if let s = splitAttr {
            sizes = s
        } else if let t = inputs.optional(1), t.count > 0 {
            sizes = try t.intValues()
        } else {
            let n = numOutputs ?? outputs
            guard n > 0 else { throw EngineError(.invalidArgument, "Split: number of outputs must be positive") }
            if dim % n == 0 {
                sizes = [Int](repeating: dim / n, count: n)
            } else {
                guard numOutputs != nil else {
                    throw EngineError(.invalidArgument, "Split: axis \(a) of size \(dim) cannot be split into \(n) equal parts")
                }
                let chunk = dim / n + 1
                sizes = [Int](repeating: chunk, count: n)
                sizes[n - 1] = dim - chunk * (n - 1)
                guard sizes[n - 1] >= 0 else {
                    throw EngineError(.invalidArgument, "Split: axis \(a) of size \(dim) cannot be split into \(n) parts")
                }
            }
        }
        var sum = 0
        for v in sizes {
            let (t, o) = sum.addingReportingOverflow(v)
            sum = o || v < 0 ? -1 : t
            if sum < 0 { break }
        }
        guard sum == dim else {
            throw EngineError(.invalidArgument, "Split: sizes \(sizes) do not add up to the size \(dim) of axis \(a)")
        }
        guard sizes.count == outputs else {
            throw EngineError(.invalidArgument, "Split: \(sizes.count) parts for \(outputs) outputs")
        }
        let outer = x.shape[..<a].reduce(1, *)
        let inner = x.shape[(a + 1)...].reduce(1, *)
        let inBlock = dim * inner
        var results: [Tensor] = []
        results.reserveCapacity(sizes.count)
        var off = 0
        for s in sizes {
            var shape = x.shape
            shape[a] = s
            let block = s * inner
            if sizes.count == 1 {
                results.append(x)
            } else if x.dataType == .string {
                var out = [String](repeating: "", count: try ShapeKernels.stringCount(shape, ctx))
                let src = x.strings
                for o in 0..<outer {
                    for i in 0..<block { out[o * block + i] = src[o * inBlock + off + i] }
                }
                results.append(Tensor(shape: shape, strings: out))
            } else {
                let out = try ctx.uninitialized(x.dataType, shape)
                let size = x.dataType.byteSize
                if block > 0 {
                    for o in 0..<outer {
                        ShapeKernels.copy(UnsafeRawPointer(x.storage.base), o * inBlock + off, out.storage.base, o * block, count: block, elementSize: size)
                    }
                }
                results.append(out)
            }
            off += block
        }
        return results
    }
}

/// Slice: starts/ends/axes attributes before opset 10; starts, ends, axes, steps inputs after.
struct SliceOp: Operator {
    let startsAttr: [Int]?
    let endsAttr: [Int]?
    let axesAttr: [Int]?

    /// The first index and the element count of a slice of one axis of size `dimension` (ONNX Slice: negative
    /// bounds count from the end, then are clamped; `step` is not 0): the one computation the kernel and the shape
    /// facts (`SliceOp.inferFacts`) share.
    static func range(start: Int, end: Int, step: Int, dimension d: Int) -> (start: Int, count: Int) {
        var s = start, e = end
        if s < 0 { s = s &+ d }
        if e < 0 { e = e &+ d }
        if step > 0 {
            s = Swift.min(Swift.max(s, 0), d)
            e = Swift.min(Swift.max(e, 0), d)
            return (s, e > s ? (e - s - 1) / step + 1 : 0)
        }
        s = Swift.min(Swift.max(s, 0), d - 1)
        e = Swift.min(Swift.max(e, -1), d - 1)
        let back = step == Int.min ? Int.max : -step
        return (s, s > e ? (s - e - 1) / back + 1 : 0)
    }

    func run(_ inputs: [Tensor?], _ ctx: ExecutionContext) throws -> [Tensor] {
        let x = try inputs.required(0)
        let starts: [Int], ends: [Int], axesIn: [Int]?, steps: [Int]?
        if let s = startsAttr {
            starts = s
            ends = endsAttr ?? []
            axesIn = axesAttr
            steps = nil
        } else {
            starts = try inputs.required(1, "starts").intValues()
            ends = try inputs.required(2, "ends").intValues()
            axesIn = try inputs.optional(3)?.intValues()
            steps = try inputs.optional(4)?.intValues()
        }
        let rank = x.rank
        guard starts.count == ends.count else {
            throw EngineError(.invalidArgument, "Slice: starts \(starts) and ends \(ends) have different lengths")
        }
        let axes = axesIn ?? Array(0..<starts.count)
        guard axes.count == starts.count else {
            throw EngineError(.invalidArgument, "Slice: axes \(axes) and starts \(starts) have different lengths")
        }
        if let steps, steps.count != starts.count {
            throw EngineError(.invalidArgument, "Slice: steps \(steps) and starts \(starts) have different lengths")
        }
        var outShape = x.shape
        let inStrides = Shape.strides(x.shape)
        var strides = inStrides
        var offset = 0
        var seen = [Bool](repeating: false, count: rank)
        var identity = true
        for i in 0..<axes.count {
            let a = try ShapeKernels.axis(axes[i], rank: rank, "Slice")
            guard !seen[a] else { throw EngineError(.invalidArgument, "Slice: axis \(axes[i]) is repeated") }
            seen[a] = true
            let step = steps?[i] ?? 1
            guard step != 0 else { throw EngineError(.invalidArgument, "Slice: step must not be 0") }
            let d = x.shape[a]
            let (s, count) = Self.range(start: starts[i], end: ends[i], step: step, dimension: d)
            outShape[a] = count
            if count > 0 { offset += s * inStrides[a] }
            strides[a] = count > 1 ? inStrides[a] * step : 0
            if count != d || (count > 1 && step != 1) { identity = false }
        }
        if identity { return [x] }
        if outShape.contains(0) {
            return [x.dataType == .string ? Tensor(shape: outShape, strings: []) : try ctx.uninitialized(x.dataType, outShape)]
        }
        return [try ShapeKernels.view(x, offset: offset, shape: outShape, strides: strides, ctx)]
    }
}

/// Expand: broadcast to a shape.
struct ExpandOp: Operator {
    func run(_ inputs: [Tensor?], _ ctx: ExecutionContext) throws -> [Tensor] {
        let x = try inputs.required(0)
        let spec = try inputs.required(1, "shape").intValues()
        guard spec.allSatisfy({ $0 >= 0 }) else { throw EngineError(.invalidArgument, "Expand: negative dimension in shape \(spec)") }
        let shape = try Shape.broadcast([x.shape, spec])
        if shape == x.shape { return [x] }
        return [try ShapeKernels.broadcast(x, to: shape, ctx)]
    }
}

/// Tile: repeats each axis. Implemented as a broadcast of [1, d0, 1, d1, ...] to [r0, d0, r1, d1, ...].
struct TileOp: Operator {
    /// Tile-1 (opset < 6): `tiles` and `axis` inputs instead of `repeats`.
    var legacy = false
    func run(_ inputs: [Tensor?], _ ctx: ExecutionContext) throws -> [Tensor] {
        let x = try inputs.required(0)
        var repeats: [Int]
        if legacy, let axisT = inputs.optional(2) {
            let tiles = try inputs.required(1, "tiles").intValues()
            let axis = try ShapeKernels.axis(try axisT.intValues().first ?? 0, rank: x.rank, "Tile")
            repeats = [Int](repeating: 1, count: x.rank)
            repeats[axis] = tiles.first ?? 1
        } else {
            repeats = try inputs.required(1, "repeats").intValues()
        }
        guard repeats.count == x.rank else {
            throw EngineError(.invalidArgument, "Tile: repeats \(repeats) must have one entry per axis of the input of shape \(x.shape)")
        }
        guard repeats.allSatisfy({ $0 >= 0 }) else { throw EngineError(.invalidArgument, "Tile: negative repeat in \(repeats)") }
        if repeats.allSatisfy({ $0 == 1 }) { return [x] }
        var shape = [Int]()
        var from = [Int]()
        var to = [Int]()
        for k in 0..<x.rank {
            shape.append(try ShapeKernels.product([x.shape[k], repeats[k]]))
            from.append(1); from.append(x.shape[k])
            to.append(repeats[k]); to.append(x.shape[k])
        }
        _ = try ctx.limits.checkedCount(shape, x.dataType)
        let y = try ShapeKernels.broadcast(try x.reshaped(from, limits: ctx.limits), to: to, ctx)
        return [try y.reshaped(shape, limits: ctx.limits)]
    }
}

/// Padding modes.
enum ShapePadMode: Sendable {
    case constant, reflect, edge, wrap
}

/// Pad kernel shared by Pad and CenterCropPad.
enum ShapePad {
    /// Source index for output position `o` along an axis of size `d` padded by `begin` (nil: constant).
    @inline(__always)
    static func source(_ o: Int, begin: Int, size d: Int, mode: ShapePadMode) -> Int? {
        let i = o - begin
        if i >= 0 && i < d { return i }
        switch mode {
        case .constant: return nil
        case .edge: return i < 0 ? 0 : d - 1
        case .wrap:
            let r = i % d
            return r < 0 ? r + d : r
        case .reflect:
            if d == 1 { return 0 }
            let period = 2 * (d - 1)
            var r = i % period
            if r < 0 { r += period }
            return r < d ? r : period - r
        }
    }

    /// `x` padded by `begin`/`end` per axis (negative values crop).
    static func pad(_ x: Tensor, begin: [Int], end: [Int], mode: ShapePadMode, constantBits: UInt64, constantString: String,
                    _ ctx: ExecutionContext) throws -> Tensor {
        let rank = x.rank
        var outShape = x.shape
        for k in 0..<rank {
            // A negative pad crops: never more than the axis holds (this also keeps `o - begin` from overflowing).
            guard begin[k] >= -x.shape[k] && end[k] >= -x.shape[k] else {
                throw EngineError(.invalidArgument, "Pad: pads \(begin) / \(end) crop more than input shape \(x.shape) holds")
            }
            let (s1, o1) = x.shape[k].addingReportingOverflow(begin[k])
            let (s2, o2) = s1.addingReportingOverflow(end[k])
            guard !o1 && !o2 && s2 >= 0 else {
                throw EngineError(.invalidArgument, "Pad: pads \(begin) / \(end) give a negative dimension for input shape \(x.shape)")
            }
            outShape[k] = s2
            if mode != .constant && x.shape[k] == 0 && s2 > 0 {
                throw EngineError(.invalidArgument, "Pad: cannot pad the empty axis \(k) in \(mode) mode")
            }
        }
        if begin.allSatisfy({ $0 == 0 }) && end.allSatisfy({ $0 == 0 }) { return x }
        let total = try ctx.limits.checkedCount(outShape, x.dataType)
        if rank == 0 { return x }
        if total == 0 {
            return x.dataType == .string ? Tensor(shape: outShape, strings: []) : try ctx.uninitialized(x.dataType, outShape)
        }
        // Per axis, the source index of every output position (-1: constant).
        var maps: [[Int]] = []
        for k in 0..<rank {
            var m = [Int](repeating: -1, count: outShape[k])
            for o in 0..<outShape[k] { m[o] = source(o, begin: begin[k], size: x.shape[k], mode: mode) ?? -1 }
            maps.append(m)
        }
        let inStrides = Shape.strides(x.shape)
        if x.dataType == .string {
            var out = [String](repeating: constantString, count: total)
            if total == 0 { return Tensor(shape: outShape, strings: out) }
            let src = x.strings
            var index = [Int](repeating: 0, count: rank)
            for o in 0..<total {
                var pos = 0
                var valid = true
                for k in 0..<rank {
                    let s = maps[k][index[k]]
                    if s < 0 { valid = false; break }
                    pos += s * inStrides[k]
                }
                if valid { out[o] = src[pos] }
                var d = rank - 1
                while d >= 0 {
                    index[d] += 1
                    if index[d] < outShape[d] { break }
                    index[d] = 0
                    d -= 1
                }
            }
            return Tensor(shape: outShape, strings: out)
        }
        let out = try ctx.uninitialized(x.dataType, outShape)
        if total == 0 { return out }
        switch x.dataType.byteSize {
        case 1: padRows(x, out, UInt8.self, maps, inStrides, begin[rank - 1], constantBits)
        case 2: padRows(x, out, UInt16.self, maps, inStrides, begin[rank - 1], constantBits)
        case 4: padRows(x, out, UInt32.self, maps, inStrides, begin[rank - 1], constantBits)
        default: padRows(x, out, UInt64.self, maps, inStrides, begin[rank - 1], constantBits)
        }
        return out
    }

    /// Fills `out` row by row (innermost dimension) from the per-axis source maps.
    static func padRows<E: FixedWidthInteger>(_ x: Tensor, _ out: Tensor, _: E.Type, _ maps: [[Int]], _ inStrides: [Int],
                                              _ b: Int, _ constantBits: UInt64) {
        let rank = x.rank
        let outShape = out.shape
        let src = UnsafePointer(x.storage.base.assumingMemoryBound(to: E.self))
        let dst = out.storage.base.assumingMemoryBound(to: E.self)
        let value = E(truncatingIfNeeded: constantBits)
        let inner = outShape[rank - 1]
        let innerMap = maps[rank - 1]
        let lo = Swift.max(0, b), hi = Swift.min(inner, b + x.shape[rank - 1])
        // Positions of the inner dimension outside the directly copied range [lo, hi): (column, source or -1).
        var edges: [(Int, Int)] = []
        for c in 0..<inner where c < lo || c >= hi { edges.append((c, innerMap[c])) }
        // Outer maps premultiplied by the source strides (-1: constant), flattened.
        var flat: [Int] = []
        var starts: [Int] = []
        for k in 0..<(rank - 1) {
            starts.append(flat.count)
            for v in maps[k] { flat.append(v < 0 ? -1 : v * inStrides[k]) }
        }
        let rows = out.count / inner
        var index = [Int](repeating: 0, count: rank)
        flat.withUnsafeBufferPointer { fm in
            edges.withUnsafeBufferPointer { eb in
                for r in 0..<rows {
                    let d = dst + r * inner
                    var pos = 0
                    var valid = true
                    for k in 0..<(rank - 1) {
                        let s = fm[starts[k] + index[k]]
                        if s < 0 { valid = false; break }
                        pos += s
                    }
                    if !valid {
                        d.update(repeating: value, count: inner)
                    } else {
                        if hi > lo { (d + lo).update(from: src + pos + lo - b, count: hi - lo) }
                        for (c, s) in eb { d[c] = s < 0 ? value : src[pos + s] }
                    }
                    var k = rank - 2
                    while k >= 0 {
                        index[k] += 1
                        if index[k] < outShape[k] { break }
                        index[k] = 0
                        k -= 1
                    }
                }
            }
        }
    }
}

/// Pad: pads and value attributes before opset 11; pads, constant_value and (opset 18) axes inputs after.
struct PadOp: Operator {
    let mode: ShapePadMode
    let padsAttr: [Int]?
    let valueAttr: Float

    func run(_ inputs: [Tensor?], _ ctx: ExecutionContext) throws -> [Tensor] {
        let x = try inputs.required(0)
        let rank = x.rank
        let pads = try padsAttr ?? inputs.required(1, "pads").intValues()
        var axes = Array(0..<rank)
        if padsAttr == nil, let t = inputs.optional(3) {
            axes = try t.intValues().map { try ShapeKernels.axis($0, rank: rank, "Pad") }
            guard Set(axes).count == axes.count else { throw EngineError(.invalidArgument, "Pad: repeated axis in \(axes)") }
        }
        guard pads.count == 2 * axes.count else {
            throw EngineError(.invalidArgument, "Pad: \(pads.count) pads for \(axes.count) axes (expected \(2 * axes.count))")
        }
        var begin = [Int](repeating: 0, count: rank)
        var end = [Int](repeating: 0, count: rank)
        for (i, a) in axes.enumerated() {
            begin[a] = pads[i]
            end[a] = pads[axes.count + i]
        }
        var bits: UInt64 = 0
        var string = ""
        if padsAttr == nil, let v = inputs.optional(2) {
            guard v.dataType == x.dataType else {
                throw EngineError(.typeMismatch, "Pad: constant_value is \(v.dataType), the input is \(x.dataType)")
            }
            if v.count > 0 {
                if v.dataType == .string { string = v.strings[0] } else { bits = ShapeKernels.rawElement(v, 0) }
            }
        } else {
            bits = ShapeKernels.rawValue(Double(valueAttr), as: x.dataType)
        }
        return [try ShapePad.pad(x, begin: begin, end: end, mode: mode, constantBits: bits, constantString: string, ctx)]
    }
}

/// CenterCropPad: crops or zero-pads the given axes to `shape`, centred.
struct CenterCropPadOp: Operator {
    let axes: [Int]?
    func run(_ inputs: [Tensor?], _ ctx: ExecutionContext) throws -> [Tensor] {
        let x = try inputs.required(0)
        let target = try inputs.required(1, "shape").intValues()
        let rank = x.rank
        let ax = try (axes ?? Array(0..<rank)).map { try ShapeKernels.axis($0, rank: rank, "CenterCropPad") }
        guard ax.count == target.count else {
            throw EngineError(.invalidArgument, "CenterCropPad: shape \(target) has \(target.count) entries for \(ax.count) axes")
        }
        guard Set(ax).count == ax.count else { throw EngineError(.invalidArgument, "CenterCropPad: repeated axis in \(ax)") }
        var begin = [Int](repeating: 0, count: rank)
        var end = [Int](repeating: 0, count: rank)
        for (a, t) in zip(ax, target) {
            guard t >= 0 else { throw EngineError(.invalidArgument, "CenterCropPad: negative target size \(t)") }
            let d = x.shape[a]
            if t < d {
                begin[a] = -((d - t) / 2)
            } else if t > d {
                begin[a] = (t - d) / 2
            }
            end[a] = t - d - begin[a]
        }
        return [try ShapePad.pad(x, begin: begin, end: end, mode: .constant, constantBits: 0, constantString: "", ctx)]
    }
}

/// ConstantOfShape: a tensor of `shape` filled with the one-element `value` (default float 0).
struct ConstantOfShapeOp: Operator {
    let value: Tensor
    func run(_ inputs: [Tensor?], _ ctx: ExecutionContext) throws -> [Tensor] {
        let spec = try inputs.required(0, "shape").intValues()
        guard spec.allSatisfy({ $0 >= 0 }) else { throw EngineError(.invalidArgument, "ConstantOfShape: negative dimension in \(spec)") }
        if value.dataType == .string {
            let n = try ShapeKernels.stringCount(spec, ctx)
            return [Tensor(shape: spec, strings: [String](repeating: value.strings.first ?? "", count: n))]
        }
        let out = try ctx.uninitialized(value.dataType, spec)
        let bits = value.count > 0 ? ShapeKernels.rawElement(value, 0) : 0
        ShapeKernels.fill(out.storage.base, count: out.count, elementSize: value.dataType.byteSize, value: bits)
        return [out]
    }
}

/// Range(start, limit, delta).
struct RangeOp: Operator {
    func run(_ inputs: [Tensor?], _ ctx: ExecutionContext) throws -> [Tensor] {
        let st = try inputs.required(0, "start"), lt = try inputs.required(1, "limit"), dt = try inputs.required(2, "delta")
        guard st.count == 1, lt.count == 1, dt.count == 1 else {
            throw EngineError(.invalidArgument, "Range: start, limit and delta must be scalars")
        }
        guard st.dataType == lt.dataType && st.dataType == dt.dataType else {
            throw EngineError(.typeMismatch, "Range: start, limit and delta have different types")
        }
        let type = st.dataType
        if type.isInteger {
            let s = try st.intValues()[0], l = try lt.intValues()[0], d = try dt.intValues()[0]
            guard d != 0 else { throw EngineError(.invalidArgument, "Range: delta must not be 0") }
            let q = ((Double(l) - Double(s)) / Double(d)).rounded(.up)
            guard q < Double(ctx.limits.maxTensorElements) + 1 else {
                throw EngineError(.memoryLimit, "Range: \(q) elements is over the limit of \(ctx.limits.maxTensorElements)")
            }
            // q may lie far outside Int's range (start INT64_MAX, limit INT64_MIN): Int(q) would trap.
            let n = q > 0 ? Int(q) : 0
            let out = try ctx.uninitialized(type, [n])
            try CastOp.writeInt(out, type, count: n) { i in Int64(s) &+ Int64(i) &* Int64(d) }
            return [out]
        }
        let s = try st.doubleValues()[0], l = try lt.doubleValues()[0], d = try dt.doubleValues()[0]
        guard d != 0 && d.isFinite && s.isFinite && l.isFinite else {
            throw EngineError(.invalidArgument, "Range: start, limit and delta must be finite and delta non-zero")
        }
        // (l - s) overflows to ±inf for finite extremes (1e308 - -1e308), and Int(±inf) would trap.
        let q = ((l - s) / d).rounded(.up)
        guard !q.isNaN, q < Double(ctx.limits.maxTensorElements) + 1 else {
            throw EngineError(.memoryLimit, "Range: \(q) elements is over the limit of \(ctx.limits.maxTensorElements)")
        }
        let n = q > 0 ? Int(q) : 0
        let out = try ctx.uninitialized(type, [n])
        try CastOp.write(out, type, count: n) { i in s + Double(i) * d }
        return [out]
    }
}

/// Trilu: keeps the upper or lower triangle of the last two axes (offset by k), zeroing the rest.
struct TriluOp: Operator {
    let upper: Bool
    func run(_ inputs: [Tensor?], _ ctx: ExecutionContext) throws -> [Tensor] {
        let x = try inputs.required(0)
        guard x.rank >= 2 else { throw EngineError(.invalidArgument, "Trilu: input must have rank >= 2, got \(x.shape)") }
        let rows = x.shape[x.rank - 2], cols = x.shape[x.rank - 1]
        let kIn = try inputs.optional(1)?.intValues().first ?? 0
        let k = Swift.max(Swift.min(kIn, rows + cols + 1), -(rows + cols + 1))
        let batches = x.count / Swift.max(rows * cols, 1)
        // For row i, the zeroed column range [z0, z1).
        func zeroRange(_ i: Int) -> (Int, Int) {
            let edge = Swift.max(Swift.min(i + k, cols), -1)
            if upper { return (0, Swift.max(0, Swift.min(cols, edge))) }
            return (Swift.min(cols, Swift.max(0, edge + 1)), cols)
        }
        if x.dataType == .string {
            var out = x.strings
            for bt in 0..<batches {
                for i in 0..<rows {
                    let (z0, z1) = zeroRange(i)
                    for j in z0..<Swift.max(z0, z1) { out[(bt * rows + i) * cols + j] = "" }
                }
            }
            return [Tensor(shape: x.shape, strings: out)]
        }
        let out = try ctx.uninitialized(x.dataType, x.shape)
        let size = x.dataType.byteSize
        if x.count == 0 { return [out] }
        out.storage.base.copyMemory(from: x.storage.base, byteCount: x.count * size)
        for bt in 0..<batches {
            for i in 0..<rows {
                let (z0, z1) = zeroRange(i)
                if z1 > z0 {
                    (out.storage.base + ((bt * rows + i) * cols + z0) * size).initializeMemory(as: UInt8.self, repeating: 0, count: (z1 - z0) * size)
                }
            }
        }
        return [out]
    }
}

/// EyeLike: zeros of the input's 2-D shape with ones on the diagonal offset by k.
struct EyeLikeOp: Operator {
    let dtype: DataType?
    let k: Int
    func run(_ inputs: [Tensor?], _ ctx: ExecutionContext) throws -> [Tensor] {
        let x = try inputs.required(0)
        let type = dtype ?? x.dataType
        guard type != .string else { throw EngineError(.typeMismatch, "EyeLike does not support string tensors") }
        let shape: [Int]
        switch x.rank {
        case 2: shape = x.shape
        case 1: shape = [x.shape[0], x.shape[0]]
        default: throw EngineError(.invalidArgument, "EyeLike: input must be 2-D, got shape \(x.shape)")
        }
        let out = try ctx.zeros(type, shape)
        let one = ShapeKernels.rawValue(1, as: type)
        let size = type.byteSize
        let rows = shape[0], cols = shape[1]
        let kk = Swift.max(Swift.min(k, cols + 1), -(rows + 1))
        for i in 0..<rows {
            let j = i + kk
            if j >= 0 && j < cols {
                ShapeKernels.fill(out.storage.base + (i * cols + j) * size, count: 1, elementSize: size, value: one)
            }
        }
        return [out]
    }
}

/// DepthToSpace and SpaceToDepth: a reshape to 6-D, a transpose and a reshape back, done as one strided copy.
struct SpaceDepthOp: Operator {
    let toSpace: Bool
    let blocksize: Int
    let crd: Bool

    func run(_ inputs: [Tensor?], _ ctx: ExecutionContext) throws -> [Tensor] {
        let x = try inputs.required(0)
        let name = toSpace ? "DepthToSpace" : "SpaceToDepth"
        guard x.rank == 4 else { throw EngineError(.invalidArgument, "\(name): input must be 4-D, got \(x.shape)") }
        let b = blocksize
        guard b > 0 && b <= 1 << 12 else { throw EngineError(.invalidArgument, "\(name): blocksize must be 1 to 4096, got \(b)") }
        let n = x.shape[0], c = x.shape[1], h = x.shape[2], w = x.shape[3]
        let in6: [Int], perm: [Int], outShape: [Int]
        if toSpace {
            guard c % (b * b) == 0 else {
                throw EngineError(.invalidArgument, "DepthToSpace: channels \(c) are not divisible by blocksize² \(b * b)")
            }
            let c2 = c / (b * b)
            if crd {
                in6 = [n, c2, b, b, h, w]; perm = [0, 1, 4, 2, 5, 3]
            } else {
                in6 = [n, b, b, c2, h, w]; perm = [0, 3, 4, 1, 5, 2]
            }
            outShape = [n, c2, h * b, w * b]
        } else {
            guard h % b == 0 && w % b == 0 else {
                throw EngineError(.invalidArgument, "SpaceToDepth: spatial size \(h)x\(w) is not divisible by blocksize \(b)")
            }
            in6 = [n, c, h / b, b, w / b, b]
            perm = crd ? [0, 1, 3, 5, 2, 4] : [0, 3, 5, 1, 2, 4]
            outShape = [n, c * b * b, h / b, w / b]
        }
        let s6 = Shape.strides(in6)
        let y = try ShapeKernels.view(x, offset: 0, shape: perm.map { in6[$0] }, strides: perm.map { s6[$0] }, ctx)
        return [try y.reshaped(outShape, limits: ctx.limits)]
    }
}

/// NonZero: the indices of the non-zero elements, as int64 [rank, count].
struct NonZeroOp: Operator {
    func run(_ inputs: [Tensor?], _ ctx: ExecutionContext) throws -> [Tensor] {
        let x = try inputs.required(0)
        switch x.dataType {
        case .float32: return [try nonZero(x, Float.self, ctx) { $0 != 0 }]
        case .float64: return [try nonZero(x, Double.self, ctx) { $0 != 0 }]
        case .float16: return [try nonZero(x, Float16.self, ctx) { $0 != 0 }]
        case .bfloat16: return [try nonZero(x, UInt16.self, ctx) { $0 & 0x7FFF != 0 }]
        case .bool: return [try nonZero(x, Bool.self, ctx) { $0 }]
        case .int8, .uint8: return [try nonZero(Tensor(dataType: .uint8, shape: x.shape, storage: x.storage), UInt8.self, ctx) { $0 != 0 }]
        case .int16, .uint16: return [try nonZero(Tensor(dataType: .uint16, shape: x.shape, storage: x.storage), UInt16.self, ctx) { $0 != 0 }]
        case .int32, .uint32: return [try nonZero(Tensor(dataType: .uint32, shape: x.shape, storage: x.storage), UInt32.self, ctx) { $0 != 0 }]
        case .int64, .uint64: return [try nonZero(Tensor(dataType: .uint64, shape: x.shape, storage: x.storage), UInt64.self, ctx) { $0 != 0 }]
        case .string:
            let s = x.strings
            return [try coordinates(x.shape, count: s.count) { !s[$0].isEmpty }]
        }
    }

    @inline(__always)
    func nonZero<T: TensorElement>(_ x: Tensor, _: T.Type, _ ctx: ExecutionContext, _ isNonZero: (T) -> Bool) throws -> Tensor {
        let b = x.buffer(T.self)
        return try coordinates(x.shape, count: b.count) { isNonZero(b[$0]) }
    }

    @inline(__always)
    func coordinates(_ shape: [Int], count: Int, _ isNonZero: (Int) -> Bool) throws -> Tensor {
        var nnz = 0
        for i in 0..<count where isNonZero(i) { nnz += 1 }
        // A scalar is treated as a 1-D tensor of one element (as NumPy does).
        let dims = shape.isEmpty ? [1] : shape
        let rank = dims.count
        var data = [Int64](repeating: 0, count: rank * nnz)
        var index = [Int](repeating: 0, count: rank)
        var j = 0
        for i in 0..<count {
            if isNonZero(i) {
                for k in 0..<rank { data[k * nnz + j] = Int64(index[k]) }
                j += 1
            }
            var d = rank - 1
            while d >= 0 {
                index[d] += 1
                if index[d] < dims[d] { break }
                index[d] = 0
                d -= 1
            }
        }
        return Tensor(shape: [rank, nnz], scalars: data)
    }
}

/// Compress: the slices along `axis` (or elements of the flattened input) where `condition` is true.
struct CompressOp: Operator {
    let axis: Int?
    func run(_ inputs: [Tensor?], _ ctx: ExecutionContext) throws -> [Tensor] {
        var x = try inputs.required(0)
        let cond = try inputs.required(1, "condition")
        guard cond.dataType == .bool else { throw EngineError(.typeMismatch, "Compress: condition must be bool, got \(cond.dataType)") }
        guard cond.rank <= 1 else { throw EngineError(.invalidArgument, "Compress: condition must be 1-D, got \(cond.shape)") }
        var a = 0
        if let axis {
            a = try ShapeKernels.axis(axis, rank: x.rank, "Compress")
        } else {
            x = try x.reshaped([x.count], limits: ctx.limits)
        }
        let dim = x.shape[a]
        let c = cond.buffer(Bool.self)
        var selected: [Int] = []
        for i in 0..<c.count where c[i] {
            guard i < dim else {
                throw EngineError(.invalidArgument, "Compress: condition has a true value at \(i), beyond the size \(dim) of axis \(a)")
            }
            selected.append(i)
        }
        var shape = x.shape
        shape[a] = selected.count
        let outer = x.shape[..<a].reduce(1, *)
        let inner = x.shape[(a + 1)...].reduce(1, *)
        if x.dataType == .string {
            var out = [String](repeating: "", count: try ShapeKernels.stringCount(shape, ctx))
            let src = x.strings
            var o = 0
            for p in 0..<outer {
                for s in selected {
                    for i in 0..<inner { out[o] = src[(p * dim + s) * inner + i]; o += 1 }
                }
            }
            return [Tensor(shape: shape, strings: out)]
        }
        let out = try ctx.uninitialized(x.dataType, shape)
        let size = x.dataType.byteSize
        var o = 0
        for p in 0..<outer {
            for s in selected {
                ShapeKernels.copy(UnsafeRawPointer(x.storage.base), (p * dim + s) * inner, out.storage.base, o, count: inner, elementSize: size)
                o += inner
            }
        }
        return [out]
    }
}

/// ReverseSequence: reverses the first sequence_lens[b] steps along the time axis of each batch entry.
struct ReverseSequenceOp: Operator {
    let batchAxis: Int
    let timeAxis: Int
    func run(_ inputs: [Tensor?], _ ctx: ExecutionContext) throws -> [Tensor] {
        let x = try inputs.required(0)
        let lens = try inputs.required(1, "sequence_lens").intValues()
        guard x.rank >= 2 else { throw EngineError(.invalidArgument, "ReverseSequence: input must have rank >= 2, got \(x.shape)") }
        let ba = try ShapeKernels.axis(batchAxis, rank: x.rank, "ReverseSequence")
        let ta = try ShapeKernels.axis(timeAxis, rank: x.rank, "ReverseSequence")
        guard ba != ta, ba < 2, ta < 2 else {
            throw EngineError(.invalidArgument, "ReverseSequence: batch_axis and time_axis must be 0 and 1 (got \(batchAxis), \(timeAxis))")
        }
        let batch = x.shape[ba], time = x.shape[ta]
        guard lens.count == batch else {
            throw EngineError(.invalidArgument, "ReverseSequence: \(lens.count) sequence lengths for a batch of \(batch)")
        }
        for l in lens where l < 0 || l > time {
            throw EngineError(.invalidArgument, "ReverseSequence: sequence length \(l) is outside [0, \(time)]")
        }
        let inner = x.shape[2...].reduce(1, *)
        func block(_ t: Int, _ b: Int) -> Int { (ta == 0 ? t * batch + b : b * time + t) * inner }
        if x.dataType == .string {
            let src = x.strings
            var out = src
            for b in 0..<batch {
                for t in 0..<lens[b] {
                    let d = block(t, b), s = block(lens[b] - 1 - t, b)
                    for i in 0..<inner { out[d + i] = src[s + i] }
                }
            }
            return [Tensor(shape: x.shape, strings: out)]
        }
        let out = try ctx.uninitialized(x.dataType, x.shape)
        let size = x.dataType.byteSize
        if x.count == 0 { return [out] }
        out.storage.base.copyMemory(from: x.storage.base, byteCount: x.count * size)
        for b in 0..<batch {
            for t in 0..<lens[b] {
                ShapeKernels.copy(UnsafeRawPointer(x.storage.base), block(lens[b] - 1 - t, b), out.storage.base, block(t, b), count: inner, elementSize: size)
            }
        }
        return [out]
    }
}

/// OneHot(indices, depth, values=[off, on]) with the new axis at `axis`.
struct OneHotOp: Operator {
    let axis: Int
    func run(_ inputs: [Tensor?], _ ctx: ExecutionContext) throws -> [Tensor] {
        let indices = try inputs.required(0, "indices")
        let depthT = try inputs.required(1, "depth")
        let values = try inputs.required(2, "values")
        guard depthT.count == 1 else { throw EngineError(.invalidArgument, "OneHot: depth must be a scalar") }
        guard values.count == 2 else { throw EngineError(.invalidArgument, "OneHot: values must have two elements [off, on], got \(values.shape)") }
        let depthD = try depthT.doubleValues()[0]
        guard depthD.isFinite, depthD >= 1, depthD < Double(ctx.limits.maxTensorElements) + 1 else {
            throw EngineError(.invalidArgument, "OneHot: depth \(depthD) must be a positive number")
        }
        let depth = Int(depthD)
        let r = indices.rank
        let a = axis < 0 ? axis + r + 1 : axis
        guard a >= 0 && a <= r else { throw EngineError(.invalidArgument, "OneHot: axis \(axis) is out of range for output rank \(r + 1)") }
        var shape = indices.shape
        shape.insert(depth, at: a)
        let outer = indices.shape[..<a].reduce(1, *)
        let inner = indices.shape[a...].reduce(1, *)
        let idx = try indices.doubleValues()
        // For each index, the position of its "on" element in the output, or -1.
        func target(_ p: Int) -> Int {
            var v = idx[p]
            guard v.isFinite else { return -1 }
            v.round(.towardZero)
            if v < 0 { v += Double(depth) }
            guard v >= 0 && v < Double(depth) else { return -1 }
            let o = p / Swift.max(inner, 1), i = p % Swift.max(inner, 1)
            return (o * depth + Int(v)) * inner + i
        }
        if values.dataType == .string {
            let off = values.strings[0], on = values.strings[1]
            var out = [String](repeating: off, count: try ShapeKernels.stringCount(shape, ctx))
            for p in 0..<(outer * inner) {
                let t = target(p)
                if t >= 0 { out[t] = on }
            }
            return [Tensor(shape: shape, strings: out)]
        }
        let out = try ctx.uninitialized(values.dataType, shape)
        let size = values.dataType.byteSize
        ShapeKernels.fill(out.storage.base, count: out.count, elementSize: size, value: ShapeKernels.rawElement(values, 0))
        let on = ShapeKernels.rawElement(values, 1)
        for p in 0..<(outer * inner) {
            let t = target(p)
            if t >= 0 { ShapeKernels.fill(out.storage.base + t * size, count: 1, elementSize: size, value: on) }
        }
        return [out]
    }
}

extension StandardOperators {
    static func registerShapeOps(_ r: inout OperatorRegistry) {
        r.register("Transpose") { c in TransposeOp(perm: try c.ints("perm")) }
        r.register("Concat") { c in
            guard let axis = try c.int("axis") ?? (c.opset < 4 ? 1 : nil) else {
                throw c.error(.invalidModel, "Concat needs an 'axis' attribute")
            }
            return ConcatOp(axis: axis)
        }
        r.register("Split") { c in
            let num = c.opset >= 18 ? try c.int("num_outputs") : nil
            if let num, num != c.outputCount {
                throw c.error(.invalidModel, "Split: num_outputs \(num) differs from the \(c.outputCount) outputs of the node")
            }
            return SplitOp(axis: try c.int("axis", default: 0), splitAttr: c.opset < 13 ? try c.ints("split") : nil,
                           outputs: c.outputCount, numOutputs: num)
        }
        r.register("Slice") { c in
            if c.opset < 10 {
                guard let s = try c.ints("starts"), let e = try c.ints("ends") else {
                    throw c.error(.invalidModel, "Slice needs 'starts' and 'ends' attributes before opset 10")
                }
                return SliceOp(startsAttr: s, endsAttr: e, axesAttr: try c.ints("axes"))
            }
            return SliceOp(startsAttr: nil, endsAttr: nil, axesAttr: nil)
        }
        r.register("Expand") { _ in ExpandOp() }
        r.register("Tile") { c in TileOp(legacy: c.opset < 6) }
        r.register("Pad") { c in
            let modeName = try c.string("mode", default: "constant")
            let mode: ShapePadMode
            switch modeName {
            case "constant": mode = .constant
            case "reflect": mode = .reflect
            case "edge": mode = .edge
            case "wrap": mode = .wrap
            default: throw c.error(.invalidModel, "Pad: unknown mode '\(modeName)'")
            }
            if c.opset < 11 {
                let pads = try (c.opset < 2 ? c.ints("paddings") : c.ints("pads")) ?? []
                return PadOp(mode: mode, padsAttr: pads, valueAttr: try c.float("value", default: 0))
            }
            return PadOp(mode: mode, padsAttr: nil, valueAttr: 0)
        }
        r.register("CenterCropPad") { c in CenterCropPadOp(axes: try c.ints("axes")) }
        r.register("ConstantOfShape") { c in
            let v = try c.tensor("value") ?? Tensor(shape: [1], scalars: [Float(0)])
            guard v.count == 1 else { throw c.error(.invalidModel, "ConstantOfShape: value must have one element, got \(v.shape)") }
            return ConstantOfShapeOp(value: v)
        }
        r.register("Range") { _ in RangeOp() }
        r.register("Trilu") { c in TriluOp(upper: try c.int("upper", default: 1) != 0) }
        r.register("EyeLike") { c in
            var dt: DataType?
            if let d = try c.int("dtype") {
                guard let t = DataType(rawValue: d) else { throw c.error(.invalidModel, "EyeLike: unsupported dtype \(d)") }
                dt = t
            }
            return EyeLikeOp(dtype: dt, k: try c.int("k", default: 0))
        }
        r.register("DepthToSpace") { c in
            guard let b = try c.int("blocksize") else { throw c.error(.invalidModel, "DepthToSpace needs 'blocksize'") }
            let mode = try c.string("mode", default: "DCR")
            guard mode == "DCR" || mode == "CRD" else { throw c.error(.invalidModel, "DepthToSpace: unknown mode '\(mode)'") }
            return SpaceDepthOp(toSpace: true, blocksize: b, crd: mode == "CRD")
        }
        r.register("SpaceToDepth") { c in
            guard let b = try c.int("blocksize") else { throw c.error(.invalidModel, "SpaceToDepth needs 'blocksize'") }
            let mode = try c.string("mode", default: "DCR")
            guard mode == "DCR" || mode == "CRD" else { throw c.error(.invalidModel, "SpaceToDepth: unknown mode '\(mode)'") }
            return SpaceDepthOp(toSpace: false, blocksize: b, crd: mode == "CRD")
        }
        r.register("NonZero") { _ in NonZeroOp() }
        r.register("Compress") { c in CompressOp(axis: try c.int("axis")) }
        r.register("ReverseSequence") { c in
            ReverseSequenceOp(batchAxis: try c.int("batch_axis", default: 1), timeAxis: try c.int("time_axis", default: 0))
        }
        r.register("OneHot") { c in OneHotOp(axis: try c.int("axis", default: -1)) }
    }
}

extension TransposeOp: ShapeInferring {
    func inferFacts(_ inputs: [ValueFact?], _ ctx: ShapeInferenceContext) throws -> [ValueFact] {
        guard ctx.is(["Transpose"]) else { return [] }
        guard let x = inputs.first ?? nil else { return [] }
        guard let s = x.shape else { return [ValueFact(dataType: x.dataType)] }
        let p = ctx.ints("perm") ?? Array((0..<s.count).reversed())
        guard p.count == s.count, Set(p).count == p.count, p.allSatisfy({ $0 >= 0 && $0 < s.count }) else { throw ShapeFacts.Unknowable() }
        var out = ValueFact(dataType: x.dataType, shape: p.map { s[$0] })
        if s.count <= 1 { out.elements = x.elements }
        return [out]
    }
}

extension ConcatOp: ShapeInferring {
    func inferFacts(_ inputs: [ValueFact?], _ ctx: ShapeInferenceContext) throws -> [ValueFact] {
        guard ctx.is(["Concat"]) else { return [] }
        let xs = inputs.compactMap { $0 }
        guard !xs.isEmpty else { return [] }
        var out = ValueFact(dataType: xs.lazy.compactMap(\.dataType).first)
        guard let rank = xs.lazy.compactMap(\.rank).first, rank > 0 else { return [out] }
        let a = try ShapeFacts.axis(ctx.int("axis") ?? 1, rank: rank)
        var dims = [DimFact](repeating: .unknown, count: rank)
        var total: DimFact = .known(0)
        for x in xs {
            guard let s = x.shape else {
                total = .unknown
                continue
            }
            guard s.count == rank else { throw ShapeFacts.Unknowable() }
            for k in 0..<rank where k != a {
                switch (dims[k], s[k]) {
                case let (.known(u), .known(v)) where u != v: throw ShapeFacts.Unknowable()
                case (.known, _): break
                case (_, .known): dims[k] = s[k]
                case (.unknown, .symbolic): dims[k] = s[k]
                default: break
                }
            }
            if case .known(let t) = total, let v = s[a].value { total = .known(t + v) } else { total = .unknown }
        }
        dims[a] = total
        out.shape = dims
        if rank == 1 {
            var e: [DimFact] = []
            for x in xs {
                guard let xe = x.elements else { return [out] }
                e += xe
            }
            if e.count <= ValueFact.maxElements, dims[0].value == e.count { out.elements = e }
        }
        return [out]
    }
}

extension SplitOp: ShapeInferring {
    func inferFacts(_ inputs: [ValueFact?], _ ctx: ShapeInferenceContext) throws -> [ValueFact] {
        guard ctx.is(["Split"]) else { return [] }
        guard let x = inputs.first ?? nil else { return [] }
        let n = ctx.node.outputs.count
        guard let s = x.shape else { return Array(repeating: ValueFact(dataType: x.dataType), count: n) }
        let a = try ShapeFacts.axis(ctx.int("axis", default: 0), rank: s.count)
        var sizes: [DimFact]
        if ctx.opset < 13, let split = ctx.ints("split") {
            sizes = split.map { .known($0) }
        } else if ctx.opset >= 13, inputs.count > 1, inputs[1] != nil {
            if let split = ctx.intValues(1, inputs) {
                sizes = split.map { .known($0) }
            } else {
                sizes = Array(repeating: .unknown, count: n)
            }
        } else if let d = s[a].value, n > 0 {
            // Equal parts; with num_outputs (opset 18) the last one may be smaller.
            let part = ctx.opset >= 18 ? (d + n - 1) / n : d / n
            guard ctx.opset >= 18 || d % n == 0 else { throw ShapeFacts.Unknowable() }
            sizes = (0..<n).map { i in .known(Swift.max(0, Swift.min(part, d - i * part))) }
        } else {
            sizes = Array(repeating: .unknown, count: n)
        }
        guard sizes.count == n else { throw ShapeFacts.Unknowable() }
        return sizes.map { size in
            var dims = s
            dims[a] = size
            return ValueFact(dataType: x.dataType, shape: dims)
        }
    }
}

extension SliceOp: ShapeInferring {
    func inferFacts(_ inputs: [ValueFact?], _ ctx: ShapeInferenceContext) throws -> [ValueFact] {
        guard ctx.is(["Slice"]) else { return [] }
        guard let x = inputs.first ?? nil else { return [] }
        var out = ValueFact(dataType: x.dataType)
        guard let s = x.shape else { return [out] }
        out.shape = s.map { _ in .unknown }
        let starts: [Int], ends: [Int], axesIn: [Int]?, steps: [Int]?
        if ctx.opset < 10 {
            guard let st = ctx.ints("starts"), let en = ctx.ints("ends") else { return [out] }
            starts = st; ends = en; axesIn = ctx.ints("axes"); steps = nil
        } else {
            guard let st = ctx.intValues(1, inputs), let en = ctx.intValues(2, inputs) else {
                // Unknown bounds: axes that are not sliced keep their size, but which axes are sliced is unknown
                // unless `axes` is known.
                if let ax = inputs.count > 3 && inputs[3] != nil ? ctx.intValues(3, inputs) : nil {
                    let sliced = Set(try ax.map { try ShapeFacts.axis($0, rank: s.count) })
                    out.shape = s.enumerated().map { sliced.contains($0.offset) ? .unknown : $0.element }
                }
                return [out]
            }
            starts = st; ends = en
            if inputs.count > 3, inputs[3] != nil {
                guard let a = ctx.intValues(3, inputs) else { return [out] }
                axesIn = a
            } else {
                axesIn = nil
            }
            if inputs.count > 4, inputs[4] != nil {
                guard let st = ctx.intValues(4, inputs) else { return [out] }
                steps = st
            } else {
                steps = nil
            }
        }
        guard starts.count == ends.count else { throw ShapeFacts.Unknowable() }
        let axes = axesIn ?? Array(0..<starts.count)
        guard axes.count == starts.count, steps == nil || steps!.count == starts.count else { throw ShapeFacts.Unknowable() }
        var dims = s
        var ranges: [(start: Int, step: Int, count: Int)?] = Array(repeating: nil, count: s.count)
        var seen = Set<Int>()
        for i in 0..<axes.count {
            let a = try ShapeFacts.axis(axes[i], rank: s.count)
            guard seen.insert(a).inserted else { throw ShapeFacts.Unknowable() }
            let step = steps?[i] ?? 1
            guard step != 0 else { throw ShapeFacts.Unknowable() }
            guard let d = s[a].value else {
                dims[a] = .unknown
                continue
            }
            let (b, count) = SliceOp.range(start: starts[i], end: ends[i], step: step, dimension: d)
            dims[a] = .known(count)
            ranges[a] = (b, step, count)
        }
        out.shape = dims
        if s.count == 1, let e = x.elements, e.count == s[0].value {
            if let r = ranges[0] {
                out.elements = (0..<r.count).map { e[r.start + $0 * r.step] }
            } else {
                out.elements = e
            }
        }
        return [out]
    }
}

extension ExpandOp: ShapeInferring {
    func inferFacts(_ inputs: [ValueFact?], _ ctx: ShapeInferenceContext) throws -> [ValueFact] {
        guard ctx.is(["Expand"]) else { return [] }
        guard inputs.count >= 2, let x = inputs[0], let spec = inputs[1] else { return [] }
        var out = ValueFact(dataType: x.dataType)
        // A target dimension of 1 keeps the input's; an unknown one against an input dimension over 1 must be
        // that dimension or 1 for the run to succeed: the broadcast rule of `ShapeFacts` says exactly this.
        if let e = spec.elements {
            if e.contains(where: { ($0.value ?? 0) < 0 }) { throw ShapeFacts.Unknowable() }
            out.shape = try ShapeFacts.broadcast([x.shape, e])
        } else if let n = spec.shape?.first?.value, spec.rank == 1 {
            out.shape = try ShapeFacts.broadcast([x.shape, Array(repeating: .unknown, count: n)])
        }
        return [out]
    }
}

extension ConstantOfShapeOp: ShapeInferring {
    func inferFacts(_ inputs: [ValueFact?], _ ctx: ShapeInferenceContext) throws -> [ValueFact] {
        guard ctx.is(["ConstantOfShape"]) else { return [] }
        guard let spec = inputs.first ?? nil else { return [] }
        var out = ValueFact(dataType: value.dataType)
        if let e = spec.elements {
            if e.contains(where: { ($0.value ?? 0) < 0 }) { throw ShapeFacts.Unknowable() }
            out.shape = e
        } else if let n = spec.shape?.first?.value, spec.rank == 1 {
            out.shape = Array(repeating: .unknown, count: n)
        }
        return [out]
    }
}
