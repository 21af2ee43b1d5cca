import BlindAITensor
import Foundation

// Signal processing: DFT (opset 17 axis attribute, opset 20 axis input), STFT and MelWeightMatrix.
// Transforms are computed in double precision on split real/imaginary scratch buffers: mixed-radix Stockham for
// lengths with small prime factors, a direct sum for other short lengths, Bluestein's chirp-z algorithm otherwise.

/// A forward complex FFT of one length, with its tables and scratch precomputed. Used by one run at a time.
///
/// Lengths whose prime factors are at most 13 use a mixed-radix Stockham (self-sorting) FFT with radix-4, 2, 3
/// and generic small-prime butterflies; other short lengths a direct sum; other long lengths Bluestein's
/// chirp-z algorithm over a power-of-two FFT.
/// Fixed-size scratch of doubles owned by one transform plan. Plans keep their tables and work areas in these
/// instead of arrays: an array held in a class property is guarded by run-time exclusivity checks, and nested
/// `withUnsafeMutableBufferPointer` accesses to such properties trapped in release builds (the DFT node tests).
/// Raw storage has no such checks and the transforms index it directly.
final class SignalScratch {
    let p: UnsafeMutablePointer<Double>
    let count: Int

    init(_ count: Int) {
        self.count = count
        p = .allocate(capacity: Swift.max(count, 1))
        p.initialize(repeating: 0, count: Swift.max(count, 1))
    }

    deinit { p.deallocate() }
}

/// A forward complex FFT of one length, with its tables and scratch precomputed. Used by one run at a time.
///
/// Lengths whose prime factors are at most 13 use a mixed-radix Stockham (self-sorting) FFT with radix-4, 2, 3
/// and generic small-prime butterflies; other short lengths a direct sum; other long lengths Bluestein's
/// chirp-z algorithm over a power-of-two FFT.
final class SignalFFT {
    private enum Kind { case trivial, stockham, direct, bluestein }
    let n: Int
    private let kind: Kind
    /// cos/sin(2πk/n) for k < n.
    private let cosT: SignalScratch
    private let sinT: SignalScratch
    /// Stockham radices, in the order applied.
    private let radices: [Int]
    // Bluestein: chirp e^{-iπk²/n}, the transformed conjugate chirp of length m, the inner power-of-two FFT.
    private let chirpRe: SignalScratch
    private let chirpIm: SignalScratch
    private let kernelRe: SignalScratch
    private let kernelIm: SignalScratch
    private let inner: SignalFFT?
    // Scratch: the ping-pong buffer (Stockham), the result (direct) or the convolution (Bluestein).
    private let workRe: SignalScratch
    private let workIm: SignalScratch
    // Generic-radix butterfly inputs.
    private let tapRe: SignalScratch
    private let tapIm: SignalScratch

    private static let largestRadix = 13

    /// The Stockham radices of `n`, or nil when it has a prime factor above `largestRadix`.
    private static func factor(_ n: Int) -> [Int]? {
        var rest = n
        var out: [Int] = []
        while rest % 4 == 0 { out.append(4); rest /= 4 }
        if rest % 2 == 0 { out.append(2); rest /= 2 }
        var p = 3
        while rest > 1 && p <= largestRadix {
            while rest % p == 0 { out.append(p); rest /= p }
            p += 2
        }
        return rest == 1 ? out : nil
    }

    /// Scratch doubles a plan of length `n` needs (for memory-limit checks before building it).
    static func scratchDoubles(_ n: Int) -> Int {
        if n <= 1 || factor(n) != nil || n <= 64 { return 4 * n + 2 * largestRadix }
        var m = 1
        while m < 2 * n - 1 { m <<= 1 }
        return 8 * m + 4 * n
    }

    init(_ n: Int) {
        self.n = n
        let empty = SignalScratch(0)
        if n <= 1 {
            kind = .trivial
            radices = []
            cosT = empty; sinT = empty; chirpRe = empty; chirpIm = empty; kernelRe = empty; kernelIm = empty
            workRe = empty; workIm = empty; tapRe = empty; tapIm = empty
            inner = nil
            return
        }
        let radices = Self.factor(n)
        if radices != nil || n <= 64 {
            kind = radices != nil ? .stockham : .direct
            self.radices = radices ?? []
            cosT = SignalScratch(n)
            sinT = SignalScratch(n)
            for k in 0..<n {
                let a = 2 * Double.pi * Double(k) / Double(n)
                cosT.p[k] = Foundation.cos(a)
                sinT.p[k] = Foundation.sin(a)
            }
            workRe = SignalScratch(n)
            workIm = SignalScratch(n)
            tapRe = SignalScratch(Self.largestRadix)
            tapIm = SignalScratch(Self.largestRadix)
            chirpRe = empty; chirpIm = empty; kernelRe = empty; kernelIm = empty
            inner = nil
        } else {
            kind = .bluestein
            self.radices = []
            cosT = empty; sinT = empty; tapRe = empty; tapIm = empty
            var m = 1
            while m < 2 * n - 1 { m <<= 1 }
            let fft = SignalFFT(m)
            inner = fft
            chirpRe = SignalScratch(n)
            chirpIm = SignalScratch(n)
            let cr = chirpRe.p, ci = chirpIm.p
            let twoN = 2 * n
            for k in 0..<n {
                // k² mod 2n keeps the angle exact for long signals.
                let q = k * k % twoN
                let a = Double.pi * Double(q) / Double(n)
                cr[k] = Foundation.cos(a)
                ci[k] = -Foundation.sin(a)
            }
            kernelRe = SignalScratch(m)
            kernelIm = SignalScratch(m)
            let kr = kernelRe.p, ki = kernelIm.p
            kr[0] = cr[0]
            ki[0] = -ci[0]
            for k in 1..<n {
                kr[k] = cr[k]; ki[k] = -ci[k]
                kr[m - k] = cr[k]; ki[m - k] = -ci[k]
            }
            fft.forward(kr, ki)
            workRe = SignalScratch(m)
            workIm = SignalScratch(m)
        }
    }

    /// In-place unnormalised transform; the inverse uses conj(FFT(conj(x))).
    func transform(_ re: UnsafeMutablePointer<Double>, _ im: UnsafeMutablePointer<Double>, inverse: Bool) {
        if inverse {
            for i in 0..<n { im[i] = -im[i] }
            forward(re, im)
            for i in 0..<n { im[i] = -im[i] }
        } else {
            forward(re, im)
        }
    }

    /// In-place forward transform X[k] = Σ x[j] e^{-2πijk/n}.
    func forward(_ re: UnsafeMutablePointer<Double>, _ im: UnsafeMutablePointer<Double>) {
        switch kind {
        case .trivial: return
        case .stockham: stockham(re, im)
        case .direct: direct(re, im)
        case .bluestein: bluestein(re, im)
        }
    }

    private func stockham(_ re: UnsafeMutablePointer<Double>, _ im: UnsafeMutablePointer<Double>) {
        let n = self.n
        let ct = cosT.p, st = sinT.p
        let tr = tapRe.p, ti = tapIm.p
        var xr = re, xi = im
        var yr = workRe.p, yi = workIm.p
        var s = 1       // stride: product of the radices applied so far
        var len = n     // length of the sub-transforms still to do
        for r in radices {
            let m = len / r
            let tw = s  // twiddle index step: e^{-2πi pk/len} = table[p k s]
            switch r {
            case 4:
                for p in 0..<m {
                    let i1 = p * tw, i2 = 2 * p * tw, i3 = 3 * p * tw
                    let w1r = ct[i1], w1i = -st[i1]
                    let w2r = ct[i2], w2i = -st[i2]
                    let w3r = ct[i3], w3i = -st[i3]
                    for q in 0..<s {
                        let a0 = q + s * p, a1 = a0 + s * m, a2 = a1 + s * m, a3 = a2 + s * m
                        let t0r = xr[a0] + xr[a2], t0i = xi[a0] + xi[a2]
                        let t1r = xr[a0] - xr[a2], t1i = xi[a0] - xi[a2]
                        let t2r = xr[a1] + xr[a3], t2i = xi[a1] + xi[a3]
                        // (a1 - a3) * (-i)
                        let t3r = xi[a1] - xi[a3], t3i = xr[a3] - xr[a1]
                        let o = q + s * 4 * p
                        yr[o] = t0r + t2r; yi[o] = t0i + t2i
                        let y1r = t1r + t3r, y1i = t1i + t3i
                        let y2r = t0r - t2r, y2i = t0i - t2i
                        let y3r = t1r - t3r, y3i = t1i - t3i
                        yr[o + s] = y1r * w1r - y1i * w1i; yi[o + s] = y1r * w1i + y1i * w1r
                        yr[o + 2 * s] = y2r * w2r - y2i * w2i; yi[o + 2 * s] = y2r * w2i + y2i * w2r
                        yr[o + 3 * s] = y3r * w3r - y3i * w3i; yi[o + 3 * s] = y3r * w3i + y3i * w3r
                    }
                }
            case 2:
                for p in 0..<m {
                    let wr = ct[p * tw], wi = -st[p * tw]
                    for q in 0..<s {
                        let a0 = q + s * p, a1 = a0 + s * m
                        let o = q + s * 2 * p
                        yr[o] = xr[a0] + xr[a1]; yi[o] = xi[a0] + xi[a1]
                        let dr = xr[a0] - xr[a1], di = xi[a0] - xi[a1]
                        yr[o + s] = dr * wr - di * wi; yi[o + s] = dr * wi + di * wr
                    }
                }
            case 3:
                let h = 0.86602540378443864676  // sqrt(3)/2
                for p in 0..<m {
                    let i1 = p * tw, i2 = 2 * p * tw
                    let w1r = ct[i1], w1i = -st[i1]
                    let w2r = ct[i2], w2i = -st[i2]
                    for q in 0..<s {
                        let a0 = q + s * p, a1 = a0 + s * m, a2 = a1 + s * m
                        let sr = xr[a1] + xr[a2], si = xi[a1] + xi[a2]
                        let dr = xr[a1] - xr[a2], di = xi[a1] - xi[a2]
                        let mr = xr[a0] - 0.5 * sr, mi = xi[a0] - 0.5 * si
                        let o = q + s * 3 * p
                        yr[o] = xr[a0] + sr; yi[o] = xi[a0] + si
                        let y1r = mr + h * di, y1i = mi - h * dr
                        let y2r = mr - h * di, y2i = mi + h * dr
                        yr[o + s] = y1r * w1r - y1i * w1i; yi[o + s] = y1r * w1i + y1i * w1r
                        yr[o + 2 * s] = y2r * w2r - y2i * w2i; yi[o + 2 * s] = y2r * w2i + y2i * w2r
                    }
                }
            default:
                // Generic radix r: a direct r-point DFT (roots from the table) then twiddles.
                let rootStep = n / r
                for p in 0..<m {
                    for q in 0..<s {
                        for j in 0..<r {
                            let a = q + s * (p + j * m)
                            tr[j] = xr[a]; ti[j] = xi[a]
                        }
                        let o = q + s * r * p
                        for k in 0..<r {
                            var sr = 0.0, si = 0.0
                            var t = 0
                            let stepK = k * rootStep
                            for j in 0..<r {
                                let c = ct[t], sn = st[t]
                                sr += tr[j] * c + ti[j] * sn
                                si += ti[j] * c - tr[j] * sn
                                t += stepK
                                if t >= n { t -= n }
                            }
                            let wIndex = p * k * tw
                            let wr = ct[wIndex], wi = -st[wIndex]
                            yr[o + k * s] = sr * wr - si * wi
                            yi[o + k * s] = sr * wi + si * wr
                        }
                    }
                }
            }
            swap(&xr, &yr)
            swap(&xi, &yi)
            s *= r
            len = m
        }
        if xr != re {
            re.update(from: xr, count: n)
            im.update(from: xi, count: n)
        }
    }

    private func direct(_ re: UnsafeMutablePointer<Double>, _ im: UnsafeMutablePointer<Double>) {
        let n = self.n
        let ct = cosT.p, st = sinT.p
        let wr = workRe.p, wi = workIm.p
        for k in 0..<n {
            var sr = 0.0, si = 0.0
            var t = 0
            for j in 0..<n {
                let c = ct[t], s = st[t]
                // (re + i im)(c - i s)
                sr += re[j] * c + im[j] * s
                si += im[j] * c - re[j] * s
                t += k
                if t >= n { t -= n }
            }
            wr[k] = sr
            wi[k] = si
        }
        for k in 0..<n { re[k] = wr[k]; im[k] = wi[k] }
    }

    private func bluestein(_ re: UnsafeMutablePointer<Double>, _ im: UnsafeMutablePointer<Double>) {
        guard let fft = inner else { return }
        let n = self.n, m = fft.n
        let cr = chirpRe.p, ci = chirpIm.p, kr = kernelRe.p, ki = kernelIm.p
        let wr = workRe.p, wi = workIm.p
        for j in 0..<n {
            wr[j] = re[j] * cr[j] - im[j] * ci[j]
            wi[j] = re[j] * ci[j] + im[j] * cr[j]
        }
        for j in n..<m { wr[j] = 0; wi[j] = 0 }
        fft.forward(wr, wi)
        // Multiply by the kernel spectrum, conjugated for the inverse through conj(FFT(conj)).
        for j in 0..<m {
            let a = wr[j], b = wi[j]
            wr[j] = a * kr[j] - b * ki[j]
            wi[j] = -(a * ki[j] + b * kr[j])
        }
        fft.forward(wr, wi)
        let scale = 1.0 / Double(m)
        for k in 0..<n {
            let a = wr[k] * scale, b = -wi[k] * scale
            re[k] = a * cr[k] - b * ci[k]
            im[k] = a * ci[k] + b * cr[k]
        }
    }
}

/// A forward FFT of a real signal of even length n through one complex FFT of length n/2.
final class SignalRealFFT {
    let n: Int
    private let half: SignalFFT
    /// e^{-2πik/n} for k <= n/2.
    private let twRe: SignalScratch
    private let twIm: SignalScratch
    private let zRe: SignalScratch
    private let zIm: SignalScratch

    /// A plan for `n`, or nil when n is odd or too short to gain anything.
    init?(_ n: Int) {
        guard n >= 8, n % 2 == 0 else { return nil }
        self.n = n
        let h = n / 2
        half = SignalFFT(h)
        twRe = SignalScratch(h + 1)
        twIm = SignalScratch(h + 1)
        for k in 0...h {
            let a = 2 * Double.pi * Double(k) / Double(n)
            twRe.p[k] = Foundation.cos(a)
            twIm.p[k] = -Foundation.sin(a)
        }
        zRe = SignalScratch(h)
        zIm = SignalScratch(h)
    }

    /// Reads the real signal from re[0..<n] and writes its spectrum into re/im: bins 0...n/2, and with `full`
    /// the conjugate-symmetric bins above n/2 as well.
    func forward(_ re: UnsafeMutablePointer<Double>, _ im: UnsafeMutablePointer<Double>, full: Bool) {
        let n = self.n, h = n / 2
        let wr = twRe.p, wi = twIm.p, zr = zRe.p, zi = zIm.p
        for j in 0..<h { zr[j] = re[2 * j]; zi[j] = re[2 * j + 1] }
        half.forward(zr, zi)
        for k in 0...h {
            let a = k == h ? 0 : k, b = k == 0 ? 0 : h - k
            let ar = zr[a], ai = zi[a]
            let cr = zr[b], ci = -zi[b]  // conj(Z[h - k])
            let er = 0.5 * (ar + cr), ei = 0.5 * (ai + ci)
            // O = -i (Zk - conj(Z[h-k])) / 2
            let or = 0.5 * (ai - ci), oi = -0.5 * (ar - cr)
            re[k] = er + or * wr[k] - oi * wi[k]
            im[k] = ei + or * wi[k] + oi * wr[k]
        }
        if full {
            for k in 1..<h { re[n - k] = re[k]; im[n - k] = -im[k] }
        }
    }
}

/// Reads a scalar integer input (dft_length, frame_step, frame_length).
fileprivate func signalScalarInt(_ t: Tensor, _ what: String) throws -> Int {
    let v = try t.intValues()
    guard v.count == 1 else { throw EngineError(.invalidArgument, "\(what) must be a scalar, got shape \(t.shape)") }
    return v[0]
}

/// DFT: forward/inverse complex transforms, RFFT (onesided forward) and IRFFT (onesided inverse).
struct SignalDFTOp: Operator {
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
        _ = try ctx.limits.checkedCount([SignalFFT.scratchDoubles(n) + 2 * n], .float64)

        let realFFT = !inverse && c == 1 ? SignalRealFFT(n) : nil
        let fft = realFFT == nil ? SignalFFT(n) : nil
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
struct SignalSTFTOp: Operator {
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
        _ = try ctx.limits.checkedCount([SignalFFT.scratchDoubles(n) + 3 * n], .float64)

        var win = [Double](repeating: 1, count: n)
        if let w = window {
            let wb = w.buffer(T.self)
            for j in 0..<n { win[j] = wb[j].double }
        }
        let realFFT = c == 1 ? SignalRealFFT(n) : nil
        let fft = realFFT == nil ? SignalFFT(n) : nil
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
struct SignalMelWeightMatrixOp: Operator {
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

extension StandardOperators {
    static func registerSignal(_ r: inout OperatorRegistry) {
        r.register("DFT", since: 17) { c in
            let onesided = try c.int("onesided", default: 0)
            let inverse = try c.int("inverse", default: 0)
            guard onesided == 0 || onesided == 1, inverse == 0 || inverse == 1 else {
                throw c.error(.invalidModel, "DFT: onesided (\(onesided)) and inverse (\(inverse)) must be 0 or 1")
            }
            return SignalDFTOp(axisAttribute: try c.int("axis", default: 1), inverse: inverse == 1, onesided: onesided == 1)
        }
        r.register("DFT", since: 20) { c in
            let onesided = try c.int("onesided", default: 0)
            let inverse = try c.int("inverse", default: 0)
            guard onesided == 0 || onesided == 1, inverse == 0 || inverse == 1 else {
                throw c.error(.invalidModel, "DFT: onesided (\(onesided)) and inverse (\(inverse)) must be 0 or 1")
            }
            return SignalDFTOp(axisAttribute: nil, inverse: inverse == 1, onesided: onesided == 1)
        }
        r.register("STFT", since: 17) { c in
            SignalSTFTOp(onesided: try c.int("onesided", default: 1) != 0)
        }
        r.register("MelWeightMatrix", since: 17) { c in
            let code = try c.int("output_datatype", default: 1)
            guard let t = DataType(rawValue: code), t.isFloatingPoint else {
                throw c.error(.invalidModel, "MelWeightMatrix: output_datatype \(code) is not a float type")
            }
            return SignalMelWeightMatrixOp(outputType: t)
        }
    }
}
