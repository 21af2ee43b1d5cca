import BlindAITensor

/// SIMD helpers for float32 rows (softmax, normalizations, reductions, attention).
package enum SIMDRows {
    package typealias V = SIMD8<Float>

    @inlinable @inline(__always) package static func load(_ p: UnsafePointer<Float>) -> V {
        UnsafeRawPointer(p).loadUnaligned(as: V.self)
    }

    @inlinable @inline(__always) package static func store(_ v: V, _ p: UnsafeMutablePointer<Float>) {
        UnsafeMutableRawPointer(p).storeBytes(of: v, as: V.self)
    }

    /// Sum of the 8 lanes (written out: the generic `sum()` is not always inlined).
    @inlinable @inline(__always) package static func hsum(_ v: V) -> Float {
        ((v[0] + v[1]) + (v[2] + v[3])) + ((v[4] + v[5]) + (v[6] + v[7]))
    }

    /// exp(x) for float32 (Cephes-style range reduction and polynomial, within 2e-7 relative error), written
    /// with plain arithmetic and bit operations only so that loops calling it auto-vectorise. Inputs are
    /// clamped to [-87.3, 88.7] (so exp(-inf) gives about 1e-38 rather than 0); NaN stays NaN.
    @inlinable @inline(__always) package static func exp(_ x0: Float) -> Float {
        var x = x0 > 88.72283 ? 88.72283 : x0
        x = x < -87.33654 ? -87.33654 : x
        let magic: Float = 12582912.0 // 1.5 * 2^23: adding it rounds to an integer kept in the low mantissa bits
        let t = x * 1.44269504088896341 + magic
        let fx = t - magic
        let n = Int32(bitPattern: t.bitPattern) &- Int32(bitPattern: magic.bitPattern)
        var r = x - fx * 0.693359375
        r = r - fx * -2.12194440e-4
        let r2 = r * r
        var p: Float = 1.9875691500e-4
        p = p * r + 1.3981999507e-3
        p = p * r + 8.3334519073e-3
        p = p * r + 4.1665795894e-2
        p = p * r + 1.6666665459e-1
        p = p * r + 5.0000001201e-1
        p = p * r2 + r + 1
        return p * Float(bitPattern: UInt32(bitPattern: (n &+ 127) &<< 23))
    }

    /// exp for any float type: the vectorisable float32 version for Float, the library function otherwise.
    @inlinable @inline(__always) package static func exp<T: EngineFloat>(_ x: T) -> T {
        if T.self == Float.self { return unsafeBitCast(exp(unsafeBitCast(x, to: Float.self)), to: T.self) }
        return T.exp(x)
    }

    /// Largest element of n floats (-inf when n == 0); eight independent accumulators, which the compiler
    /// turns into vector max instructions.
    @inlinable @inline(__always) package static func max(_ p: UnsafePointer<Float>, _ n: Int) -> Float {
        var m0 = -Float.infinity, m1 = m0, m2 = m0, m3 = m0, m4 = m0, m5 = m0, m6 = m0, m7 = m0
        var i = 0
        while i + 8 <= n {
            let q = p + i
            m0 = q[0] > m0 ? q[0] : m0
            m1 = q[1] > m1 ? q[1] : m1
            m2 = q[2] > m2 ? q[2] : m2
            m3 = q[3] > m3 ? q[3] : m3
            m4 = q[4] > m4 ? q[4] : m4
            m5 = q[5] > m5 ? q[5] : m5
            m6 = q[6] > m6 ? q[6] : m6
            m7 = q[7] > m7 ? q[7] : m7
            i += 8
        }
        var m = Swift.max(Swift.max(Swift.max(m0, m1), Swift.max(m2, m3)), Swift.max(Swift.max(m4, m5), Swift.max(m6, m7)))
        while i < n {
            if p[i] > m { m = p[i] }
            i += 1
        }
        return m
    }

    /// Sum of n floats, 8 lanes at a time.
    @inlinable @inline(__always) package static func sum(_ p: UnsafePointer<Float>, _ n: Int) -> Float {
        var acc = V(repeating: 0), acc2 = V(repeating: 0)
        var i = 0
        while i + 16 <= n {
            acc += load(p + i)
            acc2 += load(p + i + 8)
            i += 16
        }
        if i + 8 <= n {
            acc += load(p + i)
            i += 8
        }
        var s = hsum(acc + acc2)
        while i < n {
            s += p[i]
            i += 1
        }
        return s
    }

    /// Sum of squares of n floats.
    @inlinable @inline(__always) package static func sumSquares(_ p: UnsafePointer<Float>, _ n: Int) -> Float {
        var acc = V(repeating: 0), acc2 = V(repeating: 0)
        var i = 0
        while i + 16 <= n {
            let a = load(p + i), b = load(p + i + 8)
            acc += a * a
            acc2 += b * b
            i += 16
        }
        if i + 8 <= n {
            let a = load(p + i)
            acc += a * a
            i += 8
        }
        var s = hsum(acc + acc2)
        while i < n {
            s += p[i] * p[i]
            i += 1
        }
        return s
    }

    /// Sum of (p[i] - mean)^2.
    @inlinable @inline(__always) package static func sumSquaredDiff(_ p: UnsafePointer<Float>, _ n: Int, _ mean: Float) -> Float {
        var acc = V(repeating: 0)
        let m = V(repeating: mean)
        var i = 0
        while i + 8 <= n {
            let d = load(p + i) - m
            acc += d * d
            i += 8
        }
        var s = hsum(acc)
        while i < n {
            let d = p[i] - mean
            s += d * d
            i += 1
        }
        return s
    }

    /// dst[i] = exp(src[i] - shift); returns the sum of the results.
    @inlinable @inline(__always) package static func expShiftSum(_ src: UnsafePointer<Float>, _ dst: UnsafeMutablePointer<Float>, _ n: Int, _ shift: Float) -> Float {
        for i in 0..<n { dst[i] = exp(src[i] - shift) }
        return sum(UnsafePointer(dst), n)
    }

    /// Smallest element of n floats (+inf when n == 0).
    @inlinable @inline(__always) package static func min(_ p: UnsafePointer<Float>, _ n: Int) -> Float {
        var m0 = Float.infinity, m1 = m0, m2 = m0, m3 = m0, m4 = m0, m5 = m0, m6 = m0, m7 = m0
        var i = 0
        while i + 8 <= n {
            let q = p + i
            m0 = q[0] < m0 ? q[0] : m0
            m1 = q[1] < m1 ? q[1] : m1
            m2 = q[2] < m2 ? q[2] : m2
            m3 = q[3] < m3 ? q[3] : m3
            m4 = q[4] < m4 ? q[4] : m4
            m5 = q[5] < m5 ? q[5] : m5
            m6 = q[6] < m6 ? q[6] : m6
            m7 = q[7] < m7 ? q[7] : m7
            i += 8
        }
        var m = Swift.min(Swift.min(Swift.min(m0, m1), Swift.min(m2, m3)), Swift.min(Swift.min(m4, m5), Swift.min(m6, m7)))
        while i < n {
            if p[i] < m { m = p[i] }
            i += 1
        }
        return m
    }

    /// Sum of absolute values of n floats.
    @inlinable @inline(__always) package static func sumAbs(_ p: UnsafePointer<Float>, _ n: Int) -> Float {
        var acc = V(repeating: 0)
        let mask = SIMD8<UInt32>(repeating: 0x7FFF_FFFF)
        var i = 0
        while i + 8 <= n {
            acc += unsafeBitCast(unsafeBitCast(load(p + i), to: SIMD8<UInt32>.self) & mask, to: V.self)
            i += 8
        }
        var s = hsum(acc)
        while i < n {
            s += Swift.abs(p[i])
            i += 1
        }
        return s
    }

}
