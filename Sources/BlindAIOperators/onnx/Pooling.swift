import BlindAITensor
import BlindAIKernels
import BlindAIGraph
import Foundation

// Pooling: MaxPool, AveragePool, LpPool, GlobalAveragePool/GlobalMaxPool/GlobalLpPool, MaxUnpool, MaxRoiPool and
// RoiAlign, over one window geometry (`PoolWindowAttributes.axis`) shared by the kernels and the shape facts.

// MARK: - Window geometry

/// The attributes shared by MaxPool, AveragePool and LpPool, parsed once at build time.
struct PoolWindowAttributes: Sendable {
    var kernel: [Int]
    var strides: [Int]
    var pads: [Int]
    var dilations: [Int]
    var autoPad: String
    var ceilMode: Bool

    init(_ c: OpBuildContext) throws {
        guard let k = try c.ints("kernel_shape"), !k.isEmpty else {
            throw c.error(.invalidModel, "\(c.node.opType) needs a 'kernel_shape' attribute")
        }
        guard k.allSatisfy({ $0 > 0 }) else { throw c.error(.invalidModel, "kernel_shape \(k) must be positive") }
        let n = k.count
        kernel = k
        strides = try c.ints("strides") ?? Array(repeating: 1, count: n)
        pads = try c.ints("pads") ?? Array(repeating: 0, count: 2 * n)
        dilations = try c.ints("dilations") ?? Array(repeating: 1, count: n)
        autoPad = try c.string("auto_pad", default: "NOTSET")
        ceilMode = try c.int("ceil_mode", default: 0) != 0
        guard strides.count == n, dilations.count == n, pads.count == 2 * n else {
            throw c.error(.invalidModel, "kernel_shape \(k), strides \(strides), dilations \(dilations) and pads \(pads) do not agree in rank")
        }
        guard strides.allSatisfy({ $0 > 0 }), dilations.allSatisfy({ $0 > 0 }), pads.allSatisfy({ $0 >= 0 }) else {
            throw c.error(.invalidModel, "strides \(strides) and dilations \(dilations) must be positive, pads \(pads) non-negative")
        }
        let limit = Int(Int32.max)
        guard (kernel + strides + pads + dilations).allSatisfy({ $0 <= limit }) else {
            throw c.error(.invalidModel, "pooling attributes are out of range")
        }
        guard Self.autoPadValues.contains(autoPad) else {
            throw c.error(.invalidModel, "unknown auto_pad '\(autoPad)'")
        }
    }
}

extension PoolWindowAttributes {
    /// `auto_pad` values of the pooling operators.
    static let autoPadValues: Set<String> = ["NOTSET", "", "VALID", "SAME_UPPER", "SAME_LOWER"]

    /// Output size and effective pads of one spatial axis under the ONNX pooling rules: the one computation the
    /// kernels (`PoolGeometry`) and the shape facts (`MaxPoolOp`/`AveragePoolOp.inferFacts`) share. Checked
    /// arithmetic: the facts see a model's attributes before any builder has bounded them.
    static func axis(input: Int, kernel k: Int, stride s: Int, dilation d: Int, padBegin: Int, padEnd: Int,
                     autoPad: String, ceilMode: Bool) throws -> (out: Int, padBegin: Int, padEnd: Int) {
        func ceilDiv(_ a: Int, _ b: Int) throws -> Int { a >= 0 ? try SizeMath.add(a, b - 1) / b : -((-a) / b) }
        let window = try SizeMath.add(SizeMath.mul(SizeMath.sub(k, 1), d), 1)
        var pb = padBegin, pe = padEnd
        var out: Int
        switch autoPad {
        case "VALID":
            pb = 0
            pe = 0
            out = input >= window ? (input - window) / s + 1 : 0
        case "SAME_UPPER", "SAME_LOWER":
            out = try ceilDiv(input, s)
            let total = Swift.max(0, try SizeMath.sub(SizeMath.add(SizeMath.mul(out - 1, s), window), input))
            pb = autoPad == "SAME_LOWER" ? (total + 1) / 2 : total / 2
            pe = total - pb
        default:
            let span = try SizeMath.sub(SizeMath.add(SizeMath.add(input, pb), pe), window)
            if span < 0 {
                out = 0
            } else if ceilMode {
                out = try ceilDiv(span, s) + 1
                if try SizeMath.mul(out - 1, s) >= SizeMath.add(input, pb) { out -= 1 }
            } else {
                out = span / s + 1
            }
        }
        return (Swift.max(out, 0), pb, pe)
    }
}

/// For one output position along one axis: the first valid input position, how many kernel taps fall inside the
/// input (stepping by the dilation), and how many fall inside the padded input (for count_include_pad).
struct PoolTap: Sendable {
    var first: Int
    var count: Int
    var padded: Int
}

/// Pooling over up to three spatial axes, always viewed as (D, H, W) with leading size-1 axes added.
struct PoolGeometry: Sendable {
    var batch: Int
    var channels: Int
    var inSize: [Int]   // 3
    var outSize: [Int]  // 3
    var dilation: [Int] // 3
    var taps: [[PoolTap]] // 3 axes, one per output index
    /// Kernel size, stride and leading pad of the innermost (width) axis.
    var kernelW = 1
    var strideW = 1
    var padW = 0
    var outShape: [Int]
    /// Column-major strides of the spatial input (for MaxPool storage_order = 1 indices).
    var spatialRank: Int

    static func ceilDiv(_ a: Int, _ b: Int) -> Int { a >= 0 ? (a + b - 1) / b : -((-a) / b) }

    init(input shape: [Int], _ a: PoolWindowAttributes, limits: TensorLimits) throws {
        let n = a.kernel.count
        guard shape.count == n + 2 else {
            throw EngineError(.shapeMismatch, "pooling input of shape \(shape) does not match kernel_shape \(a.kernel) (expected rank \(n + 2))")
        }
        guard n <= 3 else { throw EngineError(.invalidArgument, "pooling over \(n) spatial axes is not supported (at most 3)") }
        batch = shape[0]
        channels = shape[1]
        spatialRank = n
        var inS = [1, 1, 1], outS = [1, 1, 1], dil = [1, 1, 1]
        var allTaps: [[PoolTap]] = [[PoolTap(first: 0, count: 1, padded: 1)], [PoolTap(first: 0, count: 1, padded: 1)], [PoolTap(first: 0, count: 1, padded: 1)]]
        var outSpatial: [Int] = []
        for i in 0..<n {
            let input = shape[i + 2], k = a.kernel[i], s = a.strides[i], d = a.dilations[i]
            let (out, pb, pe) = try PoolWindowAttributes.axis(input: input, kernel: k, stride: s, dilation: d, padBegin: a.pads[i],
                                                              padEnd: a.pads[i + n], autoPad: a.autoPad, ceilMode: a.ceilMode)
            // Bound the output (and so the tap table) before building anything of its size.
            _ = try limits.checkedCount([shape[0], shape[1], out], .float32)
            var taps: [PoolTap] = []
            taps.reserveCapacity(out)
            for o in 0..<out {
                let start = o * s - pb
                let kmin = start >= 0 ? 0 : Self.ceilDiv(-start, d)
                let kend = input - start > 0 ? Swift.min(k, Self.ceilDiv(input - start, d)) : 0
                let padEnd = input + pe - start > 0 ? Swift.min(k, Self.ceilDiv(input + pe - start, d)) : 0
                let count = Swift.max(0, kend - kmin)
                taps.append(PoolTap(first: start + kmin * d, count: count, padded: padEnd))
            }
            let axis = 3 - n + i
            inS[axis] = input
            outS[axis] = out
            dil[axis] = d
            allTaps[axis] = taps
            if axis == 2 { kernelW = k; strideW = s; padW = pb }
            outSpatial.append(out)
        }
        inSize = inS
        outSize = outS
        dilation = dil
        taps = allTaps
        outShape = [batch, channels] + outSpatial
        _ = try limits.checkedCount(outShape, .float32)
    }
}

// MARK: - Kernels

enum PoolKernels {
    /// Max pooling of every (n, c) plane; writes flat argmax indices too when `indices` is given.
    static func max<T: Comparable & TensorElement>(_ x: UnsafePointer<T>, _ y: UnsafeMutablePointer<T>, _ g: PoolGeometry,
                                                   indices: UnsafeMutablePointer<Int64>?, columnMajor: Bool) {
        let D = g.inSize[0], H = g.inSize[1], W = g.inSize[2]
        let OD = g.outSize[0], OH = g.outSize[1], OW = g.outSize[2]
        let dd = g.dilation[0], dh = g.dilation[1], dw = g.dilation[2]
        let plane = D * H * W, outPlane = OD * OH * OW
        let planes = g.batch * g.channels
        g.taps[0].withUnsafeBufferPointer { tD in
        g.taps[1].withUnsafeBufferPointer { tH in
        g.taps[2].withUnsafeBufferPointer { tW in
            for p in 0..<planes {
                let src = x + p * plane
                var dst = y + p * outPlane
                var idx = indices.map { $0 + p * outPlane }
                for od in 0..<OD {
                    let td = tD[od]
                    for oh in 0..<OH {
                        let th = tH[oh]
                        for ow in 0..<OW {
                            let tw = tW[ow]
                            var best: T? = nil
                            var bestPos = -1
                            for kd in 0..<td.count {
                                let pd = td.first + kd * dd
                                for kh in 0..<th.count {
                                    let ph = th.first + kh * dh
                                    let rowStart = (pd * H + ph) * W + tw.first
                                    let row = src + rowStart
                                    if idx == nil {
                                        var kw = 0
                                        if best == nil, tw.count > 0 { best = row[0]; kw = 1 }
                                        guard var b = best else { continue }
                                        if dw == 1 {
                                            while kw < tw.count { let v = row[kw]; if v > b { b = v }; kw += 1 }
                                        } else {
                                            while kw < tw.count { let v = row[kw * dw]; if v > b { b = v }; kw += 1 }
                                        }
                                        best = b
                                    } else {
                                        for kw in 0..<tw.count {
                                            let v = row[kw * dw]
                                            if best == nil || v > best! {
                                                best = v
                                                bestPos = rowStart + kw * dw
                                            }
                                        }
                                    }
                                }
                            }
                            dst.pointee = best ?? T.zero
                            dst += 1
                            if let i = idx {
                                var flat = bestPos
                                if bestPos >= 0 {
                                    if columnMajor {
                                        let w = bestPos % W, h = (bestPos / W) % H, d = bestPos / (W * H)
                                        switch g.spatialRank {
                                        case 1: flat = w
                                        case 2: flat = h + w * H
                                        default: flat = d + h * D + w * D * H
                                        }
                                    }
                                    flat += p * plane
                                }
                                i.pointee = Int64(flat)
                                idx = i + 1
                            }
                        }
                    }
                }
            }
        }
        }
        }
    }

    /// acc[ow] = max(acc[ow], r[ow * sw]) for ow in lo..<hi (NaN inputs never win, as in onnxruntime).
    /// Written as selects over plain pointers so that the compiler vectorises it.
    @inline(__always)
    static func rowMax<T: BinaryFloatingPoint>(_ r: UnsafePointer<T>, _ acc: UnsafeMutablePointer<T>, _ lo: Int, _ hi: Int, _ sw: Int) {
        switch sw {
        case 1: for ow in lo..<hi { let v = r[ow], a = acc[ow]; acc[ow] = v > a ? v : a }
        case 2: for ow in lo..<hi { let v = r[2 &* ow], a = acc[ow]; acc[ow] = v > a ? v : a }
        default: for ow in lo..<hi { let v = r[ow &* sw], a = acc[ow]; acc[ow] = v > a ? v : a }
        }
    }

    /// acc[ow] += r[ow * sw] for ow in lo..<hi.
    @inline(__always)
    static func rowSum<T: BinaryFloatingPoint>(_ r: UnsafePointer<T>, _ acc: UnsafeMutablePointer<T>, _ lo: Int, _ hi: Int, _ sw: Int) {
        switch sw {
        case 1: for ow in lo..<hi { acc[ow] += r[ow] }
        case 2: for ow in lo..<hi { acc[ow] += r[2 &* ow] }
        default: for ow in lo..<hi { acc[ow] += r[ow &* sw] }
        }
    }

    /// Row-oriented pooling of float planes: each output row accumulates whole input rows, one kernel column at a
    /// time, so the inner loop runs over output columns with no per-element window arithmetic.
    /// kind: 0 max, 1 average, 2 Lp with p == 2, 3 Lp with general p.
    static func rows<T: BinaryFloatingPoint & TensorElement>(_ x: UnsafePointer<T>, _ y: UnsafeMutablePointer<T>, _ g: PoolGeometry,
                                                             kind: Int, countIncludePad: Bool, p: T) {
        let D = g.inSize[0], H = g.inSize[1], W = g.inSize[2]
        let OD = g.outSize[0], OH = g.outSize[1], OW = g.outSize[2]
        let dd = g.dilation[0], dh = g.dilation[1], dw = g.dilation[2]
        let sw = g.strideW, KW = g.kernelW
        let plane = D * H * W, outPlane = OD * OH * OW
        let planes = g.batch * g.channels
        if OW == 0 || outPlane == 0 { return }
        // Per kernel column: the source offset and the range of output columns whose tap lies inside the row.
        var colOffset = [Int](repeating: 0, count: KW), colLo = [Int](repeating: 0, count: KW), colHi = [Int](repeating: 0, count: KW)
        for kw in 0..<KW {
            let off = kw * dw - g.padW
            colOffset[kw] = off
            colLo[kw] = Swift.min(OW, Swift.max(0, PoolGeometry.ceilDiv(-off, sw)))
            colHi[kw] = W - 1 - off >= 0 ? Swift.min(OW, (W - 1 - off) / sw + 1) : 0
            if colHi[kw] < colLo[kw] { colHi[kw] = colLo[kw] }
        }
        // Per output column: the reciprocal of the divisor's width factor (0 for an empty window).
        var widthInverse = [T](repeating: 0, count: OW)
        for ow in 0..<OW {
            let t = g.taps[2][ow]
            let c = countIncludePad ? t.padded : t.count
            widthInverse[ow] = c > 0 ? 1 / T(c) : 0
        }
        let acc = UnsafeMutablePointer<T>.allocate(capacity: OW)
        defer { acc.deallocate() }
        let initial: T = kind == 0 ? -T.infinity : 0
        let invP = 1 / p
        for pl in 0..<planes {
            let src = x + pl * plane
            var dst = y + pl * outPlane
            for od in 0..<OD {
                let td = g.taps[0][od]
                for oh in 0..<OH {
                    let th = g.taps[1][oh]
                    acc.initialize(repeating: initial, count: OW)
                    for kd in 0..<td.count {
                        let pd = td.first &+ kd &* dd
                        for kh in 0..<th.count {
                            let row = src + ((pd &* H &+ th.first &+ kh &* dh) &* W)
                            for kw in 0..<KW {
                                let lo = colLo[kw], hi = colHi[kw]
                                if lo >= hi { continue }
                                let r = row + colOffset[kw]
                                switch kind {
                                case 0: rowMax(r, acc, lo, hi, sw)
                                case 1: rowSum(r, acc, lo, hi, sw)
                                case 2:
                                    for ow in lo..<hi { let v = r[ow &* sw]; acc[ow] += v * v }
                                default:
                                    for ow in lo..<hi { acc[ow] += T(Foundation.pow(Double(Swift.abs(r[ow &* sw])), Double(p))) }
                                }
                            }
                        }
                    }
                    switch kind {
                    case 0:
                        // A window with no input element (only possible with pads >= kernel) gives 0.
                        for ow in 0..<OW { dst[ow] = acc[ow] == -T.infinity && g.taps[2][ow].count == 0 ? 0 : acc[ow] }
                    case 1:
                        let hd = countIncludePad ? td.padded * th.padded : td.count * th.count
                        let hInv: T = hd > 0 ? 1 / T(hd) : 0
                        widthInverse.withUnsafeBufferPointer { wi in
                            for ow in 0..<OW { dst[ow] = acc[ow] * (hInv * wi[ow]) }
                        }
                    case 2:
                        for ow in 0..<OW { dst[ow] = acc[ow].squareRoot() }
                    default:
                        for ow in 0..<OW { dst[ow] = T(Foundation.pow(Double(acc[ow]), Double(invP))) }
                    }
                    dst += OW
                }
            }
        }
    }

}

// MARK: - Operators

struct MaxPoolOp: Operator {
    let attrs: PoolWindowAttributes
    let columnMajor: Bool
    let wantIndices: Bool

    func run(_ inputs: [Tensor?], _ ctx: ExecutionContext) throws -> [Tensor] {
        let x = try inputs.required(0)
        let g = try PoolGeometry(input: x.shape, attrs, limits: ctx.limits)
        switch x.dataType {
        case .float32: return try poolFloat(x, g, Float.self, ctx)
        case .float64: return try poolFloat(x, g, Double.self, ctx)
        case .float16: return try pool(x, g, Float16.self, ctx)
        case .int8: return try pool(x, g, Int8.self, ctx)
        case .uint8: return try pool(x, g, UInt8.self, ctx)
        case .int32: return try pool(x, g, Int32.self, ctx)
        case .int64: return try pool(x, g, Int64.self, ctx)
        default: throw EngineError(.typeMismatch, "MaxPool does not support \(x.dataType) tensors")
        }
    }

    func poolFloat<T: BinaryFloatingPoint & TensorElement>(_ x: Tensor, _ g: PoolGeometry, _: T.Type, _ ctx: ExecutionContext) throws -> [Tensor] {
        if wantIndices { return try pool(x, g, T.self, ctx) }
        let y = try ctx.uninitialized(x.dataType, g.outShape)
        PoolKernels.rows(x.buffer(T.self).baseAddress!, y.mutableBuffer(T.self).baseAddress!, g, kind: 0, countIncludePad: false, p: 1)
        return [y]
    }

    func pool<T: Comparable & TensorElement>(_ x: Tensor, _ g: PoolGeometry, _: T.Type, _ ctx: ExecutionContext) throws -> [Tensor] {
        let y = try ctx.uninitialized(x.dataType, g.outShape)
        let src = x.buffer(T.self).baseAddress!, dst = y.mutableBuffer(T.self).baseAddress!
        if wantIndices {
            let ind = try ctx.uninitialized(.int64, g.outShape)
            PoolKernels.max(src, dst, g, indices: ind.mutableBuffer(Int64.self).baseAddress!, columnMajor: columnMajor)
            return [y, ind]
        }
        PoolKernels.max(src, dst, g, indices: nil, columnMajor: false)
        return [y]
    }
}

struct AveragePoolOp: Operator {
    let attrs: PoolWindowAttributes
    let countIncludePad: Bool
    /// nil for AveragePool; the norm's p for LpPool.
    let p: Float?

    func run(_ inputs: [Tensor?], _ ctx: ExecutionContext) throws -> [Tensor] {
        let x = try inputs.required(0)
        let g = try PoolGeometry(input: x.shape, attrs, limits: ctx.limits)
        switch x.dataType {
        case .float32: return [try pool(x, g, Float.self, ctx)]
        case .float64: return [try pool(x, g, Double.self, ctx)]
        case .float16: return [try FloatWidening.toFloat16(try pool(try FloatWidening.toFloat32(x, ctx), g, Float.self, ctx), ctx)]
        default: throw EngineError(.typeMismatch, "\(p == nil ? "AveragePool" : "LpPool") does not support \(x.dataType) tensors")
        }
    }

    func pool<T: BinaryFloatingPoint & TensorElement>(_ x: Tensor, _ g: PoolGeometry, _: T.Type, _ ctx: ExecutionContext) throws -> Tensor {
        let y = try ctx.uninitialized(x.dataType, g.outShape)
        let kind = p == nil ? 1 : (p == 2 ? 2 : 3)
        PoolKernels.rows(x.buffer(T.self).baseAddress!, y.mutableBuffer(T.self).baseAddress!, g,
                         kind: kind, countIncludePad: countIncludePad, p: T(p ?? 1))
        return y
    }
}

/// GlobalAveragePool, GlobalMaxPool, GlobalLpPool: one value per (n, c) plane.
struct GlobalPoolOp: Operator {
    enum Kind: Sendable { case average, max, lp(Float) }
    let kind: Kind

    func run(_ inputs: [Tensor?], _ ctx: ExecutionContext) throws -> [Tensor] {
        let x = try inputs.required(0)
        guard x.rank >= 2 else { throw EngineError(.shapeMismatch, "global pooling needs an input of rank >= 2, got \(x.shape)") }
        switch x.dataType {
        case .float32: return [try pool(x, Float.self, ctx)]
        case .float64: return [try pool(x, Double.self, ctx)]
        case .float16: return [try FloatWidening.toFloat16(try pool(try FloatWidening.toFloat32(x, ctx), Float.self, ctx), ctx)]
        default: throw EngineError(.typeMismatch, "global pooling does not support \(x.dataType) tensors")
        }
    }

    func pool<T: BinaryFloatingPoint & TensorElement>(_ x: Tensor, _: T.Type, _ ctx: ExecutionContext) throws -> Tensor {
        let planes = x.shape[0] * x.shape[1]
        let size = x.shape.dropFirst(2).reduce(1, *)
        let y = try ctx.uninitialized(x.dataType, Array(x.shape.prefix(2)) + Array(repeating: 1, count: x.rank - 2))
        let src = x.buffer(T.self).baseAddress!, dst = y.mutableBuffer(T.self).baseAddress!
        for pl in 0..<planes {
            let s = src + pl * size
            switch kind {
            case .average:
                var acc: T = 0
                for i in 0..<size { acc += s[i] }
                dst[pl] = size > 0 ? acc / T(size) : 0
            case .max:
                guard size > 0 else { dst[pl] = 0; continue }
                var m = s[0]
                for i in 1..<size where s[i] > m { m = s[i] }
                dst[pl] = m
            case .lp(let p):
                var acc: T = 0
                if p == 2 {
                    for i in 0..<size { acc += s[i] * s[i] }
                    dst[pl] = acc.squareRoot()
                } else {
                    let pd = Double(p)
                    for i in 0..<size { acc += T(Foundation.pow(Double(Swift.abs(s[i])), pd)) }
                    dst[pl] = T(Foundation.pow(Double(acc), 1 / pd))
                }
            }
        }
        return y
    }
}

/// MaxUnpool(X, I, output_shape?): scatters X into zeros at the flat positions I.
struct MaxUnpoolOp: Operator {
    let kernel: [Int]
    let strides: [Int]
    let pads: [Int]

    func run(_ inputs: [Tensor?], _ ctx: ExecutionContext) throws -> [Tensor] {
        let x = try inputs.required(0), ind = try inputs.required(1, "I")
        let n = kernel.count
        guard x.rank == n + 2 else { throw EngineError(.shapeMismatch, "MaxUnpool input of shape \(x.shape) does not match kernel_shape \(kernel)") }
        guard ind.shape == x.shape else { throw EngineError(.shapeMismatch, "MaxUnpool indices shape \(ind.shape) differs from input shape \(x.shape)") }
        var shape = Array(x.shape.prefix(2))
        for i in 0..<n {
            shape.append((x.shape[i + 2] - 1) * strides[i] - (pads[i] + pads[i + n]) + kernel[i])
        }
        let inferred = shape
        if let os = inputs.optional(2) {
            let v = try os.intValues()
            guard v.count == x.rank else { throw EngineError(.shapeMismatch, "MaxUnpool output_shape \(v) must have rank \(x.rank)") }
            guard zip(v, inferred).allSatisfy({ $0 >= $1 }) else {
                throw EngineError(.shapeMismatch, "MaxUnpool output_shape \(v) is smaller than the unpooled shape \(inferred)")
            }
            shape = v
        }
        // Indices address the unpooled (inferred) shape; a larger output_shape pads it at the end of each axis.
        let scratch = try ctx.zeros(x.dataType, inferred)
        let idx = try ind.intValues()
        let size = x.dataType.byteSize
        let src = x.storage.base, dst = scratch.storage.base
        let total = scratch.count
        for i in 0..<x.count {
            let j = idx[i]
            guard j >= 0 && j < total else {
                throw EngineError(.invalidArgument, "MaxUnpool index \(j) is out of range for an unpooled tensor of \(total) elements")
            }
            (dst + j * size).copyMemory(from: src + i * size, byteCount: size)
        }
        if shape == inferred { return [scratch] }
        let y = try ctx.zeros(x.dataType, shape)
        let rank = shape.count
        let rowBytes = inferred[rank - 1] * size
        let outStrides = Shape.strides(shape)
        let rows = inferred.dropLast().reduce(1, *)
        var index = [Int](repeating: 0, count: rank - 1)
        for r in 0..<rows {
            var o = 0
            for d in 0..<(rank - 1) { o += index[d] * outStrides[d] }
            (y.storage.base + o * size).copyMemory(from: dst + r * rowBytes, byteCount: rowBytes)
            var d = rank - 2
            while d >= 0 {
                index[d] += 1
                if index[d] < inferred[d] { break }
                index[d] = 0
                d -= 1
            }
        }
        return [y]
    }
}

/// MaxRoiPool(X, rois): max over each region of interest divided into pooled_shape bins.
struct MaxRoiPoolOp: Operator {
    let pooled: [Int]
    let spatialScale: Float

    func run(_ inputs: [Tensor?], _ ctx: ExecutionContext) throws -> [Tensor] {
        let x = try inputs.required(0), rois = try inputs.required(1, "rois")
        guard x.rank == 4 else { throw EngineError(.shapeMismatch, "MaxRoiPool needs an NCHW input, got \(x.shape)") }
        guard rois.rank == 2, rois.shape[1] == 5 else { throw EngineError(.shapeMismatch, "MaxRoiPool rois must be [num_rois, 5], got \(rois.shape)") }
        switch x.dataType {
        case .float32: return [try pool(x, rois, Float.self, ctx)]
        case .float64: return [try pool(x, rois, Double.self, ctx)]
        default: throw EngineError(.typeMismatch, "MaxRoiPool does not support \(x.dataType) tensors")
        }
    }

    func pool<T: BinaryFloatingPoint & TensorElement>(_ x: Tensor, _ rois: Tensor, _: T.Type, _ ctx: ExecutionContext) throws -> Tensor {
        let N = x.shape[0], C = x.shape[1], H = x.shape[2], W = x.shape[3]
        let PH = pooled[0], PW = pooled[1]
        let R = rois.shape[0]
        let r = try rois.doubleValues()
        let scale = Double(spatialScale)
        guard r.allSatisfy({ $0.isFinite && Swift.abs($0 * scale) < 1e9 && Swift.abs($0) < 1e9 }) else {
            throw EngineError(.invalidArgument, "MaxRoiPool rois must be finite coordinates")
        }
        let y = try ctx.uninitialized(x.dataType, [R, C, PH, PW])
        let src = x.buffer(T.self).baseAddress!, dst = y.mutableBuffer(T.self).baseAddress!
        for n in 0..<R {
            let b = Int(r[n * 5])
            guard b >= 0 && b < N else { throw EngineError(.invalidArgument, "MaxRoiPool batch index \(b) out of range for batch \(N)") }
            let sw = Int((r[n * 5 + 1] * scale).rounded()), sh = Int((r[n * 5 + 2] * scale).rounded())
            let ew = Int((r[n * 5 + 3] * scale).rounded()), eh = Int((r[n * 5 + 4] * scale).rounded())
            let rh = Swift.max(eh - sh + 1, 1), rw = Swift.max(ew - sw + 1, 1)
            let binH = Double(rh) / Double(PH), binW = Double(rw) / Double(PW)
            for c in 0..<C {
                let plane = src + (b * C + c) * H * W
                let out = dst + ((n * C + c) * PH) * PW
                for ph in 0..<PH {
                    let hs = Swift.min(Swift.max(Int((Double(ph) * binH).rounded(.down)) + sh, 0), H)
                    let he = Swift.min(Swift.max(Int((Double(ph + 1) * binH).rounded(.up)) + sh, 0), H)
                    for pw in 0..<PW {
                        let ws = Swift.min(Swift.max(Int((Double(pw) * binW).rounded(.down)) + sw, 0), W)
                        let we = Swift.min(Swift.max(Int((Double(pw + 1) * binW).rounded(.up)) + sw, 0), W)
                        if he <= hs || we <= ws { out[ph * PW + pw] = 0; continue }
                        var m = -T.greatestFiniteMagnitude
                        for h in hs..<he { for w in ws..<we where plane[h * W + w] > m { m = plane[h * W + w] } }
                        out[ph * PW + pw] = m
                    }
                }
            }
        }
        return y
    }
}

/// One bilinear sample of RoiAlign: four input positions and their weights.
struct RoiAlignSample {
    var p1: Int, p2: Int, p3: Int, p4: Int
    var w1: Double, w2: Double, w3: Double, w4: Double
}

/// RoiAlign(X, rois, batch_indices): bilinear sampling averaged (or maxed) over each output bin.
struct RoiAlignOp: Operator {
    let outputHeight: Int
    let outputWidth: Int
    let samplingRatio: Int
    let spatialScale: Float
    let isMax: Bool
    let halfPixel: Bool

    func run(_ inputs: [Tensor?], _ ctx: ExecutionContext) throws -> [Tensor] {
        let x = try inputs.required(0), rois = try inputs.required(1, "rois"), bi = try inputs.required(2, "batch_indices")
        guard x.rank == 4 else { throw EngineError(.shapeMismatch, "RoiAlign needs an NCHW input, got \(x.shape)") }
        guard rois.rank == 2, rois.shape[1] == 4 else { throw EngineError(.shapeMismatch, "RoiAlign rois must be [num_rois, 4], got \(rois.shape)") }
        guard bi.count == rois.shape[0] else { throw EngineError(.shapeMismatch, "RoiAlign has \(rois.shape[0]) rois but \(bi.count) batch indices") }
        switch x.dataType {
        case .float32: return [try align(x, rois, bi, Float.self, ctx)]
        case .float64: return [try align(x, rois, bi, Double.self, ctx)]
        case .float16: return [try FloatWidening.toFloat16(try align(try FloatWidening.toFloat32(x, ctx), rois, bi, Float.self, ctx), ctx)]
        default: throw EngineError(.typeMismatch, "RoiAlign does not support \(x.dataType) tensors")
        }
    }

    func align<T: BinaryFloatingPoint & TensorElement>(_ x: Tensor, _ rois: Tensor, _ bi: Tensor, _: T.Type, _ ctx: ExecutionContext) throws -> Tensor {
        let N = x.shape[0], C = x.shape[1], H = x.shape[2], W = x.shape[3]
        let PH = outputHeight, PW = outputWidth
        let R = rois.shape[0]
        let r = try rois.doubleValues()
        let batches = try bi.intValues()
        let y = try ctx.uninitialized(x.dataType, [R, C, PH, PW])
        let src = x.buffer(T.self).baseAddress!, dst = y.mutableBuffer(T.self).baseAddress!
        let scale = Double(spatialScale)
        guard r.allSatisfy({ $0.isFinite && Swift.abs($0 * scale) < 1e9 }) else {
            throw EngineError(.invalidArgument, "RoiAlign rois must be finite coordinates")
        }
        let offset = halfPixel ? 0.5 : 0
        for n in 0..<R {
            let b = batches[n]
            guard b >= 0 && b < N else { throw EngineError(.invalidArgument, "RoiAlign batch index \(b) out of range for batch \(N)") }
            let sw = r[n * 4] * scale - offset, sh = r[n * 4 + 1] * scale - offset
            let ew = r[n * 4 + 2] * scale - offset, eh = r[n * 4 + 3] * scale - offset
            var rw = ew - sw, rh = eh - sh
            if !halfPixel { rw = Swift.max(rw, 1); rh = Swift.max(rh, 1) }
            let binH = rh / Double(PH), binW = rw / Double(PW)
            let gh = samplingRatio > 0 ? samplingRatio : Int((rh / Double(PH)).rounded(.up))
            let gw = samplingRatio > 0 ? samplingRatio : Int((rw / Double(PW)).rounded(.up))
            guard gh >= 0, gw >= 0, gh <= 1 << 12, gw <= 1 << 12, PH * PW * gh * gw <= 1 << 26 else {
                throw EngineError(.memoryLimit, "RoiAlign sampling grid \(gh)x\(gw) per bin is too large")
            }
            let count = Double(Swift.max(gh * gw, 1))
            // Sampling positions and weights, shared by every channel.
            var samples: [RoiAlignSample] = []
            samples.reserveCapacity(PH * PW * gh * gw)
            for ph in 0..<PH {
                for pw in 0..<PW {
                    for iy in 0..<gh {
                        let yy = sh + Double(ph) * binH + (Double(iy) + 0.5) * binH / Double(gh)
                        for ix in 0..<gw {
                            var xx = sw + Double(pw) * binW + (Double(ix) + 0.5) * binW / Double(gw)
                            if yy < -1 || yy > Double(H) || xx < -1 || xx > Double(W) {
                                samples.append(RoiAlignSample(p1: 0, p2: 0, p3: 0, p4: 0, w1: 0, w2: 0, w3: 0, w4: 0))
                                continue
                            }
                            let y0 = Swift.max(yy, 0)
                            xx = Swift.max(xx, 0)
                            var yl = Int(y0), xl = Int(xx)
                            var yv = y0
                            let yh: Int, xh: Int
                            if yl >= H - 1 { yl = H - 1; yh = H - 1; yv = Double(yl) } else { yh = yl + 1 }
                            if xl >= W - 1 { xl = W - 1; xh = W - 1; xx = Double(xl) } else { xh = xl + 1 }
                            let ly = yv - Double(yl), lx = xx - Double(xl)
                            let hy = 1 - ly, hx = 1 - lx
                            samples.append(RoiAlignSample(p1: yl * W + xl, p2: yl * W + xh, p3: yh * W + xl, p4: yh * W + xh,
                                                  w1: hy * hx, w2: hy * lx, w3: ly * hx, w4: ly * lx))
                        }
                    }
                }
            }
            for c in 0..<C {
                let plane = src + (b * C + c) * H * W
                let out = dst + (n * C + c) * PH * PW
                var si = 0
                for o in 0..<(PH * PW) {
                    var acc = 0.0
                    var first = true
                    for _ in 0..<(gh * gw) {
                        let s = samples[si]
                        si += 1
                        if isMax {
                            let a: Double = s.w1 * Double(plane[s.p1]), b: Double = s.w2 * Double(plane[s.p2])
                            let c: Double = s.w3 * Double(plane[s.p3]), d: Double = s.w4 * Double(plane[s.p4])
                            let v = Swift.max(Swift.max(a, b), Swift.max(c, d))
                            if first || v > acc { acc = v }
                            first = false
                        } else {
                            let a: Double = s.w1 * Double(plane[s.p1]), b: Double = s.w2 * Double(plane[s.p2])
                            let c: Double = s.w3 * Double(plane[s.p3]), d: Double = s.w4 * Double(plane[s.p4])
                            acc += (a + b) + (c + d)
                        }
                    }
                    out[o] = T(isMax ? acc : acc / count)
                }
            }
        }
        return y
    }
}

extension StandardOperators {
    static func registerPooling(_ r: inout OperatorRegistry) {
        r.register("MaxPool") { c in
            let a = try PoolWindowAttributes(c)
            let order = try c.int("storage_order", default: 0)
            return MaxPoolOp(attrs: a, columnMajor: order == 1, wantIndices: c.outputCount > 1 && !c.node.outputs[1].isEmpty)
        }
        r.register("AveragePool") { c in
            AveragePoolOp(attrs: try PoolWindowAttributes(c), countIncludePad: try c.int("count_include_pad", default: 0) != 0, p: nil)
        }
        r.register("LpPool") { c in
            AveragePoolOp(attrs: try PoolWindowAttributes(c), countIncludePad: false, p: try c.float("p", default: 2))
        }
        r.register("GlobalAveragePool") { _ in GlobalPoolOp(kind: .average) }
        r.register("GlobalMaxPool") { _ in GlobalPoolOp(kind: .max) }
        r.register("GlobalLpPool") { c in GlobalPoolOp(kind: .lp(try c.float("p", default: 2))) }
        r.register("MaxUnpool") { c in
            guard let k = try c.ints("kernel_shape"), !k.isEmpty else { throw c.error(.invalidModel, "MaxUnpool needs 'kernel_shape'") }
            let strides = try c.ints("strides") ?? Array(repeating: 1, count: k.count)
            let pads = try c.ints("pads") ?? Array(repeating: 0, count: 2 * k.count)
            guard strides.count == k.count, pads.count == 2 * k.count else { throw c.error(.invalidModel, "MaxUnpool attributes do not agree in rank") }
            guard (k + strides + pads).allSatisfy({ $0 >= 0 && $0 <= Int(Int32.max) }) else { throw c.error(.invalidModel, "MaxUnpool attributes are out of range") }
            return MaxUnpoolOp(kernel: k, strides: strides, pads: pads)
        }
        r.register("MaxRoiPool") { c in
            guard let ps = try c.ints("pooled_shape"), ps.count == 2, ps.allSatisfy({ $0 > 0 }) else {
                throw c.error(.invalidModel, "MaxRoiPool needs a positive 2-element 'pooled_shape'")
            }
            return MaxRoiPoolOp(pooled: ps, spatialScale: try c.float("spatial_scale", default: 1))
        }
        r.register("RoiAlign") { c in
            let mode = try c.string("mode", default: "avg")
            guard mode == "avg" || mode == "max" else { throw c.error(.invalidModel, "RoiAlign mode must be avg or max, got '\(mode)'") }
            let ctm = c.opset >= 16 ? try c.string("coordinate_transformation_mode", default: "half_pixel") : "output_half_pixel"
            let oh = try c.int("output_height", default: 1), ow = try c.int("output_width", default: 1)
            guard oh > 0, ow > 0, oh <= 1 << 24, ow <= 1 << 24 else {
                throw c.error(.invalidModel, "RoiAlign output size \(oh)x\(ow) must be positive and at most \(1 << 24)")
            }
            return RoiAlignOp(outputHeight: oh, outputWidth: ow, samplingRatio: try c.int("sampling_ratio", default: 0),
                              spatialScale: try c.float("spatial_scale", default: 1), isMax: mode == "max", halfPixel: ctm == "half_pixel")
        }
    }
}

extension MaxPoolOp: ShapeInferring {
    func inferFacts(_ inputs: [ValueFact?], _ ctx: ShapeInferenceContext) throws -> [ValueFact] {
        guard ctx.is(["MaxPool"]) else { return [] }
        guard let x = inputs.first ?? nil else { return [] }
        let y = try poolFacts(x, ctx)
        return [y, ValueFact(dataType: .int64, shape: y.shape)]
    }
}

extension AveragePoolOp: ShapeInferring {
    func inferFacts(_ inputs: [ValueFact?], _ ctx: ShapeInferenceContext) throws -> [ValueFact] {
        guard ctx.is(["AveragePool", "LpPool"]) else { return [] }
        guard let x = inputs.first ?? nil else { return [] }
        return [try poolFacts(x, ctx)]
    }
}

extension GlobalPoolOp: ShapeInferring {
    func inferFacts(_ inputs: [ValueFact?], _ ctx: ShapeInferenceContext) throws -> [ValueFact] {
        guard let x = inputs.first ?? nil else { return [] }
        guard let s = x.shape, s.count >= 2 else { return [ValueFact(dataType: x.dataType)] }
        return [ValueFact(dataType: x.dataType, shape: [s[0], s[1]] + Array(repeating: .known(1), count: s.count - 2))]
    }
}

/// Output facts of a windowed pooling node, from the same `PoolWindowAttributes.axis` the kernel uses.
private func poolFacts(_ x: ValueFact, _ ctx: ShapeInferenceContext) throws -> ValueFact {
    var out = ValueFact(dataType: x.dataType)
    guard let k = ctx.ints("kernel_shape"), !k.isEmpty, let s = x.shape, s.count == k.count + 2 else { return out }
    let n = k.count
    let strides = ctx.ints("strides") ?? Array(repeating: 1, count: n)
    let pads = ctx.ints("pads") ?? Array(repeating: 0, count: 2 * n)
    let dilations = ctx.ints("dilations") ?? Array(repeating: 1, count: n)
    guard strides.count == n, pads.count == 2 * n, dilations.count == n, strides.allSatisfy({ $0 > 0 }), dilations.allSatisfy({ $0 > 0 }) else {
        throw ShapeFacts.Unknowable()
    }
    let autoPad = ctx.string("auto_pad") ?? "NOTSET"
    guard PoolWindowAttributes.autoPadValues.contains(autoPad) else { throw ShapeFacts.Unknowable() }
    let ceilMode = ctx.int("ceil_mode", default: 0) != 0
    var dims = [s[0], s[1]]
    for i in 0..<n {
        guard let input = s[i + 2].value else { dims.append(.unknown); continue }
        dims.append(.known(try PoolWindowAttributes.axis(input: input, kernel: k[i], stride: strides[i], dilation: dilations[i],
                                                         padBegin: pads[i], padEnd: pads[i + n], autoPad: autoPad, ceilMode: ceilMode).out))
    }
    out.shape = dims
    return out
}
