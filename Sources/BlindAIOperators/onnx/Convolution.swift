import BlindAITensor
import BlindAIKernels
import BlindAIGraph
import CBlindAIKernels

// Convolutions: Conv, ConvTranspose, ConvInteger, QLinearConv and DeformConv, over one geometry (`ConvGeometry`)
// shared by the kernels and the shape facts.

/// Attributes shared by Conv, ConvTranspose, ConvInteger, QLinearConv and DeformConv, parsed at build time.
struct ConvAttributes: Sendable {
    enum AutoPad: Sendable { case notSet, sameUpper, sameLower, valid }
    var autoPad: AutoPad = .notSet
    var dilations: [Int]?
    var group = 1
    var kernelShape: [Int]?
    var pads: [Int]?
    var strides: [Int]?
    var outputPadding: [Int]?
    var outputShape: [Int]?

    init(_ c: OpBuildContext) throws {
        let pad = try c.string("auto_pad", default: "NOTSET")
        guard let a = AutoPad(onnx: pad) else { throw c.error(.invalidModel, "unknown auto_pad '\(pad)'") }
        autoPad = a
        dilations = try c.ints("dilations")
        group = try c.int("group", default: 1)
        guard group >= 1 else { throw c.error(.invalidModel, "group must be >= 1, got \(group)") }
        kernelShape = try c.ints("kernel_shape")
        pads = try c.ints("pads")
        strides = try c.ints("strides")
        outputPadding = try c.ints("output_padding")
        outputShape = try c.ints("output_shape")
        for (name, v) in [("dilations", dilations), ("strides", strides)] {
            if let v, v.contains(where: { $0 < 1 }) { throw c.error(.invalidModel, "\(name) must be positive, got \(v)") }
        }
        if let p = pads, p.contains(where: { $0 < 0 }) { throw c.error(.invalidModel, "pads must be non-negative, got \(p)") }
        if let k = kernelShape, k.contains(where: { $0 < 1 }) { throw c.error(.invalidModel, "kernel_shape must be positive, got \(k)") }
        if let p = outputPadding, p.contains(where: { $0 < 0 }) { throw c.error(.invalidModel, "output_padding must be non-negative, got \(p)") }
        // Bound every size-like attribute so that the geometry arithmetic cannot overflow.
        let limit = 1 << 24
        for (name, v) in [("dilations", dilations), ("strides", strides), ("pads", pads), ("kernel_shape", kernelShape),
                          ("output_padding", outputPadding), ("output_shape", outputShape)] {
            if let v, v.contains(where: { $0 > limit }) { throw c.error(.invalidModel, "\(name) \(v) has a value over \(limit)") }
        }
        // group multiplies the weight's channels (w[1] * group): bounded like the sizes above.
        guard group <= limit else { throw c.error(.invalidModel, "group \(group) is over \(limit)") }
    }

    /// Per-dimension values of an optional attribute, checked to have `rank` entries.
    func values(_ v: [Int]?, _ name: String, rank: Int, default d: Int) throws -> [Int] {
        guard let v else { return [Int](repeating: d, count: rank) }
        guard v.count == rank else {
            throw EngineError(.invalidArgument, "\(name) has \(v.count) values, expected \(rank) (one per spatial dimension)")
        }
        return v
    }
}

extension ConvAttributes.AutoPad {
    /// The `auto_pad` attribute's value, or nil for an unknown one.
    init?(onnx value: String) {
        switch value {
        case "NOTSET", "": self = .notSet
        case "SAME_UPPER": self = .sameUpper
        case "SAME_LOWER": self = .sameLower
        case "VALID": self = .valid
        default: return nil
        }
    }
}

/// The geometry of a convolution, normalised to three spatial dimensions (leading dimensions of size 1).
struct ConvGeometry {
    /// Output size and effective pads of one spatial axis of a convolution: the one computation the kernels
    /// (`ConvGeometry.init`) and the shape facts (`ConvOp.inferFacts`) share. Checked arithmetic: the facts see a
    /// model's attributes before any builder has bounded them. A kernel larger than the padded input is a
    /// shape mismatch.
    static func axis(input: Int, kernel k: Int, stride s: Int, dilation d: Int, padBegin: Int, padEnd: Int,
                     autoPad: ConvAttributes.AutoPad) throws -> (out: Int, padBegin: Int, padEnd: Int) {
        let eff = try SizeMath.add(SizeMath.mul(SizeMath.sub(k, 1), d), 1)
        var pb = padBegin, pe = padEnd
        switch autoPad {
        case .valid:
            pb = 0
            pe = 0
        case .sameUpper, .sameLower:
            let target = try SizeMath.add(input, s - 1) / s
            let needed = Swift.max(0, try SizeMath.sub(SizeMath.add(SizeMath.mul(target - 1, s), eff), input))
            pb = autoPad == .sameLower ? (needed + 1) / 2 : needed / 2
            pe = needed - pb
        case .notSet:
            break
        }
        let span = try SizeMath.sub(SizeMath.add(SizeMath.add(input, pb), pe), eff)
        guard span >= 0 else {
            throw EngineError(.shapeMismatch, "kernel size \(k) (dilation \(d)) is larger than the padded input \(input) (pads \(pb), \(pe))")
        }
        return (span / s + 1, pb, pe)
    }

    var batch = 0, cIn = 0, cOut = 0, group = 1
    var spatialRank = 0
    /// Input and output spatial sizes, kernel, strides, dilations, leading pads (3 entries each, D H W).
    var inSize = [1, 1, 1], outSize = [1, 1, 1], kernel = [1, 1, 1]
    var stride = [1, 1, 1], dilation = [1, 1, 1], padBegin = [0, 0, 0]
    var outShape: [Int] = []

    var inSpatial: Int { inSize[0] * inSize[1] * inSize[2] }
    var outSpatial: Int { outSize[0] * outSize[1] * outSize[2] }
    var kernelSize: Int { kernel[0] * kernel[1] * kernel[2] }
    var cInPerGroup: Int { cIn / group }
    var cOutPerGroup: Int { cOut / group }

    /// Writes a per-spatial-dimension list into the trailing entries of a 3-entry array.
    static func pad3(_ v: [Int], fill: Int) -> [Int] {
        [Int](repeating: fill, count: 3 - v.count) + v
    }

    /// Geometry of Conv: x [N, C, D...], w [M, C/group, k...].
    static func forward(x: [Int], w: [Int], _ attrs: ConvAttributes) throws -> ConvGeometry {
        guard x.count >= 3, x.count <= 5 else {
            throw EngineError(.shapeMismatch, "convolution input must have 1 to 3 spatial dimensions, got shape \(x)")
        }
        guard w.count == x.count else {
            throw EngineError(.shapeMismatch, "convolution weight of shape \(w) does not match input of shape \(x)")
        }
        var g = ConvGeometry()
        let r = x.count - 2
        g.spatialRank = r
        g.batch = x[0]
        g.cIn = x[1]
        g.cOut = w[0]
        g.group = attrs.group
        guard g.cIn == w[1] * g.group, g.cOut % g.group == 0 else {
            throw EngineError(.shapeMismatch, "input channels \(g.cIn) and weight \(w) do not match group \(g.group)")
        }
        let k = Array(w[2...])
        if let ks = attrs.kernelShape, ks != k {
            throw EngineError(.shapeMismatch, "kernel_shape \(ks) does not match the weight's shape \(w)")
        }
        let s = try attrs.values(attrs.strides, "strides", rank: r, default: 1)
        let d = try attrs.values(attrs.dilations, "dilations", rank: r, default: 1)
        let inSp = Array(x[2...])
        var pads = try attrs.values(attrs.pads, "pads", rank: 2 * r, default: 0)
        var out = [Int](repeating: 0, count: r)
        for i in 0..<r {
            let axis: (out: Int, padBegin: Int, padEnd: Int)
            do {
                axis = try Self.axis(input: inSp[i], kernel: k[i], stride: s[i], dilation: d[i], padBegin: pads[i], padEnd: pads[i + r],
                                     autoPad: attrs.autoPad)
            } catch let e as EngineError where e.code == .shapeMismatch {
                throw EngineError(.shapeMismatch, "kernel \(k) (dilations \(d)) is larger than the padded input \(inSp) (pads \(pads))")
            }
            (out[i], pads[i], pads[i + r]) = axis
        }
        g.inSize = pad3(inSp, fill: 1)
        g.outSize = pad3(out, fill: 1)
        g.kernel = pad3(k, fill: 1)
        g.stride = pad3(s, fill: 1)
        g.dilation = pad3(d, fill: 1)
        g.padBegin = pad3(Array(pads[0..<r]), fill: 0)
        g.outShape = [g.batch, g.cOut] + out
        return g
    }

    /// Geometry of ConvTranspose: x [N, C, D...], w [C, M/group, k...]. `outSize` is the output's size and
    /// `padBegin` the leading padding cropped from the full transposed result.
    static func transposed(x: [Int], w: [Int], _ attrs: ConvAttributes) throws -> ConvGeometry {
        guard x.count >= 3, x.count <= 5 else {
            throw EngineError(.shapeMismatch, "ConvTranspose input must have 1 to 3 spatial dimensions, got shape \(x)")
        }
        guard w.count == x.count else {
            throw EngineError(.shapeMismatch, "ConvTranspose weight of shape \(w) does not match input of shape \(x)")
        }
        var g = ConvGeometry()
        let r = x.count - 2
        g.spatialRank = r
        g.batch = x[0]
        g.cIn = x[1]
        g.group = attrs.group
        g.cOut = w[1] * g.group
        guard w[0] == g.cIn, g.cIn % g.group == 0 else {
            throw EngineError(.shapeMismatch, "ConvTranspose input channels \(g.cIn) do not match weight \(w) and group \(g.group)")
        }
        let k = Array(w[2...])
        if let ks = attrs.kernelShape, ks != k {
            throw EngineError(.shapeMismatch, "kernel_shape \(ks) does not match the weight's shape \(w)")
        }
        let s = try attrs.values(attrs.strides, "strides", rank: r, default: 1)
        let d = try attrs.values(attrs.dilations, "dilations", rank: r, default: 1)
        let op = try attrs.values(attrs.outputPadding, "output_padding", rank: r, default: 0)
        let inSp = Array(x[2...])
        var requested = attrs.outputShape
        if let o = requested, o.count == r + 2 { requested = Array(o[2...]) }
        if let o = requested {
            guard o.count == r, o.allSatisfy({ $0 >= 0 }) else {
                throw EngineError(.invalidArgument, "output_shape \(o) does not have one non-negative value per spatial dimension")
            }
        }
        var pads = [Int](repeating: 0, count: 2 * r)
        var out = [Int](repeating: 0, count: r)
        let same = attrs.autoPad == .sameUpper || attrs.autoPad == .sameLower
        if !same && attrs.autoPad != .valid {
            pads = try attrs.values(attrs.pads, "pads", rank: 2 * r, default: 0)
        }
        for i in 0..<r {
            let full = s[i] * (inSp[i] - 1) + op[i] + (k[i] - 1) * d[i] + 1
            if same {
                out[i] = requested?[i] ?? inSp[i] * s[i]
                let total = full - out[i]
                // Floor division as the reference does (total may be negative).
                let half = Int((Double(total) / 2).rounded(.down))
                if attrs.autoPad == .sameUpper {
                    pads[i] = half; pads[i + r] = total - half
                } else {
                    pads[i] = total - half; pads[i + r] = half
                }
            } else if let o = requested {
                out[i] = o[i]
            } else {
                out[i] = full - pads[i] - pads[i + r]
            }
            guard out[i] >= 0 else {
                throw EngineError(.shapeMismatch, "ConvTranspose output size \(out[i]) is negative (pads \(pads))")
            }
        }
        g.inSize = pad3(inSp, fill: 1)
        g.outSize = pad3(out, fill: 1)
        g.kernel = pad3(k, fill: 1)
        g.stride = pad3(s, fill: 1)
        g.dilation = pad3(d, fill: 1)
        g.padBegin = pad3(Array(pads[0..<r]), fill: 0)
        g.outShape = [g.batch, g.cOut] + out
        return g
    }
}

/// The range [lo, hi) of i in 0..<n for which 0 <= i * stride + offset < limit.
@inline(__always)
private func convValidRange(_ n: Int, stride: Int, offset: Int, limit: Int) -> (Int, Int) {
    // i >= ceil(-offset / stride)
    let lo = offset >= 0 ? 0 : (-offset + stride - 1) / stride
    // i * stride + offset <= limit - 1  =>  i <= floor((limit - 1 - offset) / stride)
    let u = limit - 1 - offset
    let hi = u < 0 ? 0 : Swift.min(n, u / stride + 1)
    return (Swift.min(lo, hi), hi)
}

enum ConvKernels {
    /// Forward convolution over contiguous NC(D)(H)W buffers. `bias` has cOut values or is nil.
    /// `packed`, only for float32, holds `w` packed for blindai_sgemm_packed_a (`PackedConvWeights.matching`).
    static func forward<T: GemmScalar>(_ x: UnsafePointer<T>, _ w: UnsafePointer<T>, _ bias: UnsafePointer<T>?,
                                     _ out: UnsafeMutablePointer<T>, _ g: ConvGeometry, _ ctx: ExecutionContext,
                                     packed: PackedConvWeights? = nil) throws {
        let outSpatial = g.outSpatial, inSpatial = g.inSpatial, kSize = g.kernelSize
        let cig = g.cInPerGroup, cog = g.cOutPerGroup
        if g.batch == 0 || g.cOut == 0 || outSpatial == 0 { return }
        // Depthwise (one input channel per group): a direct kernel, im2col would be wasteful.
        if cig == 1 && g.group > 1 {
            let planes = g.batch * g.cOut
            let chunks = Parallel.chunks(planes, cost: outSpatial * kSize, minimum: 1 << 21)
            if chunks > 1 {
                let sx = Parallel.Shared(x), sw = Parallel.Shared(w), sb = Parallel.Shared(bias), so = Parallel.Shared(out)
                let per = (planes + chunks - 1) / chunks
                Parallel.forEach(chunks) { t in
                    depthwise(sx.value, sw.value, sb.value, so.value, g, planes: (t * per)..<Swift.min(planes, (t + 1) * per))
                }
            } else {
                depthwise(x, w, bias, out, g, planes: 0..<planes)
            }
            return
        }
        let pointwise = g.kernel == [1, 1, 1] && g.stride == [1, 1, 1] && g.padBegin == [0, 0, 0] && g.inSize == g.outSize
        let kDim = cig * kSize
        var colTensor: Tensor?
        if !pointwise && kDim > 0 {
            colTensor = try ctx.uninitialized(T.dataType, [kDim, outSpatial])
        }
        let col = colTensor.map { $0.mutableBuffer(T.self).baseAddress! }
        for n in 0..<g.batch {
            for grp in 0..<g.group {
                let xg = x + (n * g.cIn + grp * cig) * inSpatial
                let og = out + (n * g.cOut + grp * cog) * outSpatial
                let wg = w + grp * cog * kDim
                var accumulate = false
                if let bias {
                    for m in 0..<cog {
                        (og + m * outSpatial).update(repeating: bias[grp * cog + m], count: outSpatial)
                    }
                    accumulate = true
                }
                if kDim == 0 {
                    if !accumulate { og.update(repeating: T.zero, count: cog * outSpatial) }
                    continue
                }
                let b: UnsafePointer<T>
                if let col {
                    let chunks = Parallel.chunks(cig, cost: kSize * outSpatial, minimum: 1 << 17)
                    if chunks > 1 {
                        let sx = Parallel.Shared(xg), sc = Parallel.Shared(col)
                        let per = (cig + chunks - 1) / chunks
                        Parallel.forEach(chunks) { t in
                            let c0 = t * per, c1 = Swift.min(cig, c0 + per)
                            if c1 > c0 { im2col(sx.value + c0 * inSpatial, sc.value + c0 * kSize * outSpatial, c1 - c0, g) }
                        }
                    } else {
                        im2col(xg, col, cig, g)
                    }
                    b = UnsafePointer(col)
                } else {
                    b = xg
                }
                if let packed {
                    // T is Float here (the caller passes `packed` only then).
                    Gemm.sgemmPackedA(packed.group(grp), cog, outSpatial, kDim,
                                            UnsafeRawPointer(b).assumingMemoryBound(to: Float.self), outSpatial, accumulate ? 1 : 0,
                                            UnsafeMutableRawPointer(og).assumingMemoryBound(to: Float.self), outSpatial)
                } else {
                    T.gemm(transA: false, transB: false, m: cog, n: outSpatial, k: kDim, a: wg, lda: kDim, b: b, ldb: outSpatial,
                             accumulate: accumulate, c: og, ldc: outSpatial)
                }
            }
        }
    }

    /// Unfolds the `channels` input planes at `x` into rows (channel, kd, kh, kw) of `outSpatial` columns.
    static func im2col<T: GemmScalar>(_ x: UnsafePointer<T>, _ col: UnsafeMutablePointer<T>, _ channels: Int, _ g: ConvGeometry) {
        let D = g.inSize[0], H = g.inSize[1], W = g.inSize[2]
        let oD = g.outSize[0], oH = g.outSize[1], oW = g.outSize[2]
        let sd = g.stride[0], sh = g.stride[1], sw = g.stride[2]
        let dd = g.dilation[0], dh = g.dilation[1], dw = g.dilation[2]
        let pd = g.padBegin[0], ph = g.padBegin[1], pw = g.padBegin[2]
        let kD = g.kernel[0], kH = g.kernel[1], kW = g.kernel[2]
        let outSpatial = oD * oH * oW
        var row = col
        for c in 0..<channels {
            let plane = x + c * D * H * W
            for kd in 0..<kD {
                for kh in 0..<kH {
                    for kw in 0..<kW {
                        let offW = kw * dw - pw
                        let (lo, hi) = convValidRange(oW, stride: sw, offset: offW, limit: W)
                        for od in 0..<oD {
                            let id = od * sd - pd + kd * dd
                            let drow = row + od * oH * oW
                            if id < 0 || id >= D {
                                drow.update(repeating: T.zero, count: oH * oW)
                                continue
                            }
                            for oh in 0..<oH {
                                let ih = oh * sh - ph + kh * dh
                                let d = drow + oh * oW
                                if ih < 0 || ih >= H {
                                    d.update(repeating: T.zero, count: oW)
                                    continue
                                }
                                let src = plane + (id * H + ih) * W + offW
                                if lo > 0 { d.update(repeating: T.zero, count: lo) }
                                if sw == 1 {
                                    if hi > lo { (d + lo).update(from: src + lo, count: hi - lo) }
                                } else {
                                    for ow in lo..<hi { d[ow] = src[ow * sw] }
                                }
                                if hi < oW { (d + hi).update(repeating: T.zero, count: oW - hi) }
                            }
                        }
                        row += outSpatial
                    }
                }
            }
        }
    }

    /// Direct convolution for one input channel per group (depthwise when group == channels).
    static func depthwise<T: GemmScalar>(_ x: UnsafePointer<T>, _ w: UnsafePointer<T>, _ bias: UnsafePointer<T>?,
                                       _ out: UnsafeMutablePointer<T>, _ g: ConvGeometry, planes: Range<Int>) {
        let D = g.inSize[0], H = g.inSize[1], W = g.inSize[2]
        let oD = g.outSize[0], oH = g.outSize[1], oW = g.outSize[2]
        let sd = g.stride[0], sh = g.stride[1], sw = g.stride[2]
        let dd = g.dilation[0], dh = g.dilation[1], dw = g.dilation[2]
        let pd = g.padBegin[0], ph = g.padBegin[1], pw = g.padBegin[2]
        let kD = g.kernel[0], kH = g.kernel[1], kW = g.kernel[2]
        let inSpatial = g.inSpatial, outSpatial = g.outSpatial, kSize = g.kernelSize
        let cog = g.cOutPerGroup
        if T.self == Float.self && kD == 1 && kH == kW && (2...15).contains(kW) && dh == 1 && dw == 1 && sh == sw && (sw == 1 || sw == 2) {
            depthwiseSquareFloat(UnsafeRawPointer(x).assumingMemoryBound(to: Float.self), UnsafeRawPointer(w).assumingMemoryBound(to: Float.self),
                                 bias.map { UnsafeRawPointer($0).assumingMemoryBound(to: Float.self) },
                                 UnsafeMutableRawPointer(out).assumingMemoryBound(to: Float.self), g, planes: planes)
            return
        }
        if kD == 1 && kH == 3 && kW == 3 && dh == 1 && dw == 1 && sh == sw && (sw == 1 || sw == 2) {
            depthwise3x3(x, w, bias, out, g, planes: planes)
            return
        }
        // Valid output columns of each horizontal tap, and the range where all taps are valid.
        var ranges: [(Int, Int)] = []
        var allLo = 0, allHi = oW
        for kw in 0..<kW {
            let r = convValidRange(oW, stride: sw, offset: kw * dw - pw, limit: W)
            ranges.append(r)
            allLo = Swift.max(allLo, r.0)
            allHi = Swift.min(allHi, r.1)
        }
        let fused3 = kW == 3 && allHi > allLo
        for plane in planes {
            let n = plane / g.cOut, m = plane % g.cOut
            let c = m / cog
            let input = x + (n * g.cIn + c) * inSpatial
            let o = out + (n * g.cOut + m) * outSpatial
            let wk = w + m * kSize
            let b = bias?[m] ?? T.zero
            // Output row by output row, so that the row stays in L1 while every tap is added to it.
            for od in 0..<oD {
                for oh in 0..<oH {
                    let d = o + (od * oH + oh) * oW
                    d.update(repeating: b, count: oW)
                    for kd in 0..<kD {
                        let id = od * sd - pd + kd * dd
                        if id < 0 || id >= D { continue }
                        for kh in 0..<kH {
                            let ih = oh * sh - ph + kh * dh
                            if ih < 0 || ih >= H { continue }
                            let row = input + (id * H + ih) * W
                            let wr = wk + (kd * kH + kh) * kW
                            if fused3 {
                                // Interior: the three taps at once; edges: tap by tap.
                                let w0 = wr[0], w1 = wr[1], w2 = wr[2]
                                let s0 = row - pw, s1 = row + dw - pw, s2 = row + 2 * dw - pw
                                if sw == 1 {
                                    for ow in allLo..<allHi {
                                        d[ow] = T.gemmAdd(d[ow], T.gemmAdd(T.gemmMul(w0, s0[ow]), T.gemmAdd(T.gemmMul(w1, s1[ow]), T.gemmMul(w2, s2[ow]))))
                                    }
                                } else {
                                    for ow in allLo..<allHi {
                                        let i = ow * sw
                                        d[ow] = T.gemmAdd(d[ow], T.gemmAdd(T.gemmMul(w0, s0[i]), T.gemmAdd(T.gemmMul(w1, s1[i]), T.gemmMul(w2, s2[i]))))
                                    }
                                }
                                for kw in 0..<3 {
                                    let (lo, hi) = ranges[kw]
                                    let wv = wr[kw], src = row + kw * dw - pw
                                    for ow in lo..<Swift.min(hi, allLo) { d[ow] = T.gemmAdd(d[ow], T.gemmMul(wv, src[ow * sw])) }
                                    for ow in Swift.max(lo, allHi)..<Swift.max(hi, allHi) { d[ow] = T.gemmAdd(d[ow], T.gemmMul(wv, src[ow * sw])) }
                                }
                                continue
                            }
                            for kw in 0..<kW {
                                let (lo, hi) = ranges[kw]
                                if hi <= lo { continue }
                                let wv = wr[kw], src = row + kw * dw - pw
                                if sw == 1 {
                                    for ow in lo..<hi { d[ow] = T.gemmAdd(d[ow], T.gemmMul(wv, src[ow])) }
                                } else {
                                    for ow in lo..<hi { d[ow] = T.gemmAdd(d[ow], T.gemmMul(wv, src[ow * sw])) }
                                }
                            }
                        }
                    }
                }
            }
        }
    }

    /// The shape of the zero-padded plane copy that `padPlane` writes for a k x k kernel: its rows, and per row the
    /// even columns, then (stride 2) the odd ones.
    static func paddedLayout(oH: Int, oW: Int, k: Int, stride s: Int) -> (rows: Int, even: Int, odd: Int) {
        ((oH - 1) * s + k, s == 1 ? oW + k - 1 : oW + (k - 1) / 2, s == 1 ? 0 : oW + (k - 2) / 2)
    }

    /// Copies one input plane [H, W] into `rows` zero-padded rows of `evenCount + oddCount` values, for the
    /// direct depthwise kernels: padded row r holds input row r - ph; with stride 1 column c holds input column
    /// c - pw; with stride 2 the row holds the even padded columns (2j - pw) and then the odd ones (2j + 1 - pw),
    /// so that every tap of a strided output row reads contiguous memory. Zero outside the input.
    static func padPlane<T: GemmScalar>(_ input: UnsafePointer<T>, H: Int, W: Int, ph: Int, pw: Int, stride s: Int, rows: Int,
                                      evenCount: Int, oddCount: Int, into padded: UnsafeMutablePointer<T>) {
        let rowStride = evenCount + oddCount
        for r in 0..<rows {
            let dst = padded + r * rowStride
            let ih = r - ph
            if ih < 0 || ih >= H {
                dst.update(repeating: T.zero, count: rowStride)
                continue
            }
            let src = input + ih * W
            if s == 1 {
                let lo = Swift.min(Swift.max(pw, 0), evenCount), hi = Swift.max(lo, Swift.min(evenCount, W + pw))
                if lo > 0 { dst.update(repeating: T.zero, count: lo) }
                if hi > lo { (dst + lo).update(from: src + (lo - pw), count: hi - lo) }
                if hi < evenCount { (dst + hi).update(repeating: T.zero, count: evenCount - hi) }
            } else {
                let odd = dst + evenCount
                for j in 0..<evenCount {
                    let c = 2 &* j &- pw
                    dst[j] = c >= 0 && c < W ? src[c] : T.zero
                }
                for j in 0..<oddCount {
                    let c = 2 &* j &+ 1 &- pw
                    odd[j] = c >= 0 && c < W ? src[c] : T.zero
                }
            }
        }
    }

    /// Float32 depthwise k x k (2 ≤ k ≤ 15), stride 1 or 2, dilation 1: each input plane is copied once into a
    /// zero-padded buffer (stride 2: even and odd columns apart, so that every tap reads contiguous memory), then
    /// `blindai_depthwise_plane_f32` (AVX2/FMA when the CPU has it) computes the plane.
    static func depthwiseSquareFloat(_ x: UnsafePointer<Float>, _ w: UnsafePointer<Float>, _ bias: UnsafePointer<Float>?,
                                     _ out: UnsafeMutablePointer<Float>, _ g: ConvGeometry, planes: Range<Int>) {
        let oH = g.outSize[1], oW = g.outSize[2], k = g.kernel[2], s = g.stride[2]
        if oH <= 0 || oW <= 0 { return }
        forEachPaddedPlane(x, g, k: k, planes: planes) { padded, rowStride, evenCount, n, m in
            blindai_depthwise_plane_f32(padded, rowStride, evenCount, Int32(k), Int32(s), w + m * k * k, bias?[m] ?? 0,
                                        out + (n * g.cOut + m) * g.outSpatial, oH, oW)
        }
    }

    /// For each plane (batch n, output channel m) in `planes`: copies its input plane into one zero-padded buffer
    /// (`padPlane`, `paddedLayout` for a k x k kernel) and calls body(padded, rowStride, evenCount, n, m).
    static func forEachPaddedPlane<T: GemmScalar>(_ x: UnsafePointer<T>, _ g: ConvGeometry, k: Int, planes: Range<Int>,
                                                _ body: (UnsafeMutablePointer<T>, Int, Int, Int, Int) -> Void) {
        let s = g.stride[2], cog = g.cOutPerGroup
        let (rows, evenCount, oddCount) = paddedLayout(oH: g.outSize[1], oW: g.outSize[2], k: k, stride: s)
        let rowStride = evenCount + oddCount
        let padded = UnsafeMutablePointer<T>.allocate(capacity: rows * rowStride)
        defer { padded.deallocate() }
        for plane in planes {
            let n = plane / g.cOut, m = plane % g.cOut
            padPlane(x + (n * g.cIn + m / cog) * g.inSpatial, H: g.inSize[1], W: g.inSize[2], ph: g.padBegin[1], pw: g.padBegin[2],
                     stride: s, rows: rows, evenCount: evenCount, oddCount: oddCount, into: padded)
            body(padded, rowStride, evenCount, n, m)
        }
    }

    /// Depthwise 3x3, stride 1 or 2, no dilation (MobileNet, EfficientNet): each input plane is copied once
    /// into a zero-padded buffer (for stride 2, de-interleaved into even and odd columns), so that every output
    /// row is one branch-free loop over contiguous memory with the nine taps fused.
    static func depthwise3x3<T: GemmScalar>(_ x: UnsafePointer<T>, _ w: UnsafePointer<T>, _ bias: UnsafePointer<T>?,
                                          _ out: UnsafeMutablePointer<T>, _ g: ConvGeometry, planes: Range<Int>) {
        let oH = g.outSize[1], oW = g.outSize[2], s = g.stride[2]
        // Stride 1: rows of oW + 2 columns. Stride 2: even columns (oW + 1) then odd columns (oW).
        forEachPaddedPlane(x, g, k: 3, planes: planes) { padded, rowStride, _, n, m in
            let o = out + (n * g.cOut + m) * g.outSpatial
            let wk = w + m * 9
            let b = bias?[m] ?? T.zero
            let w00 = wk[0], w01 = wk[1], w02 = wk[2], w10 = wk[3], w11 = wk[4], w12 = wk[5], w20 = wk[6], w21 = wk[7], w22 = wk[8]
            for oh in 0..<oH {
                let r0 = padded + oh &* s &* rowStride, r1 = r0 + rowStride, r2 = r1 + rowStride
                let d = o + oh &* oW
                if s == 1 {
                    for ow in 0..<oW {
                        var acc = T.gemmAdd(b, T.gemmMul(w00, r0[ow]))
                        acc = T.gemmAdd(acc, T.gemmMul(w01, r0[ow &+ 1]))
                        acc = T.gemmAdd(acc, T.gemmMul(w02, r0[ow &+ 2]))
                        acc = T.gemmAdd(acc, T.gemmMul(w10, r1[ow]))
                        acc = T.gemmAdd(acc, T.gemmMul(w11, r1[ow &+ 1]))
                        acc = T.gemmAdd(acc, T.gemmMul(w12, r1[ow &+ 2]))
                        acc = T.gemmAdd(acc, T.gemmMul(w20, r2[ow]))
                        acc = T.gemmAdd(acc, T.gemmMul(w21, r2[ow &+ 1]))
                        d[ow] = T.gemmAdd(acc, T.gemmMul(w22, r2[ow &+ 2]))
                    }
                } else {
                    let o0 = r0 + (oW + 1), o1 = r1 + (oW + 1), o2 = r2 + (oW + 1)
                    for ow in 0..<oW {
                        var acc = T.gemmAdd(b, T.gemmMul(w00, r0[ow]))
                        acc = T.gemmAdd(acc, T.gemmMul(w01, o0[ow]))
                        acc = T.gemmAdd(acc, T.gemmMul(w02, r0[ow &+ 1]))
                        acc = T.gemmAdd(acc, T.gemmMul(w10, r1[ow]))
                        acc = T.gemmAdd(acc, T.gemmMul(w11, o1[ow]))
                        acc = T.gemmAdd(acc, T.gemmMul(w12, r1[ow &+ 1]))
                        acc = T.gemmAdd(acc, T.gemmMul(w20, r2[ow]))
                        acc = T.gemmAdd(acc, T.gemmMul(w21, o2[ow]))
                        d[ow] = T.gemmAdd(acc, T.gemmMul(w22, r2[ow &+ 1]))
                    }
                }
            }
        }
    }

    /// Transposed convolution: per image and group, col = W_g^T * X_g, then col2im scatter-add.
    static func transposed<T: GemmScalar>(_ x: UnsafePointer<T>, _ w: UnsafePointer<T>, _ bias: UnsafePointer<T>?,
                                        _ out: UnsafeMutablePointer<T>, _ g: ConvGeometry, _ ctx: ExecutionContext) throws {
        let outSpatial = g.outSpatial, inSpatial = g.inSpatial, kSize = g.kernelSize
        let cig = g.cInPerGroup, cog = g.cOutPerGroup
        if g.batch == 0 || g.cOut == 0 || outSpatial == 0 { return }
        for n in 0..<g.batch {
            for m in 0..<g.cOut {
                (out + (n * g.cOut + m) * outSpatial).update(repeating: bias?[m] ?? T.zero, count: outSpatial)
            }
        }
        let rows = cog * kSize
        if rows == 0 || inSpatial == 0 || cig == 0 { return }
        let colTensor = try ctx.uninitialized(T.dataType, [rows, inSpatial])
        let col = colTensor.mutableBuffer(T.self).baseAddress!
        let D = g.inSize[0], H = g.inSize[1], W = g.inSize[2]
        let oD = g.outSize[0], oH = g.outSize[1], oW = g.outSize[2]
        let sd = g.stride[0], sh = g.stride[1], sw = g.stride[2]
        let dd = g.dilation[0], dh = g.dilation[1], dw = g.dilation[2]
        let pd = g.padBegin[0], ph = g.padBegin[1], pw = g.padBegin[2]
        let kD = g.kernel[0], kH = g.kernel[1], kW = g.kernel[2]
        for n in 0..<g.batch {
            for grp in 0..<g.group {
                let xg = x + (n * g.cIn + grp * cig) * inSpatial
                let wg = w + grp * cig * rows
                T.gemm(transA: true, transB: false, m: rows, n: inSpatial, k: cig, a: wg, lda: rows, b: xg, ldb: inSpatial,
                         accumulate: false, c: col, ldc: inSpatial)
                let chunks = Parallel.chunks(cog, cost: kSize * inSpatial, minimum: 1 << 17)
                let per = (cog + chunks - 1) / chunks
                let sCol = Parallel.Shared(UnsafePointer(col)), sOut = Parallel.Shared(out)
                Parallel.forEach(chunks) { t in
                for mm in (t * per)..<Swift.min(cog, (t + 1) * per) {
                    var src = sCol.value + mm * kSize * inSpatial
                    let o = sOut.value + (n * g.cOut + grp * cog + mm) * outSpatial
                    for kd in 0..<kD {
                        for kh in 0..<kH {
                            for kw in 0..<kW {
                                let offW = kw * dw - pw
                                let (lo, hi) = convValidRange(W, stride: sw, offset: offW, limit: oW)
                                if hi > lo {
                                    for id in 0..<D {
                                        let od = id * sd - pd + kd * dd
                                        if od < 0 || od >= oD { continue }
                                        for ih in 0..<H {
                                            let oh = ih * sh - ph + kh * dh
                                            if oh < 0 || oh >= oH { continue }
                                            let s = src + (id * H + ih) * W
                                            let d = o + (od * oH + oh) * oW + offW
                                            if sw == 1 {
                                                for iw in lo..<hi { d[iw] = T.gemmAdd(d[iw], s[iw]) }
                                            } else {
                                                for iw in lo..<hi { d[iw * sw] = T.gemmAdd(d[iw * sw], s[iw]) }
                                            }
                                        }
                                    }
                                }
                                src += inSpatial
                            }
                        }
                    }
                }
                }
            }
        }
    }
}

/// Conv and ConvTranspose on float tensors (float32 through sgemm; float16/bfloat16 computed in float32;
/// float64 through the portable kernels).
struct ConvOp: Operator {
    let attrs: ConvAttributes
    let transposed: Bool
    /// The weights packed once at build time when they are a float32 constant (nil otherwise).
    var packed: PackedConvWeights? = nil

    func run(_ inputs: [Tensor?], _ ctx: ExecutionContext) throws -> [Tensor] {
        let x = try inputs.required(0), w = try inputs.required(1)
        let b = inputs.optional(2)
        guard w.dataType == x.dataType, b == nil || b!.dataType == x.dataType else {
            throw EngineError(.typeMismatch, "Conv inputs have different types: X \(x.dataType), W \(w.dataType)\(b.map { ", B \($0.dataType)" } ?? "")")
        }
        let g = transposed ? try ConvGeometry.transposed(x: x.shape, w: w.shape, attrs) : try ConvGeometry.forward(x: x.shape, w: w.shape, attrs)
        if let b, b.count != g.cOut {
            throw EngineError(.shapeMismatch, "bias has \(b.count) values, expected \(g.cOut) (output channels)")
        }
        switch x.dataType {
        case .float32: return [try compute(x, w, b, g, Float.self, ctx)]
        case .float64: return [try compute(x, w, b, g, Double.self, ctx)]
        case .float16, .bfloat16:
            let r = try compute(try FloatWidening.toFloat32(x, ctx), try FloatWidening.toFloat32(w, ctx),
                                try b.map { try FloatWidening.toFloat32($0, ctx) }, g, Float.self, ctx)
            return [try FloatWidening.fromFloat32(r, to: x.dataType, ctx)]
        default:
            throw EngineError(.typeMismatch, "\(transposed ? "ConvTranspose" : "Conv") does not support \(x.dataType) tensors")
        }
    }

    func compute<T: GemmScalar>(_ x: Tensor, _ w: Tensor, _ b: Tensor?, _ g: ConvGeometry, _: T.Type, _ ctx: ExecutionContext) throws -> Tensor {
        let out = try ctx.uninitialized(T.dataType, g.outShape)
        if out.count == 0 { return out }
        let px = x.buffer(T.self).baseAddress!, pw = w.buffer(T.self).baseAddress!
        let pb = b.map { $0.buffer(T.self).baseAddress! }
        let po = out.mutableBuffer(T.self).baseAddress!
        if transposed {
            try ConvKernels.transposed(px, pw, pb, po, g, ctx)
        } else {
            try ConvKernels.forward(px, pw, pb, po, g, ctx, packed: T.self == Float.self ? packed?.matching(w, g) : nil)
        }
        return out
    }
}

/// ConvInteger: int32 convolution of (x - x_zero_point) and (w - w_zero_point); padding contributes zero.
/// QLinearConv: the same, plus an int32 bias, requantized with x_scale * w_scale / y_scale and y_zero_point.
struct ConvIntegerOp: Operator {
    let attrs: ConvAttributes
    let quantized: Bool

    func run(_ inputs: [Tensor?], _ ctx: ExecutionContext) throws -> [Tensor] {
        let x = try inputs.required(0)
        let w = try inputs.required(quantized ? 3 : 1)
        let xzpT = inputs.optional(quantized ? 2 : 2)
        let wzpT = inputs.optional(quantized ? 5 : 3)
        let g = try ConvGeometry.forward(x: x.shape, w: w.shape, attrs)
        let xzp = try QuantizedIntegers.zeroPoints(xzpT, expectedType: x.dataType, "x_zero_point")
        let wzp = try QuantizedIntegers.zeroPoints(wzpT, expectedType: w.dataType, "w_zero_point")
        guard xzp.count <= 1 else {
            throw EngineError(.invalidArgument, "x_zero_point must be a scalar, got \(xzp.count) values")
        }
        guard wzp.count <= 1 || wzp.count == g.cOut else {
            throw EngineError(.shapeMismatch, "w_zero_point has \(wzp.count) values, expected 1 or \(g.cOut) (output channels)")
        }
        let xi = try QuantizedIntegers.int32Minus(x, zeroPoints: xzp, perRowOf: 1, ctx)
        let wi = try QuantizedIntegers.int32Minus(w, zeroPoints: wzp, perRowOf: g.cInPerGroup * g.kernelSize, ctx)
        var bias: Tensor?
        if quantized, let b = inputs.optional(8) {
            guard b.dataType == .int32 else { throw EngineError(.typeMismatch, "B must be int32, got \(b.dataType)") }
            guard b.count == g.cOut else { throw EngineError(.shapeMismatch, "B has \(b.count) values, expected \(g.cOut)") }
            bias = b
        }
        let acc = try ctx.uninitialized(.int32, g.outShape)
        if acc.count > 0 {
            try ConvKernels.forward(xi.buffer(Int32.self).baseAddress!, wi.buffer(Int32.self).baseAddress!,
                                    bias.map { $0.buffer(Int32.self).baseAddress! }, acc.mutableBuffer(Int32.self).baseAddress!, g, ctx)
        }
        if !quantized { return [acc] }
        // Requantize per output channel.
        let xs = try inputs.required(1, "x_scale"), ws = try inputs.required(4, "w_scale"), ys = try inputs.required(6, "y_scale")
        let yzpT = inputs.optional(7)
        let outType = yzpT?.dataType ?? x.dataType
        let xsv = try xs.doubleValues(), wsv = try ws.doubleValues(), ysv = try ys.doubleValues()
        guard xsv.count == 1, ysv.count == 1 else {
            throw EngineError(.invalidArgument, "x_scale and y_scale must be scalars")
        }
        guard wsv.count == 1 || wsv.count == g.cOut else {
            throw EngineError(.shapeMismatch, "w_scale has \(wsv.count) values, expected 1 or \(g.cOut) (output channels)")
        }
        let yzp = try yzpT?.intValues().first ?? 0
        // The multiplier is computed in float32 as the reference does.
        let mult: [Double] = (0..<g.cOut).map { m in
            Double(Float(xsv[0]) * Float(wsv[wsv.count == 1 ? 0 : m]) / Float(ysv[0]))
        }
        let spatial = g.outSpatial, cOut = g.cOut
        let src = acc.buffer(Int32.self)
        func requantize<Q: EngineInteger>(_: Q.Type) throws -> Tensor {
            let out = try ctx.uninitialized(Q.dataType, g.outShape)
            let d = out.mutableBuffer(Q.self)
            let z = Double(yzp)
            var i = 0
            for _ in 0..<g.batch {
                for m in 0..<cOut {
                    let k = mult[m]
                    for j in i..<(i + spatial) { d[j] = QuantizedIntegers.saturate(Double(src[j]) * k + z, Q.self) }
                    i += spatial
                }
            }
            return out
        }
        switch outType {
        case .uint8: return [try requantize(UInt8.self)]
        case .int8: return [try requantize(Int8.self)]
        default: throw EngineError(.typeMismatch, "QLinearConv output must be uint8 or int8, got \(outType)")
        }
    }
}

/// A float type the deformable and causal convolutions compute in.
protocol ConvFloat: GemmScalar, BinaryFloatingPoint {}
extension Float: ConvFloat {}
extension Double: ConvFloat {}

/// DeformConv (2-D): each kernel tap samples the input bilinearly at its position plus a learned offset
/// (zero outside the image), optionally scaled by a mask; then a grouped GEMM with the weights.
struct DeformConvOp: Operator {
    let attrs: ConvAttributes
    let offsetGroup: Int

    func run(_ inputs: [Tensor?], _ ctx: ExecutionContext) throws -> [Tensor] {
        let x = try inputs.required(0), w = try inputs.required(1), offset = try inputs.required(2, "offset")
        let b = inputs.optional(3), mask = inputs.optional(4)
        for t in [w, offset] + [b, mask].compactMap({ $0 }) where t.dataType != x.dataType {
            throw EngineError(.typeMismatch, "DeformConv inputs must all be \(x.dataType), got \(t.dataType)")
        }
        guard x.rank == 4 else {
            throw EngineError(.shapeMismatch, "DeformConv supports 2-D images (input of rank 4), got shape \(x.shape)")
        }
        let g = try ConvGeometry.forward(x: x.shape, w: w.shape, attrs)
        let kSize = g.kernelSize
        guard offsetGroup >= 1, g.cIn % offsetGroup == 0 else {
            throw EngineError(.invalidArgument, "input channels \(g.cIn) are not divisible by offset_group \(offsetGroup)")
        }
        let expectedOffset = [g.batch, offsetGroup * kSize * 2, g.outSize[1], g.outSize[2]]
        guard offset.shape == expectedOffset else {
            throw EngineError(.shapeMismatch, "offset has shape \(offset.shape), expected \(expectedOffset)")
        }
        if let mask, mask.shape != [g.batch, offsetGroup * kSize, g.outSize[1], g.outSize[2]] {
            throw EngineError(.shapeMismatch, "mask has shape \(mask.shape), expected \([g.batch, offsetGroup * kSize, g.outSize[1], g.outSize[2]])")
        }
        if let b, b.count != g.cOut {
            throw EngineError(.shapeMismatch, "B has \(b.count) values, expected \(g.cOut)")
        }
        switch x.dataType {
        case .float32: return [try compute(x, w, offset, b, mask, g, Float.self, ctx)]
        case .float64: return [try compute(x, w, offset, b, mask, g, Double.self, ctx)]
        case .float16, .bfloat16:
            let f = { (t: Tensor) in try FloatWidening.toFloat32(t, ctx) }
            let r = try compute(try f(x), try f(w), try f(offset), try b.map(f), try mask.map(f), g, Float.self, ctx)
            return [try FloatWidening.fromFloat32(r, to: x.dataType, ctx)]
        default: throw EngineError(.typeMismatch, "DeformConv does not support \(x.dataType) tensors")
        }
    }

    func compute<T: ConvFloat>(_ x: Tensor, _ w: Tensor, _ offset: Tensor, _ b: Tensor?, _ mask: Tensor?, _ g: ConvGeometry,
                               _: T.Type, _ ctx: ExecutionContext) throws -> Tensor {
        let out = try ctx.uninitialized(T.dataType, g.outShape)
        if out.count == 0 { return out }
        let H = g.inSize[1], W = g.inSize[2], oH = g.outSize[1], oW = g.outSize[2]
        let kH = g.kernel[1], kW = g.kernel[2], kSize = g.kernelSize
        let sh = g.stride[1], sw = g.stride[2], dh = g.dilation[1], dw = g.dilation[2]
        let ph = g.padBegin[1], pw = g.padBegin[2]
        let outSpatial = oH * oW, inSpatial = H * W
        let cig = g.cInPerGroup, cog = g.cOutPerGroup
        let chPerOffsetGroup = g.cIn / offsetGroup
        let kDim = cig * kSize
        let colT = try ctx.uninitialized(T.dataType, [Swift.max(kDim, 1), outSpatial])
        let col = colT.mutableBuffer(T.self).baseAddress!
        let px = x.buffer(T.self).baseAddress!, pw8 = w.buffer(T.self).baseAddress!
        let po = offset.buffer(T.self).baseAddress!
        let pm = mask.map { $0.buffer(T.self).baseAddress! }
        let pb = b.map { $0.buffer(T.self).baseAddress! }
        let py = out.mutableBuffer(T.self).baseAddress!
        for n in 0..<g.batch {
            for grp in 0..<g.group {
                // Build the sampled column matrix [cig * kSize, outSpatial].
                for ci in 0..<cig {
                    let c = grp * cig + ci
                    let og = c / chPerOffsetGroup
                    let plane = px + (n * g.cIn + c) * inSpatial
                    for kh in 0..<kH {
                        for kw in 0..<kW {
                            let k = kh * kW + kw
                            let row = col + (ci * kSize + k) * outSpatial
                            let offH = po + ((n * offsetGroup + og) * kSize * 2 + k * 2) * outSpatial
                            let offW = offH + outSpatial
                            let m = pm.map { $0 + ((n * offsetGroup + og) * kSize + k) * outSpatial }
                            for oh in 0..<oH {
                                for ow in 0..<oW {
                                    let o = oh * oW + ow
                                    let hy = T(oh * sh - ph + kh * dh) + offH[o]
                                    let wx = T(ow * sw - pw + kw * dw) + offW[o]
                                    var v = DeformConvOp.bilinear(plane, H, W, hy, wx)
                                    if let m { v *= m[o] }
                                    row[o] = v
                                }
                            }
                        }
                    }
                }
                let yg = py + (n * g.cOut + grp * cog) * outSpatial
                var accumulate = false
                if let pb {
                    for mm in 0..<cog { (yg + mm * outSpatial).update(repeating: pb[grp * cog + mm], count: outSpatial) }
                    accumulate = true
                }
                if kDim == 0 {
                    if !accumulate { yg.update(repeating: T.zero, count: cog * outSpatial) }
                    continue
                }
                T.gemm(transA: false, transB: false, m: cog, n: outSpatial, k: kDim, a: pw8 + grp * cog * kDim, lda: kDim,
                         b: col, ldb: outSpatial, accumulate: accumulate, c: yg, ldc: outSpatial)
            }
        }
        return out
    }

    /// Bilinear sample of plane[H, W] at (y, x); neighbours outside the image count as zero.
    @inline(__always)
    static func bilinear<T: ConvFloat>(_ p: UnsafePointer<T>, _ H: Int, _ W: Int, _ y: T, _ x: T) -> T {
        if !(y > -1 && y < T(H) && x > -1 && x < T(W)) { return 0 }
        let y0f = y.rounded(.down), x0f = x.rounded(.down)
        let y0 = Int(y0f), x0 = Int(x0f)
        let ly = y - y0f, lx = x - x0f
        let hy = 1 - ly, hx = 1 - lx
        func at(_ r: Int, _ c: Int) -> T { (r >= 0 && r < H && c >= 0 && c < W) ? p[r * W + c] : 0 }
        return hy * hx * at(y0, x0) + hy * lx * at(y0, x0 + 1) + ly * hx * at(y0 + 1, x0) + ly * lx * at(y0 + 1, x0 + 1)
    }
}

/// CausalConvWithState (opset 27): causal depthwise 1-D convolution over [past_state, input], with optional
/// bias and fused SiLU; also returns the last k-1 positions as the new state.
struct CausalConvWithStateOp: Operator {
    let silu: Bool

    func run(_ inputs: [Tensor?], _ ctx: ExecutionContext) throws -> [Tensor] {
        let x = try inputs.required(0), w = try inputs.required(1)
        let b = inputs.optional(2), past = inputs.optional(3)
        guard x.rank == 3, w.rank == 3, w.shape[0] == x.shape[1], w.shape[1] == 1, w.shape[2] >= 1 else {
            throw EngineError(.shapeMismatch, "CausalConvWithState needs input [B, C, L] and weight [C, 1, k], got \(x.shape) and \(w.shape)")
        }
        let (batch, channels, length) = (x.shape[0], x.shape[1], x.shape[2])
        let k = w.shape[2]
        if let b, b.count != channels { throw EngineError(.shapeMismatch, "bias has \(b.count) values, expected \(channels)") }
        if let past, past.shape != [batch, channels, k - 1] {
            throw EngineError(.shapeMismatch, "past_state has shape \(past.shape), expected \([batch, channels, k - 1])")
        }
        for t in [w] + [b, past].compactMap({ $0 }) where t.dataType != x.dataType {
            throw EngineError(.typeMismatch, "CausalConvWithState inputs must all be \(x.dataType), got \(t.dataType)")
        }
        guard x.dataType.isFloatingPoint else {
            throw EngineError(.typeMismatch, "CausalConvWithState does not support \(x.dataType) tensors")
        }
        let f = { (t: Tensor) in try FloatWidening.toFloat32(t, ctx) }
        let xf = try f(x), wf = try f(w), bf = try b.map(f), pf = try past.map(f)
        let out = try ctx.uninitialized(.float32, x.shape)
        let state = try ctx.uninitialized(.float32, [batch, channels, k - 1])
        let padLen = length + k - 1
        var padded = [Float](repeating: 0, count: padLen)
        let px = xf.buffer(Float.self), pw = wf.buffer(Float.self)
        let po = out.mutableBuffer(Float.self), ps = state.mutableBuffer(Float.self)
        let rounding = x.dataType
        for n in 0..<batch {
            for c in 0..<channels {
                let row = n * channels + c
                for j in 0..<(k - 1) { padded[j] = pf?.buffer(Float.self)[row * (k - 1) + j] ?? 0 }
                for t in 0..<length { padded[k - 1 + t] = px[row * length + t] }
                let bias = bf?.buffer(Float.self)[c] ?? 0
                for t in 0..<length {
                    var acc = bias
                    for j in 0..<k { acc += pw[c * k + j] * padded[t + j] }
                    if silu {
                        // The reference rounds the convolution to the input type before the activation.
                        acc = CausalConvWithStateOp.round(acc, rounding)
                        acc = acc / (1 + Float.exp(-acc))
                    }
                    po[row * length + t] = acc
                }
                for j in 0..<(k - 1) { ps[row * (k - 1) + j] = padded[padLen - (k - 1) + j] }
            }
        }
        if x.dataType == .float64 {
            return [try Loops.map(out, Float.self, Double.self, ctx) { Double($0) }, try Loops.map(state, Float.self, Double.self, ctx) { Double($0) }]
        }
        // The state is a copy of input values: exact in every type.
        return [try FloatWidening.fromFloat32(out, to: x.dataType, ctx), try FloatWidening.fromFloat32(state, to: x.dataType, ctx)]
    }

    static func round(_ v: Float, _ t: DataType) -> Float {
        switch t {
        case .float16: return Float(Float16(v))
        case .bfloat16: return Float(bitPattern: UInt32(FloatWidening.bfloat16Bits(v)) << 16)
        default: return v
        }
    }
}

extension StandardOperators {
    static func registerConvolution(_ r: inout OperatorRegistry) {
        r.register("Conv") { c in
            let attrs = try ConvAttributes(c)
            let weights = c.constantInputs.count > 1 ? c.constantInputs[1] : nil
            return ConvOp(attrs: attrs, transposed: false, packed: weights.flatMap { PackedConvWeights(weights: $0, group: attrs.group) })
        }
        r.register("ConvTranspose") { c in ConvOp(attrs: try ConvAttributes(c), transposed: true) }
        r.register("ConvInteger") { c in ConvIntegerOp(attrs: try ConvAttributes(c), quantized: false) }
        r.register("QLinearConv") { c in ConvIntegerOp(attrs: try ConvAttributes(c), quantized: true) }
        r.register("DeformConv") { c in DeformConvOp(attrs: try ConvAttributes(c), offsetGroup: try c.int("offset_group", default: 1)) }
        r.register("CausalConvWithState") { c in
            let activation = try c.string("activation", default: "none")
            guard ["none", "silu", "swish"].contains(activation) else {
                throw c.error(.invalidModel, "unsupported activation '\(activation)' (expected none, silu or swish)")
            }
            return CausalConvWithStateOp(silu: activation != "none")
        }
    }
}

/// A convolution's float32 weights, rearranged once when the model is compiled into the panels the GEMM
/// micro-kernel reads (`blindai_sgemm_pack_a`), one block per group, so that no run packs them again (packing
/// the weights took about half of the packing time, itself 17 % of a ResNet18 run, and each thread of a
/// column-split GEMM packed them on its own). Costs memory about the size of the weights. Immutable.
final class PackedConvWeights: @unchecked Sendable {
    /// The storage that was packed: a run uses the packed form only for this very weight tensor.
    let source: TensorStorage
    let shape: [Int]
    let rowsPerGroup: Int
    let k: Int
    let groups: Int
    private let perGroup: Int
    private let base: UnsafeMutablePointer<Float>

    /// nil when the weights are not float32, not a conv weight shape, or depthwise (which does not use the GEMM).
    init?(weights w: Tensor, group: Int) {
        guard w.dataType == .float32, w.shape.count >= 3, group >= 1, w.shape[0] > 0, w.shape[0] % group == 0 else { return nil }
        let cig = w.shape[1]
        let kSize = w.shape.dropFirst(2).reduce(1, *)
        if cig == 1 && group > 1 { return nil }
        let rows = w.shape[0] / group, k = cig * kSize
        guard k > 0, w.count == rows * group * k else { return nil }
        let per = Int(blindai_sgemm_packed_a_count(rows, k))
        source = w.storage
        shape = w.shape
        rowsPerGroup = rows
        self.k = k
        groups = group
        perGroup = per
        base = .allocate(capacity: per * group)
        let pw = w.buffer(Float.self).baseAddress!
        for grp in 0..<group {
            blindai_sgemm_pack_a(0, rows, k, pw + grp * rows * k, k, base + grp * per)
        }
    }

    deinit { base.deallocate() }

    /// Self when `w` is the tensor that was packed and `g` the geometry it was packed for.
    func matching(_ w: Tensor, _ g: ConvGeometry) -> PackedConvWeights? {
        guard w.storage === source, w.shape == shape, g.group == groups, g.cOutPerGroup == rowsPerGroup,
              g.cInPerGroup * g.kernelSize == k else { return nil }
        return self
    }

    func group(_ grp: Int) -> UnsafePointer<Float> { UnsafePointer(base + grp * perGroup) }
}

extension ConvOp: ShapeInferring {
    func inferFacts(_ inputs: [ValueFact?], _ ctx: ShapeInferenceContext) throws -> [ValueFact] {
        guard inputs.count >= 2, let x = inputs[0], let w = inputs[1] else { return [] }
        var out = ValueFact(dataType: x.dataType)
        guard ctx.node.opType == "Conv", let sx = x.shape, let sw = w.shape, sx.count >= 3, sw.count == sx.count else { return [out] }
        let r = sx.count - 2
        let kernel = ctx.ints("kernel_shape") ?? sw[2...].compactMap(\.value)
        guard kernel.count == r else { return [out] }
        let strides = ctx.ints("strides") ?? Array(repeating: 1, count: r)
        let dilations = ctx.ints("dilations") ?? Array(repeating: 1, count: r)
        let pads = ctx.ints("pads") ?? Array(repeating: 0, count: 2 * r)
        guard strides.count == r, dilations.count == r, pads.count == 2 * r, strides.allSatisfy({ $0 > 0 }), dilations.allSatisfy({ $0 > 0 }) else {
            throw ShapeFacts.Unknowable()
        }
        guard let autoPad = ConvAttributes.AutoPad(onnx: ctx.string("auto_pad") ?? "NOTSET") else { throw ShapeFacts.Unknowable() }
        var dims: [DimFact] = [sx[0], sw[0]]
        for i in 0..<r {
            guard let input = sx[i + 2].value else { dims.append(.unknown); continue }
            dims.append(.known(try ConvGeometry.axis(input: input, kernel: kernel[i], stride: strides[i], dilation: dilations[i],
                                                     padBegin: pads[i], padEnd: pads[i + r], autoPad: autoPad).out))
        }
        out.shape = dims
        return [out]
    }
}
