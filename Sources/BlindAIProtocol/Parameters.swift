import Foundation

/// A value of an OIP `parameters` object: a boolean, an integer, a number or a string.
public enum ParameterValue: Codable, Sendable, Equatable, CustomStringConvertible {
    case bool(Bool)
    case int(Int64)
    case double(Double)
    case string(String)

    public init(from decoder: any Decoder) throws {
        let c = try decoder.singleValueContainer()
        if let b = try? c.decode(Bool.self) {
            self = .bool(b)
        } else if let i = try? c.decode(Int64.self) {
            self = .int(i)
        } else if let d = try? c.decode(Double.self) {
            self = .double(d)
        } else if let s = try? c.decode(String.self) {
            self = .string(s)
        } else {
            throw DecodingError.dataCorruptedError(in: c, debugDescription: "a parameter must be a boolean, a number or a string")
        }
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.singleValueContainer()
        switch self {
        case .bool(let b): try c.encode(b)
        case .int(let i): try c.encode(i)
        case .double(let d): try c.encode(d)
        case .string(let s): try c.encode(s)
        }
    }

    public var boolValue: Bool? {
        switch self {
        case .bool(let b): b
        case .int(let i): i != 0
        case .string(let s): ["true", "1", "yes"].contains(s.lowercased()) ? true : (["false", "0", "no"].contains(s.lowercased()) ? false : nil)
        case .double: nil
        }
    }

    public var intValue: Int64? {
        switch self {
        case .int(let i): i
        case .double(let d): d.rounded() == d && abs(d) < 9.0e15 ? Int64(d) : nil
        case .string(let s): Int64(s)
        case .bool: nil
        }
    }

    public var stringValue: String? {
        if case .string(let s) = self { return s }
        return nil
    }

    public var description: String {
        switch self {
        case .bool(let b): "\(b)"
        case .int(let i): "\(i)"
        case .double(let d): "\(d)"
        case .string(let s): s
        }
    }
}

/// An OIP `parameters` object.
public typealias Parameters = [String: ParameterValue]

/// Parameter names of the binary tensor data extension.
public enum BinaryDataParameter {
    /// On an input or output: the size in bytes of its binary data, which follows the JSON header.
    public static let size = "binary_data_size"
    /// On a requested output: return this output as binary data.
    public static let output = "binary_data"
    /// On the request: return every output as binary data unless an output says otherwise.
    public static let allOutputs = "binary_data_output"
}
