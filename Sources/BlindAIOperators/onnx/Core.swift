import BlindAITensor
import BlindAIKernels
import BlindAIGraph

// Graph plumbing and shape operators: Constant, Identity, Dropout, Shape, Size, Reshape, Flatten, Squeeze, Unsqueeze.

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

extension ConstantOp: ShapeInferring {
    func inferFacts(_ inputs: [ValueFact?], _ ctx: ShapeInferenceContext) throws -> [ValueFact] {
        [ValueFact(constant: value)]
    }
}

extension IdentityOp: ShapeInferring {
    func inferFacts(_ inputs: [ValueFact?], _ ctx: ShapeInferenceContext) throws -> [ValueFact] {
        // Dropout with ratio/training inputs may refuse to run: say nothing that would fold it away.
        guard inputs.count == 1, let x = inputs[0] else { return [] }
        return [x, ValueFact(dataType: .bool, shape: x.shape)]
    }
}

extension ShapeOp: ShapeInferring {
    func inferFacts(_ inputs: [ValueFact?], _ ctx: ShapeInferenceContext) throws -> [ValueFact] {
        guard let x = inputs.first ?? nil, let shape = x.shape else { return [ValueFact(dataType: .int64, shape: [.unknown])] }
        let r = shape.count
        func clampAxis(_ a: Int) -> Int { let v = a < 0 ? a + r : a; return Swift.min(Swift.max(v, 0), r) }
        let s = clampAxis(start), e = clampAxis(end ?? r)
        let dims = s < e ? Array(shape[s..<e]) : []
        return [ValueFact(dataType: .int64, shape: [.known(dims.count)], elements: dims.count <= ValueFact.maxElements ? dims : nil)]
    }
}

extension SizeOp: ShapeInferring {
    func inferFacts(_ inputs: [ValueFact?], _ ctx: ShapeInferenceContext) throws -> [ValueFact] {
        let n: DimFact = (inputs.first ?? nil)?.shape.map { ShapeFacts.product($0) } ?? .unknown
        return [ValueFact(dataType: .int64, shape: [], elements: [n])]
    }
}

extension ReshapeOp: ShapeInferring {
    func inferFacts(_ inputs: [ValueFact?], _ ctx: ShapeInferenceContext) throws -> [ValueFact] {
        guard let x = inputs.first ?? nil else { return [] }
        var out = ValueFact(dataType: x.dataType)
        let spec: [DimFact]
        if let a = shapeAttr {
            spec = a.map { .known($0) }
        } else if inputs.count > 1, let s = inputs[1] {
            if let e = s.elements {
                spec = e
            } else if let n = s.shape?.first?.value, s.shape?.count == 1 {
                spec = [DimFact](repeating: .unknown, count: n)
            } else {
                return [out]
            }
        } else {
            return [out]
        }
        let values = spec.compactMap(\.value)
        if let input = x.staticShape, values.count == spec.count {
            out.shape = try ReshapeOp.resolve(values, input: input, allowZero: allowZero).map { .known($0) }
            if values.count <= 1 { out.elements = x.elements }
            return [out]
        }
        var dims: [DimFact] = []
        var inferred: Int?
        for (i, d) in spec.enumerated() {
            switch d {
            case .known(0) where !allowZero:
                guard let s = x.shape else { dims.append(.unknown); continue }
                guard i < s.count else { throw ShapeFacts.Unknowable() }
                dims.append(s[i])
            case .known(-1):
                guard inferred == nil else { throw ShapeFacts.Unknowable() }
                inferred = i
                dims.append(.unknown)
            case .known(let v):
                guard v >= 0 else { throw ShapeFacts.Unknowable() }
                dims.append(d)
            case .symbolic:
                dims.append(d)
            case .unknown:
                dims.append(.unknown)
            }
        }
        if let i = inferred, let s = x.shape, case .known(let total) = ShapeFacts.product(s) {
            var others = dims
            others.remove(at: i)
            if case .known(let k) = ShapeFacts.product(others), k > 0, total % k == 0 { dims[i] = .known(total / k) }
        }
        out.shape = dims
        if let e = x.elements, dims.count <= 1 { out.elements = e }
        return [out]
    }
}

extension FlattenOp: ShapeInferring {
    func inferFacts(_ inputs: [ValueFact?], _ ctx: ShapeInferenceContext) throws -> [ValueFact] {
        guard let x = inputs.first ?? nil else { return [] }
        guard let s = x.shape else { return [ValueFact(dataType: x.dataType, shape: [.unknown, .unknown])] }
        let a = axis < 0 ? axis + s.count : axis
        guard a >= 0 && a <= s.count else { throw ShapeFacts.Unknowable() }
        return [ValueFact(dataType: x.dataType, shape: [ShapeFacts.product(s[..<a]), ShapeFacts.product(s[a...])])]
    }
}

extension SqueezeOp: ShapeInferring {
    func inferFacts(_ inputs: [ValueFact?], _ ctx: ShapeInferenceContext) throws -> [ValueFact] {
        guard let x = inputs.first ?? nil else { return [] }
        var out = ValueFact(dataType: x.dataType)
        guard let s = x.shape else { return [out] }
        let axesIn: [Int]?
        if let a = axesAttr {
            axesIn = a
        } else if inputs.count > 1, inputs[1] != nil {
            guard let a = ctx.intValues(1, inputs) else { return [out] }
            axesIn = a
        } else {
            axesIn = nil
        }
        if let axesIn {
            let axes = Set(try axesIn.map { try ShapeFacts.axis($0, rank: s.count) })
            var dims: [DimFact] = []
            for (i, d) in s.enumerated() {
                if axes.contains(i) {
                    if let v = d.value, v != 1 { throw ShapeFacts.Unknowable() }
                } else {
                    dims.append(d)
                }
            }
            out.shape = dims
        } else {
            // Without axes every dimension of size 1 goes: only known when every dimension is known.
            guard let st = x.staticShape else { return [out] }
            out.shape = st.filter { $0 != 1 }.map { .known($0) }
        }
        if let e = x.elements, (out.shape?.count ?? 2) <= 1 { out.elements = e }
        return [out]
    }
}

extension UnsqueezeOp: ShapeInferring {
    func inferFacts(_ inputs: [ValueFact?], _ ctx: ShapeInferenceContext) throws -> [ValueFact] {
        guard let x = inputs.first ?? nil else { return [] }
        var out = ValueFact(dataType: x.dataType)
        guard let s = x.shape, let axesIn = axesAttr ?? ctx.intValues(1, inputs) else { return [out] }
        let rank = s.count + axesIn.count
        var axes = Set<Int>()
        for a in axesIn {
            guard axes.insert(try ShapeFacts.axis(a, rank: rank)).inserted else { throw ShapeFacts.Unknowable() }
        }
        var it = s.makeIterator()
        out.shape = (0..<rank).map { axes.contains($0) ? .known(1) : it.next()! }
        if let e = x.elements, rank <= 1 { out.elements = e }
        return [out]
    }
}
