import BlindAITensor
import BlindAIKernels
import BlindAIGraph
import Foundation

// Cast, CastLike and BitCast: conversion of the element type, by value or by bits.

/// Cast and CastLike: element-type conversion between every supported type.
struct CastOp: Operator {
    let to: DataType?
    let saturate: Bool

    func run(_ inputs: [Tensor?], _ ctx: ExecutionContext) throws -> [Tensor] {
        let x = try inputs.required(0)
        let target = try to ?? inputs.required(1, "target_type").dataType
        return [try CastOp.cast(x, to: target, ctx)]
    }

    /// Converts `x` to `target`.
    static func cast(_ x: Tensor, to target: DataType, _ ctx: ExecutionContext) throws -> Tensor {
        if x.dataType == target { return x }
        if target == .string {
            let values: [String]
            switch x.dataType {
            case .float32: values = x.buffer(Float.self).map { formatFloat(Double($0), Float.self) }
            case .float64: values = x.buffer(Double.self).map { formatFloat($0, Double.self) }
            case .float16: values = x.buffer(Float16.self).map { formatFloat(Double($0), Float.self) }
            case .bool: values = x.buffer(Bool.self).map { $0 ? "1" : "0" }
            default: values = try x.intValues().map { String($0) }
            }
            return Tensor(shape: x.shape, strings: values)
        }
        if x.dataType == .string {
            let doubles = x.strings.map { s -> Double in
                let t = s.trimmingCharacters(in: .whitespaces)
                switch t.lowercased() {
                case "inf", "+inf", "infinity", "+infinity": return .infinity
                case "-inf", "-infinity": return -.infinity
                case "nan", "+nan", "-nan": return .nan
                default: return Double(t) ?? .nan
                }
            }
            return try fromDoubles(doubles, shape: x.shape, to: target, ctx)
        }
        let out = try ctx.uninitialized(target, x.shape)
        func convert<S: TensorElement>(_: S.Type, _ read: (S) -> Double) throws {
            let src = x.buffer(S.self)
            try write(out, target, count: x.count) { i in read(src[i]) }
        }
        // Integers to integers go through Int64/UInt64 to keep full precision.
        if x.dataType.isInteger && target.isInteger {
            if x.dataType == .uint64 {
                let src = x.buffer(UInt64.self)
                try writeInt(out, target, count: x.count) { i in Int64(bitPattern: src[i]) }
            } else {
                let vals = try x.intValues()
                try writeInt(out, target, count: x.count) { i in Int64(vals[i]) }
            }
            return out
        }
        switch x.dataType {
        case .float32: try convert(Float.self) { Double($0) }
        case .float64: try convert(Double.self) { $0 }
        case .float16: try convert(Float16.self) { Double($0) }
        case .bfloat16: try convert(UInt16.self) { Double(Float(bitPattern: UInt32($0) << 16)) }
        case .bool: try convert(Bool.self) { $0 ? 1 : 0 }
        case .int8: try convert(Int8.self) { Double($0) }
        case .uint8: try convert(UInt8.self) { Double($0) }
        case .int16: try convert(Int16.self) { Double($0) }
        case .uint16: try convert(UInt16.self) { Double($0) }
        case .int32: try convert(Int32.self) { Double($0) }
        case .uint32: try convert(UInt32.self) { Double($0) }
        case .int64:
            if target.isFloatingPoint || target == .bool { try convert(Int64.self) { Double($0) } }
        case .uint64: try convert(UInt64.self) { Double($0) }
        case .string: break
        }
        return out
    }

    static func formatFloat<F>(_ v: Double, _: F.Type) -> String {
        if v.isNaN { return "NaN" }
        if v.isInfinite { return v > 0 ? "INF" : "-INF" }
        if F.self == Float.self { return "\(Float(v))" }
        return "\(v)"
    }

    static func fromDoubles(_ values: [Double], shape: [Int], to target: DataType, _ ctx: ExecutionContext) throws -> Tensor {
        let out = try ctx.uninitialized(target, shape)
        try write(out, target, count: values.count) { values[$0] }
        return out
    }

    /// Writes doubles into a tensor of `target` type (float rounding; integer truncation toward zero, wrapping like C).
    static func write(_ out: Tensor, _ target: DataType, count: Int, _ value: (Int) -> Double) throws {
        switch target {
        case .float32: let d = out.mutableBuffer(Float.self); for i in 0..<count { d[i] = Float(value(i)) }
        case .float64: let d = out.mutableBuffer(Double.self); for i in 0..<count { d[i] = value(i) }
        case .float16: let d = out.mutableBuffer(Float16.self); for i in 0..<count { d[i] = Float16(Float(value(i))) }
        case .bfloat16:
            let d = out.mutableBuffer(UInt16.self)
            for i in 0..<count {
                let f = Float(value(i))
                if f.isNaN { d[i] = 0x7FC0; continue }
                // Round to nearest even.
                let bits = f.bitPattern
                let rounding = ((bits >> 16) & 1) + 0x7FFF
                d[i] = UInt16(truncatingIfNeeded: (bits &+ rounding) >> 16)
            }
        case .bool: let d = out.mutableBuffer(Bool.self); for i in 0..<count { d[i] = value(i) != 0 }
        case .string: throw EngineError(.typeMismatch, "internal: string target")
        default:
            try writeInt(out, target, count: count) { i in
                let v = value(i)
                if v.isNaN || v.isInfinite { return v.isNaN ? 0 : (v > 0 ? Int64.max : Int64.min) }
                if v >= 9.2233720368547758e18 { return v < 1.8446744073709552e19 ? Int64(bitPattern: UInt64(v)) : Int64.max }
                if v <= -9.2233720368547758e18 { return Int64.min }
                return Int64(v)
            }
        }
    }

    static func writeInt(_ out: Tensor, _ target: DataType, count: Int, _ value: (Int) -> Int64) throws {
        switch target {
        case .int8: let d = out.mutableBuffer(Int8.self); for i in 0..<count { d[i] = Int8(truncatingIfNeeded: value(i)) }
        case .uint8: let d = out.mutableBuffer(UInt8.self); for i in 0..<count { d[i] = UInt8(truncatingIfNeeded: value(i)) }
        case .int16: let d = out.mutableBuffer(Int16.self); for i in 0..<count { d[i] = Int16(truncatingIfNeeded: value(i)) }
        case .uint16: let d = out.mutableBuffer(UInt16.self); for i in 0..<count { d[i] = UInt16(truncatingIfNeeded: value(i)) }
        case .int32: let d = out.mutableBuffer(Int32.self); for i in 0..<count { d[i] = Int32(truncatingIfNeeded: value(i)) }
        case .uint32: let d = out.mutableBuffer(UInt32.self); for i in 0..<count { d[i] = UInt32(truncatingIfNeeded: value(i)) }
        case .int64: let d = out.mutableBuffer(Int64.self); for i in 0..<count { d[i] = value(i) }
        case .uint64: let d = out.mutableBuffer(UInt64.self); for i in 0..<count { d[i] = UInt64(bitPattern: value(i)) }
        case .bool: let d = out.mutableBuffer(Bool.self); for i in 0..<count { d[i] = value(i) != 0 }
        case .float32: let d = out.mutableBuffer(Float.self); for i in 0..<count { d[i] = Float(value(i)) }
        case .float64: let d = out.mutableBuffer(Double.self); for i in 0..<count { d[i] = Double(value(i)) }
        case .float16: let d = out.mutableBuffer(Float16.self); for i in 0..<count { d[i] = Float16(Float(value(i))) }
        default: throw EngineError(.typeMismatch, "cannot cast to \(target)")
        }
    }
}

/// BitCast: the same bits as another type of the same width.
struct BitCastOp: Operator {
    let to: DataType
    func run(_ inputs: [Tensor?], _ ctx: ExecutionContext) throws -> [Tensor] {
        let x = try inputs.required(0)
        guard x.dataType != .string else { throw EngineError(.typeMismatch, "BitCast does not support string tensors") }
        guard x.dataType.byteSize == to.byteSize else {
            throw EngineError(.typeMismatch, "BitCast: \(x.dataType) and \(to) have different widths")
        }
        if to == .bool && x.dataType != .bool {
            // Only 0 and 1 are valid bools: normalise other bytes to true.
            let out = try ctx.uninitialized(.bool, x.shape)
            let src = UnsafeRawPointer(x.storage.base).assumingMemoryBound(to: UInt8.self)
            let dst = out.mutableBuffer(Bool.self)
            for i in 0..<x.count { dst[i] = src[i] != 0 }
            return [out]
        }
        return [Tensor(dataType: to, shape: x.shape, storage: x.storage)]
    }
}

extension StandardOperators {
    static func registerCast(_ r: inout OperatorRegistry) {
        r.register("Cast") { c in
            guard let to = try c.int("to"), let dt = DataType(rawValue: to) else {
                throw c.error(.invalidModel, "Cast needs a supported 'to' type")
            }
            return CastOp(to: dt, saturate: try c.int("saturate", default: 1) != 0)
        }
        r.register("CastLike") { c in CastOp(to: nil, saturate: try c.int("saturate", default: 1) != 0) }
        r.register("BitCast") { c in
            guard let d = try c.int("to"), let dt = DataType(rawValue: d), dt != .string else {
                throw c.error(.invalidModel, "BitCast needs a supported non-string 'to' type")
            }
            return BitCastOp(to: dt)
        }
    }
}

extension CastOp: ShapeInferring {
    func inferFacts(_ inputs: [ValueFact?], _ ctx: ShapeInferenceContext) throws -> [ValueFact] {
        guard let x = inputs.first ?? nil else { return [] }
        let target = to ?? (inputs.count > 1 ? inputs[1]?.dataType : nil)
        var f = ValueFact(dataType: target, shape: x.shape)
        // Shape vectors survive casts between wide integer types.
        if let e = x.elements, let source = x.dataType, source == .int64 || source == .int32, target == .int64 || target == .int32 {
            f.elements = target == .int32 ? e.map { d in
                guard let v = d.value else { return .unknown }
                return v >= Int(Int32.min) && v <= Int(Int32.max) ? d : .unknown
            } : e
        }
        return [f]
    }
}
