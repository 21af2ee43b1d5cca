import BlindAINumPy
import Foundation

/// NumPy `.npy` files through the project's one codec (`BlindAINumPy`): versions 1 to 3, C order, little-endian;
/// `<U` strings as BYTES tensors (UTF-8). BF16 has no NumPy type.
extension Tensor {
    /// Reads a `.npy` file.
    public init(npyFile url: URL) throws {
        let data: Data
        do {
            data = try Data(contentsOf: url)
        } catch {
            throw BlindAIClientError.invalidInput("cannot read \(url.path): \(error.localizedDescription)")
        }
        do {
            try self.init(npy: data)
        } catch let BlindAIClientError.invalidInput(m) {
            throw BlindAIClientError.invalidInput("\(url.path): \(m)")
        }
    }

    /// Decodes `.npy` bytes.
    public init(npy data: Data) throws {
        do {
            let array = try NPYFile.decode(data)
            switch array.element {
            case .unicode:
                try self.init(strings: try array.strings(), shape: array.shape)
            default:
                try self.init(datatype: Self.datatype(array.element), shape: array.shape, data: array.body)
            }
        } catch let error as NPYError {
            throw BlindAIClientError.invalidInput(error.reason)
        }
    }

    static func datatype(_ e: NPYElement) -> DataType {
        switch e {
        case .float16: .fp16
        case .float32: .fp32
        case .float64: .fp64
        case .int8: .int8
        case .int16: .int16
        case .int32: .int32
        case .int64: .int64
        case .uint8: .uint8
        case .uint16: .uint16
        case .uint32: .uint32
        case .uint64: .uint64
        case .bool: .bool
        case .unicode: .bytes
        }
    }

    /// The NumPy element type of `t` (nil for BYTES and BF16), the inverse of `datatype(_:)`.
    static func element(_ t: DataType) -> NPYElement? {
        NPYElement.fixedSize.first { datatype($0) == t }
    }

    /// Encodes the tensor as `.npy` (version 1.0; BYTES as `<U` strings).
    public func npy() throws -> Data {
        if datatype == .bytes {
            return NPYFile.encode(NPYArray(strings: try strings(), shape: shape))
        }
        guard let e = Self.element(datatype) else {
            throw BlindAIClientError.invalidInput("a \(datatype.rawValue) tensor cannot be written as .npy")
        }
        return NPYFile.encode(NPYArray(element: e, shape: shape, body: data))
    }
}
