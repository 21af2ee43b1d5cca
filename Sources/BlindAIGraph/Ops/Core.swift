import BlindAITensor

/// Constant: a value fixed in the model.
struct ConstantOp: Operator {
    let value: Tensor
    func run(_ inputs: [Tensor?], _ ctx: ExecutionContext) throws -> [Tensor] { [value] }
}

/// Identity (and Dropout in inference mode, which also returns an all-true mask when asked).
struct IdentityOp: Operator {
    var dropoutMask = false
    func run(_ inputs: [Tensor?], _ ctx: ExecutionContext) throws -> [Tensor] {
        let x = try inputs.required(0)
        if dropoutMask {
            if let ratio = inputs.optional(1), let training = inputs.optional(2), try training.intValues().first == 1,
               try ratio.doubleValues().first ?? 0 > 0 {
                throw EngineError(.invalidArgument, "Dropout in training mode is not supported for inference")
            }
            let mask = try ctx.zeros(.bool, x.shape)
            let m = mask.mutableBuffer(Bool.self)
            for i in 0..<m.count { m[i] = true }
            return [x, mask]
        }
        return [x]
    }
}

/// Shape (with optional start/end, opset 15) and Size.
struct ShapeOp: Operator {
    let start: Int
    let end: Int?
    func run(_ inputs: [Tensor?], _ ctx: ExecutionContext) throws -> [Tensor] {
        let x = try inputs.required(0)
        let r = x.rank
        func clampAxis(_ a: Int) -> Int { let v = a < 0 ? a + r : a; return Swift.min(Swift.max(v, 0), r) }
        let s = clampAxis(start), e = clampAxis(end ?? r)
        let dims = s < e ? Array(x.shape[s..<e]) : []
        return [Tensor(shape: [dims.count], scalars: dims.map { Int64($0) })]
    }
}

struct SizeOp: Operator {
    func run(_ inputs: [Tensor?], _ ctx: ExecutionContext) throws -> [Tensor] {
        [Tensor(scalar: Int64(try inputs.required(0).count))]
    }
}

/// Reshape: shape from the second input (opset 5+) or the `shape` attribute; 0 copies a dimension unless
/// `allowzero`, -1 is inferred.
struct ReshapeOp: Operator {
    let shapeAttr: [Int]?
    let allowZero: Bool
    func run(_ inputs: [Tensor?], _ ctx: ExecutionContext) throws -> [Tensor] {
        let x = try inputs.required(0)
        let spec = try shapeAttr ?? inputs.required(1, "shape").intValues()
        return [try x.reshaped(try ReshapeOp.resolve(spec, input: x.shape, allowZero: allowZero), limits: ctx.limits)]
    }

    static func resolve(_ spec: [Int], input: [Int], allowZero: Bool) throws -> [Int] {
        var out = spec
        var inferred: Int?
        var known = 1
        let total = input.reduce(1, *)
        for (i, d) in spec.enumerated() {
            if d == 0 && !allowZero {
                guard i < input.count else { throw EngineError(.shapeMismatch, "Reshape: 0 at axis \(i) but the input has rank \(input.count)") }
                out[i] = input[i]
            } else if d == -1 {
                guard inferred == nil else { throw EngineError(.shapeMismatch, "Reshape: more than one -1 in \(spec)") }
                inferred = i
                continue
            } else if d < -1 {
                throw EngineError(.shapeMismatch, "Reshape: invalid dimension \(d) in \(spec)")
            }
            let (m, o) = known.multipliedReportingOverflow(by: out[i])
            guard !o else { throw EngineError(.shapeMismatch, "Reshape: shape \(spec) overflows") }
            known = m
        }
        if let i = inferred {
            guard known != 0, total % known == 0 else {
                throw EngineError(.shapeMismatch, "Reshape: cannot reshape \(input) to \(spec)")
            }
            out[i] = total / known
        }
        guard out.reduce(1, *) == total else {
            throw EngineError(.shapeMismatch, "Reshape: cannot reshape \(input) (\(total) elements) to \(spec)")
        }
        return out
    }
}

struct FlattenOp: Operator {
    let axis: Int
    func run(_ inputs: [Tensor?], _ ctx: ExecutionContext) throws -> [Tensor] {
        let x = try inputs.required(0)
        let a = axis < 0 ? axis + x.rank : axis
        guard a >= 0 && a <= x.rank else { throw EngineError(.invalidArgument, "Flatten axis \(axis) out of range for rank \(x.rank)") }
        return [try x.reshaped([x.shape[0..<a].reduce(1, *), x.shape[a...].reduce(1, *)], limits: ctx.limits)]
    }
}

struct SqueezeOp: Operator {
    let axesAttr: [Int]?
    func run(_ inputs: [Tensor?], _ ctx: ExecutionContext) throws -> [Tensor] {
        let x = try inputs.required(0)
        let axesIn = try axesAttr ?? inputs.optional(1)?.intValues()
        var shape: [Int] = []
        if let axesIn {
            var axes = Set<Int>()
            for a in axesIn { axes.insert(try Shape.axis(a, rank: x.rank)) }
            for (i, d) in x.shape.enumerated() {
                if axes.contains(i) {
                    guard d == 1 else { throw EngineError(.shapeMismatch, "Squeeze: axis \(i) has size \(d), not 1") }
                } else {
                    shape.append(d)
                }
            }
        } else {
            shape = x.shape.filter { $0 != 1 }
        }
        return [try x.reshaped(shape, limits: ctx.limits)]
    }
}

struct UnsqueezeOp: Operator {
    let axesAttr: [Int]?
    func run(_ inputs: [Tensor?], _ ctx: ExecutionContext) throws -> [Tensor] {
        let x = try inputs.required(0)
        let axesIn = try axesAttr ?? inputs.required(1, "axes").intValues()
        let rank = x.rank + axesIn.count
        var axes = Set<Int>()
        for a in axesIn {
            let n = try Shape.axis(a, rank: rank)
            guard axes.insert(n).inserted else { throw EngineError(.invalidArgument, "Unsqueeze: duplicate axis \(a)") }
        }
        var shape: [Int] = []
        var it = x.shape.makeIterator()
        for i in 0..<rank { shape.append(axes.contains(i) ? 1 : it.next()!) }
        return [try x.reshaped(shape, limits: ctx.limits)]
    }
}

extension StandardOperators {
    static func registerCore(_ r: inout OperatorRegistry) {
        r.register("Constant") { c in
            if let t = try c.tensor("value") { return ConstantOp(value: t) }
            if let v = try c.float("value_float") { return ConstantOp(value: Tensor(scalar: v)) }
            if let v = try c.floats("value_floats") { return ConstantOp(value: Tensor(shape: [v.count], scalars: v)) }
            if let v = try c.int("value_int") { return ConstantOp(value: Tensor(scalar: Int64(v))) }
            if let v = try c.ints("value_ints") { return ConstantOp(value: Tensor(shape: [v.count], scalars: v.map { Int64($0) })) }
            if let v = try c.string("value_string") { return ConstantOp(value: Tensor(shape: [], strings: [v])) }
            if let v = try c.strings("value_strings") { return ConstantOp(value: Tensor(shape: [v.count], strings: v)) }
            throw c.error(.invalidModel, "Constant has no supported value attribute")
        }
        r.register("Identity") { _ in IdentityOp() }
        r.register("Dropout") { _ in IdentityOp(dropoutMask: true) }
        r.register("Shape") { c in ShapeOp(start: try c.int("start", default: 0), end: try c.int("end")) }
        r.register("Size") { _ in SizeOp() }
        r.register("Reshape") { c in
            ReshapeOp(shapeAttr: c.opset < 5 ? try c.ints("shape") ?? [] : nil, allowZero: try c.int("allowzero", default: 0) != 0)
        }
        r.register("Flatten") { c in FlattenOp(axis: try c.int("axis", default: 1)) }
        r.register("Squeeze") { c in SqueezeOp(axesAttr: c.opset < 13 ? try c.ints("axes") : nil) }
        r.register("Unsqueeze") { c in UnsqueezeOp(axesAttr: c.opset < 13 ? try c.ints("axes") ?? [] : nil) }
    }
}
