import BlindAIGraph
import BlindAIONNX
import BlindAITensor
import BlindAITestSupport
import Foundation
import Testing

/// com.microsoft GatherBlockQuantized on both plans. The tests pack the logical values themselves (low bits first, as
/// onnxruntime's MatMulNBits layout stores them) and compare with (q - zero_point) * scale worked out here.
@Suite struct GatherBlockQuantizedTests {
    /// Packs logical values of `bits` bits, `8 / bits` per byte along each row of `columns` values.
    static func pack(_ values: [Int], columns: Int, bits: Int) -> [UInt8] {
        let perByte = 8 / bits
        var out: [UInt8] = []
        for rowStart in stride(from: 0, to: values.count, by: columns) {
            for c in stride(from: 0, to: columns, by: perByte) {
                var byte = 0
                for k in 0..<perByte where c + k < columns { byte |= values[rowStart + c + k] << (k * bits) }
                out.append(UInt8(byte))
            }
        }
        return out
    }

    static func model(dataShape: [Int], indicesType: DataType = .int64, indicesShape: [Int], scalesType: DataType = .float32,
                      scalesShape: [Int], zeroPointsShape: [Int]? = nil, attributes: [Onnx_AttributeProto]) -> ModelBuilder {
        var b = ModelBuilder(opset: 21)
        b.importDomain("com.microsoft")
        b.input("data", .uint8, dataShape)
        b.input("indices", indicesType, indicesShape)
        b.input("scales", scalesType, scalesShape)
        var inputs = ["data", "indices", "scales"]
        if let zeroPointsShape {
            b.input("zero_points", .uint8, zeroPointsShape)
            inputs.append("zero_points")
        }
        b.node("GatherBlockQuantized", inputs, ["y"], domain: "com.microsoft", attributes: attributes)
        b.output("y", scalesType)
        return b
    }

    static func run(_ b: ModelBuilder, _ feeds: [String: Tensor]) throws -> [(Tensor, ValueFact)] {
        try [true, false].map { optimize in
            let m = try ONNXModel(serialized: b.data(), options: PlanOptions(optimize: optimize))
            return (try m.run(feeds)["y"]!, m.plan.outputFacts[0])
        }
    }

    @Test func fourBitRowsWithTheDefaultZeroPoint() throws {
        // An embedding table of 3 rows of 32 values (16 bytes each), blocks of 16: 2 scales per row.
        let rows = 3, columns = 32, block = 16
        let q = (0..<(rows * columns)).map { ($0 * 7 + $0 / columns) % 16 }
        let scales: [Float] = [0.5, 0.25, 1, 2, 0.125, 4]
        let b = Self.model(dataShape: [rows, columns / 2], indicesShape: [2], scalesShape: [rows, 2],
                           attributes: [ModelBuilder.intAttribute("block_size", block), ModelBuilder.intAttribute("bits", 4),
                                        ModelBuilder.intAttribute("quantize_axis", 1)])
        let indices: [Int64] = [2, -3]   // -3 is row 0
        let outs = try Self.run(b, [
            "data": Tensor(shape: [rows, columns / 2], scalars: Self.pack(q, columns: columns, bits: 4)),
            "indices": Tensor(shape: [2], scalars: indices),
            "scales": Tensor(shape: [rows, 2], scalars: scales),
        ])
        for (y, fact) in outs {
            #expect(y.shape == [2, columns])
            #expect(dims(fact) == ["2", "32"])
            let v = y.scalars(as: Float.self)
            for (k, row) in [2, 0].enumerated() {
                for c in 0..<columns {
                    let expected = Float(q[row * columns + c] - 8) * scales[row * 2 + c / block]
                    #expect(v[k * columns + c] == expected, "row \(row) column \(c)")
                }
            }
        }
    }

    @Test func eightBitWithZeroPointsOnAnInnerGatherAxisInFloat16() throws {
        // data [2, 3, 20] (bits 8: stored as is), gather_axis 1, blocks of 16: 2 scales per row, the second block short.
        let shape = [2, 3, 20], block = 16
        let q = (0..<120).map { ($0 * 37) % 256 }
        let scales = (0..<12).map { Float16(Float($0 + 1) / 8) }
        let zeros = (0..<12).map { UInt8(100 + $0 * 3) }
        let b = Self.model(dataShape: shape, indicesType: .int32, indicesShape: [2, 1], scalesType: .float16, scalesShape: [2, 3, 2],
                           zeroPointsShape: [2, 3, 2],
                           attributes: [ModelBuilder.intAttribute("block_size", block), ModelBuilder.intAttribute("bits", 8),
                                        ModelBuilder.intAttribute("gather_axis", 1), ModelBuilder.intAttribute("quantize_axis", -1)])
        let outs = try Self.run(b, [
            "data": Tensor(shape: shape, scalars: q.map { UInt8($0) }),
            "indices": Tensor(shape: [2, 1], scalars: [Int32(2), Int32(0)]),
            "scales": Tensor(shape: [2, 3, 2], scalars: scales),
            "zero_points": Tensor(shape: [2, 3, 2], scalars: zeros),
        ])
        for (y, fact) in outs {
            #expect(y.dataType == .float16)
            #expect(y.shape == [2, 2, 1, 20])
            #expect(dims(fact) == ["2", "2", "1", "20"])
            let v = y.scalars(as: Float16.self)
            var o = 0
            for outer in 0..<2 {
                for pick in [2, 0] {
                    let row = outer * 3 + pick
                    for c in 0..<20 {
                        let s = row * 2 + c / block
                        let expected = Float16((Float(q[row * 20 + c]) - Float(zeros[s])) * Float(scales[s]))
                        #expect(v[o] == expected, "outer \(outer) pick \(pick) column \(c)")
                        o += 1
                    }
                }
            }
        }
    }

    @Test func twoBitWithPackedZeroPoints() throws {
        // 2 rows of 48 two-bit values (12 bytes), blocks of 16: 3 scales per row, zero points 4 per byte (1 byte per row).
        let columns = 48, block = 16
        let q = (0..<(2 * columns)).map { ($0 * 5 + 1) % 4 }
        let scales: [Float] = [1, 2, 3, 0.5, 0.25, 8]
        let zeroValues = [0, 1, 2, 3, 2, 1]
        let zeroBytes = Self.pack(zeroValues, columns: 3, bits: 2)
        #expect(zeroBytes.count == 2)
        let b = Self.model(dataShape: [2, 12], indicesShape: [3], scalesShape: [2, 3], zeroPointsShape: [2, 1],
                           attributes: [ModelBuilder.intAttribute("block_size", block), ModelBuilder.intAttribute("bits", 2)])
        let outs = try Self.run(b, [
            "data": Tensor(shape: [2, 12], scalars: Self.pack(q, columns: columns, bits: 2)),
            "indices": Tensor(shape: [3], scalars: [Int64(1), Int64(1), Int64(0)]),
            "scales": Tensor(shape: [2, 3], scalars: scales),
            "zero_points": Tensor(shape: [2, 1], scalars: zeroBytes),
        ])
        for (y, _) in outs {
            #expect(y.shape == [3, columns])
            let v = y.scalars(as: Float.self)
            for (k, row) in [1, 1, 0].enumerated() {
                for c in 0..<columns {
                    let s = row * 3 + c / block
                    #expect(v[k * columns + c] == Float(q[row * columns + c] - zeroValues[s]) * scales[s])
                }
            }
        }
    }

    @Test func badInputsAndAttributesAreClearErrors() throws {
        func code(_ b: ModelBuilder, _ feeds: [String: Tensor]) -> EngineError.Code? {
            do { _ = try Self.run(b, feeds) } catch let e as EngineError { return e.code } catch { return nil }
            return nil
        }
        let attrs = [ModelBuilder.intAttribute("block_size", 16), ModelBuilder.intAttribute("bits", 4)]
        let feeds: [String: Tensor] = [
            "data": Tensor(shape: [2, 8], scalars: [UInt8](repeating: 0x98, count: 16)),
            "indices": Tensor(shape: [1], scalars: [Int64(2)]),
            "scales": Tensor(shape: [2, 1], scalars: [Float(1), 2]),
        ]
        // Index 2 of an axis of size 2.
        #expect(code(Self.model(dataShape: [2, 8], indicesShape: [1], scalesShape: [2, 1], attributes: attrs), feeds) == .invalidArgument)
        // Scales with the wrong number of blocks.
        var wrongScales = feeds
        wrongScales["indices"] = Tensor(shape: [1], scalars: [Int64(0)])
        wrongScales["scales"] = Tensor(shape: [2, 2], scalars: [Float](repeating: 1, count: 4))
        #expect(code(Self.model(dataShape: [2, 8], indicesShape: [1], scalesShape: [2, 2], attributes: attrs), wrongScales) == .shapeMismatch)
        // The quantized axis must be the last (where the values are packed).
        var ok = feeds
        ok["indices"] = Tensor(shape: [1], scalars: [Int64(0)])
        let axis0 = attrs + [ModelBuilder.intAttribute("quantize_axis", 0)]
        #expect(code(Self.model(dataShape: [2, 8], indicesShape: [1], scalesShape: [2, 1], attributes: axis0), ok) == .invalidArgument)
        // block_size and bits are checked when the model loads.
        let block = { ModelBuilder.intAttribute("block_size", $0) }, bits = { ModelBuilder.intAttribute("bits", $0) }
        for bad in [[block(24), bits(4)], [block(8), bits(4)], [block(16), bits(3)],
                    [block(16), bits(4), ModelBuilder.intAttribute("gather_axis", Int.min)]] {
            #expect(code(Self.model(dataShape: [2, 8], indicesShape: [1], scalesShape: [2, 1], attributes: bad), ok) == .invalidModel)
        }
        // The same model with good inputs runs: (0x8 - 8) * 1 and (0x9 - 8) * 1 alternate.
        let y = try Self.run(Self.model(dataShape: [2, 8], indicesShape: [1], scalesShape: [2, 1], attributes: attrs), ok)[0].0
        #expect(y.scalars(as: Float.self) == (0..<16).map { Float($0 % 2 == 0 ? 0 : 1) })
    }

    /// Indices from the client at the extremes of int64: an error, never a trap (HostileInputTests' values).
    @Test func extremeIndicesFromTheClient() throws {
        let attrs = [ModelBuilder.intAttribute("block_size", 16), ModelBuilder.intAttribute("bits", 4)]
        for values in HostileInputTests.extremes {
            let b = Self.model(dataShape: [2, 8], indicesShape: [values.count], scalesShape: [2, 1], attributes: attrs)
            let feeds: [String: Tensor] = [
                "data": Tensor(shape: [2, 8], scalars: [UInt8](repeating: 0x98, count: 16)),
                "indices": Tensor(shape: [values.count], scalars: values),
                "scales": Tensor(shape: [2, 1], scalars: [Float(1), 2]),
            ]
            let inRange = values.allSatisfy { $0 >= -2 && $0 < 2 }
            do {
                let y = try Self.run(b, feeds)[0].0
                #expect(inRange, "\(values) ran")
                #expect(y.shape == [values.count, 16])
            } catch let e as EngineError {
                #expect(!inRange, "\(values): \(e)")
                #expect(e.code == .invalidArgument)
            }
        }
    }
}
