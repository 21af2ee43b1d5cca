import BlindAINumPy
import Foundation

/// Tensors to and from NumPy `.npy` files, through the project's one codec (`BlindAINumPy`): versions 1.0 to 3.0,
/// C order, little-endian numbers, booleans and `<U` strings (string tensors). BFLOAT16 has no NumPy type.
public enum NPY {
    /// The NumPy element type of `t` (nil for string and bfloat16 tensors), the inverse of `dataType(_:)`.
    static func element(_ t: DataType) -> NPYElement? {
        NPYElement.fixedSize.first { dataType($0) == t }
    }

    static func dataType(_ e: NPYElement) -> DataType {
        switch e {
        case .float32: .float32
        case .float64: .float64
        case .float16: .float16
        case .int8: .int8
        case .uint8: .uint8
        case .int16: .int16
        case .uint16: .uint16
        case .int32: .int32
        case .uint32: .uint32
        case .int64: .int64
        case .uint64: .uint64
        case .bool: .bool
        case .unicode: .string
        }
    }

    /// Decodes a `.npy` file's bytes into a tensor within `limits`.
    public static func decode(_ data: Data, limits: TensorLimits = .default) throws -> Tensor {
        let array: NPYArray
        do {
            array = try NPYFile.decode(data, maxBodyBytes: limits.maxTensorBytes)
        } catch {
            throw EngineError(.invalidArgument, error.reason)
        }
        let dtype = dataType(array.element)
        if dtype == .string {
            _ = try limits.checkedCount(array.shape, .string)
            let strings: [String]
            do { strings = try array.strings() } catch { throw EngineError(.invalidArgument, error.reason) }
            return Tensor(shape: array.shape, strings: strings)
        }
        let tensor = try Tensor(uninitialized: dtype, shape: array.shape, limits: limits)
        array.body.withUnsafeBytes { raw in
            if tensor.byteCount > 0 { tensor.storage.base.copyMemory(from: raw.baseAddress!, byteCount: tensor.byteCount) }
        }
        if dtype == .bool { Tensor.canonicalizeBools(tensor.storage.base, count: tensor.count) }
        return tensor
    }

    /// Encodes a tensor as a version 1.0 `.npy` file.
    public static func encode(_ tensor: Tensor) throws -> Data {
        if tensor.dataType == .string {
            return NPYFile.encode(NPYArray(strings: tensor.strings, shape: tensor.shape))
        }
        guard let e = element(tensor.dataType) else {
            throw EngineError(.invalidArgument, "\(tensor.dataType) tensors cannot be written as .npy")
        }
        return NPYFile.encode(NPYArray(element: e, shape: tensor.shape, body: Data(tensor.rawBytes)))
    }
}
