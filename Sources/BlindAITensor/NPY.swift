import Foundation

/// Reading and writing NumPy `.npy` files (format versions 1.0 to 3.0, little-endian, C order).
public enum NPY {
    static let magic: [UInt8] = [0x93, 0x4E, 0x55, 0x4D, 0x50, 0x59]

    static func descr(_ t: DataType) -> String? {
        switch t {
        case .float32: "<f4"
        case .float64: "<f8"
        case .float16: "<f2"
        case .int8: "|i1"
        case .uint8: "|u1"
        case .int16: "<i2"
        case .uint16: "<u2"
        case .int32: "<i4"
        case .uint32: "<u4"
        case .int64: "<i8"
        case .uint64: "<u8"
        case .bool: "|b1"
        case .string, .bfloat16: nil
        }
    }

    static func dataType(descr: String) -> DataType? {
        var d = descr
        if d.hasPrefix("=") { d = "<" + d.dropFirst() }
        if d.count == 3, d.first == "|" || d.first == "<" {
            let body = String(d.dropFirst())
            switch body {
            case "f4": return .float32
            case "f8": return .float64
            case "f2": return .float16
            case "i1": return .int8
            case "u1": return .uint8
            case "i2": return .int16
            case "u2": return .uint16
            case "i4": return .int32
            case "u4": return .uint32
            case "i8": return .int64
            case "u8": return .uint64
            case "b1": return .bool
            default: return nil
            }
        }
        return nil
    }

    /// Decodes a `.npy` file's bytes.
    public static func decode(_ data: Data, limits: TensorLimits = .default) throws -> Tensor {
        let bytes = [UInt8](data.prefix(12))
        guard bytes.count >= 10, Array(bytes[0..<6]) == magic else {
            throw EngineError(.invalidArgument, "not a .npy file (bad magic)")
        }
        let major = bytes[6]
        let headerLen: Int
        let headerStart: Int
        switch major {
        case 1:
            headerLen = Int(bytes[8]) | Int(bytes[9]) << 8
            headerStart = 10
        case 2, 3:
            guard bytes.count >= 12 else { throw EngineError(.invalidArgument, "truncated .npy header") }
            headerLen = Int(bytes[8]) | Int(bytes[9]) << 8 | Int(bytes[10]) << 16 | Int(bytes[11]) << 24
            headerStart = 12
        default:
            throw EngineError(.invalidArgument, "unsupported .npy version \(major)")
        }
        guard data.count >= headerStart + headerLen else { throw EngineError(.invalidArgument, "truncated .npy header") }
        let headerData = data.subdata(in: data.startIndex + headerStart ..< data.startIndex + headerStart + headerLen)
        guard let header = String(data: headerData, encoding: major == 3 ? .utf8 : .isoLatin1) else {
            throw EngineError(.invalidArgument, "unreadable .npy header")
        }
        guard let descr = value(of: "descr", in: header).flatMap({ $0.trimmingCharacters(in: CharacterSet(charactersIn: "'\" ")) }),
              let dtype = dataType(descr: descr)
        else {
            throw EngineError(.invalidArgument, "unsupported .npy dtype in header \(header)")
        }
        if let fo = value(of: "fortran_order", in: header), fo.contains("True") {
            throw EngineError(.invalidArgument, ".npy arrays in Fortran order are not supported; save with np.ascontiguousarray")
        }
        guard let shapeText = value(of: "shape", in: header) else { throw EngineError(.invalidArgument, ".npy header has no shape") }
        let dims = shapeText.trimmingCharacters(in: CharacterSet(charactersIn: "() "))
            .split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
        var shape: [Int] = []
        for d in dims {
            guard let v = Int(d), v >= 0 else { throw EngineError(.invalidArgument, "bad .npy shape \(shapeText)") }
            shape.append(v)
        }
        let tensor = try Tensor(uninitialized: dtype, shape: shape, limits: limits)
        let start = headerStart + headerLen
        guard data.count - start >= tensor.byteCount else {
            throw EngineError(.invalidArgument, ".npy data is truncated: expected \(tensor.byteCount) bytes, found \(data.count - start)")
        }
        data.withUnsafeBytes { raw in
            tensor.storage.base.copyMemory(from: raw.baseAddress! + start, byteCount: tensor.byteCount)
        }
        if dtype == .bool { Tensor.canonicalizeBools(tensor.storage.base, count: tensor.count) }
        return tensor
    }

    /// Finds `'key': value` in a .npy header dictionary; the value ends at the next top-level comma.
    static func value(of key: String, in header: String) -> String? {
        guard let r = header.range(of: "'\(key)'") ?? header.range(of: "\"\(key)\"") else { return nil }
        var rest = header[r.upperBound...].drop { $0 == " " || $0 == ":" }
        if rest.first == "(" {
            guard let close = rest.firstIndex(of: ")") else { return nil }
            return String(rest[...close])
        }
        rest = rest.prefix { $0 != "," && $0 != "}" }
        return String(rest)
    }

    /// Encodes a tensor as a version 1.0 `.npy` file.
    public static func encode(_ tensor: Tensor) throws -> Data {
        guard let d = descr(tensor.dataType) else {
            throw EngineError(.invalidArgument, "\(tensor.dataType) tensors cannot be written as .npy")
        }
        let shapeText = tensor.shape.isEmpty ? "()" : tensor.shape.count == 1 ? "(\(tensor.shape[0]),)" : "(" + tensor.shape.map(String.init).joined(separator: ", ") + ")"
        var header = "{'descr': '\(d)', 'fortran_order': False, 'shape': \(shapeText), }"
        let total = 10 + header.utf8.count + 1
        header += String(repeating: " ", count: (64 - total % 64) % 64) + "\n"
        var out = Data(magic + [1, 0])
        let n = header.utf8.count
        out.append(contentsOf: [UInt8(n & 0xFF), UInt8(n >> 8)])
        out.append(contentsOf: Array(header.utf8))
        out.append(contentsOf: tensor.rawBytes)
        return out
    }
}
