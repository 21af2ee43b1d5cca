import BlindAITensor
import Foundation
import FuzzSupport

// The `.npy` reader (`blindai run --input`, client tensors): header parsing, dtype and shape, data length.
// A file it accepts must survive a write and a second read unchanged.

let limits = TensorLimits(maxTensorBytes: 16 << 20, maxTensorElements: 4 << 20)

@_cdecl("LLVMFuzzerTestOneInput")
public func testOneInput(_ data: UnsafePointer<UInt8>?, _ count: Int) -> CInt {
    guard let tensor = try? NPY.decode(Data(bytes(data, count)), limits: limits) else { return 0 }
    guard let encoded = try? NPY.encode(tensor) else { return 0 }
    do {
        let again = try NPY.decode(encoded, limits: limits)
        property(again.dataType == tensor.dataType && again.shape == tensor.shape, "NPY round trip changed \(tensor.dataType) \(tensor.shape) into \(again.dataType) \(again.shape)")
        property(Array(again.rawBytes) == Array(tensor.rawBytes), "NPY round trip changed the data of a \(tensor.dataType) \(tensor.shape) tensor")
    } catch {
        property(false, "NPY cannot read its own encoding of a \(tensor.dataType) \(tensor.shape) tensor: \(error)")
    }
    return 0
}

@main enum Main {
    static func main() { runFuzzer(testOneInput) }
}
