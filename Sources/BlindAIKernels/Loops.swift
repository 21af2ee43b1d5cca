import BlindAITensor

/// Generic element-wise loops. Call them with concrete element types so that they are specialised
/// (no per-element dynamic dispatch); the closures are inlined into the loops.
public enum Loops {
    /// Throws unless `t` holds `T` elements: operators dispatch on their first input's type, and a model (or a
    /// client) may give the other inputs another type.
    @inlinable
    public static func expect<T: TensorElement>(_ t: Tensor, _: T.Type) throws {
        guard t.holds(T.self) else {
            throw EngineError(.typeMismatch, "an input is \(t.dataType) where \(T.dataType) is expected")
        }
    }

    /// out[i] = f(x[i]).
    @inlinable @inline(__always)
    public static func map<T: TensorElement, R: TensorElement>(_ x: Tensor, _: T.Type, _: R.Type, _ ctx: ExecutionContext, _ f: (T) -> R) throws -> Tensor {
        try expect(x, T.self)
        let out = try ctx.uninitialized(R.dataType, x.shape)
        let src = x.buffer(T.self)
        let dst = out.mutableBuffer(R.self)
        for i in 0..<x.count { dst[i] = f(src[i]) }
        return out
    }

    /// out = kernel(x) for a float32 x through a C kernel taking (source, destination, count).
    @inlinable
    public static func floatKernel(_ x: Tensor, _ ctx: ExecutionContext,
                                   _ kernel: (UnsafePointer<Float>, UnsafeMutablePointer<Float>, Int) -> Void) throws -> Tensor {
        try expect(x, Float.self)
        let out = try ctx.uninitialized(.float32, x.shape)
        if x.count > 0 { kernel(x.buffer(Float.self).baseAddress!, out.mutableBuffer(Float.self).baseAddress!, x.count) }
        return out
    }

    /// out = f(a, b) with NumPy broadcasting.
    @inlinable @inline(__always)
    public static func zip<T: TensorElement, R: TensorElement>(_ a: Tensor, _ b: Tensor, _: T.Type, _: R.Type, _ ctx: ExecutionContext, _ f: (T, T) -> R) throws -> Tensor {
        try expect(a, T.self)
        try expect(b, T.self)
        let shape = a.shape == b.shape ? a.shape : try Shape.broadcast([a.shape, b.shape])
        let out = try ctx.uninitialized(R.dataType, shape)
        zip(a, b, into: out.mutableBuffer(R.self).baseAddress!, shape: shape, T.self, f)
        return out
    }

    /// po = f(a, b) with NumPy broadcasting to `shape` (the broadcast shape of a and b). `po` may be the
    /// storage of `a` or `b` when that input already has the output's shape (in-place steps).
    @inlinable @inline(__always)
    public static func zip<T: TensorElement, R: TensorElement>(_ a: Tensor, _ b: Tensor, into po: UnsafeMutablePointer<R>, shape: [Int],
                                                               _: T.Type, _ f: (T, T) -> R) {
        let pa = a.buffer(T.self).baseAddress!
        let pb = b.buffer(T.self).baseAddress!
        let n = shape.reduce(1, *)
        if a.count == n && b.count == n {
            for i in 0..<n { po[i] = f(pa[i], pb[i]) }
        } else if b.count == 1 && a.count == n {
            let v = pb[0]
            for i in 0..<n { po[i] = f(pa[i], v) }
        } else if a.count == 1 && b.count == n {
            let v = pa[0]
            for i in 0..<n { po[i] = f(v, pb[i]) }
        } else {
            let plan = BroadcastPlan(outShape: shape, inputShapes: [a.shape, b.shape])
            plan.forEachRow { o, offs, count, strides in
                let sa = strides[0], sb = strides[1]
                let ia = offs[0], ib = offs[1]
                if sa == 1 && sb == 0 {
                    let v = pb[ib]
                    for i in 0..<count { po[o + i] = f(pa[ia + i], v) }
                } else if sa == 0 && sb == 1 {
                    let v = pa[ia]
                    for i in 0..<count { po[o + i] = f(v, pb[ib + i]) }
                } else if sa == 1 && sb == 1 {
                    // Both rows contiguous (a bias over the last axis): a plain loop that vectorises.
                    for i in 0..<count { po[o + i] = f(pa[ia + i], pb[ib + i]) }
                } else {
                    for i in 0..<count { po[o + i] = f(pa[ia + i * sa], pb[ib + i * sb]) }
                }
            }
        }
    }

    /// out = f(a, b, c) with NumPy broadcasting (Where, Clip with tensors, ...).
    @inlinable @inline(__always)
    public static func zip3<A: TensorElement, B: TensorElement, C: TensorElement, R: TensorElement>(
        _ a: Tensor, _ b: Tensor, _ c: Tensor, _: A.Type, _: B.Type, _: C.Type, _: R.Type, _ ctx: ExecutionContext, _ f: (A, B, C) -> R
    ) throws -> Tensor {
        try expect(a, A.self)
        try expect(b, B.self)
        try expect(c, C.self)
        let shape = try Shape.broadcast([a.shape, b.shape, c.shape])
        let out = try ctx.uninitialized(R.dataType, shape)
        let pa = a.buffer(A.self).baseAddress!
        let pb = b.buffer(B.self).baseAddress!
        let pc = c.buffer(C.self).baseAddress!
        let po = out.mutableBuffer(R.self).baseAddress!
        let plan = BroadcastPlan(outShape: shape, inputShapes: [a.shape, b.shape, c.shape])
        plan.forEachRow { o, offs, count, strides in
            for i in 0..<count {
                po[o + i] = f(pa[offs[0] + i * strides[0]], pb[offs[1] + i * strides[1]], pc[offs[2] + i * strides[2]])
            }
        }
        return out
    }

    /// Copies `x` broadcast to `shape` (Expand).
    public static func broadcastCopy(_ x: Tensor, to shape: [Int], _ ctx: ExecutionContext) throws -> Tensor {
        if x.dataType == .string {
            let plan = BroadcastPlan(outShape: shape, inputShapes: [x.shape])
            var out = [String](repeating: "", count: try ctx.limits.checkedCount(shape, .string))
            let src = x.strings
            plan.forEachRow { o, offs, count, strides in
                for i in 0..<count { out[o + i] = src[offs[0] + i * strides[0]] }
            }
            return Tensor(shape: shape, strings: out)
        }
        let out = try ctx.uninitialized(x.dataType, shape)
        let size = x.dataType.byteSize
        let src = x.storage.base
        let dst = out.storage.base
        let plan = BroadcastPlan(outShape: shape, inputShapes: [x.shape])
        plan.forEachRow { o, offs, count, strides in
            if strides[0] == 1 {
                (dst + o * size).copyMemory(from: src + offs[0] * size, byteCount: count * size)
            } else if strides[0] == 0 {
                let s = src + offs[0] * size
                for i in 0..<count { (dst + (o + i) * size).copyMemory(from: s, byteCount: size) }
            } else {
                for i in 0..<count { (dst + (o + i) * size).copyMemory(from: src + (offs[0] + i * strides[0]) * size, byteCount: size) }
            }
        }
        return out
    }
}

/// Element-wise loops whose output is given (it may be one of the inputs).
public enum InPlaceLoops {
    /// x[i] = f(x[i]).
    @inlinable @inline(__always)
    public static func map<T: TensorElement>(_ x: Tensor, _: T.Type, _ f: (T) -> T) -> Tensor {
        let p = x.mutableBuffer(T.self)
        for i in 0..<p.count { p[i] = f(p[i]) }
        return x
    }

    /// x = kernel(x) for a float32 C kernel taking (source, destination, count), which may be the same buffer.
    @inlinable @inline(__always)
    public static func floatKernel(_ x: Tensor, _ kernel: (UnsafePointer<Float>, UnsafeMutablePointer<Float>, Int) -> Void) -> Tensor {
        let p = x.mutableBuffer(Float.self)
        if let base = p.baseAddress, p.count > 0 { kernel(base, base, p.count) }
        return x
    }

    /// out = f(a, b) with broadcasting, where `out` is `a` or `b` and has the broadcast shape.
    @inlinable @inline(__always)
    public static func zip<T: TensorElement>(_ a: Tensor, _ b: Tensor, into out: Tensor, _: T.Type, _ f: (T, T) -> T) {
        Loops.zip(a, b, into: out.mutableBuffer(T.self).baseAddress!, shape: out.shape, T.self, f)
    }
}
