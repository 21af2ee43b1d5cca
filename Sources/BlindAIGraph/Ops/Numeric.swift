import BlindAITensor
import Foundation

/// Floating-point element types with the math functions operators need.
public protocol EngineFloat: BinaryFloatingPoint, TensorElement {
    static func exp(_ x: Self) -> Self
    static func log(_ x: Self) -> Self
    static func pow(_ x: Self, _ y: Self) -> Self
    static func tanh(_ x: Self) -> Self
    static func erf(_ x: Self) -> Self
    static func fn(_ x: Self, _ f: (Double) -> Double) -> Self
    init(double: Double)
    var double: Double { get }
}

extension Float: EngineFloat {
    @inlinable public static func exp(_ x: Float) -> Float { Foundation.exp(x) }
    @inlinable public static func log(_ x: Float) -> Float { Foundation.log(x) }
    @inlinable public static func pow(_ x: Float, _ y: Float) -> Float { Foundation.pow(x, y) }
    @inlinable public static func tanh(_ x: Float) -> Float { Foundation.tanh(x) }
    @inlinable public static func erf(_ x: Float) -> Float { Foundation.erf(x) }
    @inlinable public static func fn(_ x: Float, _ f: (Double) -> Double) -> Float { Float(f(Double(x))) }
    @inlinable public init(double: Double) { self = Float(double) }
    @inlinable public var double: Double { Double(self) }
}

extension Double: EngineFloat {
    @inlinable public static func exp(_ x: Double) -> Double { Foundation.exp(x) }
    @inlinable public static func log(_ x: Double) -> Double { Foundation.log(x) }
    @inlinable public static func pow(_ x: Double, _ y: Double) -> Double { Foundation.pow(x, y) }
    @inlinable public static func tanh(_ x: Double) -> Double { Foundation.tanh(x) }
    @inlinable public static func erf(_ x: Double) -> Double { Foundation.erf(x) }
    @inlinable public static func fn(_ x: Double, _ f: (Double) -> Double) -> Double { f(x) }
    @inlinable public init(double: Double) { self = double }
    @inlinable public var double: Double { self }
}

extension Float16: EngineFloat {
    @inlinable public static func exp(_ x: Float16) -> Float16 { Float16(Foundation.exp(Float(x))) }
    @inlinable public static func log(_ x: Float16) -> Float16 { Float16(Foundation.log(Float(x))) }
    @inlinable public static func pow(_ x: Float16, _ y: Float16) -> Float16 { Float16(Foundation.pow(Float(x), Float(y))) }
    @inlinable public static func tanh(_ x: Float16) -> Float16 { Float16(Foundation.tanh(Float(x))) }
    @inlinable public static func erf(_ x: Float16) -> Float16 { Float16(Foundation.erf(Float(x))) }
    @inlinable public static func fn(_ x: Float16, _ f: (Double) -> Double) -> Float16 { Float16(f(Double(x))) }
    @inlinable public init(double: Double) { self = Float16(double) }
    @inlinable public var double: Double { Double(self) }
}

/// Integer element types.
public protocol EngineInteger: FixedWidthInteger, TensorElement {}
extension Int8: EngineInteger {}
extension UInt8: EngineInteger {}
extension Int16: EngineInteger {}
extension UInt16: EngineInteger {}
extension Int32: EngineInteger {}
extension UInt32: EngineInteger {}
extension Int64: EngineInteger {}
extension UInt64: EngineInteger {}

/// Numeric element types (integers and floats), for operators generic over both.
public protocol EngineNumeric: Numeric, Comparable, TensorElement {
    init(clampingDouble: Double)
    var asDouble: Double { get }
}
extension Float: EngineNumeric {
    @inlinable public init(clampingDouble d: Double) { self = Float(d) }
    @inlinable public var asDouble: Double { Double(self) }
}
extension Double: EngineNumeric {
    @inlinable public init(clampingDouble d: Double) { self = d }
    @inlinable public var asDouble: Double { self }
}
extension Float16: EngineNumeric {
    @inlinable public init(clampingDouble d: Double) { self = Float16(d) }
    @inlinable public var asDouble: Double { Double(self) }
}
extension EngineInteger {
    @inlinable public init(clampingDouble d: Double) {
        if d.isNaN { self = 0 } else if d >= Double(Self.max) { self = Self.max } else if d <= Double(Self.min) { self = Self.min } else { self = Self(d) }
    }
    @inlinable public var asDouble: Double { Double(self) }
}
extension Int8: EngineNumeric {}
extension UInt8: EngineNumeric {}
extension Int16: EngineNumeric {}
extension UInt16: EngineNumeric {}
extension Int32: EngineNumeric {}
extension UInt32: EngineNumeric {}
extension Int64: EngineNumeric {}
extension UInt64: EngineNumeric {}

/// Dispatches once on a tensor's element type to a generic body specialised for it.
public enum Dispatch {
    /// For float types (float32, float64, float16).
    @inlinable
    public static func float<R>(_ dt: DataType, _ what: String, _ body: (any EngineFloat.Type) throws -> R) throws -> R {
        switch dt {
        case .float32: return try body(Float.self)
        case .float64: return try body(Double.self)
        case .float16: return try body(Float16.self)
        default: throw EngineError(.typeMismatch, "\(what) does not support \(dt) tensors")
        }
    }

    /// For every numeric type.
    @inlinable
    public static func numeric<R>(_ dt: DataType, _ what: String, _ body: (any EngineNumeric.Type) throws -> R) throws -> R {
        switch dt {
        case .float32: return try body(Float.self)
        case .float64: return try body(Double.self)
        case .float16: return try body(Float16.self)
        case .int8: return try body(Int8.self)
        case .uint8: return try body(UInt8.self)
        case .int16: return try body(Int16.self)
        case .uint16: return try body(UInt16.self)
        case .int32: return try body(Int32.self)
        case .uint32: return try body(UInt32.self)
        case .int64: return try body(Int64.self)
        case .uint64: return try body(UInt64.self)
        default: throw EngineError(.typeMismatch, "\(what) does not support \(dt) tensors")
        }
    }

    /// For every integer type.
    @inlinable
    public static func integer<R>(_ dt: DataType, _ what: String, _ body: (any EngineInteger.Type) throws -> R) throws -> R {
        switch dt {
        case .int8: return try body(Int8.self)
        case .uint8: return try body(UInt8.self)
        case .int16: return try body(Int16.self)
        case .uint16: return try body(UInt16.self)
        case .int32: return try body(Int32.self)
        case .uint32: return try body(UInt32.self)
        case .int64: return try body(Int64.self)
        case .uint64: return try body(UInt64.self)
        default: throw EngineError(.typeMismatch, "\(what) does not support \(dt) tensors")
        }
    }

    /// For every type with fixed-size storage (including bool), moving elements without interpreting them.
    @inlinable
    public static func any<R>(_ dt: DataType, _ what: String, _ body: (any TensorElement.Type) throws -> R) throws -> R {
        switch dt {
        case .bool: return try body(Bool.self)
        case .bfloat16: return try body(UInt16.self)
        case .string: throw EngineError(.typeMismatch, "\(what) does not support string tensors")
        default: return try numeric(dt, what, body)
        }
    }
}
