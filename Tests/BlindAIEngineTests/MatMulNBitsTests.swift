import BlindAIGraph
import BlindAIONNX
import BlindAITensor
import BlindAITestSupport
import Foundation
import Testing

/// com.microsoft MatMulNBits on both plans, against W dequantized and multiplied here in double precision.
@Suite struct MatMulNBitsTests {
    struct Case {
        var k = 40, n = 70, bits = 4, blockSize = 16
        var zeroPoints: ZeroPoints = .none
        var gIdx = false
        var bias = false
        var aShape = [2, 3, 40]
        enum ZeroPoints { case none, packed, float }
    }

    /// Runs `c` with pseudo-random weights, scales, zero points and inputs; returns (engine output, expected) on each plan.
    static func run(_ c: Case) throws -> [([Float], [Double], [Int])] {
        let kBlocks = (c.k + c.blockSize - 1) / c.blockSize, blob = c.blockSize * c.bits / 8, perByte = 8 / c.bits
        var seed: UInt64 = 0x9E37_79B9_7F4A_7C15
        func next() -> UInt64 { seed = seed &* 6364136223846793005 &+ 1442695040888963407; return seed >> 33 }
        // W as quantized values q[n][k], packed per row of blocks (padding of the last block stays 0).
        let q = (0..<(c.n * c.k)).map { _ in Int(next() % UInt64(1 << c.bits)) }
        var b = [UInt8](repeating: 0, count: c.n * kBlocks * blob)
        for col in 0..<c.n {
            for kk in 0..<c.k {
                let blk = kk / c.blockSize, pos = kk % c.blockSize
                b[col * kBlocks * blob + blk * blob + pos / perByte] |= UInt8(q[col * c.k + kk] << ((pos % perByte) * c.bits))
            }
        }
        let scales = (0..<(c.n * kBlocks)).map { _ in Float(next() % 1000 + 1) / 4096 }
        let zeroValues = (0..<(c.n * kBlocks)).map { _ in Int(next() % UInt64(1 << c.bits)) }
        var packedZeros = [UInt8](repeating: 0, count: c.n * ((kBlocks + perByte - 1) / perByte))
        for col in 0..<c.n {
            for blk in 0..<kBlocks {
                packedZeros[col * ((kBlocks + perByte - 1) / perByte) + blk / perByte] |= UInt8(zeroValues[col * kBlocks + blk] << ((blk % perByte) * c.bits))
            }
        }
        // g_idx: blocks in reverse order of k's natural block (any valid block index per k is allowed).
        let groups = (0..<c.k).map { kBlocks - 1 - $0 / c.blockSize }
        let biasValues = (0..<c.n).map { Float($0) / 8 - 2 }
        let a = (0..<c.aShape.reduce(1, *)).map { _ in Float(Int(next() % 2001) - 1000) / 500 }

        func weight(_ col: Int, _ kk: Int) -> Double {
            let g = c.gIdx ? groups[kk] : kk / c.blockSize
            let z: Double
            switch c.zeroPoints {
            case .none: z = Double(1 << (c.bits - 1))
            case .packed, .float: z = Double(zeroValues[col * kBlocks + g])
            }
            return (Double(q[col * c.k + kk]) - z) * Double(scales[col * kBlocks + g])
        }
        let m = a.count / c.k
        var expected = [Double](repeating: 0, count: m * c.n)
        for i in 0..<m {
            for col in 0..<c.n {
                var s = c.bias ? Double(biasValues[col]) : 0
                for kk in 0..<c.k { s += Double(a[i * c.k + kk]) * weight(col, kk) }
                expected[i * c.n + col] = s
            }
        }

        var mb = ModelBuilder(opset: 21)
        mb.importDomain("com.microsoft")
        mb.input("a", .float32, c.aShape)
        mb.initializer("b", Tensor(shape: [c.n, kBlocks, blob], scalars: b))
        mb.initializer("scales", Tensor(shape: [c.n * kBlocks], scalars: scales))
        var inputs = ["a", "b", "scales"]
        switch c.zeroPoints {
        case .none: inputs.append("")
        case .packed: mb.initializer("zp", Tensor(shape: [packedZeros.count], scalars: packedZeros)); inputs.append("zp")
        case .float: mb.initializer("zp", Tensor(shape: [zeroValues.count], scalars: zeroValues.map { Float($0) })); inputs.append("zp")
        }
        if c.gIdx { mb.initializer("g", Tensor(shape: [c.k], scalars: groups.map { Int32($0) })); inputs.append("g") } else { inputs.append("") }
        if c.bias { mb.initializer("bias", Tensor(shape: [c.n], scalars: biasValues)); inputs.append("bias") }
        while inputs.last == "" { inputs.removeLast() }
        mb.node("MatMulNBits", inputs, ["y"], domain: "com.microsoft", attributes: [
            ModelBuilder.intAttribute("K", c.k), ModelBuilder.intAttribute("N", c.n), ModelBuilder.intAttribute("bits", c.bits),
            ModelBuilder.intAttribute("block_size", c.blockSize),
        ])
        mb.output("y", .float32)
        return try [true, false].map { optimize in
            let model = try ONNXModel(serialized: mb.data(), options: PlanOptions(optimize: optimize))
            let y = try model.run(["a": Tensor(shape: c.aShape, scalars: a)])["y"]!
            return (y.scalars(as: Float.self), expected, y.shape)
        }
    }

    static func check(_ c: Case) throws {
        for (y, expected, shape) in try run(c) {
            #expect(shape == Array(c.aShape.dropLast()) + [c.n])
            #expect(y.count == expected.count)
            let worst = zip(y, expected).map { abs(Double($0) - $1) / (1 + abs($1)) }.max() ?? 0
            #expect(worst < 1e-4, "relative error \(worst) for \(c)")
        }
    }

    @Test func fourBitWithTheDefaultZeroPoint() throws { try Self.check(Case()) }
    @Test func fourBitWithPackedZeroPointsAndBias() throws { try Self.check(Case(zeroPoints: .packed, bias: true)) }
    @Test func eightBitWithFloatZeroPoints() throws { try Self.check(Case(bits: 8, blockSize: 32, zeroPoints: .float)) }
    @Test func twoBitAcrossSeveralTilesWithPackedZeroPoints() throws {
        try Self.check(Case(k: 96, n: 150, bits: 2, blockSize: 16, zeroPoints: .packed, aShape: [5, 96]))
    }
    @Test func groupIndices() throws { try Self.check(Case(zeroPoints: .packed, gIdx: true)) }
    @Test func oneRow() throws { try Self.check(Case(k: 64, n: 33, aShape: [64])) }

    @Test func badInputsAreClearErrors() throws {
        var mb = ModelBuilder(opset: 21)
        mb.importDomain("com.microsoft")
        mb.input("a", .float32, [2, 32])
        mb.input("b", .uint8, [nil, nil, nil])
        mb.input("s", .float32, [nil])
        mb.node("MatMulNBits", ["a", "b", "s"], ["y"], domain: "com.microsoft", attributes: [
            ModelBuilder.intAttribute("K", 32), ModelBuilder.intAttribute("N", 4), ModelBuilder.intAttribute("block_size", 16),
        ])
        mb.output("y", .float32)
        let model = try ONNXModel(serialized: mb.data(), options: PlanOptions(optimize: false))
        let a = Tensor(shape: [2, 32], scalars: [Float](repeating: 1, count: 64))
        func code(_ b: Tensor, _ s: Tensor) -> EngineError.Code? {
            do { _ = try model.run(["a": a, "b": b, "s": s]) } catch let e as EngineError { return e.code } catch { return nil }
            return nil
        }
        let goodB = Tensor(shape: [4, 2, 8], scalars: [UInt8](repeating: 0x88, count: 64))
        let goodS = Tensor(shape: [8], scalars: [Float](repeating: 1, count: 8))
        #expect(code(goodB, goodS) == nil)
        #expect(code(Tensor(shape: [4, 2, 7], scalars: [UInt8](repeating: 0, count: 56)), goodS) == .shapeMismatch)
        #expect(code(goodB, Tensor(shape: [7], scalars: [Float](repeating: 1, count: 7))) == .shapeMismatch)
        // The attributes are checked at load.
        for attrs in [[("K", 0), ("N", 4), ("block_size", 16)], [("K", 32), ("N", 4), ("block_size", 24)], [("K", 32), ("N", 4), ("block_size", 16), ("bits", 3)],
                      [("K", Int.max), ("N", 4), ("block_size", 16)]] {
            var bad = ModelBuilder(opset: 21)
            bad.importDomain("com.microsoft")
            bad.input("a", .float32, [2, 32])
            bad.input("b", .uint8, [nil, nil, nil])
            bad.input("s", .float32, [nil])
            bad.node("MatMulNBits", ["a", "b", "s"], ["y"], domain: "com.microsoft", attributes: attrs.map { ModelBuilder.intAttribute($0.0, $0.1) })
            bad.output("y", .float32)
            #expect(throws: EngineError.self) { _ = try ONNXModel(serialized: bad.data()) }
        }
    }
}
