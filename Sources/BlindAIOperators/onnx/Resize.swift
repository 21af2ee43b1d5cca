import BlindAITensor
import BlindAIKernels
import BlindAIGraph
import Foundation

// Resampling: Resize and Upsample (nearest, linear, cubic), GridSample and AffineGrid.

// MARK: - Resize and Upsample

enum ResizeMode: Sendable { case nearest, linear, cubic }
enum ResizeCoordinateMode: Sendable {
    case halfPixel, halfPixelSymmetric, pytorchHalfPixel, alignCorners, asymmetric, tfCropAndResize, tfHalfPixelForNN
}
enum ResizeNearestMode: Sendable { case roundPreferFloor, roundPreferCeil, floor, ceil, simple }

/// The taps of a 1-D resampling along one axis: for each output index, `n` input indices (already clamped) and
/// their weights, and whether the output is the extrapolation value.
struct ResizeAxisTaps: Sendable {
    var n: Int
    var index: [Int]
    var weight: [Double]
    var extrapolate: [Bool]
}

struct ResizeOp: Operator {
    var mode: ResizeMode
    var coordinate: ResizeCoordinateMode
    var nearest: ResizeNearestMode
    var cubicA: Double = -0.75
    var excludeOutside = false
    var extrapolation: Double = 0
    var antialias = false
    var axes: [Int]? = nil
    var policy = "stretch"
    /// Input positions of roi, scales and sizes (nil when this opset has no such input).
    var roiInput: Int? = nil
    var scalesInput: Int? = nil
    var sizesInput: Int? = nil
    /// Upsample-7's scales attribute.
    var scalesAttr: [Float]? = nil

    func run(_ inputs: [Tensor?], _ ctx: ExecutionContext) throws -> [Tensor] {
        let x = try inputs.required(0)
        let r = x.rank
        guard r > 0 else { throw EngineError(.shapeMismatch, "Resize needs a tensor of rank >= 1") }
        let axisList: [Int]
        if let axes {
            var seen = Set<Int>()
            axisList = try axes.map { a in
                let n = try Shape.axis(a, rank: r)
                guard seen.insert(n).inserted else { throw EngineError(.invalidArgument, "Resize: duplicate axis \(a) in \(axes)") }
                return n
            }
        } else {
            axisList = Array(0..<r)
        }
        var scaleValues: [Double]? = scalesAttr.map { $0.map(Double.init) }
        if let i = scalesInput, let t = inputs.optional(i), t.count > 0 { scaleValues = try t.doubleValues() }
        var sizeValues: [Int]? = nil
        if let i = sizesInput, let t = inputs.optional(i), t.count > 0 { sizeValues = try t.intValues() }
        var roiValues: [Double]? = nil
        if let i = roiInput, let t = inputs.optional(i), t.count > 0 { roiValues = try t.doubleValues() }

        var scales = [Double](repeating: 1, count: r)
        var outShape = x.shape
        if let sizes = sizeValues {
            guard sizes.count == axisList.count else {
                throw EngineError(.invalidArgument, "Resize: sizes \(sizes) must have one value per resized axis (\(axisList.count))")
            }
            guard sizes.allSatisfy({ $0 >= 0 }) else { throw EngineError(.invalidArgument, "Resize: negative size in \(sizes)") }
            for (k, a) in axisList.enumerated() {
                let input = x.shape[a]
                outShape[a] = sizes[k]
                scales[a] = input > 0 ? Double(sizes[k]) / Double(input) : 1
            }
            if policy != "stretch" {
                let ratios = axisList.map { scales[$0] }
                guard let s = policy == "not_larger" ? ratios.min() : ratios.max() else { return [x] }
                for a in axisList {
                    scales[a] = s
                    // s comes from the client's sizes: s × dim may be far beyond Int (Int() would trap).
                    let o = (s * Double(x.shape[a]) + 0.5).rounded(.down)
                    guard o < Double(Int32.max) else { throw EngineError(.memoryLimit, "Resize: output dimension \(o) is too large") }
                    outShape[a] = Int(o)
                }
            }
        } else if let sv = scaleValues {
            guard sv.count == axisList.count else {
                throw EngineError(.invalidArgument, "Resize: scales \(sv) must have one value per resized axis (\(axisList.count))")
            }
            for (k, a) in axisList.enumerated() {
                let s = sv[k]
                guard s > 0, s.isFinite else { throw EngineError(.invalidArgument, "Resize: scales must be positive, got \(sv)") }
                scales[a] = s
                let o = (Double(x.shape[a]) * s).rounded(.down)
                guard o < Double(Int32.max) else { throw EngineError(.memoryLimit, "Resize: output dimension \(o) is too large") }
                outShape[a] = Int(o)
            }
        } else {
            throw EngineError(.invalidArgument, "Resize needs either scales or sizes")
        }
        var roiStart = [Double](repeating: 0, count: r), roiEnd = [Double](repeating: 1, count: r)
        if let roi = roiValues, coordinate == .tfCropAndResize {
            if roi.count == 2 * axisList.count {
                for (k, a) in axisList.enumerated() { roiStart[a] = roi[k]; roiEnd[a] = roi[axisList.count + k] }
            } else if roi.count == 2 * r {
                for a in 0..<r { roiStart[a] = roi[a]; roiEnd[a] = roi[r + a] }
            } else {
                throw EngineError(.invalidArgument, "Resize: roi has \(roi.count) values, expected \(2 * axisList.count)")
            }
        }
        _ = try ctx.limits.checkedCount(outShape, x.dataType)
        // Axes that actually change.
        var taps: [Int: ResizeAxisTaps] = [:]
        var order: [Int] = []
        for a in axisList where !(outShape[a] == x.shape[a] && scales[a] == 1 && (coordinate != .tfCropAndResize || (roiStart[a] == 0 && roiEnd[a] == 1))) {
            if x.shape[a] == 0 && outShape[a] > 0 {
                throw EngineError(.invalidArgument, "Resize: cannot resize an empty axis \(a) to \(outShape[a])")
            }
            taps[a] = axisTaps(input: x.shape[a], output: outShape[a], scale: scales[a], roiStart: roiStart[a], roiEnd: roiEnd[a])
            order.append(a)
        }
        if order.isEmpty { return [x] }
        // Separable passes: shrink first, and resample the innermost axis while the data is smallest.
        if order.count > 1 {
            var remaining = order, shape = x.shape
            order = []
            while !remaining.isEmpty {
                var best = 0
                var bestSize = Int.max
                for (k, a) in remaining.enumerated() {
                    let size = shape.reduce(1, *) / Swift.max(shape[a], 1) * outShape[a]
                    if size < bestSize || (size == bestSize && a > remaining[best]) { best = k; bestSize = size }
                }
                let a = remaining.remove(at: best)
                shape[a] = outShape[a]
                order.append(a)
            }
        }
        if mode == .nearest || x.count == 0 {
            return [try gather(x, outShape: outShape, taps: taps, ctx)]
        }
        switch x.dataType {
        case .float32: return [try resample(x, order, taps, Float.self, ctx)]
        case .float64: return [try resample(x, order, taps, Double.self, ctx)]
        case .float16: return [try FloatWidening.toFloat16(try resample(try FloatWidening.toFloat32(x, ctx), order, taps, Float.self, ctx), ctx)]
        case .int8: return [try resampleInt(x, order, taps, Int8.self, ctx)]
        case .uint8: return [try resampleInt(x, order, taps, UInt8.self, ctx)]
        case .int16: return [try resampleInt(x, order, taps, Int16.self, ctx)]
        case .uint16: return [try resampleInt(x, order, taps, UInt16.self, ctx)]
        case .int32: return [try resampleInt(x, order, taps, Int32.self, ctx)]
        case .uint32: return [try resampleInt(x, order, taps, UInt32.self, ctx)]
        case .int64: return [try resampleInt(x, order, taps, Int64.self, ctx)]
        case .uint64: return [try resampleInt(x, order, taps, UInt64.self, ctx)]
        default: throw EngineError(.typeMismatch, "Resize in \(mode) mode does not support \(x.dataType) tensors")
        }
    }

    /// The source coordinate of output index `o`, computed in float32 as onnxruntime does (this decides ties of
    /// nearest rounding). align_corners and tf_crop_and_resize use the unrounded resized length, as the ONNX
    /// reference does.
    func sourceCoordinate(_ o: Int, input: Int, output: Int, scale: Double, roiStart: Double, roiEnd: Double) -> Double {
        let x = Float(o), s = Float(scale), inL = Float(input)
        let resized = s * inL
        let r: Float
        switch coordinate {
        case .halfPixel: r = (x + 0.5) / s - 0.5
        case .halfPixelSymmetric:
            let adjustment = Float(output) / resized
            let center = inL / 2
            r = center * (1 - adjustment) + (x + 0.5) / s - 0.5
        case .pytorchHalfPixel: r = output > 1 ? (x + 0.5) / s - 0.5 : 0
        case .alignCorners: r = resized != 1 && output > 1 ? x * (inL - 1) / (resized - 1) : 0
        case .asymmetric: r = x / s
        case .tfHalfPixelForNN: r = (x + 0.5) / s
        case .tfCropAndResize:
            let rs = Float(roiStart), re = Float(roiEnd)
            if resized != 1 && output > 1 {
                r = rs * (inL - 1) + x * (re - rs) * (inL - 1) / (resized - 1)
            } else {
                r = 0.5 * (rs + re) * (inL - 1)
            }
        }
        return Double(r)
    }

    func cubicWeight(_ d: Double) -> Double {
        let a = cubicA
        let x = Swift.abs(d)
        if x <= 1 { return ((a + 2) * x - (a + 3)) * x * x + 1 }
        if x < 2 { return ((a * x - 5 * a) * x + 8 * a) * x - 4 * a }
        return 0
    }

    func axisTaps(input: Int, output: Int, scale: Double, roiStart: Double, roiEnd: Double) -> ResizeAxisTaps {
        let n: Int
        let filterScale = Swift.min(scale, 1)
        switch mode {
        case .nearest: n = 1
        case .linear: n = antialias ? 2 - 2 * (Int(Swift.max((-1 / filterScale).rounded(.down), -1e6)) + 1) : 2
        case .cubic: n = antialias ? 2 - 2 * (Int(Swift.max((-2 / filterScale).rounded(.down), -1e6)) + 1) : 4
        }
        var index = [Int](repeating: 0, count: output * n)
        var weight = [Double](repeating: 0, count: output * n)
        var extrapolate = [Bool](repeating: false, count: output)
        let last = Swift.max(input - 1, 0)
        var w = [Double](repeating: 0, count: n)
        for o in 0..<output {
            var xo = sourceCoordinate(o, input: input, output: output, scale: scale, roiStart: roiStart, roiEnd: roiEnd)
            if coordinate == .tfCropAndResize && !(xo >= 0 && xo <= Double(input - 1)) {
                extrapolate[o] = true
            }
            // Far outside the input every tap clamps to the same edge: bound the coordinate so that index
            // arithmetic cannot overflow (and NaN from a hostile roi becomes a defined edge).
            let bound = Double(input + n + 8)
            xo = xo.isNaN ? 0 : Swift.min(Swift.max(xo, -bound), bound)
            if mode == .nearest {
                var i: Double
                switch nearest {
                case .roundPreferFloor: i = xo == xo.rounded(.down) + 0.5 ? xo.rounded(.down) : xo.rounded()
                case .roundPreferCeil: i = xo.rounded()
                case .floor: i = xo.rounded(.down)
                case .ceil: i = xo.rounded(.up)
                case .simple: i = scale < 1 ? xo.rounded(.up) : xo.rounded(.towardZero)
                }
                i = Swift.min(Swift.max(i, 0), Double(last))
                index[o] = Int(i)
                weight[o] = 1
                continue
            }
            let x0 = xo.rounded(.down)
            let first: Int
            if antialias {
                first = Int(x0) - n / 2 + 1
                var sum = 0.0
                for k in 0..<n {
                    let d = (Double(first + k) - xo) * filterScale
                    w[k] = mode == .linear ? Swift.max(0, 1 - Swift.abs(d)) : cubicWeight(d)
                    sum += w[k]
                }
                if sum != 0 { for k in 0..<n { w[k] /= sum } }
            } else if mode == .linear {
                first = Int(x0)
                let t = xo - x0
                w[0] = 1 - t
                w[1] = t
            } else {
                first = Int(x0) - 1
                let t = xo - x0
                w[0] = cubicWeight(t + 1)
                w[1] = cubicWeight(t)
                w[2] = cubicWeight(1 - t)
                w[3] = cubicWeight(2 - t)
            }
            if excludeOutside {
                var sum = 0.0
                for k in 0..<n {
                    let i = first + k
                    if i < 0 || i >= input { w[k] = 0 }
                    sum += w[k]
                }
                if sum != 0 { for k in 0..<n { w[k] /= sum } }
            }
            for k in 0..<n {
                index[o * n + k] = Swift.min(Swift.max(first + k, 0), last)
                weight[o * n + k] = w[k]
            }
        }
        return ResizeAxisTaps(n: n, index: index, weight: weight, extrapolate: extrapolate)
    }

    /// Nearest mode: one gather over all axes at once (any element type, moved as raw bits).
    func gather(_ x: Tensor, outShape: [Int], taps: [Int: ResizeAxisTaps], _ ctx: ExecutionContext) throws -> Tensor {
        let fillTensor: Tensor? = try taps.values.contains(where: { $0.extrapolate.contains(true) }) && x.dataType != .string
            ? CastOp.fromDoubles([extrapolation], shape: [1], to: x.dataType, ctx) : nil
        switch x.dataType.byteSize {
        case 1: return try gatherBits(x, outShape, taps, fillTensor, UInt8.self, ctx)
        case 2: return try gatherBits(x, outShape, taps, fillTensor, UInt16.self, ctx)
        case 4: return try gatherBits(x, outShape, taps, fillTensor, UInt32.self, ctx)
        case 8: return try gatherBits(x, outShape, taps, fillTensor, UInt64.self, ctx)
        default: throw EngineError(.typeMismatch, "Resize does not support \(x.dataType) tensors")
        }
    }

    func gatherBits<T: EngineInteger>(_ x: Tensor, _ outShape: [Int], _ taps: [Int: ResizeAxisTaps], _ fillTensor: Tensor?,
                                      _: T.Type, _ ctx: ExecutionContext) throws -> Tensor {
        let out = try ctx.uninitialized(x.dataType, outShape)
        if out.count == 0 { return out }
        let fill: T = fillTensor.map { $0.storage.base.load(as: T.self) } ?? 0
        let src = x.storage.base.assumingMemoryBound(to: T.self)
        let dst = out.storage.base.assumingMemoryBound(to: T.self)
        let r = x.rank
        let inStrides = Shape.strides(x.shape)
        // Per axis: source offset (in elements) of each output index, or -1 to extrapolate.
        var maps: [[Int]] = []
        for a in 0..<r {
            if let t = taps[a] {
                maps.append((0..<outShape[a]).map { t.extrapolate[$0] ? -1 : t.index[$0] * inStrides[a] })
            } else {
                maps.append((0..<outShape[a]).map { $0 * inStrides[a] })
            }
        }
        let inner = maps[r - 1]
        let innerCount = outShape[r - 1]
        let rows = out.count / innerCount
        var index = [Int](repeating: 0, count: r)
        var o = 0
        let innerHasFill = inner.contains(-1)
        let innerIdentity = taps[r - 1] == nil
        // Integer upsampling of the inner axis: each source element repeated `rep` times.
        let inInner = x.shape[r - 1]
        let rep = !innerHasFill && inInner > 0 && innerCount % inInner == 0 ? innerCount / inInner : 0
        let repeats = rep > 1 && (0..<innerCount).allSatisfy { inner[$0] == $0 / rep }
        var lastBase = -1
        let rowBytes = innerCount * MemoryLayout<T>.stride
        inner.withUnsafeBufferPointer { innerMap in
            for _ in 0..<rows {
                var base = 0
                var outside = false
                for d in 0..<(r - 1) {
                    let m = maps[d][index[d]]
                    if m < 0 { outside = true }
                    base += m
                }
                if outside {
                    for i in 0..<innerCount { dst[o + i] = fill }
                    lastBase = -1
                } else if base == lastBase {
                    // Same source row as the previous output row (upsampling): copy it.
                    UnsafeMutableRawPointer(dst + o).copyMemory(from: dst + o - innerCount, byteCount: rowBytes)
                } else if innerIdentity {
                    UnsafeMutableRawPointer(dst + o).copyMemory(from: src + base, byteCount: rowBytes)
                    lastBase = base
                } else {
                    let s = src + base
                    let d = dst + o
                    if repeats && rep == 2 {
                        for i in 0..<inInner { let v = s[i]; d[2 &* i] = v; d[2 &* i &+ 1] = v }
                    } else if repeats {
                        for i in 0..<inInner { let v = s[i]; for k in 0..<rep { d[i &* rep &+ k] = v } }
                    } else if innerHasFill {
                        for i in 0..<innerCount {
                            let m = innerMap[i]
                            dst[o + i] = m < 0 ? fill : s[m]
                        }
                    } else {
                        for i in 0..<innerCount { dst[o + i] = s[innerMap[i]] }
                    }
                    lastBase = base
                }
                o += innerCount
                var d = r - 2
                while d >= 0 {
                    index[d] += 1
                    if index[d] < outShape[d] { break }
                    index[d] = 0
                    d -= 1
                }
            }
        }
        return out
    }

    /// Linear and cubic modes: one separable pass per resized axis.
    func resample<T: BinaryFloatingPoint & TensorElement>(_ x: Tensor, _ order: [Int], _ taps: [Int: ResizeAxisTaps],
                                                           _: T.Type, _ ctx: ExecutionContext) throws -> Tensor {
        var cur = x
        let fill = T(extrapolation)
        for a in order {
            guard let t = taps[a] else { continue }
            var shape = cur.shape
            let outA = t.extrapolate.count
            shape[a] = outA
            let next = try ctx.uninitialized(cur.dataType, shape)
            let outer = cur.shape[..<a].reduce(1, *)
            let inA = cur.shape[a]
            let inner = cur.shape[(a + 1)...].reduce(1, *)
            let src = cur.buffer(T.self).baseAddress!, dst = next.mutableBuffer(T.self).baseAddress!
            let n = t.n
            let w = t.weight.map { T($0) }
            w.withUnsafeBufferPointer { w in
            t.index.withUnsafeBufferPointer { idx in
            t.extrapolate.withUnsafeBufferPointer { ext in
                for o in 0..<outer {
                    let s = src + o * inA * inner
                    let d = dst + o * outA * inner
                    if inner == 1 {
                        if n == 2 {
                            for j in 0..<outA {
                                d[j] = ext[j] ? fill : w[2 * j] * s[idx[2 * j]] + w[2 * j + 1] * s[idx[2 * j + 1]]
                            }
                        } else {
                            for j in 0..<outA {
                                if ext[j] { d[j] = fill; continue }
                                var acc: T = 0
                                for k in 0..<n { acc += w[j * n + k] * s[idx[j * n + k]] }
                                d[j] = acc
                            }
                        }
                    } else if n == 2 {
                        for j in 0..<outA {
                            let row = d + j * inner
                            if ext[j] {
                                for i in 0..<inner { row[i] = fill }
                                continue
                            }
                            let w0 = w[2 * j], w1 = w[2 * j + 1]
                            let r0 = s + idx[2 * j] * inner, r1 = s + idx[2 * j + 1] * inner
                            if w1 == 0 {
                                for i in 0..<inner { row[i] = w0 * r0[i] }
                            } else {
                                for i in 0..<inner { row[i] = w0 * r0[i] + w1 * r1[i] }
                            }
                        }
                    } else {
                        for j in 0..<outA {
                            let row = d + j * inner
                            if ext[j] {
                                for i in 0..<inner { row[i] = fill }
                                continue
                            }
                            let w0 = w[j * n]
                            let r0 = s + idx[j * n] * inner
                            for i in 0..<inner { row[i] = w0 * r0[i] }
                            for k in 1..<n {
                                let wk = w[j * n + k]
                                if wk == 0 { continue }
                                let rk = s + idx[j * n + k] * inner
                                for i in 0..<inner { row[i] += wk * rk[i] }
                            }
                        }
                    }
                }
            }
            }
            }
            cur = next
        }
        return cur
    }

    /// Integer inputs are resampled in double precision and truncated back (as onnxruntime does), saturating.
    func resampleInt<T: EngineInteger>(_ x: Tensor, _ order: [Int], _ taps: [Int: ResizeAxisTaps], _: T.Type, _ ctx: ExecutionContext) throws -> Tensor {
        let wide = try ctx.uninitialized(.float64, x.shape)
        let s = x.buffer(T.self), w = wide.mutableBuffer(Double.self)
        for i in 0..<s.count { w[i] = Double(s[i]) }
        let r = try resample(wide, order, taps, Double.self, ctx)
        let out = try ctx.uninitialized(x.dataType, r.shape)
        let rs = r.buffer(Double.self), d = out.mutableBuffer(T.self)
        for i in 0..<rs.count {
            // Values within rounding noise of an integer are that integer; others truncate.
            let v = rs[i], n = v.rounded()
            d[i] = T(clampingDouble: Swift.abs(v - n) < 1e-4 ? n : v.rounded(.towardZero))
        }
        return out
    }
}

extension ResizeOp {
    static func coordinateMode(_ s: String, _ c: OpBuildContext) throws -> ResizeCoordinateMode {
        switch s {
        case "half_pixel": return .halfPixel
        case "half_pixel_symmetric": return .halfPixelSymmetric
        case "pytorch_half_pixel": return .pytorchHalfPixel
        case "align_corners": return .alignCorners
        case "asymmetric": return .asymmetric
        case "tf_crop_and_resize": return .tfCropAndResize
        case "tf_half_pixel_for_nn": return .tfHalfPixelForNN
        default: throw c.error(.invalidModel, "unknown coordinate_transformation_mode '\(s)'")
        }
    }

    static func interpolationMode(_ s: String, _ c: OpBuildContext) throws -> ResizeMode {
        switch s {
        case "nearest": return .nearest
        case "linear", "bilinear", "trilinear": return .linear
        case "cubic", "bicubic": return .cubic
        default: throw c.error(.invalidModel, "unknown mode '\(s)'")
        }
    }

    static func nearestMode(_ s: String, _ c: OpBuildContext) throws -> ResizeNearestMode {
        switch s {
        case "round_prefer_floor": return .roundPreferFloor
        case "round_prefer_ceil": return .roundPreferCeil
        case "floor": return .floor
        case "ceil": return .ceil
        default: throw c.error(.invalidModel, "unknown nearest_mode '\(s)'")
        }
    }
}

// MARK: - GridSample

struct GridSampleOp: Operator {
    let mode: ResizeMode
    let padding: Int // 0 zeros, 1 border, 2 reflection
    let alignCorners: Bool

    func run(_ inputs: [Tensor?], _ ctx: ExecutionContext) throws -> [Tensor] {
        let x = try inputs.required(0), grid = try inputs.required(1, "grid")
        let n = x.rank - 2
        guard n >= 1, n <= 3 else { throw EngineError(.shapeMismatch, "GridSample needs an input of rank 3 to 5, got \(x.shape)") }
        guard grid.rank == x.rank, grid.shape[0] == x.shape[0], grid.shape[x.rank - 1] == n else {
            throw EngineError(.shapeMismatch, "GridSample grid of shape \(grid.shape) does not match input \(x.shape)")
        }
        guard grid.dataType == x.dataType || grid.dataType.isFloatingPoint else { throw EngineError(.typeMismatch, "GridSample grid must be a float tensor") }
        let g = try grid.doubleValues()
        switch x.dataType {
        case .float32: return [try sample(x, grid.shape, g, Float.self, ctx)]
        case .float64: return [try sample(x, grid.shape, g, Double.self, ctx)]
        case .float16: return [try FloatWidening.toFloat16(try sample(try FloatWidening.toFloat32(x, ctx), grid.shape, g, Float.self, ctx), ctx)]
        default: throw EngineError(.typeMismatch, "GridSample does not support \(x.dataType) tensors")
        }
    }

    static func reflect(_ x: Double, _ lo: Double, _ hi: Double) -> Double {
        let range = hi - lo
        if range <= 0 { return lo }
        if x < lo {
            let dx = lo - x
            let k = (dx / range).rounded(.towardZero)
            let r = dx - k * range
            return k.truncatingRemainder(dividingBy: 2) == 0 ? lo + r : hi - r
        } else if x > hi {
            let dx = x - hi
            let k = (dx / range).rounded(.towardZero)
            let r = dx - k * range
            return k.truncatingRemainder(dividingBy: 2) == 0 ? hi - r : lo + r
        }
        return x
    }

    func sample<T: BinaryFloatingPoint & TensorElement>(_ x: Tensor, _ gshape: [Int], _ g: [Double], _: T.Type, _ ctx: ExecutionContext) throws -> Tensor {
        let N = x.shape[0], C = x.shape[1]
        let n = x.rank - 2
        let dims = Array(x.shape[2...])
        let outSpatial = Array(gshape[1..<(gshape.count - 1)])
        let outCount = outSpatial.reduce(1, *)
        let y = try ctx.uninitialized(x.dataType, [N, C] + outSpatial)
        let plane = dims.reduce(1, *)
        let strides = Shape.strides(dims)
        let src = x.buffer(T.self).baseAddress!, dst = y.mutableBuffer(T.self).baseAddress!
        var lo = [Double](repeating: 0, count: n), hi = [Double](repeating: 0, count: n)
        for i in 0..<n {
            lo[i] = alignCorners ? 0 : -0.5
            hi[i] = alignCorners ? Double(dims[i] - 1) : Double(dims[i]) - 0.5
        }
        let tapsPerDim = mode == .nearest ? 1 : (mode == .linear ? 2 : 4)
        var combos = 1
        for _ in 0..<n { combos *= tapsPerDim }
        // Per output point: every tap's flat offset and weight (a tap outside the input with zeros padding gets
        // weight 0 at offset 0), computed once and applied to every channel.
        // Points are processed in chunks so that the tap tables stay small.
        let chunk = Swift.max(1, Swift.min(outCount, 4096))
        var offs = [Int](repeating: 0, count: chunk * combos)
        var wts = [T](repeating: 0, count: chunk * combos)
        var tapIndex = [Int](repeating: 0, count: n * tapsPerDim)
        var tapWeight = [Double](repeating: 0, count: n * tapsPerDim)
        var cubicW = [Double](repeating: 0, count: 4)
        for b in 0..<N {
            for p0 in stride(from: 0, to: outCount, by: chunk) {
                let pc = Swift.min(chunk, outCount - p0)
                for pl in 0..<pc {
                    let p = p0 + pl
                    let gp = (b * outCount + p) * n
                    for i in 0..<n {
                        // grid's last axis is (x, y, z): reversed relative to the (D, H, W) axes.
                        let v = g[gp + (n - 1 - i)]
                        let L = Double(dims[i])
                        var c = alignCorners ? (v + 1) / 2 * (L - 1) : ((v + 1) * L - 1) / 2
                        // NaN samples read outside the input; coordinates are bounded so index arithmetic cannot overflow.
                        c = c.isNaN ? -L - 8 : Swift.min(Swift.max(c, -1e9), 1e9)
                        if mode == .nearest { c = c.rounded(.toNearestOrEven) }
                        if c < lo[i] || c > hi[i] {
                            if padding == 1 { c = Swift.min(Swift.max(c, 0), L - 1) } else if padding == 2 { c = Self.reflect(c, lo[i], hi[i]) }
                        }
                        c = Swift.min(Swift.max(c, -L - 8), L + 8)
                        let t0 = i * tapsPerDim
                        switch mode {
                        case .nearest:
                            tapIndex[t0] = Int(c.rounded(.towardZero))
                            tapWeight[t0] = 1
                        case .linear:
                            let f = c.rounded(.down)
                            let t = c - f
                            tapIndex[t0] = Int(f); tapIndex[t0 + 1] = Int(f) + 1
                            tapWeight[t0] = 1 - t; tapWeight[t0 + 1] = t
                        case .cubic:
                            let f = c.rounded(.down)
                            cubicCoefficients(c - f, &cubicW)
                            for k in 0..<4 { tapIndex[t0 + k] = Int(f) - 1 + k; tapWeight[t0 + k] = cubicW[k] }
                        }
                        // Padding of each tap's index (-1: a zero pixel).
                        for k in 0..<tapsPerDim {
                            var j = tapIndex[t0 + k]
                            if j < 0 || j >= dims[i] {
                                switch padding {
                                case 1: j = Swift.min(Swift.max(j, 0), dims[i] - 1)
                                case 2: j = Int(Self.reflect(Double(j), lo[i], hi[i]).rounded(.towardZero)); j = Swift.min(Swift.max(j, 0), dims[i] - 1)
                                default: j = -1
                                }
                            }
                            tapIndex[t0 + k] = j
                        }
                    }
                    for cIdx in 0..<combos {
                        var rem = cIdx, off = 0, w = 1.0
                        for i in stride(from: n - 1, through: 0, by: -1) {
                            let k = rem % tapsPerDim
                            rem /= tapsPerDim
                            let j = tapIndex[i * tapsPerDim + k]
                            if j < 0 || off < 0 { off = -1 } else { off += j * strides[i] }
                            w *= tapWeight[i * tapsPerDim + k]
                        }
                        offs[pl * combos + cIdx] = off < 0 ? 0 : off
                        wts[pl * combos + cIdx] = off < 0 ? 0 : T(w)
                    }
                }
                offs.withUnsafeBufferPointer { o in
                wts.withUnsafeBufferPointer { w in
                    for ch in 0..<C {
                        let s = src + (b * C + ch) * plane
                        let d = dst + (b * C + ch) * outCount + p0
                        switch combos {
                        case 1:
                            for p in 0..<pc { d[p] = w[p] * s[o[p]] }
                        case 4:
                            for p in 0..<pc {
                                let q = 4 * p
                                d[p] = (w[q] * s[o[q]] + w[q + 1] * s[o[q + 1]]) + (w[q + 2] * s[o[q + 2]] + w[q + 3] * s[o[q + 3]])
                            }
                        default:
                            for p in 0..<pc {
                                var acc: T = 0
                                for k in 0..<combos { acc += w[p * combos + k] * s[o[p * combos + k]] }
                                d[p] = acc
                            }
                        }
                    }
                }
                }
            }
        }
        return y
    }

    func cubicCoefficients(_ t: Double, _ out: inout [Double]) {
        let a = -0.75
        let x = Swift.abs(t)
        out[0] = ((a * (x + 1) - 5 * a) * (x + 1) + 8 * a) * (x + 1) - 4 * a
        out[1] = ((a + 2) * x - (a + 3)) * x * x + 1
        out[2] = ((a + 2) * (1 - x) - (a + 3)) * (1 - x) * (1 - x) + 1
        out[3] = ((a * (2 - x) - 5 * a) * (2 - x) + 8 * a) * (2 - x) - 4 * a
    }
}

// MARK: - AffineGrid

struct AffineGridOp: Operator {
    let alignCorners: Bool

    func run(_ inputs: [Tensor?], _ ctx: ExecutionContext) throws -> [Tensor] {
        let theta = try inputs.required(0), sizeT = try inputs.required(1, "size")
        let size = try sizeT.intValues()
        guard size.count == 4 || size.count == 5 else { throw EngineError(.invalidArgument, "AffineGrid size must have 4 or 5 values, got \(size)") }
        let n = size.count - 2
        let N = size[0]
        guard theta.shape == [N, n, n + 1] else {
            throw EngineError(.shapeMismatch, "AffineGrid theta must have shape \([N, n, n + 1]), got \(theta.shape)")
        }
        switch theta.dataType {
        case .float32: return [try grid(theta, size, Float.self, ctx)]
        case .float64: return [try grid(theta, size, Double.self, ctx)]
        case .float16: return [try FloatWidening.toFloat16(try grid(try FloatWidening.toFloat32(theta, ctx), size, Float.self, ctx), ctx)]
        default: throw EngineError(.typeMismatch, "AffineGrid does not support \(theta.dataType) tensors")
        }
    }

    func base(_ L: Int) -> [Double] {
        (0..<L).map { i in
            if alignCorners { return L > 1 ? -1 + 2 * Double(i) / Double(L - 1) : -1 }
            return -1 + (2 * Double(i) + 1) / Double(L)
        }
    }

    func grid<T: BinaryFloatingPoint & TensorElement>(_ theta: Tensor, _ size: [Int], _: T.Type, _ ctx: ExecutionContext) throws -> Tensor {
        let n = size.count - 2
        let N = size[0]
        let spatial = Array(size[2...])
        let y = try ctx.uninitialized(theta.dataType, [N] + spatial + [n])
        // An empty batch needs no base coordinates: building them would allocate every spatial size.
        if y.count == 0 { return y }
        let th = theta.buffer(T.self), d = y.mutableBuffer(T.self)
        let D = n == 3 ? spatial[0] : 1, H = spatial[n - 2], W = spatial[n - 1]
        let zs = base(D), ys = base(H), xs = base(W)
        var o = 0
        for b in 0..<N {
            let t = (0..<(n * (n + 1))).map { Double(th[b * n * (n + 1) + $0]) }
            for dz in 0..<D {
                for h in 0..<H {
                    for w in 0..<W {
                        let p: [Double] = n == 3 ? [xs[w], ys[h], zs[dz], 1] : [xs[w], ys[h], 1]
                        for r in 0..<n {
                            var acc = 0.0
                            for k in 0...n { acc += t[r * (n + 1) + k] * p[k] }
                            d[o] = T(acc)
                            o += 1
                        }
                    }
                }
            }
        }
        return y
    }
}

// MARK: - Col2Im

struct Col2ImOp: Operator {
    let dilations: [Int]?
    let pads: [Int]?
    let strides: [Int]?

    func run(_ inputs: [Tensor?], _ ctx: ExecutionContext) throws -> [Tensor] {
        let x = try inputs.required(0)
        let image = try inputs.required(1, "image_shape").intValues()
        let block = try inputs.required(2, "block_shape").intValues()
        let n = image.count
        guard block.count == n, n > 0 else { throw EngineError(.invalidArgument, "Col2Im image_shape \(image) and block_shape \(block) must have the same length") }
        let dil = dilations ?? Array(repeating: 1, count: n)
        let pad = pads ?? Array(repeating: 0, count: 2 * n)
        let str = strides ?? Array(repeating: 1, count: n)
        guard dil.count == n, str.count == n, pad.count == 2 * n else { throw EngineError(.invalidArgument, "Col2Im attributes do not match \(n) spatial axes") }
        guard x.rank == 3 else { throw EngineError(.shapeMismatch, "Col2Im input must be [N, C*prod(block), L], got \(x.shape)") }
        let limit = Int(Int32.max)
        guard (block + image + dil + str + pad).allSatisfy({ $0 <= limit }), pad.allSatisfy({ $0 >= 0 }) else {
            throw EngineError(.invalidArgument, "Col2Im shapes, pads, dilations and strides are out of range")
        }
        guard block.allSatisfy({ $0 > 0 }), image.allSatisfy({ $0 > 0 }), dil.allSatisfy({ $0 > 0 }), str.allSatisfy({ $0 > 0 }) else {
            throw EngineError(.invalidArgument, "Col2Im shapes, dilations and strides must be positive")
        }
        let kSize = try SizeMath.product(block, "Col2Im: the block size")
        guard x.shape[1] % kSize == 0 else { throw EngineError(.shapeMismatch, "Col2Im input channel dimension \(x.shape[1]) is not a multiple of \(kSize)") }
        var blocks: [Int] = []
        for i in 0..<n {
            let b = (image[i] + pad[i] + pad[i + n] - (dil[i] * (block[i] - 1) + 1)) / str[i] + 1
            guard b > 0 else { throw EngineError(.invalidArgument, "Col2Im: no sliding block fits along axis \(i)") }
            blocks.append(b)
        }
        let L = try SizeMath.product(blocks, "Col2Im: the number of blocks")
        _ = try ctx.limits.checkedCount([x.shape[0], x.shape[1] / kSize] + image, x.dataType)
        guard x.shape[2] == L else { throw EngineError(.shapeMismatch, "Col2Im input has \(x.shape[2]) blocks, expected \(L)") }
        switch x.dataType {
        case .float32: return [try fold(x, image, block, blocks, dil, pad, str, Float.self, ctx)]
        case .float64: return [try fold(x, image, block, blocks, dil, pad, str, Double.self, ctx)]
        case .float16: return [try FloatWidening.toFloat16(try fold(try FloatWidening.toFloat32(x, ctx), image, block, blocks, dil, pad, str, Float.self, ctx), ctx)]
        default: throw EngineError(.typeMismatch, "Col2Im does not support \(x.dataType) tensors")
        }
    }

    func fold<T: BinaryFloatingPoint & TensorElement>(_ x: Tensor, _ image: [Int], _ block: [Int], _ blocks: [Int], _ dil: [Int], _ pad: [Int], _ str: [Int],
                                                       _: T.Type, _ ctx: ExecutionContext) throws -> Tensor {
        let n = image.count
        let N = x.shape[0]
        let kSize = block.reduce(1, *)
        let C = x.shape[1] / kSize
        let L = x.shape[2]
        let y = try ctx.zeros(x.dataType, [N, C] + image)
        let plane = image.reduce(1, *)
        let imStrides = Shape.strides(image)
        let src = x.buffer(T.self).baseAddress!, dst = y.mutableBuffer(T.self).baseAddress!
        var kIdx = [Int](repeating: 0, count: n), bIdx = [Int](repeating: 0, count: n)
        for b in 0..<N {
            for c in 0..<C {
                let out = dst + (b * C + c) * plane
                for k in 0..<kSize {
                    var rem = k
                    for i in stride(from: n - 1, through: 0, by: -1) { kIdx[i] = rem % block[i]; rem /= block[i] }
                    let col = src + ((b * C + c) * kSize + k) * L
                    for l in 0..<L {
                        var r2 = l
                        for i in stride(from: n - 1, through: 0, by: -1) { bIdx[i] = r2 % blocks[i]; r2 /= blocks[i] }
                        var off = 0
                        var inside = true
                        for i in 0..<n {
                            let p = bIdx[i] * str[i] - pad[i] + kIdx[i] * dil[i]
                            if p < 0 || p >= image[i] { inside = false; break }
                            off += p * imStrides[i]
                        }
                        if inside { out[off] += col[l] }
                    }
                }
            }
        }
        return y
    }
}

extension StandardOperators {
    static func registerResize(_ r: inout OperatorRegistry) {
        r.register("Resize") { c in
            let mode = try ResizeOp.interpolationMode(try c.string("mode", default: "nearest"), c)
            if c.opset < 11 {
                return ResizeOp(mode: mode, coordinate: .asymmetric, nearest: .simple, scalesInput: 1)
            }
            var op = ResizeOp(
                mode: mode,
                coordinate: try ResizeOp.coordinateMode(try c.string("coordinate_transformation_mode", default: "half_pixel"), c),
                nearest: try ResizeOp.nearestMode(try c.string("nearest_mode", default: "round_prefer_floor"), c))
            op.cubicA = Double(try c.float("cubic_coeff_a", default: -0.75))
            op.excludeOutside = try c.int("exclude_outside", default: 0) != 0
            op.extrapolation = Double(try c.float("extrapolation_value", default: 0))
            op.antialias = try c.int("antialias", default: 0) != 0
            if op.antialias && mode == .nearest { throw c.error(.invalidModel, "Resize: antialias is not supported in nearest mode") }
            op.axes = try c.ints("axes")
            op.policy = try c.string("keep_aspect_ratio_policy", default: "stretch")
            guard ["stretch", "not_larger", "not_smaller"].contains(op.policy) else {
                throw c.error(.invalidModel, "unknown keep_aspect_ratio_policy '\(op.policy)'")
            }
            op.roiInput = 1
            op.scalesInput = 2
            op.sizesInput = 3
            return op
        }
        r.register("Upsample") { c in
            let mode = try ResizeOp.interpolationMode(try c.string("mode", default: "nearest"), c)
            var op = ResizeOp(mode: mode, coordinate: .asymmetric, nearest: .simple)
            if c.opset < 9 {
                guard let s = try c.floats("scales") else { throw c.error(.invalidModel, "Upsample needs a 'scales' attribute") }
                op.scalesAttr = s
            } else {
                op.scalesInput = 1
            }
            return op
        }
        r.register("GridSample") { c in
            let m = try c.string("mode", default: c.opset >= 20 ? "linear" : "bilinear")
            let p = try c.string("padding_mode", default: "zeros")
            let padding: Int
            switch p {
            case "zeros": padding = 0
            case "border": padding = 1
            case "reflection": padding = 2
            default: throw c.error(.invalidModel, "unknown padding_mode '\(p)'")
            }
            return GridSampleOp(mode: try ResizeOp.interpolationMode(m, c), padding: padding, alignCorners: try c.int("align_corners", default: 0) != 0)
        }
        r.register("AffineGrid") { c in AffineGridOp(alignCorners: try c.int("align_corners", default: 0) != 0) }
        r.register("Col2Im") { c in Col2ImOp(dilations: try c.ints("dilations"), pads: try c.ints("pads"), strides: try c.ints("strides")) }
    }
}
