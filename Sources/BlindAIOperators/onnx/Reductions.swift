import BlindAITensor
import BlindAIKernels
import BlindAIGraph
import Foundation

// Reductions: Reduce*, ArgMax/ArgMin, CumSum/CumProd, TopK, Softmax/LogSoftmax/Hardmax.
//
// Every kernel works on a tensor viewed as [A, R, B]: A outer rows, R the reduced (or scanned) extent and
// B contiguous inner lanes. B == 1 is the common "innermost axis" case (contiguous rows); B > 1 iterates the
// lanes in the inner loop so that it stays contiguous too.

/// Helpers shared by the reduction, normalization and miscellaneous families (family-prefixed names).
enum ReduceSupport {
    /// (outer, axis extent, inner) of `shape` split at `axis`.
    static func split(_ shape: [Int], _ axis: Int) -> (Int, Int, Int) {
        let a = shape[..<axis].reduce(1, *)
        let r = axis < shape.count ? shape[axis] : 1
        let b = axis + 1 <= shape.count ? shape[(axis + 1)...].reduce(1, *) : 1
        return (a, r, b)
    }

    static func isHalf(_ dt: DataType) -> Bool { dt == .float16 || dt == .bfloat16 }

    /// Transposes `x` so that output dimension i is input dimension perm[i] (any fixed-size element type).
    static func permute(_ x: Tensor, _ perm: [Int], _ ctx: ExecutionContext) throws -> Tensor {
        let outShape = perm.map { x.shape[$0] }
        if perm == Array(0..<perm.count) { return x }
        guard x.dataType != .string else { throw EngineError(.typeMismatch, "string tensors are not supported here") }
        let out = try ctx.uninitialized(x.dataType, outShape)
        if x.count == 0 { return out }
        let src = UnsafeRawPointer(x.storage.base), dst = out.storage.base
        switch x.dataType.byteSize {
        case 1: permuteT(UInt8.self, src, dst, x.shape, perm)
        case 2: permuteT(UInt16.self, src, dst, x.shape, perm)
        case 4: permuteT(UInt32.self, src, dst, x.shape, perm)
        default: permuteT(UInt64.self, src, dst, x.shape, perm)
        }
        return out
    }

    private static func permuteT<E>(_: E.Type, _ src: UnsafeRawPointer, _ dst: UnsafeMutableRawPointer, _ shape: [Int], _ perm: [Int]) {
        let s = src.assumingMemoryBound(to: E.self), d = dst.assumingMemoryBound(to: E.self)
        let inStrides = Shape.strides(shape)
        // Drop size-1 output dimensions: they do not move the offsets.
        var dims: [Int] = [], st: [Int] = []
        for p in perm where shape[p] != 1 {
            dims.append(shape[p])
            st.append(inStrides[p])
        }
        let total = shape.reduce(1, *)
        if dims.isEmpty {
            d[0] = s[0]
            return
        }
        let n = dims.count
        let inner = dims[n - 1], innerStride = st[n - 1]
        var idx = [Int](repeating: 0, count: n)
        var off = 0, o = 0
        while o < total {
            if innerStride == 1 {
                (d + o).update(from: s + off, count: inner)
            } else {
                var q = off
                for i in 0..<inner {
                    d[o + i] = s[q]
                    q += innerStride
                }
            }
            o += inner
            var k = n - 2
            while k >= 0 {
                idx[k] += 1
                off += st[k]
                if idx[k] < dims[k] { break }
                off -= st[k] * dims[k]
                idx[k] = 0
                k -= 1
            }
            if k < 0 { break }
        }
    }

    /// Reads a scalar integer input (axis of CumSum, k of TopK).
    static func scalarInt(_ t: Tensor, _ what: String) throws -> Int {
        let v = try t.intValues()
        guard v.count == 1 else { throw EngineError(.invalidArgument, "\(what) must hold exactly one value, got shape \(t.shape)") }
        return v[0]
    }
}

// MARK: - Reduce*

enum ReduceKind: Sendable {
    case sum, mean, max, min, prod, l1, l2, logSum, logSumExp, sumSquare
}

/// A reduction as a sequence of [A, R, B] passes (after merging dimensions): one pass when the reduced axes
/// form one block, otherwise one pass per reduced block, innermost first.
private struct ReducePlan {
    var source: Tensor
    /// (a, r, b) of each pass; the output of a pass is the [A, B] input of the next.
    var passes: [(Int, Int, Int)]
    /// Total number of reduced elements per output element.
    var reducedCount: Int
    var outShape: [Int]
}

struct ReduceOp: Operator {
    let kind: ReduceKind
    /// Axes known at build time (attribute, or constant input); nil when read from the input at run time.
    let fixedAxes: [Int]?
    let keepDims: Bool
    let noopWithEmptyAxes: Bool

    func run(_ inputs: [Tensor?], _ ctx: ExecutionContext) throws -> [Tensor] {
        let x = try inputs.required(0)
        let axes = try fixedAxes ?? (inputs.optional(1)?.intValues() ?? [])
        let plan = try makePlan(x, axes, ctx)
        let src = plan.source
        switch src.dataType {
        case .float32: return [try reduceFloat(plan, Float.self, ctx)]
        case .float64: return [try reduceFloat(plan, Double.self, ctx)]
        case .float16, .bfloat16:
            var p = plan
            p.source = try FloatWidening.toFloat32(src, ctx)
            return [try FloatWidening.fromFloat32(try reduceFloat(p, Float.self, ctx), to: src.dataType, ctx)]
        case .int32: return [try reduceInt(plan, Int32.self, ctx)]
        case .int64: return [try reduceInt(plan, Int64.self, ctx)]
        case .uint32: return [try reduceInt(plan, UInt32.self, ctx)]
        case .uint64: return [try reduceInt(plan, UInt64.self, ctx)]
        case .int8: return [try reduceInt(plan, Int8.self, ctx)]
        case .uint8: return [try reduceInt(plan, UInt8.self, ctx)]
        case .int16: return [try reduceInt(plan, Int16.self, ctx)]
        case .uint16: return [try reduceInt(plan, UInt16.self, ctx)]
        case .bool where kind == .max || kind == .min: return [try reduceBool(plan, ctx)]
        default: throw EngineError(.typeMismatch, "\(kind) reduction does not support \(src.dataType) tensors")
        }
    }

    private func makePlan(_ x: Tensor, _ axesIn: [Int], _ ctx: ExecutionContext) throws -> ReducePlan {
        let rank = x.rank
        var reduced = [Bool](repeating: false, count: rank)
        if axesIn.isEmpty {
            if !noopWithEmptyAxes { for i in 0..<rank { reduced[i] = true } }
        } else {
            for a in axesIn {
                let n = a < 0 ? a + rank : a
                guard n >= 0 && n < rank else {
                    throw EngineError(.invalidArgument, "axis \(a) is out of range for a tensor of rank \(rank)")
                }
                reduced[n] = true
            }
        }
        var outShape: [Int] = []
        var reducedCount = 1
        for i in 0..<rank {
            if reduced[i] {
                reducedCount *= x.shape[i]
                if keepDims { outShape.append(1) }
            } else {
                outShape.append(x.shape[i])
            }
        }
        // Merge adjacent dimensions with the same role, dropping size-1 ones.
        var segs: [(Int, Bool)] = []
        for i in 0..<rank where x.shape[i] != 1 {
            if let last = segs.last, last.1 == reduced[i] {
                segs[segs.count - 1].0 = last.0 * x.shape[i]
            } else {
                segs.append((x.shape[i], reduced[i]))
            }
        }
        var passes: [(Int, Int, Int)] = []
        while let j = segs.lastIndex(where: { $0.1 }) {
            let a = segs[..<j].reduce(1) { $0 * $1.0 }
            let b = segs[(j + 1)...].reduce(1) { $0 * $1.0 }
            passes.append((a, segs[j].0, b))
            segs.remove(at: j)
            // The kept blocks on either side of the removed one become adjacent.
            if j > 0 && j < segs.count && !segs[j - 1].1 && !segs[j].1 {
                segs[j - 1].0 *= segs[j].0
                segs.remove(at: j)
            }
        }
        if passes.isEmpty {
            passes = [(x.count, 1, 1)]
        }
        if passes.count > 1 && (kind == .logSumExp || passes.contains(where: { $0.1 == 0 })) {
            // Not decomposable (or empty): move the kept axes first and reduce contiguous rows once.
            let kept = (0..<rank).filter { !reduced[$0] }
            let red = (0..<rank).filter { reduced[$0] }
            let t = try ReduceSupport.permute(x, kept + red, ctx)
            return ReducePlan(source: t, passes: [(kept.reduce(1) { $0 * x.shape[$1] }, reducedCount, 1)],
                              reducedCount: reducedCount, outShape: outShape)
        }
        return ReducePlan(source: x, passes: passes, reducedCount: reducedCount, outShape: outShape)
    }

    private func reduceFloat<T: EngineFloat>(_ p: ReducePlan, _: T.Type, _ ctx: ExecutionContext) throws -> Tensor {
        let out = try ctx.uninitialized(T.dataType, p.outShape)
        if out.count == 0 { return out }
        let src = p.source.buffer(T.self).baseAddress!
        let dst = out.mutableBuffer(T.self).baseAddress!
        if T.self == Float.self && p.passes.count == 1 && p.passes[0].2 == 1 && p.passes[0].1 >= 16 {
            let s = UnsafeRawPointer(src).assumingMemoryBound(to: Float.self)
            let d = UnsafeMutableRawPointer(dst).assumingMemoryBound(to: Float.self)
            if reduceFloat32Rows(s, d, p.passes[0].0, p.passes[0].1) { return out }
        }
        let ps = p.passes, n = p.reducedCount
        switch kind {
        case .sum: reducePasses(FSum<T>.self, src, dst, ps, n)
        case .mean: reducePasses(FMean<T>.self, src, dst, ps, n)
        case .sumSquare: reducePasses(FSumSquare<T>.self, src, dst, ps, n)
        case .l1: reducePasses(FL1<T>.self, src, dst, ps, n)
        case .l2: reducePasses(FL2<T>.self, src, dst, ps, n)
        case .logSum: reducePasses(FLogSum<T>.self, src, dst, ps, n)
        case .prod: reducePasses(FProd<T>.self, src, dst, ps, n)
        case .max: reducePasses(FMax<T>.self, src, dst, ps, n)
        case .min: reducePasses(FMin<T>.self, src, dst, ps, n)
        case .logSumExp:
            let (a, r, b) = ps[0]
            logSumExp(src, dst, a, r, b)
        }
        return out
    }

    /// float32 contiguous rows with SIMD accumulation; false when the kind has no fast path.
    private func reduceFloat32Rows(_ src: UnsafePointer<Float>, _ dst: UnsafeMutablePointer<Float>, _ a: Int, _ r: Int) -> Bool {
        switch kind {
        case .sum, .mean, .logSum:
            for i in 0..<a {
                let s = SIMDRows.sum(src + i * r, r)
                dst[i] = kind == .sum ? s : (kind == .mean ? s / Float(r) : Foundation.log(s))
            }
        case .sumSquare, .l2:
            for i in 0..<a {
                let s = SIMDRows.sumSquares(src + i * r, r)
                dst[i] = kind == .l2 ? s.squareRoot() : s
            }
        case .max:
            for i in 0..<a { dst[i] = SIMDRows.max(src + i * r, r) }
        case .min:
            for i in 0..<a { dst[i] = SIMDRows.min(src + i * r, r) }
        case .l1:
            for i in 0..<a { dst[i] = SIMDRows.sumAbs(src + i * r, r) }
        case .logSumExp:
            let tmp = UnsafeMutablePointer<Float>.allocate(capacity: r)
            defer { tmp.deallocate() }
            for i in 0..<a {
                let row = src + i * r
                let m = SIMDRows.max(row, r)
                let shift: Float = m.isInfinite ? 0 : m
                dst[i] = Foundation.log(SIMDRows.expShiftSum(row, tmp, r, shift)) + shift
            }
        default:
            return false
        }
        return true
    }

    private func logSumExp<T: EngineFloat>(_ src: UnsafePointer<T>, _ dst: UnsafeMutablePointer<T>, _ a: Int, _ r: Int, _ b: Int) {
        let m = UnsafeMutablePointer<T>.allocate(capacity: b)
        let s = UnsafeMutablePointer<T>.allocate(capacity: b)
        defer { m.deallocate(); s.deallocate() }
        for i in 0..<a {
            m.initialize(repeating: -T.infinity, count: b)
            s.initialize(repeating: 0, count: b)
            let base = src + i * r * b
            for j in 0..<r {
                let row = base + j * b
                for k in 0..<b where row[k] > m[k] && row[k].isFinite { m[k] = row[k] }
            }
            for k in 0..<b where !m[k].isFinite { m[k] = 0 }
            for j in 0..<r {
                let row = base + j * b
                for k in 0..<b { s[k] += SIMDRows.exp(row[k] - m[k]) }
            }
            let q = dst + i * b
            for k in 0..<b { q[k] = T.log(s[k]) + m[k] }
        }
    }

    private func reduceInt<T: EngineInteger>(_ p: ReducePlan, _: T.Type, _ ctx: ExecutionContext) throws -> Tensor {
        let out = try ctx.uninitialized(T.dataType, p.outShape)
        if out.count == 0 { return out }
        let src = p.source.buffer(T.self).baseAddress!
        let dst = out.mutableBuffer(T.self).baseAddress!
        let ps = p.passes, n = p.reducedCount
        switch kind {
        case .sum: reducePasses(ISum<T>.self, src, dst, ps, n)
        case .mean: reducePasses(IMean<T>.self, src, dst, ps, n)
        case .sumSquare: reducePasses(ISumSquare<T>.self, src, dst, ps, n)
        case .l1: reducePasses(IL1<T>.self, src, dst, ps, n)
        case .l2: reducePasses(IL2<T>.self, src, dst, ps, n)
        case .logSum: reducePasses(ILogSum<T>.self, src, dst, ps, n)
        case .prod: reducePasses(IProd<T>.self, src, dst, ps, n)
        case .max: reducePasses(IMax<T>.self, src, dst, ps, n)
        case .min: reducePasses(IMin<T>.self, src, dst, ps, n)
        case .logSumExp:
            // Computed in double: integers are rare here (removed from the schema in opset 28).
            let (a, r, b) = ps[0]
            var acc = [Double](repeating: 0, count: a * b)
            var mx = [Double](repeating: -.infinity, count: a * b)
            for i in 0..<a { for j in 0..<r { for k in 0..<b { mx[i * b + k] = Swift.max(mx[i * b + k], Double(src[(i * r + j) * b + k])) } } }
            for i in 0..<a { for j in 0..<r { for k in 0..<b { acc[i * b + k] += Foundation.exp(Double(src[(i * r + j) * b + k]) - mx[i * b + k]) } } }
            for i in 0..<(a * b) { dst[i] = T(clampingDouble: Foundation.log(acc[i]) + (mx[i].isFinite ? mx[i] : 0)) }
        }
        return out
    }

    private func reduceBool(_ p: ReducePlan, _ ctx: ExecutionContext) throws -> Tensor {
        let out = try ctx.uninitialized(.bool, p.outShape)
        if out.count == 0 { return out }
        let src = UnsafePointer(p.source.storage.base.assumingMemoryBound(to: UInt8.self))
        let dst = out.storage.base.assumingMemoryBound(to: UInt8.self)
        if kind == .max {
            reducePasses(BoolAny.self, src, dst, p.passes, p.reducedCount)
        } else {
            reducePasses(BoolAll.self, src, dst, p.passes, p.reducedCount)
        }
        return out
    }
}

/// How a reduction folds elements: static members, so that kernels specialised for a rule inline them.
private protocol ReduceRule {
    associatedtype T
    static var initial: T { get }
    /// Folds an input element into an accumulator.
    static func step(_ acc: T, _ x: T) -> T
    /// Combines two accumulators.
    static func merge(_ a: T, _ b: T) -> T
    /// The result from the accumulator of `count` elements.
    static func finish(_ acc: T, _ count: Int) -> T
}

private enum FSum<F: EngineFloat>: ReduceRule {
    static var initial: F { 0 }
    @inline(__always) static func step(_ a: F, _ x: F) -> F { a + x }
    @inline(__always) static func merge(_ a: F, _ b: F) -> F { a + b }
    @inline(__always) static func finish(_ a: F, _ n: Int) -> F { a }
}
private enum FMean<F: EngineFloat>: ReduceRule {
    static var initial: F { 0 }
    @inline(__always) static func step(_ a: F, _ x: F) -> F { a + x }
    @inline(__always) static func merge(_ a: F, _ b: F) -> F { a + b }
    @inline(__always) static func finish(_ a: F, _ n: Int) -> F { a / F(n) }
}
private enum FSumSquare<F: EngineFloat>: ReduceRule {
    static var initial: F { 0 }
    @inline(__always) static func step(_ a: F, _ x: F) -> F { a + x * x }
    @inline(__always) static func merge(_ a: F, _ b: F) -> F { a + b }
    @inline(__always) static func finish(_ a: F, _ n: Int) -> F { a }
}
private enum FL1<F: EngineFloat>: ReduceRule {
    static var initial: F { 0 }
    @inline(__always) static func step(_ a: F, _ x: F) -> F { a + Swift.abs(x) }
    @inline(__always) static func merge(_ a: F, _ b: F) -> F { a + b }
    @inline(__always) static func finish(_ a: F, _ n: Int) -> F { a }
}
private enum FL2<F: EngineFloat>: ReduceRule {
    static var initial: F { 0 }
    @inline(__always) static func step(_ a: F, _ x: F) -> F { a + x * x }
    @inline(__always) static func merge(_ a: F, _ b: F) -> F { a + b }
    @inline(__always) static func finish(_ a: F, _ n: Int) -> F { a.squareRoot() }
}
private enum FLogSum<F: EngineFloat>: ReduceRule {
    static var initial: F { 0 }
    @inline(__always) static func step(_ a: F, _ x: F) -> F { a + x }
    @inline(__always) static func merge(_ a: F, _ b: F) -> F { a + b }
    @inline(__always) static func finish(_ a: F, _ n: Int) -> F { F.log(a) }
}
private enum FProd<F: EngineFloat>: ReduceRule {
    static var initial: F { 1 }
    @inline(__always) static func step(_ a: F, _ x: F) -> F { a * x }
    @inline(__always) static func merge(_ a: F, _ b: F) -> F { a * b }
    @inline(__always) static func finish(_ a: F, _ n: Int) -> F { a }
}
private enum FMax<F: EngineFloat>: ReduceRule {
    static var initial: F { -F.infinity }
    @inline(__always) static func step(_ a: F, _ x: F) -> F { x > a || x.isNaN ? x : a }
    @inline(__always) static func merge(_ a: F, _ b: F) -> F { b > a || b.isNaN ? b : a }
    @inline(__always) static func finish(_ a: F, _ n: Int) -> F { a }
}
private enum FMin<F: EngineFloat>: ReduceRule {
    static var initial: F { F.infinity }
    @inline(__always) static func step(_ a: F, _ x: F) -> F { x < a || x.isNaN ? x : a }
    @inline(__always) static func merge(_ a: F, _ b: F) -> F { b < a || b.isNaN ? b : a }
    @inline(__always) static func finish(_ a: F, _ n: Int) -> F { a }
}
private enum ISum<I: EngineInteger>: ReduceRule {
    static var initial: I { 0 }
    @inline(__always) static func step(_ a: I, _ x: I) -> I { a &+ x }
    @inline(__always) static func merge(_ a: I, _ b: I) -> I { a &+ b }
    @inline(__always) static func finish(_ a: I, _ n: Int) -> I { a }
}
private enum IMean<I: EngineInteger>: ReduceRule {
    static var initial: I { 0 }
    @inline(__always) static func step(_ a: I, _ x: I) -> I { a &+ x }
    @inline(__always) static func merge(_ a: I, _ b: I) -> I { a &+ b }
    @inline(__always) static func finish(_ a: I, _ n: Int) -> I { a / I(clamping: Swift.max(n, 1)) }
}
private enum ISumSquare<I: EngineInteger>: ReduceRule {
    static var initial: I { 0 }
    @inline(__always) static func step(_ a: I, _ x: I) -> I { a &+ x &* x }
    @inline(__always) static func merge(_ a: I, _ b: I) -> I { a &+ b }
    @inline(__always) static func finish(_ a: I, _ n: Int) -> I { a }
}
private enum IL1<I: EngineInteger>: ReduceRule {
    static var initial: I { 0 }
    @inline(__always) static func step(_ a: I, _ x: I) -> I { a &+ (x < 0 ? 0 &- x : x) }
    @inline(__always) static func merge(_ a: I, _ b: I) -> I { a &+ b }
    @inline(__always) static func finish(_ a: I, _ n: Int) -> I { a }
}
private enum IL2<I: EngineInteger>: ReduceRule {
    static var initial: I { 0 }
    @inline(__always) static func step(_ a: I, _ x: I) -> I { a &+ x &* x }
    @inline(__always) static func merge(_ a: I, _ b: I) -> I { a &+ b }
    @inline(__always) static func finish(_ a: I, _ n: Int) -> I { I(clampingDouble: Double(a).squareRoot()) }
}
private enum ILogSum<I: EngineInteger>: ReduceRule {
    static var initial: I { 0 }
    @inline(__always) static func step(_ a: I, _ x: I) -> I { a &+ x }
    @inline(__always) static func merge(_ a: I, _ b: I) -> I { a &+ b }
    @inline(__always) static func finish(_ a: I, _ n: Int) -> I { I(clampingDouble: Foundation.log(Double(a))) }
}
private enum IProd<I: EngineInteger>: ReduceRule {
    static var initial: I { 1 }
    @inline(__always) static func step(_ a: I, _ x: I) -> I { a &* x }
    @inline(__always) static func merge(_ a: I, _ b: I) -> I { a &* b }
    @inline(__always) static func finish(_ a: I, _ n: Int) -> I { a }
}
private enum IMax<I: EngineInteger>: ReduceRule {
    static var initial: I { I.min }
    @inline(__always) static func step(_ a: I, _ x: I) -> I { x > a ? x : a }
    @inline(__always) static func merge(_ a: I, _ b: I) -> I { b > a ? b : a }
    @inline(__always) static func finish(_ a: I, _ n: Int) -> I { a }
}
private enum IMin<I: EngineInteger>: ReduceRule {
    static var initial: I { I.max }
    @inline(__always) static func step(_ a: I, _ x: I) -> I { x < a ? x : a }
    @inline(__always) static func merge(_ a: I, _ b: I) -> I { b < a ? b : a }
    @inline(__always) static func finish(_ a: I, _ n: Int) -> I { a }
}
/// Bool tensors as bytes: ReduceMax is "any", ReduceMin is "all".
private enum BoolAny: ReduceRule {
    static var initial: UInt8 { 0 }
    @inline(__always) static func step(_ a: UInt8, _ x: UInt8) -> UInt8 { a | (x != 0 ? 1 : 0) }
    @inline(__always) static func merge(_ a: UInt8, _ b: UInt8) -> UInt8 { a | b }
    @inline(__always) static func finish(_ a: UInt8, _ n: Int) -> UInt8 { a }
}
private enum BoolAll: ReduceRule {
    static var initial: UInt8 { 1 }
    @inline(__always) static func step(_ a: UInt8, _ x: UInt8) -> UInt8 { a & (x != 0 ? 1 : 0) }
    @inline(__always) static func merge(_ a: UInt8, _ b: UInt8) -> UInt8 { a & b }
    @inline(__always) static func finish(_ a: UInt8, _ n: Int) -> UInt8 { a }
}

/// Later passes of a multi-pass reduction combine partial results; only the last one finishes.
private enum PartialPass<R: ReduceRule>: ReduceRule {
    static var initial: R.T { R.initial }
    @inline(__always) static func step(_ a: R.T, _ x: R.T) -> R.T { R.step(a, x) }
    @inline(__always) static func merge(_ a: R.T, _ b: R.T) -> R.T { R.merge(a, b) }
    @inline(__always) static func finish(_ a: R.T, _ n: Int) -> R.T { a }
}
private enum MergePass<R: ReduceRule>: ReduceRule {
    static var initial: R.T { R.initial }
    @inline(__always) static func step(_ a: R.T, _ x: R.T) -> R.T { R.merge(a, x) }
    @inline(__always) static func merge(_ a: R.T, _ b: R.T) -> R.T { R.merge(a, b) }
    @inline(__always) static func finish(_ a: R.T, _ n: Int) -> R.T { a }
}
private enum FinalMergePass<R: ReduceRule>: ReduceRule {
    static var initial: R.T { R.initial }
    @inline(__always) static func step(_ a: R.T, _ x: R.T) -> R.T { R.merge(a, x) }
    @inline(__always) static func merge(_ a: R.T, _ b: R.T) -> R.T { R.merge(a, b) }
    @inline(__always) static func finish(_ a: R.T, _ n: Int) -> R.T { R.finish(a, n) }
}

/// Runs the passes of a reduction of `count` elements per output: the first folds input elements, later
/// ones combine partial results; only the last applies `finish`.
private func reducePasses<R: ReduceRule>(_: R.Type, _ src: UnsafePointer<R.T>, _ dst: UnsafeMutablePointer<R.T>,
                                         _ passes: [(Int, Int, Int)], _ count: Int) {
    if passes.count == 1 {
        let (a, r, b) = passes[0]
        reduceKernel(R.self, src, dst, a, r, b, count)
        return
    }
    var input = src
    var owned: UnsafeMutablePointer<R.T>? = nil
    for (pi, (a, r, b)) in passes.enumerated() {
        let last = pi == passes.count - 1
        let target = last ? dst : UnsafeMutablePointer<R.T>.allocate(capacity: Swift.max(a * b, 1))
        if pi == 0 {
            reduceKernel(PartialPass<R>.self, input, target, a, r, b, count)
        } else if last {
            reduceKernel(FinalMergePass<R>.self, input, target, a, r, b, count)
        } else {
            reduceKernel(MergePass<R>.self, input, target, a, r, b, count)
        }
        owned?.deallocate()
        owned = last ? nil : target
        input = UnsafePointer(target)
    }
}

/// out[a, b] = finish(fold over r) for a tensor viewed as [A, R, B].
private func reduceKernel<R: ReduceRule>(_: R.Type, _ src: UnsafePointer<R.T>, _ dst: UnsafeMutablePointer<R.T>,
                                         _ a: Int, _ r: Int, _ b: Int, _ count: Int) {
    if b == 1 {
        for i in 0..<a {
            let p = src + i * r
            var s0 = R.initial, s1 = R.initial, s2 = R.initial, s3 = R.initial
            var j = 0
            while j + 4 <= r {
                s0 = R.step(s0, p[j])
                s1 = R.step(s1, p[j + 1])
                s2 = R.step(s2, p[j + 2])
                s3 = R.step(s3, p[j + 3])
                j += 4
            }
            while j < r {
                s0 = R.step(s0, p[j])
                j += 1
            }
            dst[i] = R.finish(R.merge(R.merge(s0, s1), R.merge(s2, s3)), count)
        }
        return
    }
    for i in 0..<a {
        let q = dst + i * b
        q.initialize(repeating: R.initial, count: b)
        let base = src + i * r * b
        for j in 0..<r {
            let row = base + j * b
            for k in 0..<b { q[k] = R.step(q[k], row[k]) }
        }
        for k in 0..<b { q[k] = R.finish(q[k], count) }
    }
}

// MARK: - ArgMax / ArgMin

struct ArgExtremumOp: Operator {
    let isMax: Bool
    let axis: Int
    let keepDims: Bool
    let selectLast: Bool

    func run(_ inputs: [Tensor?], _ ctx: ExecutionContext) throws -> [Tensor] {
        var x = try inputs.required(0)
        if ReduceSupport.isHalf(x.dataType) { x = try FloatWidening.toFloat32(x, ctx) }
        switch x.dataType {
        case .float32: return [try arg(x, Float.self, ctx)]
        case .float64: return [try arg(x, Double.self, ctx)]
        case .int32: return [try arg(x, Int32.self, ctx)]
        case .int64: return [try arg(x, Int64.self, ctx)]
        case .uint32: return [try arg(x, UInt32.self, ctx)]
        case .uint64: return [try arg(x, UInt64.self, ctx)]
        case .int8: return [try arg(x, Int8.self, ctx)]
        case .uint8: return [try arg(x, UInt8.self, ctx)]
        case .int16: return [try arg(x, Int16.self, ctx)]
        case .uint16: return [try arg(x, UInt16.self, ctx)]
        default: throw EngineError(.typeMismatch, "\(isMax ? "ArgMax" : "ArgMin") does not support \(x.dataType) tensors")
        }
    }

    private func arg<T: EngineNumeric>(_ x: Tensor, _: T.Type, _ ctx: ExecutionContext) throws -> Tensor {
        let ax = try Shape.axis(axis, rank: x.rank)
        let (a, r, b) = x.rank == 0 ? (1, 1, 1) : ReduceSupport.split(x.shape, ax)
        var outShape = x.shape
        if x.rank > 0 {
            if keepDims { outShape[ax] = 1 } else { outShape.remove(at: ax) }
        }
        let out = try ctx.uninitialized(.int64, outShape)
        if out.count == 0 { return out }
        guard r > 0 else { throw EngineError(.invalidArgument, "cannot take the arg\(isMax ? "max" : "min") of an empty axis (shape \(x.shape))") }
        let src = x.buffer(T.self).baseAddress!
        let dst = out.mutableBuffer(Int64.self).baseAddress!
        if isMax {
            if selectLast { argKernel(src, dst, a, r, b) { $0 >= $1 } } else { argKernel(src, dst, a, r, b) { $0 > $1 } }
        } else {
            if selectLast { argKernel(src, dst, a, r, b) { $0 <= $1 } } else { argKernel(src, dst, a, r, b) { $0 < $1 } }
        }
        return out
    }
}

/// Index along R of the element that wins `better(candidate, best)`, scanning forward.
@inline(__always)
private func argKernel<T>(_ src: UnsafePointer<T>, _ dst: UnsafeMutablePointer<Int64>, _ a: Int, _ r: Int, _ b: Int,
                          _ better: (T, T) -> Bool) {
    if b == 1 {
        for i in 0..<a {
            let p = src + i * r
            var best = p[0], bi = 0
            for j in 1..<Swift.max(r, 1) where better(p[j], best) {
                best = p[j]
                bi = j
            }
            dst[i] = Int64(bi)
        }
        return
    }
    let bestV = UnsafeMutablePointer<T>.allocate(capacity: b)
    defer { bestV.deallocate() }
    for i in 0..<a {
        let base = src + i * r * b
        let q = dst + i * b
        bestV.initialize(from: base, count: b)
        for k in 0..<b { q[k] = 0 }
        for j in 1..<Swift.max(r, 1) {
            let row = base + j * b
            for k in 0..<b where better(row[k], bestV[k]) {
                bestV[k] = row[k]
                q[k] = Int64(j)
            }
        }
    }
}

// MARK: - CumSum / CumProd

struct CumulativeOp: Operator {
    let isProduct: Bool
    let exclusive: Bool
    let reverse: Bool

    func run(_ inputs: [Tensor?], _ ctx: ExecutionContext) throws -> [Tensor] {
        let x = try inputs.required(0)
        let axisT = try inputs.required(1, "axis")
        let axis = try Shape.axis(try ReduceSupport.scalarInt(axisT, "axis"), rank: x.rank)
        switch x.dataType {
        case .float32: return [try scan(x, axis, Float.self, ctx)]
        case .float64: return [try scan(x, axis, Double.self, ctx)]
        case .float16, .bfloat16:
            return [try FloatWidening.fromFloat32(try scan(try FloatWidening.toFloat32(x, ctx), axis, Float.self, ctx), to: x.dataType, ctx)]
        case .int32: return [try scanInt(x, axis, Int32.self, ctx)]
        case .int64: return [try scanInt(x, axis, Int64.self, ctx)]
        case .uint32: return [try scanInt(x, axis, UInt32.self, ctx)]
        case .uint64: return [try scanInt(x, axis, UInt64.self, ctx)]
        case .int8: return [try scanInt(x, axis, Int8.self, ctx)]
        case .uint8: return [try scanInt(x, axis, UInt8.self, ctx)]
        case .int16: return [try scanInt(x, axis, Int16.self, ctx)]
        case .uint16: return [try scanInt(x, axis, UInt16.self, ctx)]
        default: throw EngineError(.typeMismatch, "\(isProduct ? "CumProd" : "CumSum") does not support \(x.dataType) tensors")
        }
    }

    private func scan<T: EngineFloat>(_ x: Tensor, _ axis: Int, _: T.Type, _ ctx: ExecutionContext) throws -> Tensor {
        if isProduct { return try scanKernel(CumFloatProd<T>.self, x, axis, ctx) }
        return try scanKernel(CumFloatSum<T>.self, x, axis, ctx)
    }

    private func scanInt<T: EngineInteger>(_ x: Tensor, _ axis: Int, _: T.Type, _ ctx: ExecutionContext) throws -> Tensor {
        if isProduct { return try scanKernel(CumIntProd<T>.self, x, axis, ctx) }
        return try scanKernel(CumIntSum<T>.self, x, axis, ctx)
    }

    private func scanKernel<R: CumulativeRule>(_: R.Type, _ x: Tensor, _ axis: Int, _ ctx: ExecutionContext) throws -> Tensor {
        let out = try ctx.uninitialized(R.T.dataType, x.shape)
        if x.count == 0 { return out }
        let (a, r, b) = x.rank == 0 ? (1, 1, 1) : ReduceSupport.split(x.shape, axis)
        let src = x.buffer(R.T.self).baseAddress!
        let dst = out.mutableBuffer(R.T.self).baseAddress!
        if b == 1 {
            // Contiguous scans: one running value per row.
            for i in 0..<a {
                let p = src + i * r, q = dst + i * r
                var acc = R.identity
                if reverse {
                    var j = r - 1
                    while j >= 0 {
                        if exclusive { q[j] = acc; acc = R.combine(acc, p[j]) } else { acc = R.combine(acc, p[j]); q[j] = acc }
                        j -= 1
                    }
                } else if exclusive {
                    for j in 0..<r {
                        q[j] = acc
                        acc = R.combine(acc, p[j])
                    }
                } else {
                    for j in 0..<r {
                        acc = R.combine(acc, p[j])
                        q[j] = acc
                    }
                }
            }
            return out
        }
        for i in 0..<a {
            let base = i * r * b
            for step in 0..<r {
                let j = reverse ? r - 1 - step : step
                let p = src + base + j * b, q = dst + base + j * b
                if step == 0 {
                    if exclusive { q.initialize(repeating: R.identity, count: b) } else { q.update(from: p, count: b) }
                } else {
                    let jp = reverse ? j + 1 : j - 1
                    let prevQ = dst + base + jp * b
                    let addend = exclusive ? src + base + jp * b : p
                    for k in 0..<b { q[k] = R.combine(prevQ[k], addend[k]) }
                }
            }
        }
        return out
    }
}

private protocol CumulativeRule {
    associatedtype T: TensorElement
    static var identity: T { get }
    static func combine(_ a: T, _ b: T) -> T
}
private enum CumFloatSum<F: EngineFloat>: CumulativeRule {
    static var identity: F { 0 }
    @inline(__always) static func combine(_ a: F, _ b: F) -> F { a + b }
}
private enum CumFloatProd<F: EngineFloat>: CumulativeRule {
    static var identity: F { 1 }
    @inline(__always) static func combine(_ a: F, _ b: F) -> F { a * b }
}
private enum CumIntSum<I: EngineInteger>: CumulativeRule {
    static var identity: I { 0 }
    @inline(__always) static func combine(_ a: I, _ b: I) -> I { a &+ b }
}
private enum CumIntProd<I: EngineInteger>: CumulativeRule {
    static var identity: I { 1 }
    @inline(__always) static func combine(_ a: I, _ b: I) -> I { a &* b }
}

// MARK: - TopK

struct TopKOp: Operator {
    let kAttr: Int?
    let axis: Int
    let largest: Bool

    func run(_ inputs: [Tensor?], _ ctx: ExecutionContext) throws -> [Tensor] {
        let x = try inputs.required(0)
        let k: Int
        if let kAttr { k = kAttr } else { k = try ReduceSupport.scalarInt(try inputs.required(1, "K"), "K") }
        switch x.dataType {
        case .float32: return try topK(x, k, Float.self, ctx)
        case .float64: return try topK(x, k, Double.self, ctx)
        case .float16:
            let r = try topK(try FloatWidening.toFloat32(x, ctx), k, Float.self, ctx)
            return [try FloatWidening.fromFloat32(r[0], to: x.dataType, ctx), r[1]]
        case .int32: return try topK(x, k, Int32.self, ctx)
        case .int64: return try topK(x, k, Int64.self, ctx)
        case .uint32: return try topK(x, k, UInt32.self, ctx)
        case .uint64: return try topK(x, k, UInt64.self, ctx)
        case .int8: return try topK(x, k, Int8.self, ctx)
        case .uint8: return try topK(x, k, UInt8.self, ctx)
        case .int16: return try topK(x, k, Int16.self, ctx)
        case .uint16: return try topK(x, k, UInt16.self, ctx)
        default: throw EngineError(.typeMismatch, "TopK does not support \(x.dataType) tensors")
        }
    }

    private func topK<T: EngineNumeric>(_ x: Tensor, _ k: Int, _: T.Type, _ ctx: ExecutionContext) throws -> [Tensor] {
        guard x.rank > 0 else { throw EngineError(.invalidArgument, "TopK needs a tensor of rank >= 1") }
        let ax = try Shape.axis(axis, rank: x.rank)
        let (a, r, b) = ReduceSupport.split(x.shape, ax)
        guard k >= 0 && k <= r else {
            throw EngineError(.invalidArgument, "TopK: k = \(k) is out of range for axis \(ax) of size \(r)")
        }
        var outShape = x.shape
        outShape[ax] = k
        let values = try ctx.uninitialized(T.dataType, outShape)
        let indices = try ctx.uninitialized(.int64, outShape)
        if values.count == 0 { return [values, indices] }
        let src = x.buffer(T.self).baseAddress!
        let vdst = values.mutableBuffer(T.self).baseAddress!
        let idst = indices.mutableBuffer(Int64.self).baseAddress!
        let row = UnsafeMutablePointer<T>.allocate(capacity: r)
        // Small k keeps a heap of k indices; large k partitions all r indices (quickselect).
        let useHeap = k * 8 <= r
        let heap = UnsafeMutableBufferPointer<Int>.allocate(capacity: Swift.max(useHeap ? k : r, 1))
        defer { row.deallocate(); heap.deallocate() }
        if largest {
            select(TopKLargest<T>.self, src, vdst, idst, a, r, b, k, row, heap)
        } else {
            select(TopKSmallest<T>.self, src, vdst, idst, a, r, b, k, row, heap)
        }
        return [values, indices]
    }

    /// Keeps the k best of each lane in a heap whose root is the worst kept element, then sorts them.
    /// Ties rank the lower index first.
    private func select<O: TopKOrder>(_: O.Type, _ src: UnsafePointer<O.T>, _ vdst: UnsafeMutablePointer<O.T>, _ idst: UnsafeMutablePointer<Int64>,
                                      _ a: Int, _ r: Int, _ b: Int, _ k: Int, _ row: UnsafeMutablePointer<O.T>,
                                      _ heap: UnsafeMutableBufferPointer<Int>) {
        for i in 0..<a {
            for lane in 0..<b {
                let base = src + i * r * b + lane
                if b == 1 { row.update(from: base, count: r) } else { for j in 0..<r { row[j] = base[j * b] } }
                // better(i, j): element i ranks before element j.
                @inline(__always) func better(_ p: Int, _ q: Int) -> Bool {
                    O.beats(row[p], row[q]) || (!O.beats(row[q], row[p]) && p < q)
                }
                var count = 0
                if k == 1 {
                    var best = 0
                    for j in 1..<Swift.max(r, 1) where better(j, best) { best = j }
                    heap[0] = best
                    count = 1
                } else if k * 8 > r {
                    for j in 0..<r { heap[j] = j }
                    var lo = 0, hi = r - 1
                    let kth = k - 1
                    while lo < hi {
                        let mid = lo + (hi - lo) / 2
                        // Median of three as the pivot.
                        var x = heap[lo], y = heap[mid], z = heap[hi]
                        if better(y, x) { swap(&x, &y) }
                        if better(z, y) { swap(&y, &z) }
                        if better(y, x) { swap(&x, &y) }
                        let pivot = y
                        var i = lo, j = hi
                        while i <= j {
                            while better(heap[i], pivot) { i += 1 }
                            while better(pivot, heap[j]) { j -= 1 }
                            if i <= j {
                                heap.swapAt(i, j)
                                i += 1
                                j -= 1
                            }
                        }
                        if kth <= j { hi = j } else if kth >= i { lo = i } else { break }
                    }
                    count = k
                    var kept = UnsafeMutableBufferPointer(rebasing: heap[0..<count])
                    kept.sort { better($0, $1) }
                } else {
                    for j in 0..<r {
                        if count < k {
                            heap[count] = j
                            var c = count
                            count += 1
                            while c > 0 {
                                let parent = (c - 1) / 2
                                if better(heap[parent], heap[c]) {
                                    heap.swapAt(parent, c)
                                    c = parent
                                } else { break }
                            }
                        } else if better(j, heap[0]) {
                            heap[0] = j
                            var c = 0
                            while true {
                                let l = 2 * c + 1, rr = l + 1
                                var worst = c
                                if l < count && better(heap[worst], heap[l]) { worst = l }
                                if rr < count && better(heap[worst], heap[rr]) { worst = rr }
                                if worst == c { break }
                                heap.swapAt(worst, c)
                                c = worst
                            }
                        }
                    }
                    var kept = UnsafeMutableBufferPointer(rebasing: heap[0..<count])
                    kept.sort { better($0, $1) }
                }
                let obase = i * k * b + lane
                for j in 0..<count {
                    vdst[obase + j * b] = row[heap[j]]
                    idst[obase + j * b] = Int64(heap[j])
                }
            }
        }
    }
}

/// The order TopK ranks values in (ties are then broken by the lower index).
private protocol TopKOrder {
    associatedtype T
    static func beats(_ a: T, _ b: T) -> Bool
}
// NaN ranks as the largest value, as in onnxruntime and NumPy's sort: first with largest = 1, last with
// largest = 0. (`x != x` holds only for NaN; for integers it folds away.) Plain `>` and `<` are false for every
// comparison with NaN, which made the order depend on where the NaN stood.
private enum TopKLargest<T: Comparable>: TopKOrder {
    @inline(__always) static func beats(_ a: T, _ b: T) -> Bool {
        if a != a { return b == b }
        if b != b { return false }
        return a > b
    }
}
private enum TopKSmallest<T: Comparable>: TopKOrder {
    @inline(__always) static func beats(_ a: T, _ b: T) -> Bool {
        if a != a { return false }
        if b != b { return true }
        return a < b
    }
}

// MARK: - Softmax, LogSoftmax, Hardmax

enum SoftmaxKind: Sendable { case softmax, logSoftmax, hardmax }

struct SoftmaxOp: Operator {
    let kind: SoftmaxKind
    let axis: Int
    /// Opset < 13: the input is coerced to 2-D at `axis` and the operation applies to whole rows.
    let flatten: Bool

    func run(_ inputs: [Tensor?], _ ctx: ExecutionContext) throws -> [Tensor] {
        let x = try inputs.required(0)
        let (a, r, b): (Int, Int, Int)
        if x.rank == 0 {
            (a, r, b) = (1, 1, 1)
        } else if flatten {
            let ax = axis < 0 ? axis + x.rank : axis
            guard ax >= 0 && ax <= x.rank else { throw EngineError(.invalidArgument, "axis \(axis) is out of range for rank \(x.rank)") }
            (a, r, b) = (x.shape[..<ax].reduce(1, *), x.shape[ax...].reduce(1, *), 1)
        } else {
            (a, r, b) = ReduceSupport.split(x.shape, try Shape.axis(axis, rank: x.rank))
        }
        switch x.dataType {
        case .float32: return [try SoftmaxOp.apply(kind, x, a, r, b, Float.self, ctx)]
        case .float64: return [try SoftmaxOp.apply(kind, x, a, r, b, Double.self, ctx)]
        case .float16, .bfloat16:
            let y = try SoftmaxOp.apply(kind, try FloatWidening.toFloat32(x, ctx), a, r, b, Float.self, ctx)
            return [try FloatWidening.fromFloat32(y, to: x.dataType, ctx)]
        default: throw EngineError(.typeMismatch, "\(kind) does not support \(x.dataType) tensors")
        }
    }

    /// Applies the operation to `x` viewed as [A, R, B] along R.
    static func apply<T: EngineFloat>(_ kind: SoftmaxKind, _ x: Tensor, _ a: Int, _ r: Int, _ b: Int, _: T.Type, _ ctx: ExecutionContext) throws -> Tensor {
        let out = try ctx.uninitialized(T.dataType, x.shape)
        if x.count == 0 { return out }
        let src = x.buffer(T.self).baseAddress!
        let dst = out.mutableBuffer(T.self).baseAddress!
        if kind == .hardmax {
            out.storage.base.initializeMemory(as: UInt8.self, repeating: 0, count: out.byteCount)
            argKernelForHardmax(src, dst, a, r, b)
            return out
        }
        if b == 1 {
            if T.self == Float.self {
                let s = UnsafeRawPointer(src).assumingMemoryBound(to: Float.self)
                let d = UnsafeMutableRawPointer(dst).assumingMemoryBound(to: Float.self)
                for i in 0..<a { softmaxRowFloat(kind, s + i * r, d + i * r, r) }
                return out
            }
            for i in 0..<a {
                let p = src + i * r, q = dst + i * r
                var m = -T.infinity
                for j in 0..<r where p[j] > m { m = p[j] }
                var sum = T(0)
                if kind == .softmax {
                    for j in 0..<r {
                        let e = SIMDRows.exp(p[j] - m)
                        q[j] = e
                        sum += e
                    }
                    let inv = 1 / sum
                    for j in 0..<r { q[j] *= inv }
                } else {
                    for j in 0..<r { sum += SIMDRows.exp(p[j] - m) }
                    let l = T.log(sum) + m
                    for j in 0..<r { q[j] = p[j] - l }
                }
            }
            return out
        }
        // Lanes: reduce along R with B contiguous accumulators.
        let m = UnsafeMutablePointer<T>.allocate(capacity: b)
        let s = UnsafeMutablePointer<T>.allocate(capacity: b)
        defer { m.deallocate(); s.deallocate() }
        for i in 0..<a {
            let base = src + i * r * b, obase = dst + i * r * b
            m.initialize(repeating: -T.infinity, count: b)
            s.initialize(repeating: 0, count: b)
            for j in 0..<r {
                let row = base + j * b
                for k in 0..<b where row[k] > m[k] { m[k] = row[k] }
            }
            if kind == .softmax {
                for j in 0..<r {
                    let row = base + j * b, orow = obase + j * b
                    for k in 0..<b { orow[k] = SIMDRows.exp(row[k] - m[k]) }
                    for k in 0..<b { s[k] += orow[k] }
                }
                for k in 0..<b { s[k] = 1 / s[k] }
                for j in 0..<r {
                    let orow = obase + j * b
                    for k in 0..<b { orow[k] *= s[k] }
                }
            } else {
                for j in 0..<r {
                    let row = base + j * b
                    for k in 0..<b { s[k] += SIMDRows.exp(row[k] - m[k]) }
                }
                for k in 0..<b { s[k] = T.log(s[k]) + m[k] }
                for j in 0..<r {
                    let row = base + j * b, orow = obase + j * b
                    for k in 0..<b { orow[k] = row[k] - s[k] }
                }
            }
        }
        return out
    }

    /// One contiguous float32 row: numerically stable (max subtracted), vectorised exp.
    @inline(__always)
    static func softmaxRowFloat(_ kind: SoftmaxKind, _ p: UnsafePointer<Float>, _ q: UnsafeMutablePointer<Float>, _ r: Int) {
        let m = SIMDRows.max(p, r)
        let sum = SIMDRows.expShiftSum(p, q, r, m)
        if kind == .softmax {
            let inv = 1 / sum
            for j in 0..<r { q[j] *= inv }
        } else {
            let l = Foundation.log(sum) + m
            for j in 0..<r { q[j] = p[j] - l }
        }
    }

    /// Writes 1 at the first maximum of each lane (dst is zero-filled).
    private static func argKernelForHardmax<T: EngineFloat>(_ src: UnsafePointer<T>, _ dst: UnsafeMutablePointer<T>, _ a: Int, _ r: Int, _ b: Int) {
        for i in 0..<a {
            for k in 0..<b {
                let base = src + i * r * b + k
                var best = base[0], bi = 0
                for j in 1..<Swift.max(r, 1) where base[j * b] > best {
                    best = base[j * b]
                    bi = j
                }
                dst[i * r * b + bi * b + k] = 1
            }
        }
    }
}

// MARK: - Registration

extension StandardOperators {
    static func registerReductions(_ r: inout OperatorRegistry) {
        let reductions: [(String, ReduceKind)] = [
            ("ReduceSum", .sum), ("ReduceMean", .mean), ("ReduceMax", .max), ("ReduceMin", .min), ("ReduceProd", .prod),
            ("ReduceL1", .l1), ("ReduceL2", .l2), ("ReduceLogSum", .logSum), ("ReduceLogSumExp", .logSumExp),
            ("ReduceSumSquare", .sumSquare),
        ]
        for (name, kind) in reductions {
            let inputSince = name == "ReduceSum" ? 13 : 18
            r.register(name) { c in
                let keep = try c.int("keepdims", default: 1) != 0
                let noop = try c.int("noop_with_empty_axes", default: 0) != 0
                var fixed: [Int]?
                if c.opset < inputSince {
                    fixed = try c.ints("axes") ?? []
                } else if !c.hasInput(1) {
                    fixed = []
                } else if c.constantInputs.count > 1, let t = c.constantInputs[1] {
                    fixed = try t.intValues()
                }
                return ReduceOp(kind: kind, fixedAxes: fixed, keepDims: keep, noopWithEmptyAxes: c.opset < inputSince ? false : noop)
            }
        }
        for (name, isMax) in [("ArgMax", true), ("ArgMin", false)] {
            r.register(name) { c in
                ArgExtremumOp(isMax: isMax, axis: try c.int("axis", default: 0), keepDims: try c.int("keepdims", default: 1) != 0,
                              selectLast: try c.int("select_last_index", default: 0) != 0)
            }
        }
        for (name, isProduct) in [("CumSum", false), ("CumProd", true)] {
            r.register(name) { c in
                CumulativeOp(isProduct: isProduct, exclusive: try c.int("exclusive", default: 0) != 0,
                             reverse: try c.int("reverse", default: 0) != 0)
            }
        }
        r.register("TopK") { c in
            if c.opset < 10 {
                guard let k = try c.int("k") else { throw c.error(.invalidModel, "TopK (opset \(c.opset)) needs the 'k' attribute") }
                return TopKOp(kAttr: k, axis: try c.int("axis", default: -1), largest: true)
            }
            return TopKOp(kAttr: nil, axis: try c.int("axis", default: -1), largest: try c.int("largest", default: 1) != 0)
        }
        let softmaxes: [(String, SoftmaxKind)] = [("Softmax", .softmax), ("LogSoftmax", .logSoftmax), ("Hardmax", .hardmax)]
        for (name, kind) in softmaxes {
            r.register(name) { c in
                if c.opset < 13 { return SoftmaxOp(kind: kind, axis: try c.int("axis", default: 1), flatten: true) }
                return SoftmaxOp(kind: kind, axis: try c.int("axis", default: -1), flatten: false)
            }
        }
    }
}

extension SoftmaxOp: ShapeInferring {
    func inferFacts(_ inputs: [ValueFact?], _ ctx: ShapeInferenceContext) throws -> [ValueFact] {
        guard let x = inputs.first ?? nil else { return [] }
        return [ValueFact(dataType: x.dataType, shape: x.shape)]
    }
}

extension ReduceOp: ShapeInferring {
    func inferFacts(_ inputs: [ValueFact?], _ ctx: ShapeInferenceContext) throws -> [ValueFact] {
        guard ctx.node.domain.isEmpty, ctx.node.opType.hasPrefix("Reduce") else { return [] }
        guard let x = inputs.first ?? nil else { return [] }
        var out = ValueFact(dataType: x.dataType)
        guard let s = x.shape else { return [out] }
        let inputSince = ctx.node.opType == "ReduceSum" ? 13 : 18
        let keep = ctx.int("keepdims", default: 1) != 0
        var axes: [Int]
        var noop = false
        if ctx.opset < inputSince {
            axes = ctx.ints("axes") ?? []
        } else if inputs.count > 1, inputs[1] != nil {
            guard let a = ctx.intValues(1, inputs) else {
                if keep { out.shape = s.map { _ in .unknown } }
                return [out]
            }
            axes = a
            noop = ctx.int("noop_with_empty_axes", default: 0) != 0
        } else {
            axes = []
            noop = ctx.int("noop_with_empty_axes", default: 0) != 0
        }
        if axes.isEmpty {
            if noop {
                out.shape = s
                return [out]
            }
            axes = Array(0..<s.count)
        }
        let reduced = Set(try axes.map { try ShapeFacts.axis($0, rank: Swift.max(s.count, 1)) })
        var dims: [DimFact] = []
        for (i, d) in s.enumerated() {
            if reduced.contains(i) {
                if keep { dims.append(.known(1)) }
            } else {
                dims.append(d)
            }
        }
        out.shape = dims
        return [out]
    }
}

extension ArgExtremumOp: ShapeInferring {
    func inferFacts(_ inputs: [ValueFact?], _ ctx: ShapeInferenceContext) throws -> [ValueFact] {
        guard ctx.is(["ArgMax", "ArgMin"]) else { return [] }
        guard let x = inputs.first ?? nil else { return [] }
        var out = ValueFact(dataType: .int64)
        guard let s = x.shape, !s.isEmpty else { return [out] }
        let a = try ShapeFacts.axis(ctx.int("axis", default: 0), rank: s.count)
        var dims = s
        if ctx.int("keepdims", default: 1) != 0 { dims[a] = .known(1) } else { dims.remove(at: a) }
        out.shape = dims
        return [out]
    }
}

extension CumulativeOp: ShapeInferring {
    func inferFacts(_ inputs: [ValueFact?], _ ctx: ShapeInferenceContext) throws -> [ValueFact] {
        guard let x = inputs.first ?? nil else { return [] }
        return [ValueFact(dataType: x.dataType, shape: x.shape)]
    }
}
