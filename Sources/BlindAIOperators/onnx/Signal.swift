import BlindAITensor
import BlindAIKernels
import BlindAIGraph
import Foundation

// Signal processing: DFT (opset 17 axis attribute, opset 20 axis input), STFT, MelWeightMatrix and the window
// functions (HannWindow, HammingWindow, BlackmanWindow).
// Transforms are computed in double precision on split real/imaginary scratch buffers: mixed-radix Stockham for
// lengths with small prime factors, a direct sum for other short lengths, Bluestein's chirp-z algorithm otherwise.

/// Reads a scalar integer input (dft_length, frame_step, frame_length).
fileprivate func signalScalarInt(_ t: Tensor, _ what: String) throws -> Int {
    let v = try t.intValues()
    guard v.count == 1 else { throw EngineError(.invalidArgument, "\(what) must be a scalar, got shape \(t.shape)") }
    return v[0]
}

/// DFT: forward/inverse complex transforms, RFFT (onesided forward) and IRFFT (onesided inverse).
struct DFTOp: Operator {
    /// The axis attribute (opset 17-19); nil when the axis is the optional third input (opset 20).
    let axisAttribute: Int?
    let inverse: Bool
    let onesided: Bool

    func run(_ inputs: [Tensor?], _ ctx: ExecutionContext) throws -> [Tensor] {
        let x = try inputs.required(0)
        var length: Int?
        if let l = inputs.optional(1) {
            length = try signalScalarInt(l, "DFT: dft_length")
        }
        var axis = axisAttribute ?? -2
        if axisAttribute == nil, let a = inputs.optional(2) {
            axis = try signalScalarInt(a, "DFT: axis")
        }
        switch x.dataType {
        case .float32: return [try compute(x, length, axis, Float.self, ctx)]
        case .float64: return [try compute(x, length, axis, Double.self, ctx)]
        case .float16: return [try compute(x, length, axis, Float16.self, ctx)]
        case .bfloat16:
            let y = try compute(CastOp.cast(x, to: .float32, ctx), length, axis, Float.self, ctx)
            return [try CastOp.cast(y, to: .bfloat16, ctx)]
        default: throw EngineError(.typeMismatch, "DFT does not support \(x.dataType) tensors")
        }
    }

    func compute<T: EngineFloat>(_ x: Tensor, _ length: Int?, _ axisIn: Int, _: T.Type, _ ctx: ExecutionContext) throws -> Tensor {
        let shape = x.shape
        let r = shape.count
        guard r >= 2 else { throw EngineError(.shapeMismatch, "DFT: input must have rank >= 2 (signal dims and a last dim of 1 or 2), got \(shape)") }
        let c = shape[r - 1]
        guard c == 1 || c == 2 else {
            throw EngineError(.shapeMismatch, "DFT: the last dimension must be 1 (real) or 2 (complex), got \(shape)")
        }
        let axis = axisIn < 0 ? axisIn + r : axisIn
        guard axis >= 0 && axis <= r - 2 else {
            throw EngineError(.invalidArgument, "DFT: axis \(axisIn) is out of range for input of rank \(r) (the last dimension cannot be transformed)")
        }
        let len = shape[axis]
        let irfft = inverse && onesided
        let n = length ?? (irfft ? 2 * (len - 1) : len)
        guard n >= 1 else { throw EngineError(.invalidArgument, "DFT: dft_length must be positive, got \(n)") }
        let outLen = irfft ? n : (onesided ? n / 2 + 1 : n)
        let outC = irfft ? 1 : 2
        var outShape = shape
        outShape[axis] = outLen
        outShape[r - 1] = outC
        let out = try ctx.uninitialized(T.dataType, outShape)
        var outer = 1
        for d in 0..<axis { outer *= shape[d] }
        var innerCount = 1
        for d in (axis + 1)..<(r - 1) { innerCount *= shape[d] }
        if out.count == 0 || outer * innerCount == 0 { return out }
        _ = try ctx.limits.checkedCount([FFT.scratchDoubles(n) + 2 * n], .float64)

        let realFFT = !inverse && c == 1 ? RealFFT(n) : nil
        let fft = realFFT == nil ? FFT(n) : nil
        let full = outLen > n / 2 + 1
        var re = [Double](repeating: 0, count: n)
        var im = [Double](repeating: 0, count: n)
        let src = x.buffer(T.self).baseAddress!
        let dst = out.mutableBuffer(T.self).baseAddress!
        let inAxisStride = innerCount * c
        let outAxisStride = innerCount * outC
        let scale = inverse ? 1.0 / Double(n) : 1.0
        let inverse = self.inverse
        re.withUnsafeMutableBufferPointer { reb in
            im.withUnsafeMutableBufferPointer { imb in
                let pr = reb.baseAddress!, pi = imb.baseAddress!
                for o in 0..<outer {
                    for i in 0..<innerCount {
                        let inBase = o * len * inAxisStride + i * c
                        if irfft {
                            // Rebuild the Hermitian spectrum from its first n/2+1 bins.
                            let half = n / 2 + 1
                            for k in 0..<n {
                                let (j, conj) = k < half ? (k, false) : (n - k, true)
                                if j < len {
                                    let p = inBase + j * inAxisStride
                                    pr[k] = src[p].double
                                    let v = c == 2 ? src[p + 1].double : 0
                                    pi[k] = conj ? -v : v
                                } else {
                                    pr[k] = 0; pi[k] = 0
                                }
                            }
                        } else {
                            let m = Swift.min(len, n)
                            if c == 2 {
                                for j in 0..<m {
                                    let p = inBase + j * inAxisStride
                                    pr[j] = src[p].double; pi[j] = src[p + 1].double
                                }
                            } else {
                                for j in 0..<m { pr[j] = src[inBase + j * inAxisStride].double; pi[j] = 0 }
                            }
                            for j in m..<n { pr[j] = 0; pi[j] = 0 }
                        }
                        if let realFFT {
                            realFFT.forward(pr, pi, full: full)
                        } else {
                            fft?.transform(pr, pi, inverse: inverse)
                        }
                        let outBase = o * outLen * outAxisStride + i * outC
                        if outC == 2 {
                            for k in 0..<outLen {
                                let p = outBase + k * outAxisStride
                                dst[p] = T(double: pr[k] * scale)
                                dst[p + 1] = T(double: pi[k] * scale)
                            }
                        } else {
                            for k in 0..<outLen { dst[outBase + k * outAxisStride] = T(double: pr[k] * scale) }
                        }
                    }
                }
            }
        }
        return out
    }
}

/// STFT: windowed DFTs of frames of a [batch, length, 1|2] signal.
struct STFTOp: Operator {
    let onesided: Bool

    func run(_ inputs: [Tensor?], _ ctx: ExecutionContext) throws -> [Tensor] {
        let x = try inputs.required(0)
        let step = try signalScalarInt(try inputs.required(1, "frame_step"), "STFT: frame_step")
        let window = inputs.optional(2)
        var frameLength: Int?
        if let f = inputs.optional(3) { frameLength = try signalScalarInt(f, "STFT: frame_length") }
        if let w = window, w.dataType != x.dataType {
            throw EngineError(.typeMismatch, "STFT: window is \(w.dataType) but the signal is \(x.dataType)")
        }
        switch x.dataType {
        case .float32: return [try compute(x, step, window, frameLength, Float.self, ctx)]
        case .float64: return [try compute(x, step, window, frameLength, Double.self, ctx)]
        case .float16: return [try compute(x, step, window, frameLength, Float16.self, ctx)]
        case .bfloat16:
            let w = try window.map { try CastOp.cast($0, to: .float32, ctx) }
            let y = try compute(CastOp.cast(x, to: .float32, ctx), step, w, frameLength, Float.self, ctx)
            return [try CastOp.cast(y, to: .bfloat16, ctx)]
        default: throw EngineError(.typeMismatch, "STFT does not support \(x.dataType) tensors")
        }
    }

    func compute<T: EngineFloat>(_ x: Tensor, _ step: Int, _ window: Tensor?, _ frameLengthIn: Int?, _: T.Type, _ ctx: ExecutionContext) throws -> Tensor {
        let shape = x.shape
        guard shape.count == 3, shape[2] == 1 || shape[2] == 2 else {
            throw EngineError(.shapeMismatch, "STFT: signal must have shape [batch, length, 1 or 2], got \(shape)")
        }
        let batch = shape[0], len = shape[1], c = shape[2]
        guard step > 0 else { throw EngineError(.invalidArgument, "STFT: frame_step must be positive, got \(step)") }
        if let w = window, w.rank != 1 {
            throw EngineError(.shapeMismatch, "STFT: window must be 1-D, got shape \(w.shape)")
        }
        let n = frameLengthIn ?? window?.shape[0] ?? len
        guard n > 0 else { throw EngineError(.invalidArgument, "STFT: frame_length must be positive, got \(n)") }
        if let w = window, w.count != n {
            throw EngineError(.shapeMismatch, "STFT: window length \(w.count) differs from frame_length \(n)")
        }
        guard n <= len else {
            throw EngineError(.invalidArgument, "STFT: frame_length \(n) is longer than the signal (\(len) samples)")
        }
        let frames = (len - n) / step + 1
        let bins = onesided ? n / 2 + 1 : n
        let out = try ctx.uninitialized(T.dataType, [batch, frames, bins, 2])
        if out.count == 0 { return out }
        _ = try ctx.limits.checkedCount([FFT.scratchDoubles(n) + 3 * n], .float64)

        var win = [Double](repeating: 1, count: n)
        if let w = window {
            let wb = w.buffer(T.self)
            for j in 0..<n { win[j] = wb[j].double }
        }
        let realFFT = c == 1 ? RealFFT(n) : nil
        let fft = realFFT == nil ? FFT(n) : nil
        let full = bins > n / 2 + 1
        var re = [Double](repeating: 0, count: n)
        var im = [Double](repeating: 0, count: n)
        let src = x.buffer(T.self).baseAddress!
        let dst = out.mutableBuffer(T.self).baseAddress!
        win.withUnsafeBufferPointer { wp in
            re.withUnsafeMutableBufferPointer { reb in
                im.withUnsafeMutableBufferPointer { imb in
                    let pr = reb.baseAddress!, pi = imb.baseAddress!
                    var o = 0
                    for b in 0..<batch {
                        for f in 0..<frames {
                            let base = (b * len + f * step) * c
                            if c == 2 {
                                for j in 0..<n {
                                    pr[j] = src[base + 2 * j].double * wp[j]
                                    pi[j] = src[base + 2 * j + 1].double * wp[j]
                                }
                            } else {
                                for j in 0..<n { pr[j] = src[base + j].double * wp[j]; pi[j] = 0 }
                            }
                            if let realFFT {
                                realFFT.forward(pr, pi, full: full)
                            } else {
                                fft?.forward(pr, pi)
                            }
                            for k in 0..<bins {
                                dst[o] = T(double: pr[k])
                                dst[o + 1] = T(double: pi[k])
                                o += 2
                            }
                        }
                    }
                }
            }
        }
        return out
    }
}

/// MelWeightMatrix: triangular mel filter banks, [dft_length/2 + 1, num_mel_bins].
struct MelWeightMatrixOp: Operator {
    let outputType: DataType

    func run(_ inputs: [Tensor?], _ ctx: ExecutionContext) throws -> [Tensor] {
        let bins = try signalScalarInt(try inputs.required(0, "num_mel_bins"), "MelWeightMatrix: num_mel_bins")
        let dftLength = try signalScalarInt(try inputs.required(1, "dft_length"), "MelWeightMatrix: dft_length")
        let sampleRate = try signalScalarInt(try inputs.required(2, "sample_rate"), "MelWeightMatrix: sample_rate")
        let lowerT = try inputs.required(3, "lower_edge_hertz"), upperT = try inputs.required(4, "upper_edge_hertz")
        guard lowerT.dataType.isFloatingPoint, upperT.dataType.isFloatingPoint else {
            throw EngineError(.typeMismatch, "MelWeightMatrix: lower_edge_hertz and upper_edge_hertz must be float tensors")
        }
        let lowerV = try lowerT.doubleValues(), upperV = try upperT.doubleValues()
        guard lowerV.count == 1, upperV.count == 1 else {
            throw EngineError(.invalidArgument, "MelWeightMatrix: lower_edge_hertz and upper_edge_hertz must be scalars")
        }
        guard bins > 0, dftLength > 0, sampleRate > 0 else {
            throw EngineError(.invalidArgument, "MelWeightMatrix: num_mel_bins (\(bins)), dft_length (\(dftLength)) and sample_rate (\(sampleRate)) must be positive")
        }
        let lower = lowerV[0], upper = upperV[0]
        guard lower.isFinite, upper.isFinite, lower >= 0, lower <= upper else {
            throw EngineError(.invalidArgument, "MelWeightMatrix: need 0 <= lower_edge_hertz (\(lower)) <= upper_edge_hertz (\(upper))")
        }
        let spectrogramBins = dftLength / 2 + 1
        let count = try ctx.limits.checkedCount([spectrogramBins, bins], outputType)
        _ = try ctx.limits.checkedCount([bins + 2], .int64)

        // The edges are computed like the reference: the mel of each edge in the edge's precision, then doubles.
        func mel(_ hz: Double) -> Double {
            if lowerT.dataType == .float64 { return 2595 * Foundation.log1p(hz / 700) / Foundation.log(10.0) }
            let f = Float(2595) * Foundation.log1p(Float(hz) / 700)
            return Double(f) / Foundation.log(10.0)
        }
        let lowMel = mel(lower), highMel = mel(upper)
        let melStep = (highMel - lowMel) / Double(bins + 2)
        var points = [Int](repeating: 0, count: bins + 2)
        for i in 0..<(bins + 2) {
            let m = Double(i) * melStep + lowMel
            let hz = 700 * Foundation.expm1(m / 2595 * Foundation.log(10.0))
            let p = (Double(dftLength + 1) * hz / Double(sampleRate)).rounded(.down)
            guard p >= 0, p <= Double(spectrogramBins) else {
                throw EngineError(.invalidArgument, "MelWeightMatrix: upper_edge_hertz \(upper) maps to spectrogram bin \(p), beyond the \(spectrogramBins) bins of dft_length \(dftLength) at sample_rate \(sampleRate)")
            }
            points[i] = Int(p)
        }
        var values = [Double](repeating: 0, count: count)
        for i in 0..<bins {
            let lo = points[i], center = points[i + 1], hi = points[i + 2]
            guard center < spectrogramBins else {
                throw EngineError(.invalidArgument, "MelWeightMatrix: mel bin \(i) is centred on spectrogram bin \(center), beyond the \(spectrogramBins) bins of dft_length \(dftLength)")
            }
            let up = center - lo
            if up == 0 {
                values[center * bins + i] = 1
            } else if up > 0 {
                for j in lo...center { values[j * bins + i] = Double(j - lo) / Double(up) }
            }
            let down = hi - center
            if down > 0 {
                for j in center..<hi { values[j * bins + i] = Double(hi - j) / Double(down) }
            }
        }
        return [try CastOp.fromDoubles(values, shape: [spectrogramBins, bins], to: outputType, ctx)]
    }
}

/// HannWindow, HammingWindow, BlackmanWindow.
struct WindowOp: Operator {
    enum Kind: Sendable { case hann, hamming, blackman }
    let kind: Kind
    let periodic: Bool
    let dtype: DataType

    func run(_ inputs: [Tensor?], _ ctx: ExecutionContext) throws -> [Tensor] {
        let sizeT = try inputs.required(0, "size")
        guard sizeT.count == 1, let size = try sizeT.intValues().first else {
            throw EngineError(.invalidArgument, "window size must be an integer scalar")
        }
        guard size >= 0 else { throw EngineError(.invalidArgument, "window size \(size) is negative") }
        let out = try ctx.uninitialized(dtype, [size])
        let n1 = Double(periodic ? size : size - 1)
        let twoPi = 2 * Double.pi
        let k = kind
        try CastOp.write(out, dtype, count: size) { i in
            if n1 == 0 { return 1 }
            let x = Double(i)
            switch k {
            case .hann:
                let s = Foundation.sin(Double.pi * x / n1)
                return s * s
            case .hamming:
                let alpha = 25.0 / 46.0
                return alpha - (1 - alpha) * Foundation.cos(twoPi * x / n1)
            case .blackman:
                return 0.42 - 0.5 * Foundation.cos(twoPi * x / n1) + 0.08 * Foundation.cos(2 * twoPi * x / n1)
            }
        }
        return [out]
    }
}

extension StandardOperators {
    static func registerSignal(_ r: inout OperatorRegistry) {
        r.register("DFT", since: 17) { c in
            let onesided = try c.int("onesided", default: 0)
            let inverse = try c.int("inverse", default: 0)
            guard onesided == 0 || onesided == 1, inverse == 0 || inverse == 1 else {
                throw c.error(.invalidModel, "DFT: onesided (\(onesided)) and inverse (\(inverse)) must be 0 or 1")
            }
            return DFTOp(axisAttribute: try c.int("axis", default: 1), inverse: inverse == 1, onesided: onesided == 1)
        }
        r.register("DFT", since: 20) { c in
            let onesided = try c.int("onesided", default: 0)
            let inverse = try c.int("inverse", default: 0)
            guard onesided == 0 || onesided == 1, inverse == 0 || inverse == 1 else {
                throw c.error(.invalidModel, "DFT: onesided (\(onesided)) and inverse (\(inverse)) must be 0 or 1")
            }
            return DFTOp(axisAttribute: nil, inverse: inverse == 1, onesided: onesided == 1)
        }
        r.register("STFT", since: 17) { c in
            STFTOp(onesided: try c.int("onesided", default: 1) != 0)
        }
        r.register("MelWeightMatrix", since: 17) { c in
            let code = try c.int("output_datatype", default: 1)
            guard let t = DataType(rawValue: code), t.isFloatingPoint else {
                throw c.error(.invalidModel, "MelWeightMatrix: output_datatype \(code) is not a float type")
            }
            return MelWeightMatrixOp(outputType: t)
        }
        let windows: [(String, WindowOp.Kind)] = [("HannWindow", .hann), ("HammingWindow", .hamming), ("BlackmanWindow", .blackman)]
        for (name, kind) in windows {
            r.register(name) { c in
                let d = try c.int("output_datatype", default: DataType.float32.rawValue)
                guard let dt = DataType(rawValue: d), dt != .string else { throw c.error(.invalidModel, "\(name): unsupported output_datatype \(d)") }
                return WindowOp(kind: kind, periodic: try c.int("periodic", default: 1) != 0, dtype: dt)
            }
        }
    }
}
