import BlindAITensor
import CBlindAIKernels
import Foundation

// Attention kernels shared by the ONNX and com.microsoft attention operators: float32 views of the operands,
// scaled dot-product attention with grouped heads, the softmax of its rows, and rotary position embedding.

// MARK: - Float conversion helpers (attention computes in float32 for float16 / bfloat16 inputs)

package enum AttentionFloats {
    package static func isSupported(_ dt: DataType) -> Bool {
        dt == .float32 || dt == .float16 || dt == .bfloat16 || dt == .float64
    }

    /// Values of a mask / bias tensor as floats (bool: true -> 0, false -> `masked`).
    package static func additive(_ t: Tensor, boolMasked: Float) throws -> [Float] {
        switch t.dataType {
        case .bool: return t.buffer(Bool.self).map { $0 ? 0 : boolMasked }
        case .float32: return Array(t.buffer(Float.self))
        case .float16: return t.buffer(Float16.self).map { Float($0) }
        case .bfloat16: return t.buffer(UInt16.self).map { Float(bitPattern: UInt32($0) << 16) }
        case .float64: return t.buffer(Double.self).map { Float($0) }
        default: throw EngineError(.typeMismatch, "attention mask must be bool or float, got \(t.dataType)")
        }
    }
}

/// Vectorised softmax for attention rows.
package enum AttentionMath {
    /// exp(x) (Cephes-style range reduction and polynomial, about 1 ulp), written with selects and bit
    /// operations only so that loops calling it vectorise.
    @inlinable @inline(__always)
    package static func exp(_ v: Float) -> Float {
        let x0 = v < -87.3 ? -87.3 : (v > 88.3 ? 88.3 : v)
        // Round x / ln 2 to the nearest integer with the 1.5 * 2^23 trick; t's low bits hold that integer.
        let t = x0 * 1.44269504088896341 + 12582912.0
        let n = t - 12582912.0
        var x = x0 - n * 0.693359375
        x = x + n * 2.12194440e-4
        var p: Float = 1.9875691500e-4
        p = p * x + 1.3981999507e-3
        p = p * x + 8.3334519073e-3
        p = p * x + 4.1665795894e-2
        p = p * x + 1.6666665459e-1
        p = p * x + 5.0000001201e-1
        p = p * (x * x) + x + 1
        let scale = Float(bitPattern: (t.bitPattern &- 0x4B40_0000 &+ 127) &<< 23)
        return p * scale
    }

    /// In-place softmax of row[0..<n]; a row whose maximum is -inf (fully masked) becomes zeros.
    package static func softmax(_ row: UnsafeMutablePointer<Float>, _ n: Int) {
        var m = -Float.infinity
        for j in 0..<n { let v = row[j]; m = v > m ? v : m }
        if m == -Float.infinity {
            for j in 0..<n { row[j] = 0 }
            return
        }
        for j in 0..<n { row[j] = exp(row[j] - m) }
        var sv = SIMD8<Float>(repeating: 0)
        var j = 0
        while j + 8 <= n {
            sv += UnsafeRawPointer(row + j).loadUnaligned(as: SIMD8<Float>.self)
            j += 8
        }
        var sum = sv.sum()
        while j < n { sum += row[j]; j += 1 }
        let inv = sum > 0 ? 1 / sum : 0
        for j in 0..<n { row[j] *= inv }
    }
}

/// A strided view of a [batch, heads, sequence, head_size] operand in float32: element (b, h, s, d) is at
/// base + b * batch + h * head + s * row + d.
package struct AttentionView {
    package var base: UnsafePointer<Float>
    package var batch: Int
    package var head: Int
    package var row: Int

    package init(base: UnsafePointer<Float>, batch: Int, head: Int, row: Int) {
        self.base = base
        self.batch = batch
        self.head = head
        self.row = row
    }
}

package struct AttentionOutputView {
    package var base: UnsafeMutablePointer<Float>
    package var batch: Int
    package var head: Int
    package var row: Int

    package init(base: UnsafeMutablePointer<Float>, batch: Int, head: Int, row: Int) {
        self.base = base
        self.batch = batch
        self.head = head
        self.row = row
    }
}

/// Scaled dot-product attention over strided views, with grouped heads (query head h reads key/value head
/// h / (qHeads / kvHeads)).
package struct AttentionCore {
    package var batch: Int
    package var qHeads: Int
    package var kvHeads: Int
    package var qLength: Int
    package var kvLength: Int
    package var headSize: Int
    package var valueHeadSize: Int
    package var scale: Float
    package var softcap: Float = 0
    /// Rounds every intermediate to bfloat16 as a bfloat16 reference computation does (bfloat16 inputs only).
    package var emulateBF16 = false

    package init(batch: Int, qHeads: Int, kvHeads: Int, qLength: Int, kvLength: Int, headSize: Int, valueHeadSize: Int,
                 scale: Float, softcap: Float = 0, emulateBF16: Bool = false) {
        self.batch = batch
        self.qHeads = qHeads
        self.kvHeads = kvHeads
        self.qLength = qLength
        self.kvLength = kvLength
        self.headSize = headSize
        self.valueHeadSize = valueHeadSize
        self.scale = scale
        self.softcap = softcap
        self.emulateBF16 = emulateBF16
    }

    @inlinable @inline(__always)
    package static func bf16(_ f: Float) -> Float {
        if f.isNaN { return f }
        let bits = f.bitPattern
        return Float(bitPattern: (bits &+ (((bits >> 16) & 1) + 0x7FFF)) & 0xFFFF_0000)
    }

    /// Runs attention. `addBias(b, h, i, row)` adds the mask/bias of query row i (kvLength values) to the scores.
    /// `probe(stage, b, h, scores)` sees the [qLength, kvLength] scores of one head after each stage:
    /// 0 raw scaled QK, 1 after softcap, 2 after bias, 3 after softmax.
    package func run(q: AttentionView, k: AttentionView, v: AttentionView, y: AttentionOutputView,
             addBias: ((Int, Int, Int, UnsafeMutablePointer<Float>) -> Void)?,
             probe: ((Int, Int, Int, UnsafePointer<Float>) -> Void)? = nil) {
        let S = qLength, T = kvLength
        let group = Swift.max(qHeads / Swift.max(kvHeads, 1), 1)
        let scores = UnsafeMutablePointer<Float>.allocate(capacity: Swift.max(S * T, 1))
        defer { scores.deallocate() }
        for b in 0..<batch {
            for h in 0..<qHeads {
                let kvh = h / group
                let qp = q.base + b * q.batch + h * q.head
                let kp = k.base + b * k.batch + kvh * k.head
                let vp = v.base + b * v.batch + kvh * v.head
                let yp = y.base + b * y.batch + h * y.head
                if T == 0 {
                    for i in 0..<S { for d in 0..<valueHeadSize { yp[i * y.row + d] = 0 } }
                    continue
                }
                if headSize > 0 {
                    blindai_sgemm(0, 1, S, T, headSize, scale, qp, q.row, kp, k.row, 0, scores, T)
                } else {
                    scores.initialize(repeating: 0, count: S * T)
                }
                if emulateBF16 { for i in 0..<(S * T) { scores[i] = Self.bf16(scores[i]) } }
                probe?(0, b, h, scores)
                if softcap > 0 {
                    let c = softcap
                    if emulateBF16 {
                        for i in 0..<(S * T) { scores[i] = Self.bf16(Self.bf16(Foundation.tanh(Self.bf16(scores[i] / c))) * c) }
                    } else {
                        for i in 0..<(S * T) { scores[i] = c * Foundation.tanh(scores[i] / c) }
                    }
                }
                probe?(1, b, h, scores)
                if let addBias {
                    for i in 0..<S { addBias(b, h, i, scores + i * T) }
                    if emulateBF16 { for i in 0..<(S * T) { scores[i] = Self.bf16(scores[i]) } }
                }
                probe?(2, b, h, scores)
                if emulateBF16 {
                    for i in 0..<S {
                        let row = scores + i * T
                        var m = -Float.infinity
                        for j in 0..<T where row[j] > m { m = row[j] }
                        if m == -Float.infinity { for j in 0..<T { row[j] = 0 }; continue }
                        var sum: Float = 0
                        for j in 0..<T {
                            let e = Self.bf16(Foundation.exp(Self.bf16(row[j] - m)))
                            row[j] = e
                            sum = j == 0 ? e : Self.bf16(sum + e)
                        }
                        for j in 0..<T { row[j] = Self.bf16(row[j] / sum) }
                    }
                }
                if !emulateBF16 {
                    for i in 0..<S { AttentionMath.softmax(scores + i * T, T) }
                }
                probe?(3, b, h, scores)
                if valueHeadSize > 0 {
                    blindai_sgemm(0, 0, S, valueHeadSize, T, 1, scores, T, vp, v.row, 0, yp, y.row)
                }
            }
        }
    }
}

/// Copies a strided [B, H, S, D] view into a contiguous [B, H, P + S, D] buffer after `past` (contiguous [B, H, P, D]).
package func attentionConcat(past: UnsafePointer<Float>?, pastLength: Int, _ cur: AttentionView, batch: Int, heads: Int, length: Int, size: Int,
                     into dst: UnsafeMutablePointer<Float>) {
    let total = pastLength + length
    for b in 0..<batch {
        for h in 0..<heads {
            let d = dst + (b * heads + h) * total * size
            if let past, pastLength > 0 {
                d.update(from: past + (b * heads + h) * pastLength * size, count: pastLength * size)
            }
            let s = cur.base + b * cur.batch + h * cur.head
            for i in 0..<length {
                (d + (pastLength + i) * size).update(from: s + i * cur.row, count: size)
            }
        }
    }
}


// MARK: - RotaryEmbedding (ONNX opset 23 and com.microsoft)

package enum RotaryKernel {
    /// Rotates the first `rotaryDim` values of one head vector `x` (length headSize) into `y`.
    @inlinable @inline(__always)
    package static func rotate(_ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, headSize: Int, rotaryDim: Int,
                       cos: UnsafePointer<Float>, sin: UnsafePointer<Float>, interleaved: Bool) {
        let half = rotaryDim / 2
        if interleaved {
            for i in 0..<half {
                let a = x[2 * i], b = x[2 * i + 1]
                y[2 * i] = cos[i] * a - sin[i] * b
                y[2 * i + 1] = sin[i] * a + cos[i] * b
            }
        } else {
            for i in 0..<half {
                let a = x[i], b = x[i + half]
                y[i] = cos[i] * a - sin[i] * b
                y[i + half] = sin[i] * a + cos[i] * b
            }
        }
        if rotaryDim < headSize {
            for i in rotaryDim..<headSize { y[i] = x[i] }
        }
    }
}
