import BlindAITensor
import BlindAIKernels
import BlindAIGraph
import Foundation

// Random generators: RandomNormal, RandomUniform (and their *Like variants), Bernoulli, Multinomial. Never
// constant-folded (`isDeterministic` is false).

/// xoshiro256** seeded through splitmix64: a fast generator that gives the same sequence for the same seed.
struct SeededRNG: RandomNumberGenerator {
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

enum RandomDType {
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
        var rng = SeededRNG(seedAttribute: seed)
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
        var rng = SeededRNG(seedAttribute: seed)
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
        var rng = SeededRNG(seedAttribute: seed)
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


extension StandardOperators {
    static func registerRandom(_ r: inout OperatorRegistry) {
        r.register("RandomNormal") { c in
            guard let shape = try c.ints("shape") else { throw c.error(.invalidModel, "RandomNormal needs a 'shape' attribute") }
            return RandomOp(normal: true, shape: shape, dtype: try RandomDType.floatType(c.int("dtype"), c, "RandomNormal") ?? .float32,
                            a: Double(try c.float("mean", default: 0)), b: Double(try c.float("scale", default: 1)), seed: try c.float("seed"))
        }
        r.register("RandomUniform") { c in
            guard let shape = try c.ints("shape") else { throw c.error(.invalidModel, "RandomUniform needs a 'shape' attribute") }
            return RandomOp(normal: false, shape: shape, dtype: try RandomDType.floatType(c.int("dtype"), c, "RandomUniform") ?? .float32,
                            a: Double(try c.float("low", default: 0)), b: Double(try c.float("high", default: 1)), seed: try c.float("seed"))
        }
        r.register("RandomNormalLike") { c in
            RandomOp(normal: true, shape: nil, dtype: try RandomDType.floatType(c.int("dtype"), c, "RandomNormalLike"),
                     a: Double(try c.float("mean", default: 0)), b: Double(try c.float("scale", default: 1)), seed: try c.float("seed"))
        }
        r.register("RandomUniformLike") { c in
            RandomOp(normal: false, shape: nil, dtype: try RandomDType.floatType(c.int("dtype"), c, "RandomUniformLike"),
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
    }
}
