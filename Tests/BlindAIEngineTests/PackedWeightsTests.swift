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
