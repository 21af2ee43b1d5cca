import BlindAITensor
import BlindAIKernels
import BlindAIGraph
import Foundation

// Random generators (never constant-folded), window functions, BitCast and Shrink.

/// xoshiro256** seeded through splitmix64: a fast generator that gives the same sequence for the same seed.
struct GeneratorsRNG: RandomNumberGenerator {
    private var s0: UInt64, s1: UInt64, s2: UInt64, s3: UInt64

    init(seed: UInt64) {
        var x = seed
        func splitmix() -> UInt64 {
            x &+= 0x9E37_79B9_7F4A_7C15
            var z = x
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return z ^ (z >> 31)
        }
        s0 = splitmix(); s1 = splitmix(); s2 = splitmix(); s3 = splitmix()
    }

    /// A generator for one run: seeded from the `seed` attribute when given, otherwise from the system.
    init(seedAttribute: Float?) {
        if let s = seedAttribute {
            self.init(seed: UInt64(s.bitPattern) &* 0x2545_F491_4F6C_DD1D &+ 0x1234_5678)
        } else {
            var sys = SystemRandomNumberGenerator()
            self.init(seed: sys.next())
        }
    }

    mutating func next() -> UInt64 {
        let result = ((s1 &* 5) << 7 | (s1 &* 5) >> 57) &* 9
        let t = s1 << 17
        s2 ^= s0; s3 ^= s1; s1 ^= s2; s0 ^= s3
        s2 ^= t
        s3 = (s3 << 45) | (s3 >> 19)
        return result
    }

    /// Uniform in [0, 1) with 53 random bits.
    mutating func unit() -> Double { Double(next() >> 11) * 0x1.0p-53 }

    /// Standard normal (Box-Muller).
    mutating func normal() -> Double {
        var u = unit()
        while u <= 0 { u = unit() }
        let v = unit()
        return (-2 * Foundation.log(u)).squareRoot() * Foundation.cos(2 * Double.pi * v)
    }
}

enum GeneratorsDType {
    static func floatType(_ code: Int?, _ c: OpBuildContext, _ what: String) throws -> DataType? {
        guard let code else { return nil }
        guard let t = DataType(rawValue: code), t.isFloatingPoint else {
            throw c.error(.invalidModel, "\(what): dtype \(code) is not a supported float type")
        }
        return t
    }
}

/// RandomNormal, RandomUniform and their *Like variants.
struct RandomOp: Operator {
    let normal: Bool
    /// Fixed shape (RandomNormal/RandomUniform) or nil to take the input's shape (the *Like variants).
    let shape: [Int]?
    let dtype: DataType?
    let a: Double  // mean or low
    let b: Double  // scale or high
    let seed: Float?

    var isDeterministic: Bool { false }

    func run(_ inputs: [Tensor?], _ ctx: ExecutionContext) throws -> [Tensor] {
        var outShape: [Int]
        var type: DataType
        if let shape {
            outShape = shape
            type = dtype ?? .float32
        } else {
            let x = try inputs.required(0)
            outShape = x.shape
            type = dtype ?? x.dataType
        }
        guard type.isFloatingPoint else {
            throw EngineError(.typeMismatch, "random generators produce float tensors, not \(type)")
        }
        let out = try ctx.uninitialized(type, outShape)
        var rng = GeneratorsRNG(seedAttribute: seed)
        var values = [Double](repeating: 0, count: out.count)
        if normal {
            for i in 0..<values.count { values[i] = rng.normal() * b + a }
        } else {
            for i in 0..<values.count { values[i] = rng.unit() * (b - a) + a }
        }
        try CastOp.write(out, type, count: values.count) { values[$0] }
        return [out]
    }
}

/// Bernoulli(p): 1 with probability p.
struct BernoulliOp: Operator {
    let dtype: DataType?
    let seed: Float?
    var isDeterministic: Bool { false }

    func run(_ inputs: [Tensor?], _ ctx: ExecutionContext) throws -> [Tensor] {
        let x = try inputs.required(0)
        guard x.dataType.isFloatingPoint else { throw EngineError(.typeMismatch, "Bernoulli: input must be a float tensor, got \(x.dataType)") }
        let type = dtype ?? x.dataType
        guard type != .string else { throw EngineError(.typeMismatch, "Bernoulli cannot produce strings") }
        let p = try x.doubleValues()
        var rng = GeneratorsRNG(seedAttribute: seed)
        var values = [Double](repeating: 0, count: p.count)
        for i in 0..<p.count { values[i] = rng.unit() < p[i] ? 1 : 0 }
        let out = try ctx.uninitialized(type, x.shape)
        try CastOp.write(out, type, count: values.count) { values[$0] }
        return [out]
    }
}

/// Multinomial: `sample_size` class samples per batch row of unnormalised log-probabilities.
struct MultinomialOp: Operator {
    let sampleSize: Int
    let dtype: DataType
    let seed: Float?
    var isDeterministic: Bool { false }

    func run(_ inputs: [Tensor?], _ ctx: ExecutionContext) throws -> [Tensor] {
        let x = try inputs.required(0)
        guard x.dataType.isFloatingPoint else { throw EngineError(.typeMismatch, "Multinomial: input must be a float tensor, got \(x.dataType)") }
        guard x.rank == 2 else { throw EngineError(.invalidArgument, "Multinomial: input must be [batch, classes], got \(x.shape)") }
        let batch = x.shape[0], classes = x.shape[1]
        guard classes > 0 else { throw EngineError(.invalidArgument, "Multinomial: there must be at least one class") }
        let logits = try x.doubleValues()
        let out = try ctx.uninitialized(dtype, [batch, sampleSize])
        var rng = GeneratorsRNG(seedAttribute: seed)
        var samples = [Int64](repeating: 0, count: batch * sampleSize)
        var cumulative = [Double](repeating: 0, count: classes)
        for bt in 0..<batch {
            let row = bt * classes
            var m = -Double.infinity
            for c in 0..<classes { m = Swift.max(m, logits[row + c]) }
            var total = 0.0
            for c in 0..<classes {
                total += m.isFinite ? Foundation.exp(logits[row + c] - m) : 0
                cumulative[c] = total
            }
            for s in 0..<sampleSize {
                let u = rng.unit() * total
                var lo = 0, hi = classes - 1
                while lo < hi {
                    let mid = (lo + hi) / 2
                    if cumulative[mid] > u { hi = mid } else { lo = mid + 1 }
                }
                samples[bt * sampleSize + s] = Int64(lo)
            }
        }
        try CastOp.writeInt(out, dtype, count: samples.count) { samples[$0] }
        return [out]
    }
}

/// HannWindow, HammingWindow, BlackmanWindow.
struct WindowOp: Operator {
    enum Kind: Sendable { case hann, hamming, blackman }
    let kind: Kind
    let periodic: Bool
    let dtype: DataType

    func run(_ inputs: [Tensor?], _ ctx: ExecutionContext) throws -> [Tensor] {
        let sizeT = try inputs.required(0, "size")
        guard sizeT.count == 1, let size = try sizeT.intValues().first else {
            throw EngineError(.invalidArgument, "window size must be an integer scalar")
        }
        guard size >= 0 else { throw EngineError(.invalidArgument, "window size \(size) is negative") }
        let out = try ctx.uninitialized(dtype, [size])
        let n1 = Double(periodic ? size : size - 1)
        let twoPi = 2 * Double.pi
        let k = kind
        try CastOp.write(out, dtype, count: size) { i in
            if n1 == 0 { return 1 }
            let x = Double(i)
            switch k {
            case .hann:
                let s = Foundation.sin(Double.pi * x / n1)
                return s * s
            case .hamming:
                let alpha = 25.0 / 46.0
                return alpha - (1 - alpha) * Foundation.cos(twoPi * x / n1)
            case .blackman:
                return 0.42 - 0.5 * Foundation.cos(twoPi * x / n1) + 0.08 * Foundation.cos(2 * twoPi * x / n1)
            }
        }
        return [out]
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

/// Shrink: x < -lambd ? x + bias : (x > lambd ? x - bias : 0).
struct ShrinkOp: Operator {
    let lambd: Float
    let bias: Float
    func run(_ inputs: [Tensor?], _ ctx: ExecutionContext) throws -> [Tensor] {
        let x = try inputs.required(0)
        switch x.dataType {
        case .float32: return [try float(x, Float.self, ctx)]
        case .float64: return [try float(x, Double.self, ctx)]
        case .float16: return [try float(x, Float16.self, ctx)]
        case .int8: return [try integer(x, Int8.self, ctx)]
        case .uint8: return [try integer(x, UInt8.self, ctx)]
        case .int16: return [try integer(x, Int16.self, ctx)]
        case .uint16: return [try integer(x, UInt16.self, ctx)]
        case .int32: return [try integer(x, Int32.self, ctx)]
        case .uint32: return [try integer(x, UInt32.self, ctx)]
        case .int64: return [try integer(x, Int64.self, ctx)]
        case .uint64: return [try integer(x, UInt64.self, ctx)]
        default: throw EngineError(.typeMismatch, "Shrink does not support \(x.dataType) tensors")
        }
    }

    func float<T: EngineFloat>(_ x: Tensor, _: T.Type, _ ctx: ExecutionContext) throws -> Tensor {
        let l = T(lambd), b = T(bias)
        return try Loops.map(x, T.self, T.self, ctx) { v in v < -l ? v + b : (v > l ? v - b : 0) }
    }

    func integer<T: EngineInteger>(_ x: Tensor, _: T.Type, _ ctx: ExecutionContext) throws -> Tensor {
        let l = Double(lambd), b = Double(bias)
        return try Loops.map(x, T.self, T.self, ctx) { v in
            let d = Double(v)
            return d < -l ? T(clampingDouble: d + b) : (d > l ? T(clampingDouble: d - b) : 0)
        }
    }
}

extension StandardOperators {
    static func registerGenerators(_ r: inout OperatorRegistry) {
        r.register("RandomNormal") { c in
            guard let shape = try c.ints("shape") else { throw c.error(.invalidModel, "RandomNormal needs a 'shape' attribute") }
            return RandomOp(normal: true, shape: shape, dtype: try GeneratorsDType.floatType(c.int("dtype"), c, "RandomNormal") ?? .float32,
                            a: Double(try c.float("mean", default: 0)), b: Double(try c.float("scale", default: 1)), seed: try c.float("seed"))
        }
        r.register("RandomUniform") { c in
            guard let shape = try c.ints("shape") else { throw c.error(.invalidModel, "RandomUniform needs a 'shape' attribute") }
            return RandomOp(normal: false, shape: shape, dtype: try GeneratorsDType.floatType(c.int("dtype"), c, "RandomUniform") ?? .float32,
                            a: Double(try c.float("low", default: 0)), b: Double(try c.float("high", default: 1)), seed: try c.float("seed"))
        }
        r.register("RandomNormalLike") { c in
            RandomOp(normal: true, shape: nil, dtype: try GeneratorsDType.floatType(c.int("dtype"), c, "RandomNormalLike"),
                     a: Double(try c.float("mean", default: 0)), b: Double(try c.float("scale", default: 1)), seed: try c.float("seed"))
        }
        r.register("RandomUniformLike") { c in
            RandomOp(normal: false, shape: nil, dtype: try GeneratorsDType.floatType(c.int("dtype"), c, "RandomUniformLike"),
                     a: Double(try c.float("low", default: 0)), b: Double(try c.float("high", default: 1)), seed: try c.float("seed"))
        }
        r.register("Bernoulli") { c in
            var dt: DataType?
            if let d = try c.int("dtype") {
                guard let t = DataType(rawValue: d), t != .string else { throw c.error(.invalidModel, "Bernoulli: unsupported dtype \(d)") }
                dt = t
            }
            return BernoulliOp(dtype: dt, seed: try c.float("seed"))
        }
        r.register("Multinomial") { c in
            let d = try c.int("dtype", default: DataType.int32.rawValue)
            guard d == DataType.int32.rawValue || d == DataType.int64.rawValue, let dt = DataType(rawValue: d) else {
                throw c.error(.invalidModel, "Multinomial: dtype must be int32 or int64")
            }
            let n = try c.int("sample_size", default: 1)
            guard n >= 0 else { throw c.error(.invalidModel, "Multinomial: sample_size must be non-negative") }
            return MultinomialOp(sampleSize: n, dtype: dt, seed: try c.float("seed"))
        }
        let windows: [(String, WindowOp.Kind)] = [("HannWindow", .hann), ("HammingWindow", .hamming), ("BlackmanWindow", .blackman)]
        for (name, kind) in windows {
            r.register(name) { c in
                let d = try c.int("output_datatype", default: DataType.float32.rawValue)
                guard let dt = DataType(rawValue: d), dt != .string else { throw c.error(.invalidModel, "\(name): unsupported output_datatype \(d)") }
                return WindowOp(kind: kind, periodic: try c.int("periodic", default: 1) != 0, dtype: dt)
            }
        }
        r.register("BitCast") { c in
            guard let d = try c.int("to"), let dt = DataType(rawValue: d), dt != .string else {
                throw c.error(.invalidModel, "BitCast needs a supported non-string 'to' type")
            }
            return BitCastOp(to: dt)
        }
        r.register("Shrink") { c in ShrinkOp(lambd: try c.float("lambd", default: 0.5), bias: try c.float("bias", default: 0)) }
    }
}
