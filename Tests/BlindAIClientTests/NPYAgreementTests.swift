import BlindAIClient
import BlindAIProtocol
import BlindAITensor
import Foundation
import Testing

/// The client reads `.npy` through the shared codec: the same bytes give the engine's shape, type and values, and a
/// hostile header is an error (the client's own codec trapped on a shape whose element count overflowed).
@Suite struct ClientNPYTests {
    @Test func hostileShapeIsAnErrorNotATrap() throws {
        var header = Array("{'descr': '<f4', 'fortran_order': False, 'shape': (4611686018427387904, 4), }".utf8)
        header += [UInt8](repeating: 0x20, count: (64 - (10 + header.count + 1) % 64) % 64) + [0x0A]
        let file = Data([0x93, 0x4E, 0x55, 0x4D, 0x50, 0x59, 1, 0, UInt8(header.count & 0xFF), UInt8(header.count >> 8)] + header)
        #expect(throws: BlindAIClientError.self) { try ClientTensor(npy: file) }
    }

    @Test func engineAndClientReadTheSameFile() throws {
        let engine = BlindAITensor.Tensor(shape: [2, 3], scalars: [Int32](arrayLiteral: 1, -2, 3, -4, 5, .max))
        let file = try BlindAITensor.NPY.encode(engine)
        let client = try ClientTensor(npy: file)
        #expect(client.datatype == OIPDataType.int32 && client.shape == [2, 3])
        #expect(client.data == Data(engine.rawBytes))
        #expect(try client.npy() == file)
        let strings = try ClientTensor(strings: ["x", "yz"], shape: [2])
        let back = try BlindAITensor.NPY.decode(try strings.npy())
        #expect(back.strings == ["x", "yz"])
    }
}
