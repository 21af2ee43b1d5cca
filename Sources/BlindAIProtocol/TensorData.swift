import Foundation

/// One element of JSON tensor data as it was written: a boolean, an integer, a number or a string.
public enum JSONScalar: Sendable, Equatable {
    case bool(Bool)
    case int(Int64)
    /// An integer above `Int64.max`.
    case uint(UInt64)
    case double(Double)
    case string(String)
}

/// The `data` of a tensor in JSON: a row-major array of elements, flat or nested.
///
/// Encoding writes a flat array of the stored case. Decoding accepts flat or nested arrays (and a bare scalar)
/// and keeps every element as written (`.scalars`): the receiver converts them to the declared datatype,
/// with range checks. Non-finite floats are written and read as the strings "NaN", "Infinity" and "-Infinity".
public enum TensorData: Codable, Sendable, Equatable {
    case bool([Bool])
    case int64([Int64])
    case uint64([UInt64])
    case float32([Float])
    case float64([Double])
    case string([String])
    case scalars([JSONScalar])

    /// Number of elements.
    public var count: Int {
        switch self {
        case .bool(let v): v.count
        case .int64(let v): v.count
        case .uint64(let v): v.count
        case .float32(let v): v.count
        case .float64(let v): v.count
        case .string(let v): v.count
        case .scalars(let v): v.count
        }
    }

    /// The elements as `JSONScalar`s.
    public var scalars: [JSONScalar] {
        switch self {
        case .bool(let v): v.map { .bool($0) }
        case .int64(let v): v.map { .int($0) }
        case .uint64(let v): v.map { $0 <= UInt64(Int64.max) ? .int(Int64($0)) : .uint($0) }
        case .float32(let v): v.map { .double(Double($0)) }
        case .float64(let v): v.map { .double($0) }
        case .string(let v): v.map { .string($0) }
        case .scalars(let v): v
        }
    }

    /// Deepest nesting accepted when decoding (tensors of higher rank are sent flat).
    public static let maxNestingDepth = 32

    public init(from decoder: any Decoder) throws {
        var out: [JSONScalar] = []
        if var c = try? decoder.unkeyedContainer() {
            if let n = c.count { out.reserveCapacity(n) }
            try Self.decodeArray(&c, into: &out, depth: 1)
        } else {
            let c = try decoder.singleValueContainer()
            out.append(try Self.decodeScalar(c))
        }
        self = .scalars(out)
    }

    /// Element kinds, in the order they are tried; the previous element's kind is tried first.
    private enum Kind { case bool, integer, float, string, array }

    private static func decodeArray(_ c: inout any UnkeyedDecodingContainer, into out: inout [JSONScalar], depth: Int) throws {
        guard depth <= maxNestingDepth else {
            throw DecodingError.dataCorruptedError(in: c, debugDescription: "tensor data is nested more than \(maxNestingDepth) levels deep")
        }
        var last = Kind.array
        elements: while !c.isAtEnd {
            for kind in order(after: last) {
                if let decoded = try decodeElement(kind, &c, into: &out, depth: depth) {
                    last = decoded
                    continue elements
                }
            }
            throw DecodingError.dataCorruptedError(in: c, debugDescription: "tensor data elements must be booleans, numbers, strings or arrays of them")
        }
    }

    private static let orders: [[Kind]] = [
        [.array, .integer, .bool, .string],
        [.integer, .array, .bool, .string],
        [.float, .integer, .array, .bool, .string],
        [.bool, .integer, .array, .string],
        [.string, .integer, .array, .bool],
    ]

    private static func order(after kind: Kind) -> [Kind] {
        switch kind {
        case .array: orders[0]
        case .integer: orders[1]
        case .float: orders[2]
        case .bool: orders[3]
        case .string: orders[4]
        }
    }

    /// Decodes the next element as `kind`; nil (and nothing consumed) when it is not of that kind, otherwise
    /// the kind it turned out to be (an integer attempt may read a float).
    private static func decodeElement(_ kind: Kind, _ c: inout any UnkeyedDecodingContainer, into out: inout [JSONScalar], depth: Int) throws -> Kind? {
        switch kind {
        case .array:
            guard var nested = try? c.nestedUnkeyedContainer() else { return nil }
            try decodeArray(&nested, into: &out, depth: depth + 1)
        case .integer:
            if let i = try? c.decode(Int64.self) {
                out.append(.int(i))
            } else if let u = try? c.decode(UInt64.self) {
                out.append(.uint(u))
            } else if let d = try? c.decode(Double.self) {
                out.append(.double(d))
                return .float
            } else {
                return nil
            }
        case .float:
            guard let d = try? c.decode(Double.self) else { return nil }
            out.append(.double(d))
        case .bool:
            guard let b = try? c.decode(Bool.self) else { return nil }
            out.append(.bool(b))
        case .string:
            guard let s = try? c.decode(String.self) else { return nil }
            out.append(.string(s))
        }
        return kind
    }

    private static func decodeScalar(_ c: any SingleValueDecodingContainer) throws -> JSONScalar {
        if let b = try? c.decode(Bool.self) { return .bool(b) }
        if let i = try? c.decode(Int64.self) { return .int(i) }
        if let u = try? c.decode(UInt64.self) { return .uint(u) }
        if let d = try? c.decode(Double.self) { return .double(d) }
        if let s = try? c.decode(String.self) { return .string(s) }
        throw DecodingError.dataCorruptedError(in: c, debugDescription: "tensor data must be an array of booleans, numbers or strings")
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.unkeyedContainer()
        switch self {
        case .bool(let v): try c.encode(contentsOf: v)
        case .int64(let v): try c.encode(contentsOf: v)
        case .uint64(let v): try c.encode(contentsOf: v)
        case .float32(let v):
            for x in v {
                if x.isFinite { try c.encode(x) } else { try c.encode(Self.nonFiniteName(Double(x))) }
            }
        case .float64(let v):
            for x in v {
                if x.isFinite { try c.encode(x) } else { try c.encode(Self.nonFiniteName(x)) }
            }
        case .string(let v): try c.encode(contentsOf: v)
        case .scalars(let v):
            for s in v {
                switch s {
                case .bool(let b): try c.encode(b)
                case .int(let i): try c.encode(i)
                case .uint(let u): try c.encode(u)
                case .double(let d): if d.isFinite { try c.encode(d) } else { try c.encode(Self.nonFiniteName(d)) }
                case .string(let s): try c.encode(s)
                }
            }
        }
    }

    static func nonFiniteName(_ x: Double) -> String {
        x.isNaN ? "NaN" : (x > 0 ? "Infinity" : "-Infinity")
    }

    /// Reads a JSON string element as a non-finite float ("NaN", "Infinity", "-Infinity", also "inf", "-inf").
    public static func nonFiniteValue(_ s: String) -> Double? {
        switch s.lowercased() {
        case "nan": .nan
        case "infinity", "inf", "+infinity", "+inf": .infinity
        case "-infinity", "-inf": -.infinity
        default: nil
        }
    }
}
