import BlindAINumPy
import BlindAITensor
import Foundation
import Testing

/// The one `.npy` codec (BlindAINumPy) and the engine's adapter over it. The client's adapter has its tests in
/// BlindAIClientTests; both read the same bytes the same way because they share this codec.
@Suite struct NPYTests {
    /// A file with a hand-written header (version 1 or 3), padded as NumPy pads it, followed by `body`.
    static func file(_ header: String, version: UInt8 = 1, headerBytes: [UInt8]? = nil, body: [UInt8]) -> Data {
        var h = headerBytes ?? Array(header.utf8)
        let prefix = version == 1 ? 10 : 12
        h += [UInt8](repeating: 0x20, count: (64 - (prefix + h.count + 1) % 64) % 64) + [0x0A]
        var out: [UInt8] = [0x93, 0x4E, 0x55, 0x4D, 0x50, 0x59, version, 0]
        out += [UInt8(h.count & 0xFF), UInt8(h.count >> 8)]
        if version != 1 { out += [0, 0] }
        return Data(out + h + body)
    }

    @Test func everyNumericTypeRoundTripsThroughTheEngine() throws {
        let tensors: [Tensor] = [
            Tensor(shape: [2], scalars: [Float](arrayLiteral: 1.5, -2)),
            Tensor(shape: [1, 2], scalars: [Double](arrayLiteral: 1e300, -0.0)),
            Tensor(shape: [3], scalars: [Int8](arrayLiteral: -128, 0, 127)),
            Tensor(shape: [2], scalars: [UInt16](arrayLiteral: 0, 65535)),
            Tensor(shape: [2], scalars: [Int32](arrayLiteral: .min, .max)),
            Tensor(shape: [2], scalars: [UInt64](arrayLiteral: 0, .max)),
            Tensor(shape: [2, 0], scalars: [Int64]()),
            Tensor(shape: [3], scalars: [Bool](arrayLiteral: true, false, true)),
        ]
        for t in tensors {
            let back = try NPY.decode(NPY.encode(t))
            #expect(back.dataType == t.dataType && back.shape == t.shape)
            #expect(Array(back.rawBytes) == Array(t.rawBytes), "\(t.dataType)")
        }
    }

    /// Only the client read `<U` strings before the codecs were one: the engine reads and writes them too now.
    @Test func unicodeStringsInTheEngine() throws {
        let t = Tensor(shape: [2, 2], strings: ["a", "héllo", "", "日本"])
        let data = try NPY.encode(t)
        let array = try NPYFile.decode(data)
        #expect(array.element == .unicode(width: 5))
        let back = try NPY.decode(data)
        #expect(back.dataType == .string && back.shape == [2, 2])
        #expect(back.strings == ["a", "héllo", "", "日本"])
    }

    /// Versions 1 and 2 headers are Latin-1, version 3 is UTF-8 (the engine and the client used to disagree).
    @Test func headerEncodingFollowsTheVersion() throws {
        let body: [UInt8] = [0, 0, 0x80, 0x3F]
        // A Latin-1 byte (0xE9) in an extra key: a valid version 1 header, not valid UTF-8.
        let latin1 = Array("{'descr': '<f4', 'fortran_order': False, 'shape': (1,), 'note': '".utf8) + [0xE9] + Array("', }".utf8)
        let v1 = try NPYFile.decode(Self.file("", headerBytes: latin1, body: body))
        #expect(v1.shape == [1] && v1.element == .float32)
        let v3 = try NPYFile.decode(Self.file("{'descr': '<f4', 'fortran_order': False, 'shape': (1,), 'note': 'é', }", version: 3, body: body))
        #expect(v3.shape == [1])
        #expect(throws: NPYError.self) { try NPYFile.decode(Self.file("", version: 3, headerBytes: latin1, body: body)) }
    }

    @Test func shapesAndScalars() throws {
        let f4: [UInt8] = [0, 0, 0x80, 0x3F]
        #expect(try NPYFile.decode(Self.file("{'descr': '<f4', 'fortran_order': False, 'shape': (), }", body: f4)).shape == [])
        #expect(try NPYFile.decode(Self.file("{'descr': '<f4', 'fortran_order': False, 'shape': (1,), }", body: f4)).shape == [1])
        #expect(try NPYFile.decode(Self.file("{'descr': '<f4', 'fortran_order': False, 'shape': (1, 1, 1), }", body: f4)).shape == [1, 1, 1])
        for bad in ["(,)", "(1,,)", "(-1,)", "(x,)", "1", "(1"] {
            #expect(throws: NPYError.self, "\(bad)") {
                try NPYFile.decode(Self.file("{'descr': '<f4', 'fortran_order': False, 'shape': \(bad), }", body: f4))
            }
        }
    }

    /// Hostile headers get an error, never a trap or a huge allocation: element counts and byte sizes that
    /// overflow, sizes over the limit, truncated bodies, Fortran order, big-endian data, unknown types.
    @Test func hostileHeadersAreRefused() throws {
        let cases: [(String, String)] = [
            ("{'descr': '<f4', 'fortran_order': False, 'shape': (4611686018427387904, 4), }", "too many elements"),
            ("{'descr': '<f8', 'fortran_order': False, 'shape': (1152921504606846976, 2), }", "over the size limit"),
            ("{'descr': '<U1152921504606846976', 'fortran_order': False, 'shape': (1,), }", "no usable width"),
            ("{'descr': '<f4', 'fortran_order': False, 'shape': (1000,), }", "truncated"),
            ("{'descr': '<f4', 'fortran_order': True, 'shape': (1,), }", "Fortran"),
            ("{'descr': '>f4', 'fortran_order': False, 'shape': (1,), }", "big-endian"),
            ("{'descr': '<c8', 'fortran_order': False, 'shape': (1,), }", "not supported"),
            ("{'descr': '<f4', 'shape': (1,), }", "fortran_order"),
        ]
        for (header, expected) in cases {
            do {
                _ = try NPYFile.decode(Self.file(header, body: [0, 0, 0x80, 0x3F]))
                Issue.record("accepted: \(header)")
            } catch {
                #expect(error.reason.contains(expected), "\(header): \(error.reason)")
            }
        }
        // Within the engine, the tensor limits bound the declared size before anything is allocated.
        let limits = TensorLimits(maxTensorBytes: 1 << 20, maxTensorElements: 1 << 18)
        #expect(throws: EngineError.self) {
            try NPY.decode(Self.file("{'descr': '<f4', 'fortran_order': False, 'shape': (1048576,), }", body: []), limits: limits)
        }
        // A big-endian byte-sized type has no byte order: accepted.
        #expect(try NPYFile.decode(Self.file("{'descr': '>u1', 'fortran_order': False, 'shape': (1,), }", body: [7])).body == Data([7]))
    }
}
