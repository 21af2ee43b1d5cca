import BlindAITensor
import CBlindAIKernels

// In-place execution of element-wise operators. When an element-wise step reads a value for the last time, and
// that value's storage is owned by no one else (checked at run time with `isKnownUniquelyReferenced`), the step
// writes its output into that storage instead of allocating: no new buffer, no page faults on fresh memory,
// and a smaller live set. The planner chooses the candidate input (one that dies at the step); the plan checks
// uniqueness, ownership, element type and shape on every run and otherwise runs the operator normally.

/// An element-wise operator that can write its output over one of its inputs.
protocol InPlaceElementwise: Operator {
    /// Inputs that may be overwritten by output 0: element `i` of the output is computed from element `i` of
    /// that input (when the input has the output's shape) and from nothing written before it.
    func inPlaceCandidates(inputCount: Int) -> [Int]

    /// Runs with output 0 written into the storage of `inputs[k]`, which the caller owns alone. Returns nil,
    /// having written nothing, when it cannot (element type not handled, or the input's shape is not the
    /// output's); the caller then runs the operator normally.
    func runInPlace(_ inputs: [Tensor?], reusing k: Int, _ ctx: ExecutionContext) throws -> [Tensor]?
}

/// Element-wise loops whose output is given (it may be one of the inputs).
enum InPlaceLoops {
    /// x[i] = f(x[i]).
    @inline(__always)
    static func map<T: TensorElement>(_ x: Tensor, _: T.Type, _ f: (T) -> T) -> Tensor {
        let p = x.mutableBuffer(T.self)
        for i in 0..<p.count { p[i] = f(p[i]) }
        return x
    }

    /// x = kernel(x) for a float32 C kernel taking (source, destination, count), which may be the same buffer.
    @inline(__always)
    static func floatKernel(_ x: Tensor, _ kernel: (UnsafePointer<Float>, UnsafeMutablePointer<Float>, Int) -> Void) -> Tensor {
        let p = x.mutableBuffer(Float.self)
        if let base = p.baseAddress, p.count > 0 { kernel(base, base, p.count) }
        return x
    }

    /// out = f(a, b) with broadcasting, where `out` is `a` or `b` and has the broadcast shape.
    @inline(__always)
    static func zip<T: TensorElement>(_ a: Tensor, _ b: Tensor, into out: Tensor, _: T.Type, _ f: (T, T) -> T) {
        Loops.zip(a, b, into: out.mutableBuffer(T.self).baseAddress!, shape: out.shape, T.self, f)
    }
}

// The formulas below are those of `UnaryOp.apply` and `BinaryOp.float` (Elementwise.swift), for the kinds and
// element types that dominate real models; other kinds and types run out of place.

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
