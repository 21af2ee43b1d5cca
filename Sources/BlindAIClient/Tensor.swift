import BlindAIProtocol
import Foundation

/// A Swift type that is a fixed-size tensor element.
public protocol TensorElement: Sendable {
    static var tensorDataType: Tensor.DataType { get }
}

extension Float: TensorElement { public static var tensorDataType: Tensor.DataType { .fp32 } }
extension Double: TensorElement { public static var tensorDataType: Tensor.DataType { .fp64 } }
extension Int8: TensorElement { public static var tensorDataType: Tensor.DataType { .int8 } }
extension Int16: TensorElement { public static var tensorDataType: Tensor.DataType { .int16 } }
extension Int32: TensorElement { public static var tensorDataType: Tensor.DataType { .int32 } }
extension Int64: TensorElement { public static var tensorDataType: Tensor.DataType { .int64 } }
extension UInt8: TensorElement { public static var tensorDataType: Tensor.DataType { .uint8 } }
extension UInt16: TensorElement { public static var tensorDataType: Tensor.DataType { .uint16 } }
extension UInt32: TensorElement { public static var tensorDataType: Tensor.DataType { .uint32 } }
extension UInt64: TensorElement { public static var tensorDataType: Tensor.DataType { .uint64 } }
extension Bool: TensorElement { public static var tensorDataType: Tensor.DataType { .bool } }

/// A tensor as the client sends and receives it: datatype, shape and contiguous row-major storage in the wire
/// format of the binary tensor extension (fixed-size elements little-endian; BYTES elements each a 4-byte
/// little-endian length followed by the bytes). This is the client's type, independent of the engine's.
public struct Tensor: Sendable, Equatable, CustomStringConvertible {
    public typealias DataType = OIPDataType

    public let datatype: DataType
    public let shape: [Int]
    /// The elements, in the binary tensor format.
    public let data: Data

    /// Number of elements (the product of the shape).
    public var count: Int { shape.reduce(1, *) }

    /// A tensor from raw storage; the size must match the shape (for BYTES, the elements must fill `data` exactly).
    public init(datatype: DataType, shape: [Int], data: Data) throws {
        guard shape.allSatisfy({ $0 >= 0 }) else { throw BlindAIClientError.invalidInput("tensor shape \(shape) has a negative dimension") }
        let (n, overflow) = shape.reduce((1, false)) { acc, d in
            let (v, o) = acc.0.multipliedReportingOverflow(by: d)
            return (v, acc.1 || o)
        }
        guard !overflow else { throw BlindAIClientError.invalidInput("tensor shape \(shape) is too large") }
        if let size = datatype.elementSize {
            guard data.count == n * size else {
                throw BlindAIClientError.invalidInput("a \(datatype.rawValue) tensor of shape \(shape) needs \(n * size) bytes, got \(data.count)")
            }
        } else {
            do {
                _ = try BinaryFraming.decodeBytesElements(data, count: n)
            } catch {
                throw BlindAIClientError.invalidInput("BYTES tensor data does not hold \(n) elements: \(error)")
            }
        }
        self.datatype = datatype
        self.shape = shape
        self.data = data
    }

    /// A tensor of `values` (shape default: one dimension of `values.count`).
    public init<T: TensorElement>(_ values: [T], shape: [Int]? = nil) throws {
        let s = shape ?? [values.count]
        guard s.reduce(1, *) == values.count else {
            throw BlindAIClientError.invalidInput("\(values.count) values do not fill shape \(s)")
        }
        let bytes: Data
        if T.self == Bool.self {
            bytes = Data((values as! [Bool]).map { $0 ? 1 : 0 })
        } else {
            bytes = values.withUnsafeBytes { Data($0) }
        }
        try self.init(datatype: T.tensorDataType, shape: s, data: bytes)
    }

    /// A BYTES tensor of UTF-8 strings.
    public init(strings: [String], shape: [Int]? = nil) throws {
        try self.init(byteStrings: strings.map { Data($0.utf8) }, shape: shape)
    }

    /// A BYTES tensor.
    public init(byteStrings: [Data], shape: [Int]? = nil) throws {
        let s = shape ?? [byteStrings.count]
        guard s.reduce(1, *) == byteStrings.count else {
            throw BlindAIClientError.invalidInput("\(byteStrings.count) strings do not fill shape \(s)")
        }
        try self.init(datatype: .bytes, shape: s, data: BinaryFraming.encodeBytesElements(byteStrings))
    }

    /// The elements as `T`, which must be this tensor's datatype.
    public func values<T: TensorElement>(as type: T.Type = T.self) throws -> [T] {
        guard T.tensorDataType == datatype else {
            throw BlindAIClientError.invalidInput("the tensor is \(datatype.rawValue), not \(T.tensorDataType.rawValue)")
        }
        if T.self == Bool.self { return data.map { $0 != 0 } as! [T] }
        return [T](unsafeUninitializedCapacity: count) { buffer, initialized in
            _ = data.copyBytes(to: UnsafeMutableRawBufferPointer(buffer))
            initialized = count
        }
    }

    /// The elements of a numeric or BOOL tensor converted to `Double` (FP16 and BF16 included).
    public func doubles() throws -> [Double] {
        switch datatype {
        case .fp32: return try values(as: Float.self).map(Double.init)
        case .fp64: return try values(as: Double.self)
        case .int8: return try values(as: Int8.self).map(Double.init)
        case .int16: return try values(as: Int16.self).map(Double.init)
        case .int32: return try values(as: Int32.self).map(Double.init)
        case .int64: return try values(as: Int64.self).map(Double.init)
        case .uint8: return try values(as: UInt8.self).map(Double.init)
        case .uint16: return try values(as: UInt16.self).map(Double.init)
        case .uint32: return try values(as: UInt32.self).map(Double.init)
        case .uint64: return try values(as: UInt64.self).map(Double.init)
        case .bool: return try values(as: Bool.self).map { $0 ? 1 : 0 }
        case .fp16: return halfBits().map { Double(Self.floatFromHalf($0)) }
        case .bf16: return halfBits().map { Double(Float(bitPattern: UInt32($0) << 16)) }
        case .bytes: throw BlindAIClientError.invalidInput("a BYTES tensor has no numeric values")
        }
    }

    /// The elements converted to `Float`.
    public func floats() throws -> [Float] {
        if datatype == .fp32 { return try values(as: Float.self) }
        return try doubles().map { Float($0) }
    }

    /// The elements of a BYTES tensor.
    public func byteStrings() throws -> [Data] {
        guard datatype == .bytes else { throw BlindAIClientError.invalidInput("the tensor is \(datatype.rawValue), not BYTES") }
        return try BinaryFraming.decodeBytesElements(data, count: count).map { Data($0) }
    }

    /// The elements of a BYTES tensor as UTF-8 strings.
    public func strings() throws -> [String] {
        try byteStrings().map { String(decoding: $0, as: UTF8.self) }
    }

    private func halfBits() -> [UInt16] {
        stride(from: data.startIndex, to: data.endIndex, by: 2).map { UInt16(data[$0]) | UInt16(data[$0 + 1]) << 8 }
    }

    static func floatFromHalf(_ h: UInt16) -> Float {
        let sign = UInt32(h & 0x8000) << 16
        let exponent = Int((h >> 10) & 0x1F)
        let mantissa = UInt32(h & 0x3FF)
        if exponent == 0 {
            let magnitude = Float(mantissa) * Float(sign: .plus, exponent: -24, significand: 1)
            return sign != 0 ? -magnitude : magnitude
        }
        if exponent == 31 { return Float(bitPattern: sign | 0x7F80_0000 | (mantissa << 13)) }
        return Float(bitPattern: sign | UInt32(exponent - 15 + 127) << 23 | (mantissa << 13))
    }

    public var description: String {
        var values: [String] = []
        if datatype == .bytes {
            values = ((try? strings()) ?? []).prefix(6).map { "\"\($0)\"" }
        } else if let d = try? doubles() {
            values = d.prefix(6).map { datatype == .fp32 || datatype == .fp64 || datatype == .fp16 || datatype == .bf16 ? String(format: "%.6g", $0) : String(Int64(exactly: $0) ?? 0) }
        }
        if count > 6 { values.append("…") }
        return "\(datatype.rawValue) \(shape) [\(values.joined(separator: ", "))]"
    }
}

extension Tensor {
    /// A tensor from the JSON `data` of a response output (when the server did not send it as binary).
    init(datatype: DataType, shape: [Int], json: TensorData) throws {
        let scalars = json.scalars
        func number(_ s: JSONScalar) throws -> Double {
            switch s {
            case .bool(let b): return b ? 1 : 0
            case .int(let i): return Double(i)
            case .uint(let u): return Double(u)
            case .double(let d): return d
            case .string(let t):
                guard let v = TensorData.nonFiniteValue(t) else { throw BlindAIClientError.protocolViolation("'\(t)' is not a number") }
                return v
            }
        }
        func integer(_ s: JSONScalar) throws -> Int64 {
            switch s {
            case .bool(let b): return b ? 1 : 0
            case .int(let i): return i
            case .uint(let u): return Int64(bitPattern: u)
            case .double(let d):
                guard let i = Int64(exactly: d) else { throw BlindAIClientError.protocolViolation("\(d) is not an integer") }
                return i
            case .string(let t): throw BlindAIClientError.protocolViolation("'\(t)' is not an integer")
            }
        }
        switch datatype {
        case .fp32: try self.init(try scalars.map { Float(try number($0)) }, shape: shape)
        case .fp64: try self.init(try scalars.map(number), shape: shape)
        case .fp16, .bf16:
            // Sent as FP32 values; narrow.
            let floats = try scalars.map { Float(try number($0)) }
            var data = Data(capacity: floats.count * 2)
            for f in floats {
                let bits: UInt16 = datatype == .bf16 ? UInt16(truncatingIfNeeded: f.bitPattern >> 16) : Self.halfFromFloat(f)
                data.append(UInt8(bits & 0xFF))
                data.append(UInt8(bits >> 8))
            }
            try self.init(datatype: datatype, shape: shape, data: data)
        case .int8: try self.init(try scalars.map { Int8(truncatingIfNeeded: try integer($0)) }, shape: shape)
        case .int16: try self.init(try scalars.map { Int16(truncatingIfNeeded: try integer($0)) }, shape: shape)
        case .int32: try self.init(try scalars.map { Int32(truncatingIfNeeded: try integer($0)) }, shape: shape)
        case .int64: try self.init(try scalars.map(integer), shape: shape)
        case .uint8: try self.init(try scalars.map { UInt8(truncatingIfNeeded: try integer($0)) }, shape: shape)
        case .uint16: try self.init(try scalars.map { UInt16(truncatingIfNeeded: try integer($0)) }, shape: shape)
        case .uint32: try self.init(try scalars.map { UInt32(truncatingIfNeeded: try integer($0)) }, shape: shape)
        case .uint64: try self.init(try scalars.map { UInt64(bitPattern: try integer($0)) }, shape: shape)
        case .bool: try self.init(try scalars.map { try number($0) != 0 }, shape: shape)
        case .bytes:
            try self.init(strings: try scalars.map {
                guard case .string(let s) = $0 else { throw BlindAIClientError.protocolViolation("BYTES element is not a string") }
                return s
            }, shape: shape)
        }
    }

    static func halfFromFloat(_ f: Float) -> UInt16 {
        let bits = f.bitPattern
        let sign = UInt16((bits >> 16) & 0x8000)
        if f.isNaN { return sign | 0x7E00 }
        let exponent = Int((bits >> 23) & 0xFF) - 127 + 15
        let mantissa = bits & 0x7FFFFF
        if exponent >= 31 { return sign | 0x7C00 }
        if exponent <= 0 {
            if exponent < -10 { return sign }
            let m = (mantissa | 0x800000) >> UInt32(1 - exponent)
            return sign | UInt16((m + 0x1000) >> 13)
        }
        let rounded = UInt32(exponent) << 10 | (mantissa >> 13)
        let half = rounded + ((mantissa >> 12) & 1)
        return sign | UInt16(truncatingIfNeeded: half)
    }
}
