import BlindAIGraph
import BlindAIONNX
import BlindAITensor
import BlindAITestSupport
import Foundation
import Testing

/// Convolutions whose float32 weights are constants run on weights packed once at build time; the results must be
/// those of the same convolution with the weights given at run time (packed on every call).
@Suite struct PackedWeightsTests {
    static func values(_ n: Int, _ seed: Int) -> [Float] {
        (0..<n).map { (i: Int) -> Float in Float((i * 7919 + seed * 104_729) % 2001) / 1000 - 1 }
    }

    /// (x shape, w shape, group, pads): a grouped convolution with output rows not a multiple of 6 and K over one
    /// 256-wide block, split by columns; a wide, short one split by rows; a pointwise one; a 1-D one.
    static let cases: [([Int], [Int], Int, [Int])] = [
        ([1, 64, 20, 20], [26, 32, 3, 3], 2, [1, 1, 1, 1]),
        ([1, 32, 7, 7], [600, 32, 3, 3], 1, [1, 1, 1, 1]),
        ([2, 48, 9, 9], [40, 48, 1, 1], 1, [0, 0, 0, 0]),
        ([1, 16, 50], [20, 8, 5], 2, [2, 2]),
    ]

    @Test(arguments: cases.indices)
    func constantWeightsGiveTheResultsOfRuntimeWeights(_ index: Int) throws {
        let (xs, ws, group, pads) = Self.cases[index]
        let w = Tensor(shape: ws, scalars: Self.values(ws.reduce(1, *), 1))
        let x = Tensor(shape: xs, scalars: Self.values(xs.reduce(1, *), 2))
        let attributes = [ModelBuilder.intAttribute("group", group), ModelBuilder.intsAttribute("pads", pads)]

        var constant = ModelBuilder()
        constant.input("x", .float32, xs.map { $0 })
        constant.initializer("w", w)
        constant.node("Conv", ["x", "w"], ["y"], attributes: attributes)
        constant.output("y", .float32, [nil, nil, nil])

        var runtime = ModelBuilder()
        runtime.input("x", .float32, xs.map { $0 })
        runtime.input("w", .float32, ws.map { $0 })
        runtime.node("Conv", ["x", "w"], ["y"], attributes: attributes)
        runtime.output("y", .float32, [nil, nil, nil])

        for optimize in [true, false] {
            let options = PlanOptions(optimize: optimize)
            let a = try ONNXModel(serialized: constant.data(), options: options).run(["x": x])["y"]!
            let b = try ONNXModel(serialized: runtime.data(), options: options).run(["x": x, "w": w])["y"]!
            #expect(a.shape == b.shape)
            #expect(a.scalars(as: Float.self) == b.scalars(as: Float.self), "case \(index), optimize \(optimize)")
        }
    }
}

/// The direct depthwise kernels (float64 through the generic 3x3 one, float32 through the C plane kernel) against
/// a naive convolution.
@Suite struct DepthwiseTests {
    static func naive(_ x: [Double], _ w: [Double], c: Int, h: Int, wd: Int, k: Int, stride: Int, pad: Int) -> [Double] {
        let oh = (h + 2 * pad - k) / stride + 1, ow = (wd + 2 * pad - k) / stride + 1
        var out = [Double](repeating: 0, count: c * oh * ow)
        for ch in 0..<c {
            for i in 0..<oh {
                for j in 0..<ow {
                    var acc = 0.0
                    for a in 0..<k {
                        for b in 0..<k {
                            let r = i * stride - pad + a, q = j * stride - pad + b
                            if r >= 0 && r < h && q >= 0 && q < wd { acc += x[(ch * h + r) * wd + q] * w[(ch * k + a) * k + b] }
                        }
                    }
                    out[(ch * oh + i) * ow + j] = acc
                }
            }
        }
        return out
    }

    @Test(arguments: [(3, 1), (3, 2), (5, 1), (5, 2)])
    func matchesANaiveConvolution(_ kernel: (Int, Int)) throws {
        let (k, stride) = kernel
        let c = 6, h = 11, wd = 13, pad = k / 2
        let x = PackedWeightsTests.values(c * h * wd, 7).map(Double.init)
        let w = PackedWeightsTests.values(c * k * k, 8).map(Double.init)
        let expected = Self.naive(x, w, c: c, h: h, wd: wd, k: k, stride: stride, pad: pad)
        for type in [DataType.float64, .float32] {
            var b = ModelBuilder()
            b.input("x", type, [1, c, h, wd])
            if type == .float64 {
                b.initializer("w", Tensor(shape: [c, 1, k, k], scalars: w))
            } else {
                b.initializer("w", Tensor(shape: [c, 1, k, k], scalars: w.map { Float($0) }))
            }
            b.node("Conv", ["x", "w"], ["y"], attributes: [
                ModelBuilder.intAttribute("group", c), ModelBuilder.intsAttribute("pads", [pad, pad, pad, pad]),
                ModelBuilder.intsAttribute("strides", [stride, stride]),
            ])
            b.output("y", type, [nil, nil, nil, nil])
            let m = try ONNXModel(serialized: b.data())
            let got: [Double]
            if type == .float64 {
                got = try m.run(["x": Tensor(shape: [1, c, h, wd], scalars: x)])["y"]!.scalars(as: Double.self)
            } else {
                got = try m.run(["x": Tensor(shape: [1, c, h, wd], scalars: x.map { Float($0) })])["y"]!.scalars(as: Float.self).map(Double.init)
            }
            #expect(got.count == expected.count)
            let tolerance = type == .float64 ? 1e-12 : 1e-4
            #expect(zip(got, expected).allSatisfy { abs($0 - $1) <= tolerance }, "\(type) k \(k) stride \(stride)")
        }
    }
}
