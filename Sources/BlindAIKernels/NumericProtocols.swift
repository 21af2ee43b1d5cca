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
