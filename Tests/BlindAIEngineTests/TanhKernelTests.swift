import CBlindAIKernels
import Foundation
import Testing

/// The float32 Tanh kernel against tanh computed in double precision.
@Suite struct TanhKernelTests {
    @Test func withinOneMillionthOfTanh() {
        var xs: [Float] = [0, -0.0, 1e-30, -1e-8, 0.624, 0.625, 0.626, -0.625, 9, 10, 44, 88, 100, .infinity, -.infinity,
                           .leastNonzeroMagnitude, .greatestFiniteMagnitude, -.greatestFiniteMagnitude]
        xs += (0..<200_001).map { (i: Int) -> Float in Float(i - 100_000) * 1e-4 }   // -10 ... 10
        xs += (0..<2_000).map { (i: Int) -> Float in Float(i) * 1e-6 - 1e-3 }        // around 0
        var ys = [Float](repeating: 0, count: xs.count)
        xs.withUnsafeBufferPointer { s in
            ys.withUnsafeMutableBufferPointer { d in blindai_tanh_f32(s.baseAddress!, d.baseAddress!, s.count) }
        }
        var worst: Double = 0
        for (x, y) in zip(xs, ys) {
            let r = Foundation.tanh(Double(x))
            #expect(y.sign == x.sign, "sign of tanh(\(x))")
            let err = abs(Double(y) - r)
            if err > 1e-7 { worst = max(worst, err / abs(r)) }
        }
        #expect(worst <= 1e-6, "largest relative error \(worst)")

        var special: [Float] = [.nan, .infinity, -.infinity, -0.0, 0, 1, 2, 3, 4, 5, 6, 7]   // 12: tail in C's tanhf
        var out = [Float](repeating: 0, count: special.count)
        special.withUnsafeMutableBufferPointer { s in
            out.withUnsafeMutableBufferPointer { d in blindai_tanh_f32(s.baseAddress!, d.baseAddress!, s.count) }
        }
        #expect(out[0].isNaN)
        #expect(out[1] == 1 && out[2] == -1)
        #expect(out[3] == 0 && out[3].sign == .minus)
        #expect(out[4] == 0 && out[4].sign == .plus)
    }
}
