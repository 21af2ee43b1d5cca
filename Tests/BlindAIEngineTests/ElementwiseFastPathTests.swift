import BlindAIGraph
import BlindAIONNX
import BlindAITensor
import BlindAITestSupport
import Foundation
import Testing

/// Pow by a constant 2 or 3 runs as products; the results must stay those of pow (within an ulp for cubes), with
/// the special values of pow.
@Suite struct ElementwiseFastPathTests {
    static func pow(_ x: [Float], exponent: Float, exponentShape: [Int] = []) throws -> [Float] {
        var b = ModelBuilder()
        b.input("x", .float32, [x.count])
        b.initializer("e", Tensor(shape: exponentShape, scalars: [exponent]))
        b.node("Pow", ["x", "e"], ["y"])
        b.output("y", .float32, [nil])
        return try ONNXModel(serialized: b.data()).run(["x": Tensor(shape: [x.count], scalars: x)])["y"]!.scalars()
    }

    @Test(arguments: [Float(2), 3])
    func squaresAndCubesMatchPow(_ e: Float) throws {
        var xs: [Float] = [0, -0.0, 1, -1, 0.5, -2.5, 1e-20, -3e12, 1e20, .infinity, -.infinity, .nan,
                           .leastNonzeroMagnitude, .greatestFiniteMagnitude]
        xs += (0..<200).map { (i: Int) -> Float in Float(i) * 0.37 - 37 }
        for shape in [[Int](), [1]] {
            let ys = try Self.pow(xs, exponent: e, exponentShape: shape)
            for (x, y) in zip(xs, ys) {
                let r = Foundation.pow(x, e)
                if r.isNaN { #expect(y.isNaN, "pow(\(x), \(e))"); continue }
                #expect(y.sign == r.sign, "sign of pow(\(x), \(e))")
                #expect(y == r || abs(y - r) <= r.magnitude.ulp, "pow(\(x), \(e)) = \(r), got \(y)")
            }
        }
    }

    @Test func otherExponentsAndWiderExponentShapesUsePow() throws {
        let xs: [Float] = [0.5, 2, 3, 1.5]
        #expect(try Self.pow(xs, exponent: 2.5) == xs.map { Foundation.pow($0, 2.5) })
        // An exponent of higher rank broadcasts the base: the general path, same values.
        var b = ModelBuilder()
        b.input("x", .float32, [4])
        b.initializer("e", Tensor(shape: [1, 1], scalars: [Float(3)]))
        b.node("Pow", ["x", "e"], ["y"])
        b.output("y", .float32, [nil, nil])
        let y = try ONNXModel(serialized: b.data()).run(["x": Tensor(shape: [4], scalars: xs)])["y"]!
        #expect(y.shape == [1, 4])
        #expect(y.scalars(as: Float.self) == xs.map { Foundation.pow($0, 3) })
    }
}
