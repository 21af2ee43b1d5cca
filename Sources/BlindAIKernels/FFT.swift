import BlindAITensor
import Foundation

// FFT kernels of the signal operators (DFT, STFT): computed in double precision on split real/imaginary scratch
// buffers; mixed-radix Stockham for lengths with small prime factors, a direct sum for other short lengths,
// Bluestein's chirp-z algorithm otherwise.

/// Fixed-size scratch of doubles owned by one transform plan. Plans keep their tables and work areas in these
/// instead of arrays: an array held in a class property is guarded by run-time exclusivity checks, and nested
/// `withUnsafeMutableBufferPointer` accesses to such properties trapped in release builds (the DFT node tests).
/// Raw storage has no such checks and the transforms index it directly.
package final class FFTScratch {
    package let p: UnsafeMutablePointer<Double>
    package let count: Int

    package init(_ count: Int) {
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
package final class FFT {
    private enum Kind { case trivial, stockham, direct, bluestein }
    package let n: Int
    private let kind: Kind
    /// cos/sin(2πk/n) for k < n.
    private let cosT: FFTScratch
    private let sinT: FFTScratch
    /// Stockham radices, in the order applied.
    private let radices: [Int]
    // Bluestein: chirp e^{-iπk²/n}, the transformed conjugate chirp of length m, the inner power-of-two FFT.
    private let chirpRe: FFTScratch
    private let chirpIm: FFTScratch
    private let kernelRe: FFTScratch
    private let kernelIm: FFTScratch
    private let inner: FFT?
    // Scratch: the ping-pong buffer (Stockham), the result (direct) or the convolution (Bluestein).
    private let workRe: FFTScratch
    private let workIm: FFTScratch
    // Generic-radix butterfly inputs.
    private let tapRe: FFTScratch
    private let tapIm: FFTScratch

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
    package static func scratchDoubles(_ n: Int) -> Int {
        if n <= 1 || factor(n) != nil || n <= 64 { return 4 * n + 2 * largestRadix }
        var m = 1
        while m < 2 * n - 1 { m <<= 1 }
        return 8 * m + 4 * n
    }

    package init(_ n: Int) {
        self.n = n
        let empty = FFTScratch(0)
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
            cosT = FFTScratch(n)
            sinT = FFTScratch(n)
            for k in 0..<n {
                let a = 2 * Double.pi * Double(k) / Double(n)
                cosT.p[k] = Foundation.cos(a)
                sinT.p[k] = Foundation.sin(a)
            }
            workRe = FFTScratch(n)
            workIm = FFTScratch(n)
            tapRe = FFTScratch(Self.largestRadix)
            tapIm = FFTScratch(Self.largestRadix)
            chirpRe = empty; chirpIm = empty; kernelRe = empty; kernelIm = empty
            inner = nil
        } else {
            kind = .bluestein
            self.radices = []
            cosT = empty; sinT = empty; tapRe = empty; tapIm = empty
            var m = 1
            while m < 2 * n - 1 { m <<= 1 }
            let fft = FFT(m)
            inner = fft
            chirpRe = FFTScratch(n)
            chirpIm = FFTScratch(n)
            let cr = chirpRe.p, ci = chirpIm.p
            let twoN = 2 * n
            for k in 0..<n {
                // k² mod 2n keeps the angle exact for long signals.
                let q = k * k % twoN
                let a = Double.pi * Double(q) / Double(n)
                cr[k] = Foundation.cos(a)
                ci[k] = -Foundation.sin(a)
            }
            kernelRe = FFTScratch(m)
            kernelIm = FFTScratch(m)
            let kr = kernelRe.p, ki = kernelIm.p
            kr[0] = cr[0]
            ki[0] = -ci[0]
            for k in 1..<n {
                kr[k] = cr[k]; ki[k] = -ci[k]
                kr[m - k] = cr[k]; ki[m - k] = -ci[k]
            }
            fft.forward(kr, ki)
            workRe = FFTScratch(m)
            workIm = FFTScratch(m)
        }
    }

    /// In-place unnormalised transform; the inverse uses conj(FFT(conj(x))).
    package func transform(_ re: UnsafeMutablePointer<Double>, _ im: UnsafeMutablePointer<Double>, inverse: Bool) {
        if inverse {
            for i in 0..<n { im[i] = -im[i] }
            forward(re, im)
            for i in 0..<n { im[i] = -im[i] }
        } else {
            forward(re, im)
        }
    }

    /// In-place forward transform X[k] = Σ x[j] e^{-2πijk/n}.
    package func forward(_ re: UnsafeMutablePointer<Double>, _ im: UnsafeMutablePointer<Double>) {
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
package final class RealFFT {
    package let n: Int
    private let half: FFT
    /// e^{-2πik/n} for k <= n/2.
    private let twRe: FFTScratch
    private let twIm: FFTScratch
    private let zRe: FFTScratch
    private let zIm: FFTScratch

    /// A plan for `n`, or nil when n is odd or too short to gain anything.
    package init?(_ n: Int) {
        guard n >= 8, n % 2 == 0 else { return nil }
        self.n = n
        let h = n / 2
        half = FFT(h)
        twRe = FFTScratch(h + 1)
        twIm = FFTScratch(h + 1)
        for k in 0...h {
            let a = 2 * Double.pi * Double(k) / Double(n)
            twRe.p[k] = Foundation.cos(a)
            twIm.p[k] = -Foundation.sin(a)
        }
        zRe = FFTScratch(h)
        zIm = FFTScratch(h)
    }

    /// Reads the real signal from re[0..<n] and writes its spectrum into re/im: bins 0...n/2, and with `full`
    /// the conjugate-symmetric bins above n/2 as well.
    package func forward(_ re: UnsafeMutablePointer<Double>, _ im: UnsafeMutablePointer<Double>, full: Bool) {
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
