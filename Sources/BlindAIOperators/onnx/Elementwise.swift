import BlindAITensor
import BlindAIKernels
import BlindAIGraph
import CBlindAIKernels
import Foundation

// Element-wise operators: unary functions and activations (UnaryOp), IsNaN/IsInf, arithmetic with broadcasting
// (BinaryOp, Sum/Mean/Max/Min), comparisons, logic, bitwise operators, Where, Clip and PRelu; com.microsoft Gelu.

/// Unary float functions.
enum UnaryKind: Sendable {
    case abs, neg, exp, log, sqrt, reciprocal, sin, cos, tan, asin, acos, atan, sinh, cosh, asinh, acosh, atanh
    case relu, sigmoid, tanh, erf, floor, ceil, round, sign, softplus, softsign
    case elu, selu, leakyRelu, hardSigmoid, hardSwish, mish, geluErf, geluTanh, thresholdedRelu, celu
}

struct UnaryOp: Operator {
    let kind: UnaryKind
    var alpha: Float = 0
    var beta: Float = 0
    var gamma: Float = 0

    func run(_ inputs: [Tensor?], _ ctx: ExecutionContext) throws -> [Tensor] {
        let x = try inputs.required(0)
        switch x.dataType {
        case .float32: return [try apply(x, Float.self, ctx)]
        case .float64: return [try apply(x, Double.self, ctx)]
        case .float16: return [try apply(x, Float16.self, ctx)]
        case .bfloat16:
            // Computed in float32 and rounded back.
            let f = try apply(CastOp.cast(x, to: .float32, ctx), Float.self, ctx)
            return [try CastOp.cast(f, to: .bfloat16, ctx)]
        case .int8: return [try applyInt(x, Int8.self, ctx)]
        case .int16: return [try applyInt(x, Int16.self, ctx)]
        case .int32: return [try applyInt(x, Int32.self, ctx)]
        case .int64: return [try applyInt(x, Int64.self, ctx)]
        case .uint8: return [try applyInt(x, UInt8.self, ctx)]
        case .uint16: return [try applyInt(x, UInt16.self, ctx)]
        case .uint32: return [try applyInt(x, UInt32.self, ctx)]
        case .uint64: return [try applyInt(x, UInt64.self, ctx)]
        default: throw EngineError(.typeMismatch, "\(kind) does not support \(x.dataType) tensors")
        }
    }

    func applyInt<T: EngineInteger>(_ x: Tensor, _: T.Type, _ ctx: ExecutionContext) throws -> Tensor {
        switch kind {
        case .abs: return try Loops.map(x, T.self, T.self, ctx) { T.isSigned && $0 < 0 ? 0 &- $0 : $0 }
        case .neg: return try Loops.map(x, T.self, T.self, ctx) { 0 &- $0 }
        case .relu: return try Loops.map(x, T.self, T.self, ctx) { Swift.max($0, 0) }
        case .sign: return try Loops.map(x, T.self, T.self, ctx) { $0 > 0 ? 1 : ($0 == 0 ? 0 : 0 &- 1) }
        case .floor, .ceil, .round: return x
        default: throw EngineError(.typeMismatch, "\(kind) does not support \(x.dataType) tensors")
        }
    }

    func apply<T: EngineFloat>(_ x: Tensor, _: T.Type, _ ctx: ExecutionContext) throws -> Tensor {
        let a = T(alpha), b = T(beta), g = T(gamma)
        switch kind {
        case .abs: return try Loops.map(x, T.self, T.self, ctx) { Swift.abs($0) }
        case .neg: return try Loops.map(x, T.self, T.self, ctx) { -$0 }
        case .exp: return try Loops.map(x, T.self, T.self, ctx) { T.exp($0) }
        case .log: return try Loops.map(x, T.self, T.self, ctx) { T.log($0) }
        case .sqrt: return try Loops.map(x, T.self, T.self, ctx) { $0.squareRoot() }
        case .reciprocal: return try Loops.map(x, T.self, T.self, ctx) { 1 / $0 }
        case .sin: return try Loops.map(x, T.self, T.self, ctx) { T.fn($0, Foundation.sin) }
        case .cos: return try Loops.map(x, T.self, T.self, ctx) { T.fn($0, Foundation.cos) }
        case .tan: return try Loops.map(x, T.self, T.self, ctx) { T.fn($0, Foundation.tan) }
        case .asin: return try Loops.map(x, T.self, T.self, ctx) { T.fn($0, Foundation.asin) }
        case .acos: return try Loops.map(x, T.self, T.self, ctx) { T.fn($0, Foundation.acos) }
        case .atan: return try Loops.map(x, T.self, T.self, ctx) { T.fn($0, Foundation.atan) }
        case .sinh: return try Loops.map(x, T.self, T.self, ctx) { T.fn($0, Foundation.sinh) }
        case .cosh: return try Loops.map(x, T.self, T.self, ctx) { T.fn($0, Foundation.cosh) }
        case .asinh: return try Loops.map(x, T.self, T.self, ctx) { T.fn($0, Foundation.asinh) }
        case .acosh: return try Loops.map(x, T.self, T.self, ctx) { T.fn($0, Foundation.acosh) }
        case .atanh: return try Loops.map(x, T.self, T.self, ctx) { T.fn($0, Foundation.atanh) }
        case .relu where T.self == Float.self: return try Loops.floatKernel(x, ctx, blindai_relu_f32)
        case .relu: return try Loops.map(x, T.self, T.self, ctx) { $0 > 0 ? $0 : ($0.isNaN ? $0 : 0) }
        case .sigmoid: return try Loops.map(x, T.self, T.self, ctx) { v in v >= 0 ? 1 / (1 + T.exp(-v)) : T.exp(v) / (1 + T.exp(v)) }
        case .tanh where T.self == Float.self: return try Loops.floatKernel(x, ctx, blindai_tanh_f32)
        case .tanh: return try Loops.map(x, T.self, T.self, ctx) { T.tanh($0) }
        case .erf where T.self == Float.self: return try Loops.floatKernel(x, ctx, blindai_erf_f32)
        case .erf: return try Loops.map(x, T.self, T.self, ctx) { T.erf($0) }
        case .floor: return try Loops.map(x, T.self, T.self, ctx) { $0.rounded(.down) }
        case .ceil: return try Loops.map(x, T.self, T.self, ctx) { $0.rounded(.up) }
        case .round: return try Loops.map(x, T.self, T.self, ctx) { $0.rounded(.toNearestOrEven) }
        case .sign: return try Loops.map(x, T.self, T.self, ctx) { $0 > 0 ? 1 : ($0 < 0 ? -1 : ($0.isNaN ? $0 : 0)) }
        case .softplus: return try Loops.map(x, T.self, T.self, ctx) { v in v > 20 ? v : T.log(1 + T.exp(v)) }
        case .softsign: return try Loops.map(x, T.self, T.self, ctx) { $0 / (1 + Swift.abs($0)) }
        case .elu: return try Loops.map(x, T.self, T.self, ctx) { $0 >= 0 ? $0 : a * (T.exp($0) - 1) }
        case .selu: return try Loops.map(x, T.self, T.self, ctx) { $0 > 0 ? g * $0 : g * (a * T.exp($0) - a) }
        case .leakyRelu: return try Loops.map(x, T.self, T.self, ctx) { $0 >= 0 ? $0 : a * $0 }
        case .hardSigmoid: return try Loops.map(x, T.self, T.self, ctx) { Swift.max(0, Swift.min(1, a * $0 + b)) }
        case .hardSwish: return try Loops.map(x, T.self, T.self, ctx) { $0 * Swift.max(0, Swift.min(1, $0 / 6 + T(0.5))) }
        case .mish: return try Loops.map(x, T.self, T.self, ctx) { v in v * T.tanh(v > 20 ? v : T.log(1 + T.exp(v))) }
        case .geluErf: return try Loops.map(x, T.self, T.self, ctx) { v in T(0.5) * v * (1 + T.erf(v * T(0.7071067811865476))) }
        case .geluTanh: return try Loops.map(x, T.self, T.self, ctx) { v in T(0.5) * v * (1 + T.tanh(T(0.7978845608028654) * (v + T(0.044715) * v * v * v))) }
        case .thresholdedRelu: return try Loops.map(x, T.self, T.self, ctx) { $0 > a ? $0 : 0 }
        case .celu: return try Loops.map(x, T.self, T.self, ctx) { Swift.max(0, $0) + Swift.min(0, a * (T.exp($0 / a) - 1)) }
        }
    }
}

/// IsNaN, IsInf: float to bool.
struct FloatPredicateOp: Operator {
    enum Kind { case isNaN, isInf(positive: Bool, negative: Bool) }
    let kind: Kind
    func run(_ inputs: [Tensor?], _ ctx: ExecutionContext) throws -> [Tensor] {
        let x = try inputs.required(0)
        switch x.dataType {
        case .float32: return [try apply(x, Float.self, ctx)]
        case .float64: return [try apply(x, Double.self, ctx)]
        case .float16: return [try apply(x, Float16.self, ctx)]
        default: throw EngineError(.typeMismatch, "expected a float tensor, got \(x.dataType)")
        }
    }
    func apply<T: EngineFloat>(_ x: Tensor, _: T.Type, _ ctx: ExecutionContext) throws -> Tensor {
        switch kind {
        case .isNaN: return try Loops.map(x, T.self, Bool.self, ctx) { $0.isNaN }
        case .isInf(let p, let n): return try Loops.map(x, T.self, Bool.self, ctx) { $0.isInfinite && (($0 > 0 && p) || ($0 < 0 && n)) }
        }
    }
}

/// Binary arithmetic with broadcasting; also the variadic Sum, Mean, Max, Min.
enum BinaryKind: Sendable { case add, sub, mul, div, pow, mod, fmod, max, min }

struct BinaryOp: Operator {
    let kind: BinaryKind
    var variadic = false
    var mean = false

    func run(_ inputs: [Tensor?], _ ctx: ExecutionContext) throws -> [Tensor] {
        let xs = inputs.compactMap { $0 }
        guard var acc = xs.first else { throw EngineError(.invalidArgument, "needs at least one input") }
        if xs.count == 1 && variadic { return [acc] }
        for x in xs.dropFirst() { acc = try apply(acc, x, ctx) }
        if mean {
            let n = Double(xs.count)
            switch acc.dataType {
            case .float32: acc = try divide(acc, by: n, Float.self, ctx)
            case .float64: acc = try divide(acc, by: n, Double.self, ctx)
            case .float16: acc = try divide(acc, by: n, Float16.self, ctx)
            default: throw EngineError(.typeMismatch, "Mean does not support \(acc.dataType) tensors")
            }
        }
        return [acc]
    }

    func divide<T: EngineFloat>(_ x: Tensor, by n: Double, _: T.Type, _ ctx: ExecutionContext) throws -> Tensor {
        let d = T(double: n)
        return try Loops.map(x, T.self, T.self, ctx) { $0 / d }
    }

    func apply(_ a: Tensor, _ b: Tensor, _ ctx: ExecutionContext) throws -> Tensor {
        if kind == .pow && a.dataType != b.dataType {
            // Pow allows a different exponent type: compute in the base's type.
            let e = try CastOp.cast(b, to: a.dataType, ctx)
            return try apply(a, e, ctx)
        }
        guard a.dataType == b.dataType else {
            throw EngineError(.typeMismatch, "inputs have different types: \(a.dataType) and \(b.dataType)")
        }
        switch a.dataType {
        case .float32: return try float(a, b, Float.self, ctx)
        case .float64: return try float(a, b, Double.self, ctx)
        case .float16: return try float(a, b, Float16.self, ctx)
        case .bfloat16:
            // Computed in float32 and rounded back.
            let r = try float(CastOp.cast(a, to: .float32, ctx), CastOp.cast(b, to: .float32, ctx), Float.self, ctx)
            return try CastOp.cast(r, to: .bfloat16, ctx)
        case .int8: return try integer(a, b, Int8.self, ctx)
        case .int16: return try integer(a, b, Int16.self, ctx)
        case .int32: return try integer(a, b, Int32.self, ctx)
        case .int64: return try integer(a, b, Int64.self, ctx)
        case .uint8: return try integer(a, b, UInt8.self, ctx)
        case .uint16: return try integer(a, b, UInt16.self, ctx)
        case .uint32: return try integer(a, b, UInt32.self, ctx)
        case .uint64: return try integer(a, b, UInt64.self, ctx)
        case .string where kind == .add:
            let shape = try Shape.broadcast([a.shape, b.shape])
            let n = try ctx.limits.checkedCount(shape, .string)
            var out = [String](repeating: "", count: n)
            let sa = a.strings, sb = b.strings
            BroadcastPlan(outShape: shape, inputShapes: [a.shape, b.shape]).forEachRow { o, offs, count, st in
                for i in 0..<count { out[o + i] = sa[offs[0] + i * st[0]] + sb[offs[1] + i * st[1]] }
            }
            return Tensor(shape: shape, strings: out)
        default: throw EngineError(.typeMismatch, "\(kind) does not support \(a.dataType) tensors")
        }
    }

    func float<T: EngineFloat>(_ a: Tensor, _ b: Tensor, _: T.Type, _ ctx: ExecutionContext) throws -> Tensor {
        switch kind {
        case .add: return try Loops.zip(a, b, T.self, T.self, ctx) { $0 + $1 }
        case .sub: return try Loops.zip(a, b, T.self, T.self, ctx) { $0 - $1 }
        case .mul: return try Loops.zip(a, b, T.self, T.self, ctx) { $0 * $1 }
        case .div: return try Loops.zip(a, b, T.self, T.self, ctx) { $0 / $1 }
        case .pow:
            // x^2 and x^3 (GPT-2's Gelu cubes its input) as products: the C library's powf per element took 17 %
            // of a GPT-2 run. Only for float32/float64, where x * x is pow's correctly rounded result and x * x * x
            // is within an ulp of it, and only when the exponent broadcasts to the base's shape.
            if T.self == Float.self || T.self == Double.self, b.count == 1, b.shape.count <= a.shape.count {
                let e = b.buffer(T.self)[0]
                if e == 2 { return try Loops.map(a, T.self, T.self, ctx) { $0 * $0 } }
                if e == 3 { return try Loops.map(a, T.self, T.self, ctx) { $0 * $0 * $0 } }
            }
            return try Loops.zip(a, b, T.self, T.self, ctx) { T.pow($0, $1) }
        case .mod:
            // Python-style modulo: the result has the sign of the divisor.
            return try Loops.zip(a, b, T.self, T.self, ctx) { x, y in
                let r = x.truncatingRemainder(dividingBy: y)
                return (r != 0 && ((r < 0) != (y < 0))) ? r + y : r
            }
        case .fmod: return try Loops.zip(a, b, T.self, T.self, ctx) { $0.truncatingRemainder(dividingBy: $1) }
        case .max: return try Loops.zip(a, b, T.self, T.self, ctx) { $0.isNaN || $1.isNaN ? T.nan : Swift.max($0, $1) }
        case .min: return try Loops.zip(a, b, T.self, T.self, ctx) { $0.isNaN || $1.isNaN ? T.nan : Swift.min($0, $1) }
        }
    }

    func integer<T: EngineInteger>(_ a: Tensor, _ b: Tensor, _: T.Type, _ ctx: ExecutionContext) throws -> Tensor {
        if kind == .div || kind == .mod || kind == .fmod {
            if b.buffer(T.self).contains(0) { throw EngineError(.invalidArgument, "integer division by zero") }
        }
        switch kind {
        case .add: return try Loops.zip(a, b, T.self, T.self, ctx) { $0 &+ $1 }
        case .sub: return try Loops.zip(a, b, T.self, T.self, ctx) { $0 &- $1 }
        case .mul: return try Loops.zip(a, b, T.self, T.self, ctx) { $0 &* $1 }
        case .div: return try Loops.zip(a, b, T.self, T.self, ctx) { x, y in
            // Integer division truncates toward zero (as C and onnxruntime do); guard MIN / -1.
            (T.isSigned && y == 0 &- 1) ? 0 &- x : x / y
        }
        case .pow: return try Loops.zip(a, b, T.self, T.self, ctx) { x, y in
            var result: T = 1
            if T.isSigned && y < 0 { return x == 1 ? 1 : (x == 0 &- 1 ? ((y & 1) == 0 ? 1 : x) : 0) }
            var base = x, e = y
            while e > 0 {
                if e & 1 == 1 { result = result &* base }
                base = base &* base
                e >>= 1
            }
            return result
        }
        case .mod: return try Loops.zip(a, b, T.self, T.self, ctx) { x, y in
            if T.isSigned && y == 0 &- 1 { return 0 }
            let r = x % y
            return (r != 0 && ((r < 0) != (y < 0))) ? r &+ y : r
        }
        case .fmod: return try Loops.zip(a, b, T.self, T.self, ctx) { x, y in (T.isSigned && y == 0 &- 1) ? 0 : x % y }
        case .max: return try Loops.zip(a, b, T.self, T.self, ctx) { Swift.max($0, $1) }
        case .min: return try Loops.zip(a, b, T.self, T.self, ctx) { Swift.min($0, $1) }
        }
    }
}

/// Comparisons: numeric inputs, bool output.
enum CompareKind: Sendable { case equal, less, greater, lessOrEqual, greaterOrEqual }

struct CompareOp: Operator {
    let kind: CompareKind
    func run(_ inputs: [Tensor?], _ ctx: ExecutionContext) throws -> [Tensor] {
        let a = try inputs.required(0), b = try inputs.required(1)
        guard a.dataType == b.dataType else { throw EngineError(.typeMismatch, "inputs have different types: \(a.dataType) and \(b.dataType)") }
        switch a.dataType {
        case .float32: return [try cmp(a, b, Float.self, ctx)]
        case .float64: return [try cmp(a, b, Double.self, ctx)]
        case .float16: return [try cmp(a, b, Float16.self, ctx)]
        case .int8: return [try cmp(a, b, Int8.self, ctx)]
        case .int16: return [try cmp(a, b, Int16.self, ctx)]
        case .int32: return [try cmp(a, b, Int32.self, ctx)]
        case .int64: return [try cmp(a, b, Int64.self, ctx)]
        case .uint8: return [try cmp(a, b, UInt8.self, ctx)]
        case .uint16: return [try cmp(a, b, UInt16.self, ctx)]
        case .uint32: return [try cmp(a, b, UInt32.self, ctx)]
        case .uint64: return [try cmp(a, b, UInt64.self, ctx)]
        case .bfloat16:
            return [try cmp(CastOp.cast(a, to: .float32, ctx), CastOp.cast(b, to: .float32, ctx), Float.self, ctx)]
        case .bool where kind == .equal: return [try Loops.zip(a, b, Bool.self, Bool.self, ctx) { $0 == $1 }]
        case .string where kind == .equal:
            let shape = try Shape.broadcast([a.shape, b.shape])
            let out = try ctx.zeros(.bool, shape)
            let dst = out.mutableBuffer(Bool.self)
            let sa = a.strings, sb = b.strings
            BroadcastPlan(outShape: shape, inputShapes: [a.shape, b.shape]).forEachRow { o, offs, count, st in
                for i in 0..<count { dst[o + i] = sa[offs[0] + i * st[0]] == sb[offs[1] + i * st[1]] }
            }
            return [out]
        default: throw EngineError(.typeMismatch, "comparison does not support \(a.dataType) tensors")
        }
    }
    func cmp<T: EngineNumeric>(_ a: Tensor, _ b: Tensor, _: T.Type, _ ctx: ExecutionContext) throws -> Tensor {
        switch kind {
        case .equal: return try Loops.zip(a, b, T.self, Bool.self, ctx) { $0 == $1 }
        case .less: return try Loops.zip(a, b, T.self, Bool.self, ctx) { $0 < $1 }
        case .greater: return try Loops.zip(a, b, T.self, Bool.self, ctx) { $0 > $1 }
        case .lessOrEqual: return try Loops.zip(a, b, T.self, Bool.self, ctx) { $0 <= $1 }
        case .greaterOrEqual: return try Loops.zip(a, b, T.self, Bool.self, ctx) { $0 >= $1 }
        }
    }
}

/// And, Or, Xor on bools; Not.
struct LogicOp: Operator {
    enum Kind { case and, or, xor, not }
    let kind: Kind
    func run(_ inputs: [Tensor?], _ ctx: ExecutionContext) throws -> [Tensor] {
        let a = try inputs.required(0)
        guard a.dataType == .bool else { throw EngineError(.typeMismatch, "expected bool tensors, got \(a.dataType)") }
        if kind == .not { return [try Loops.map(a, Bool.self, Bool.self, ctx) { !$0 }] }
        let b = try inputs.required(1)
        guard b.dataType == .bool else { throw EngineError(.typeMismatch, "expected bool tensors, got \(b.dataType)") }
        switch kind {
        case .and: return [try Loops.zip(a, b, Bool.self, Bool.self, ctx) { $0 && $1 }]
        case .or: return [try Loops.zip(a, b, Bool.self, Bool.self, ctx) { $0 || $1 }]
        case .xor: return [try Loops.zip(a, b, Bool.self, Bool.self, ctx) { $0 != $1 }]
        case .not: return [a]
        }
    }
}

/// BitShift, BitwiseAnd/Or/Xor/Not on integers.
struct BitwiseOp: Operator {
    enum Kind { case shiftLeft, shiftRight, and, or, xor, not }
    let kind: Kind
    func run(_ inputs: [Tensor?], _ ctx: ExecutionContext) throws -> [Tensor] {
        let a = try inputs.required(0)
        switch a.dataType {
        case .int8: return [try apply(inputs, Int8.self, ctx)]
        case .int16: return [try apply(inputs, Int16.self, ctx)]
        case .int32: return [try apply(inputs, Int32.self, ctx)]
        case .int64: return [try apply(inputs, Int64.self, ctx)]
        case .uint8: return [try apply(inputs, UInt8.self, ctx)]
        case .uint16: return [try apply(inputs, UInt16.self, ctx)]
        case .uint32: return [try apply(inputs, UInt32.self, ctx)]
        case .uint64: return [try apply(inputs, UInt64.self, ctx)]
        default: throw EngineError(.typeMismatch, "bitwise operators need integer tensors, got \(a.dataType)")
        }
    }
    func apply<T: EngineInteger>(_ inputs: [Tensor?], _: T.Type, _ ctx: ExecutionContext) throws -> Tensor {
        let a = try inputs.required(0)
        if kind == .not { return try Loops.map(a, T.self, T.self, ctx) { ~$0 } }
        let b = try inputs.required(1)
        guard b.dataType == a.dataType else { throw EngineError(.typeMismatch, "inputs have different types") }
        switch kind {
        // Shift amounts are read as unsigned: a negative amount is a huge one. Past the width, a left shift
        // gives 0 and a right shift fills with the sign (arithmetic for signed types), as onnxruntime does.
        case .shiftLeft: return try Loops.zip(a, b, T.self, T.self, ctx) { x, s in
            let n = UInt64(truncatingIfNeeded: s) & (T.isSigned && s < 0 ? UInt64.max : UInt64.max >> (64 - T.bitWidth))
            return n >= UInt64(T.bitWidth) ? 0 : x << T(truncatingIfNeeded: n)
        }
        case .shiftRight: return try Loops.zip(a, b, T.self, T.self, ctx) { x, s in
            let n = UInt64(truncatingIfNeeded: s) & (T.isSigned && s < 0 ? UInt64.max : UInt64.max >> (64 - T.bitWidth))
            return n >= UInt64(T.bitWidth) ? (x < 0 ? 0 &- 1 : 0) : x >> T(truncatingIfNeeded: n)
        }
        case .and: return try Loops.zip(a, b, T.self, T.self, ctx) { $0 & $1 }
        case .or: return try Loops.zip(a, b, T.self, T.self, ctx) { $0 | $1 }
        case .xor: return try Loops.zip(a, b, T.self, T.self, ctx) { $0 ^ $1 }
        case .not: return a
        }
    }
}

/// Where(cond, x, y).
struct WhereOp: Operator {
    func run(_ inputs: [Tensor?], _ ctx: ExecutionContext) throws -> [Tensor] {
        let c = try inputs.required(0), x = try inputs.required(1), y = try inputs.required(2)
        guard c.dataType == .bool else { throw EngineError(.typeMismatch, "condition must be bool, got \(c.dataType)") }
        guard x.dataType == y.dataType else { throw EngineError(.typeMismatch, "X and Y have different types") }
        if x.dataType == .string {
            let shape = try Shape.broadcast([c.shape, x.shape, y.shape])
            var out = [String](repeating: "", count: try ctx.limits.checkedCount(shape, .string))
            let pc = c.buffer(Bool.self), sx = x.strings, sy = y.strings
            BroadcastPlan(outShape: shape, inputShapes: [c.shape, x.shape, y.shape]).forEachRow { o, offs, count, st in
                for i in 0..<count { out[o + i] = pc[offs[0] + i * st[0]] ? sx[offs[1] + i * st[1]] : sy[offs[2] + i * st[2]] }
            }
            return [Tensor(shape: shape, strings: out)]
        }
        switch x.dataType.byteSize {
        case 1: return [try select(c, x, y, UInt8.self, ctx)]
        case 2: return [try select(c, x, y, UInt16.self, ctx)]
        case 4: return [try select(c, x, y, UInt32.self, ctx)]
        default: return [try select(c, x, y, UInt64.self, ctx)]
        }
    }
    /// Selects raw element bits of the same width (the element type does not matter for a copy).
    func select<T: EngineInteger>(_ c: Tensor, _ x: Tensor, _ y: Tensor, _: T.Type, _ ctx: ExecutionContext) throws -> Tensor {
        let xb = Tensor(dataType: T.dataType, shape: x.shape, storage: x.storage)
        let yb = Tensor(dataType: T.dataType, shape: y.shape, storage: y.storage)
        let r = try Loops.zip3(c, xb, yb, Bool.self, T.self, T.self, T.self, ctx) { $0 ? $1 : $2 }
        return Tensor(dataType: x.dataType, shape: r.shape, storage: r.storage)
    }
}

/// Clip(x, min, max); min and max are attributes before opset 11 and optional inputs after.
struct ClipOp: Operator {
    let minAttr: Float?
    let maxAttr: Float?
    func run(_ inputs: [Tensor?], _ ctx: ExecutionContext) throws -> [Tensor] {
        let x = try inputs.required(0)
        switch x.dataType {
        case .float32: return [try clip(x, inputs, Float.self, ctx)]
        case .float64: return [try clip(x, inputs, Double.self, ctx)]
        case .float16: return [try clip(x, inputs, Float16.self, ctx)]
        case .int8: return [try clip(x, inputs, Int8.self, ctx)]
        case .int16: return [try clip(x, inputs, Int16.self, ctx)]
        case .int32: return [try clip(x, inputs, Int32.self, ctx)]
        case .int64: return [try clip(x, inputs, Int64.self, ctx)]
        case .uint8: return [try clip(x, inputs, UInt8.self, ctx)]
        case .uint16: return [try clip(x, inputs, UInt16.self, ctx)]
        case .uint32: return [try clip(x, inputs, UInt32.self, ctx)]
        case .uint64: return [try clip(x, inputs, UInt64.self, ctx)]
        default: throw EngineError(.typeMismatch, "Clip does not support \(x.dataType) tensors")
        }
    }
    func clip<T: EngineNumeric>(_ x: Tensor, _ inputs: [Tensor?], _: T.Type, _ ctx: ExecutionContext) throws -> Tensor {
        var lo: T? = minAttr.map { T(clampingDouble: Double($0)) }
        var hi: T? = maxAttr.map { T(clampingDouble: Double($0)) }
        if let t = inputs.optional(1) {
            guard t.dataType == x.dataType, t.count == 1 else { throw EngineError(.invalidArgument, "min must be a scalar of the input's type") }
            lo = t.buffer(T.self)[0]
        }
        if let t = inputs.optional(2) {
            guard t.dataType == x.dataType, t.count == 1 else { throw EngineError(.invalidArgument, "max must be a scalar of the input's type") }
            hi = t.buffer(T.self)[0]
        }
        switch (lo, hi) {
        case let (l?, h?): return try Loops.map(x, T.self, T.self, ctx) { v in v < l ? l : (v > h ? h : v) }.withMin(l, max: h)
        case let (l?, nil): return try Loops.map(x, T.self, T.self, ctx) { $0 < l ? l : $0 }
        case let (nil, h?): return try Loops.map(x, T.self, T.self, ctx) { $0 > h ? h : $0 }
        case (nil, nil): return x
        }
    }
}

private extension Tensor {
    /// When min > max every element is max (as onnxruntime does).
    func withMin<T: EngineNumeric>(_ l: T, max h: T) -> Tensor {
        if l > h {
            let b = mutableBuffer(T.self)
            for i in 0..<count { b[i] = h }
        }
        return self
    }
}

/// PRelu(x, slope) with slope broadcast to x.
struct PReluOp: Operator {
    func run(_ inputs: [Tensor?], _ ctx: ExecutionContext) throws -> [Tensor] {
        let x = try inputs.required(0), s = try inputs.required(1)
        switch x.dataType {
        case .float32: return [try Loops.zip(x, s, Float.self, Float.self, ctx) { $0 < 0 ? $0 * $1 : $0 }]
        case .float64: return [try Loops.zip(x, s, Double.self, Double.self, ctx) { $0 < 0 ? $0 * $1 : $0 }]
        case .float16: return [try Loops.zip(x, s, Float16.self, Float16.self, ctx) { $0 < 0 ? $0 * $1 : $0 }]
        case .int32: return [try Loops.zip(x, s, Int32.self, Int32.self, ctx) { $0 < 0 ? $0 &* $1 : $0 }]
        case .int64: return [try Loops.zip(x, s, Int64.self, Int64.self, ctx) { $0 < 0 ? $0 &* $1 : $0 }]
        default: throw EngineError(.typeMismatch, "PRelu does not support \(x.dataType) tensors")
        }
    }
}

extension StandardOperators {
    static func registerElementwise(_ r: inout OperatorRegistry) {
        let simple: [(String, UnaryKind)] = [
            ("Abs", .abs), ("Neg", .neg), ("Exp", .exp), ("Log", .log), ("Sqrt", .sqrt), ("Reciprocal", .reciprocal),
            ("Sin", .sin), ("Cos", .cos), ("Tan", .tan), ("Asin", .asin), ("Acos", .acos), ("Atan", .atan),
            ("Sinh", .sinh), ("Cosh", .cosh), ("Asinh", .asinh), ("Acosh", .acosh), ("Atanh", .atanh),
            ("Relu", .relu), ("Sigmoid", .sigmoid), ("Tanh", .tanh), ("Erf", .erf), ("Floor", .floor), ("Ceil", .ceil),
            ("Round", .round), ("Sign", .sign), ("Softplus", .softplus), ("Softsign", .softsign), ("HardSwish", .hardSwish),
            ("Mish", .mish),
        ]
        for (name, kind) in simple {
            r.register(name) { _ in UnaryOp(kind: kind) }
        }
        r.register("Elu") { c in UnaryOp(kind: .elu, alpha: try c.float("alpha", default: 1)) }
        r.register("Celu") { c in UnaryOp(kind: .celu, alpha: try c.float("alpha", default: 1)) }
        r.register("Selu") { c in
            UnaryOp(kind: .selu, alpha: try c.float("alpha", default: 1.67326319217681884765625), gamma: try c.float("gamma", default: 1.05070102214813232421875))
        }
        r.register("LeakyRelu") { c in UnaryOp(kind: .leakyRelu, alpha: try c.float("alpha", default: 0.01)) }
        r.register("ThresholdedRelu") { c in UnaryOp(kind: .thresholdedRelu, alpha: try c.float("alpha", default: 1)) }
        r.register("HardSigmoid") { c in UnaryOp(kind: .hardSigmoid, alpha: try c.float("alpha", default: 0.2), beta: try c.float("beta", default: 0.5)) }
        r.register("Gelu") { c in
            let approx = try c.string("approximate", default: "none")
            return UnaryOp(kind: approx == "tanh" ? .geluTanh : .geluErf)
        }
        r.register("Gelu", domain: "com.microsoft") { _ in UnaryOp(kind: .geluErf) }
        r.register("IsNaN") { _ in FloatPredicateOp(kind: .isNaN) }
        r.register("IsInf") { c in
            FloatPredicateOp(kind: .isInf(positive: try c.int("detect_positive", default: 1) != 0, negative: try c.int("detect_negative", default: 1) != 0))
        }
        let binary: [(String, BinaryKind)] = [("Add", .add), ("Sub", .sub), ("Mul", .mul), ("Div", .div), ("Pow", .pow)]
        for (name, kind) in binary { r.register(name) { _ in BinaryOp(kind: kind) } }
        r.register("Mod") { c in BinaryOp(kind: try c.int("fmod", default: 0) != 0 ? .fmod : .mod) }
        r.register("Max") { _ in BinaryOp(kind: .max, variadic: true) }
        r.register("Min") { _ in BinaryOp(kind: .min, variadic: true) }
        r.register("Sum") { _ in BinaryOp(kind: .add, variadic: true) }
        r.register("Mean") { _ in BinaryOp(kind: .add, variadic: true, mean: true) }
        let compares: [(String, CompareKind)] = [
            ("Equal", .equal), ("Less", .less), ("Greater", .greater), ("LessOrEqual", .lessOrEqual), ("GreaterOrEqual", .greaterOrEqual),
        ]
        for (name, kind) in compares { r.register(name) { _ in CompareOp(kind: kind) } }
        r.register("And") { _ in LogicOp(kind: .and) }
        r.register("Or") { _ in LogicOp(kind: .or) }
        r.register("Xor") { _ in LogicOp(kind: .xor) }
        r.register("Not") { _ in LogicOp(kind: .not) }
        r.register("BitShift") { c in
            let d = try c.string("direction", default: "")
            guard d == "LEFT" || d == "RIGHT" else { throw c.error(.invalidModel, "direction must be LEFT or RIGHT") }
            return BitwiseOp(kind: d == "LEFT" ? .shiftLeft : .shiftRight)
        }
        r.register("BitwiseAnd") { _ in BitwiseOp(kind: .and) }
        r.register("BitwiseOr") { _ in BitwiseOp(kind: .or) }
        r.register("BitwiseXor") { _ in BitwiseOp(kind: .xor) }
        r.register("BitwiseNot") { _ in BitwiseOp(kind: .not) }
        r.register("Where") { _ in WhereOp() }
        r.register("Clip") { c in
            c.opset < 11 ? ClipOp(minAttr: try c.float("min") ?? -Float.greatestFiniteMagnitude, maxAttr: try c.float("max") ?? Float.greatestFiniteMagnitude)
                : ClipOp(minAttr: nil, maxAttr: nil)
        }
        r.register("PRelu") { _ in PReluOp() }
    }
}

extension UnaryOp: ShapeInferring {
    func inferFacts(_ inputs: [ValueFact?], _ ctx: ShapeInferenceContext) throws -> [ValueFact] {
        guard let x = inputs.first ?? nil else { return [] }
        var f = x
        f.elements = nil
        if let dt = x.dataType, dt.isInteger, [.abs, .neg, .relu, .floor, .ceil, .round].contains(kind), let e = x.elements {
            f.elements = e.map { d in
                guard let v = d.value else { return .unknown }
                switch kind {
                case .abs: return v == Int.min ? .unknown : .known(Swift.abs(v))
                case .neg: return v == Int.min ? .unknown : .known(-v)
                case .relu: return .known(Swift.max(v, 0))
                default: return .known(v)
                }
            }
            if dt != .int64 { f.elements = nil }
        }
        return [f]
    }
}

extension FloatPredicateOp: ShapeInferring {
    func inferFacts(_ inputs: [ValueFact?], _ ctx: ShapeInferenceContext) throws -> [ValueFact] {
        guard let x = inputs.first ?? nil else { return [] }
        return [ValueFact(dataType: .bool, shape: x.shape)]
    }
}

extension BinaryOp: ShapeInferring {
    func inferFacts(_ inputs: [ValueFact?], _ ctx: ShapeInferenceContext) throws -> [ValueFact] {
        let xs = inputs.compactMap { $0 }
        guard let first = xs.first else { return [] }
        let shape = try ShapeFacts.broadcast(xs.map(\.shape))
        var f = ValueFact(dataType: first.dataType, shape: shape)
        // Integer arithmetic on shape vectors (int64, as Shape produces them), e.g. Shape(x)[1] * 64.
        if xs.count == 2, first.dataType == .int64, xs[1].dataType == .int64, !mean, let rank = shape?.count, rank <= 1 {
            let op: ((Int, Int) -> Int?)?
            switch kind {
            case .add: op = { let r = $0.addingReportingOverflow($1); return r.overflow ? nil : r.partialValue }
            case .sub: op = { let r = $0.subtractingReportingOverflow($1); return r.overflow ? nil : r.partialValue }
            case .mul: op = { let r = $0.multipliedReportingOverflow(by: $1); return r.overflow ? nil : r.partialValue }
            case .div: op = { $1 == 0 || ($1 == -1 && $0 == Int.min) ? nil : $0 / $1 }
            case .max: op = { Swift.max($0, $1) }
            case .min: op = { Swift.min($0, $1) }
            default: op = nil
            }
            if let op, let e = ShapeFacts.elementwise(xs[0].elements, xs[1].elements, op),
               let st = shape.flatMap({ ValueFact(shape: $0).staticShape }), e.count == SizeMath.productIfRepresentable(st) {
                f.elements = e
            }
        }
        return [f]
    }
}

extension CompareOp: ShapeInferring {
    func inferFacts(_ inputs: [ValueFact?], _ ctx: ShapeInferenceContext) throws -> [ValueFact] {
        [ValueFact(dataType: .bool, shape: try ShapeFacts.broadcast(inputs.map { $0?.shape }))]
    }
}

extension LogicOp: ShapeInferring {
    func inferFacts(_ inputs: [ValueFact?], _ ctx: ShapeInferenceContext) throws -> [ValueFact] {
        [ValueFact(dataType: .bool, shape: try ShapeFacts.broadcast(inputs.compactMap { $0 }.map(\.shape)))]
    }
}

extension BitwiseOp: ShapeInferring {
    func inferFacts(_ inputs: [ValueFact?], _ ctx: ShapeInferenceContext) throws -> [ValueFact] {
        let xs = inputs.compactMap { $0 }
        return [ValueFact(dataType: xs.first?.dataType, shape: try ShapeFacts.broadcast(xs.map(\.shape)))]
    }
}

extension WhereOp: ShapeInferring {
    func inferFacts(_ inputs: [ValueFact?], _ ctx: ShapeInferenceContext) throws -> [ValueFact] {
        guard inputs.count == 3, let c = inputs[0], let x = inputs[1], let y = inputs[2] else { return [] }
        return [ValueFact(dataType: x.dataType ?? y.dataType, shape: try ShapeFacts.broadcast([c.shape, x.shape, y.shape]))]
    }
}

extension ClipOp: ShapeInferring {
    func inferFacts(_ inputs: [ValueFact?], _ ctx: ShapeInferenceContext) throws -> [ValueFact] {
        guard let x = inputs.first ?? nil else { return [] }
        return [ValueFact(dataType: x.dataType, shape: x.shape)]
    }
}

extension PReluOp: ShapeInferring {
    func inferFacts(_ inputs: [ValueFact?], _ ctx: ShapeInferenceContext) throws -> [ValueFact] {
        guard inputs.count == 2, let x = inputs[0], let s = inputs[1] else { return [] }
        return [ValueFact(dataType: x.dataType, shape: try ShapeFacts.broadcast([x.shape, s.shape]))]
    }
}

// In-place runs (InPlace.swift): the formulas of `UnaryOp.apply` and `BinaryOp.float`, for the kinds and element
// types that dominate real models; other kinds and types run out of place.
extension UnaryOp: InPlaceElementwise {
    func inPlaceCandidates(inputCount: Int) -> [Int] { [0] }

    func runInPlace(_ inputs: [Tensor?], reusing k: Int, _ ctx: ExecutionContext) throws -> [Tensor]? {
        guard k == 0, let x = inputs.first ?? nil else { return nil }
        switch x.dataType {
        case .float32: return inPlace(x, Float.self).map { [$0] }
        case .float64: return inPlace(x, Double.self).map { [$0] }
        default: return nil
        }
    }

    func inPlace<T: EngineFloat>(_ x: Tensor, _: T.Type) -> Tensor? {
        let a = T(alpha), b = T(beta)
        switch kind {
        case .abs: return InPlaceLoops.map(x, T.self) { Swift.abs($0) }
        case .neg: return InPlaceLoops.map(x, T.self) { -$0 }
        case .exp: return InPlaceLoops.map(x, T.self) { T.exp($0) }
        case .log: return InPlaceLoops.map(x, T.self) { T.log($0) }
        case .sqrt: return InPlaceLoops.map(x, T.self) { $0.squareRoot() }
        case .reciprocal: return InPlaceLoops.map(x, T.self) { 1 / $0 }
        case .relu where T.self == Float.self: return InPlaceLoops.floatKernel(x, blindai_relu_f32)
        case .relu: return InPlaceLoops.map(x, T.self) { $0 > 0 ? $0 : ($0.isNaN ? $0 : 0) }
        case .sigmoid: return InPlaceLoops.map(x, T.self) { v in v >= 0 ? 1 / (1 + T.exp(-v)) : T.exp(v) / (1 + T.exp(v)) }
        case .tanh where T.self == Float.self: return InPlaceLoops.floatKernel(x, blindai_tanh_f32)
        case .tanh: return InPlaceLoops.map(x, T.self) { T.tanh($0) }
        case .erf where T.self == Float.self: return InPlaceLoops.floatKernel(x, blindai_erf_f32)
        case .erf: return InPlaceLoops.map(x, T.self) { T.erf($0) }
        case .leakyRelu: return InPlaceLoops.map(x, T.self) { $0 >= 0 ? $0 : a * $0 }
        case .hardSigmoid: return InPlaceLoops.map(x, T.self) { Swift.max(0, Swift.min(1, a * $0 + b)) }
        case .hardSwish: return InPlaceLoops.map(x, T.self) { $0 * Swift.max(0, Swift.min(1, $0 / 6 + T(0.5))) }
        case .geluErf: return InPlaceLoops.map(x, T.self) { v in T(0.5) * v * (1 + T.erf(v * T(0.7071067811865476))) }
        case .geluTanh: return InPlaceLoops.map(x, T.self) { v in T(0.5) * v * (1 + T.tanh(T(0.7978845608028654) * (v + T(0.044715) * v * v * v))) }
        default: return nil
        }
    }
}

extension BinaryOp: InPlaceElementwise {
    func inPlaceCandidates(inputCount: Int) -> [Int] {
        // Sum/Max/Min of more than two inputs and Mean accumulate through temporaries: not in place.
        guard inputCount == 2, !mean else { return [] }
        switch kind {
        case .add, .sub, .mul, .div, .max, .min: return [0, 1]
        default: return []
        }
    }

    func runInPlace(_ inputs: [Tensor?], reusing k: Int, _ ctx: ExecutionContext) throws -> [Tensor]? {
        guard inputs.count == 2, k < 2, let a = inputs[0], let b = inputs[1], a.dataType == b.dataType else { return nil }
        let shape = a.shape == b.shape ? a.shape : try Shape.broadcast([a.shape, b.shape])
        let out = k == 0 ? a : b
        guard out.shape == shape else { return nil }
        switch a.dataType {
        case .float32: return inPlace(a, b, out, Float.self) ? [out] : nil
        case .float64: return inPlace(a, b, out, Double.self) ? [out] : nil
        default: return nil
        }
    }

    func inPlace<T: EngineFloat>(_ a: Tensor, _ b: Tensor, _ out: Tensor, _: T.Type) -> Bool {
        switch kind {
        case .add: InPlaceLoops.zip(a, b, into: out, T.self) { $0 + $1 }
        case .sub: InPlaceLoops.zip(a, b, into: out, T.self) { $0 - $1 }
        case .mul: InPlaceLoops.zip(a, b, into: out, T.self) { $0 * $1 }
        case .div: InPlaceLoops.zip(a, b, into: out, T.self) { $0 / $1 }
        case .max: InPlaceLoops.zip(a, b, into: out, T.self) { $0.isNaN || $1.isNaN ? T.nan : Swift.max($0, $1) }
        case .min: InPlaceLoops.zip(a, b, into: out, T.self) { $0.isNaN || $1.isNaN ? T.nan : Swift.min($0, $1) }
        default: return false
        }
        return true
    }
}

extension ClipOp: InPlaceElementwise {
    func inPlaceCandidates(inputCount: Int) -> [Int] { [0] }

    func runInPlace(_ inputs: [Tensor?], reusing k: Int, _ ctx: ExecutionContext) throws -> [Tensor]? {
        guard k == 0, let x = inputs.first ?? nil, x.dataType == .float32 else { return nil }
        var lo: Float? = minAttr
        var hi: Float? = maxAttr
        if let t = inputs.optional(1) {
            guard t.dataType == .float32, t.count == 1 else { return nil }
            lo = t.buffer(Float.self)[0]
        }
        if let t = inputs.optional(2) {
            guard t.dataType == .float32, t.count == 1 else { return nil }
            hi = t.buffer(Float.self)[0]
        }
        switch (lo, hi) {
        case let (l?, h?):
            // When min > max every element is max (as ClipOp does).
            if l > h { return [InPlaceLoops.map(x, Float.self) { _ in h }] }
            return [InPlaceLoops.map(x, Float.self) { v in v < l ? l : (v > h ? h : v) }]
        case let (l?, nil): return [InPlaceLoops.map(x, Float.self) { $0 < l ? l : $0 }]
        case let (nil, h?): return [InPlaceLoops.map(x, Float.self) { $0 > h ? h : $0 }]
        case (nil, nil): return [x]
        }
    }
}
