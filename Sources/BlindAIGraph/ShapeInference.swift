import BlindAITensor
import BlindAIKernels

// Static shape inference: a "fact" (element type, shape with known or unknown dimensions, and for small
// integer tensors the element values) is propagated through a graph at plan time, from the declared input
// types and shapes, the initializers and the constants. The optimised plan uses facts to fold `Shape`, `Size`
// and the integer arithmetic that follows them into constants when the shapes they read are static.
//
// Facts must be exact: a `.known` dimension or element is what the operator produces on every run where it
// succeeds. A rule that cannot tell returns `.unknown`. Symbolic dimensions (named by the model) are carried
// for information only: they are never used to fold or to prove two dimensions equal. Declared output shapes
// are never read.

/// A dimension, or the value of an element of a small integer tensor, as known at plan time.
public enum DimFact: Sendable, Hashable, CustomStringConvertible {
    case known(Int)
    /// A dimension named by the model (e.g. "batch"): informative only.
    case symbolic(String)
    case unknown

    public var value: Int? {
        if case .known(let v) = self { return v }
        return nil
    }

    public var description: String {
        switch self {
        case .known(let v): "\(v)"
        case .symbolic(let s): s
        case .unknown: "?"
        }
    }

    /// The largest dimension a fact may hold. No tensor the engine makes or accepts has a dimension past the
    /// element limit (`TensorLimits.checkedCount`), so a larger declared or computed dimension can never be
    /// what a run produces; treating it as unknown keeps the rules' sums and products of dimensions (any int64 a
    /// model declares) from overflowing.
    public static let largestDimension = Int(Int32.max)

    /// This fact, as a dimension: unknown when it is out of any tensor's range.
    package var asDimension: DimFact {
        if case .known(let v) = self, v < 0 || v > DimFact.largestDimension { return .unknown }
        return self
    }

    package init(_ d: Dimension) {
        switch d {
        case .fixed(let v): self = DimFact.known(v).asDimension
        case .symbolic(let s): self = s.isEmpty ? .unknown : .symbolic(s)
        case .unknown: self = .unknown
        }
    }
}

/// What is known of a value at plan time.
public struct ValueFact: Sendable, Hashable, CustomStringConvertible {
    /// The element type, when known.
    public var dataType: DataType?
    /// The shape, when at least the rank is known.
    public var shape: [DimFact]?
    /// For integer tensors of rank 0 or 1 that hold shapes or sizes: the elements, known or not (row-major).
    public var elements: [DimFact]?

    public init(dataType: DataType? = nil, shape: [DimFact]? = nil, elements: [DimFact]? = nil) {
        self.dataType = dataType
        self.shape = shape
        self.elements = elements
    }

    public static let unknown = ValueFact()

    /// The fact of a tensor known exactly (a constant); integer vectors of up to 64 elements keep their values.
    public init(constant t: Tensor) {
        dataType = t.dataType
        shape = t.shape.map { .known($0) }
        if t.rank <= 1, t.count <= ValueFact.maxElements, t.dataType == .int64 || t.dataType == .int32, let v = try? t.intValues() {
            elements = v.map { .known($0) }
        }
    }

    /// The fact of a declared value (a graph input): its type and shape as declared.
    public init(declared info: ValueInfo) {
        dataType = info.dataType
        shape = info.shape?.map { DimFact($0) }
    }

    /// Largest integer vector whose element values are tracked.
    package static let maxElements = 64

    public var rank: Int? { shape?.count }

    /// The same fact with every dimension out of any tensor's range made unknown (`DimFact.largestDimension`).
    package var withDimensionsInRange: ValueFact {
        var f = self
        f.shape = shape?.map(\.asDimension)
        return f
    }

    /// The shape when every dimension is known.
    public var staticShape: [Int]? {
        guard let shape else { return nil }
        var out: [Int] = []
        out.reserveCapacity(shape.count)
        for d in shape {
            guard let v = d.value else { return nil }
            out.append(v)
        }
        return out
    }

    /// The element values when every one is known.
    public var knownElements: [Int]? {
        guard let elements else { return nil }
        var out: [Int] = []
        for e in elements {
            guard let v = e.value else { return nil }
            out.append(v)
        }
        return out
    }

    /// The element count when the shape is static.
    public var staticCount: Int? {
        guard let s = staticShape else { return nil }
        return ShapeFacts.product(s.map { DimFact.known($0) }).value
    }

    public var description: String {
        let t = dataType.map { "\($0)" } ?? "?"
        let s = shape.map { "[" + $0.map(\.description).joined(separator: ", ") + "]" } ?? "[...]"
        if let e = elements { return "\(t)\(s) = [" + e.map(\.description).joined(separator: ", ") + "]" }
        return t + s
    }

    /// The tensor this fact describes, when it is an integer vector whose every element is known.
    package func materialized() -> Tensor? {
        guard let values = knownElements, let shape = staticShape, shape.count <= 1, shape.reduce(1, *) == values.count else { return nil }
        switch dataType {
        case .int64: return Tensor(shape: shape, scalars: values.map { Int64($0) })
        case .int32:
            guard values.allSatisfy({ $0 >= Int(Int32.min) && $0 <= Int(Int32.max) }) else { return nil }
            return Tensor(shape: shape, scalars: values.map { Int32($0) })
        default: return nil
        }
    }

    /// A copy with another element type.
    package func with(dataType dt: DataType?) -> ValueFact {
        var f = self
        f.dataType = dt
        return f
    }
}

/// What a shape rule sees of its node: attributes, opset, and the inputs that are constants.
package struct ShapeInferenceContext {
    package let node: Node
    package let opset: Int
    /// Input values known at plan time (initializers, folded constants), by input position.
    package let constants: [Tensor?]

    package func constant(_ i: Int) -> Tensor? { i < constants.count ? constants[i] : nil }

    /// Whether the node is one of `opTypes` of the default ONNX domain (rules follow the ONNX definitions).
    package func `is`(_ opTypes: Set<String>) -> Bool { (node.domain.isEmpty || node.domain == "com.microsoft") && opTypes.contains(node.opType) }

    package func int(_ name: String) -> Int? {
        switch node.attributes[name] {
        case .int(let v)?: return v
        default: return nil
        }
    }
    package func int(_ name: String, default d: Int) -> Int { int(name) ?? d }

    package func ints(_ name: String) -> [Int]? {
        switch node.attributes[name] {
        case .ints(let v)?: return v
        case .int(let v)?: return [v]
        default: return nil
        }
    }

    package func string(_ name: String) -> String? {
        if case .string(let s)? = node.attributes[name] { return s }
        return nil
    }

    /// The integer values of input `i` when it is a constant or a fully known integer vector.
    package func intValues(_ i: Int, _ facts: [ValueFact?]) -> [Int]? {
        if let t = constant(i) { return try? t.intValues() }
        if i < facts.count, let f = facts[i] { return f.knownElements }
        return nil
    }
}

/// An operator that can tell its outputs' facts from its inputs' facts at plan time.
package protocol ShapeInferring {
    /// Output facts, in output order (fewer than the node's outputs: the rest are unknown). `inputs` has one entry
    /// per node input, nil for an omitted optional input. Throwing, like returning `.unknown`, means "cannot tell".
    func inferFacts(_ inputs: [ValueFact?], _ ctx: ShapeInferenceContext) throws -> [ValueFact]
}

/// Shape arithmetic on facts.
package enum ShapeFacts {
    package struct Unknowable: Error {
        package init() {}
    }

    /// Product of dimensions: known when all are known (and it does not overflow).
    /// Product of dimensions: known when all are known (and it does not overflow); a single dimension that is
    /// not known times known ones equal to 1 is that dimension (so Flatten keeps a symbolic batch).
    package static func product<C: Collection>(_ dims: C) -> DimFact where C.Element == DimFact {
        var n = 1
        var other: DimFact?
        for d in dims {
            guard let v = d.value else {
                if other != nil { other = .unknown } else { other = d }
                continue
            }
            let (m, o) = n.multipliedReportingOverflow(by: v)
            if o { return .unknown }
            n = m
        }
        if n == 0 { return .known(0) }
        guard let other else { return .known(n) }
        return n == 1 ? other : .unknown
    }

    /// One dimension of a multidirectional broadcast.
    package static func broadcast(_ a: DimFact, _ b: DimFact) throws -> DimFact {
        switch (a, b) {
        case (.known(1), _): return b
        case (_, .known(1)): return a
        case let (.known(x), .known(y)):
            guard x == y else { throw Unknowable() }
            return a
        case (.known, _): return a   // b must be equal (or 1) for the run to succeed
        case (_, .known): return b
        case let (.symbolic(x), .symbolic(y)) where x == y: return a
        default: return .unknown
        }
    }

    /// Multidirectional broadcast of shapes; nil when a rank is unknown.
    package static func broadcast(_ shapes: [[DimFact]?]) throws -> [DimFact]? {
        var ranks: [Int] = []
        for s in shapes {
            guard let s else { return nil }
            ranks.append(s.count)
        }
        let rank = ranks.max() ?? 0
        var out = [DimFact](repeating: .known(1), count: rank)
        for s in shapes {
            let s = s!
            let off = rank - s.count
            for (i, d) in s.enumerated() { out[off + i] = try broadcast(out[off + i], d) }
        }
        return out
    }

    /// Normalises an axis against a known rank.
    package static func axis(_ a: Int, rank: Int) throws -> Int {
        let v = a < 0 ? a + rank : a
        guard v >= 0 && v < rank else { throw Unknowable() }
        return v
    }

    /// Element-wise integer arithmetic on element facts (rank 0 or 1), with scalar broadcasting.
    package static func elementwise(_ a: [DimFact]?, _ b: [DimFact]?, _ f: (Int, Int) -> Int?) -> [DimFact]? {
        guard let a, let b else { return nil }
        let n = max(a.count, b.count)
        guard a.count == n || a.count == 1, b.count == n || b.count == 1 else { return nil }
        return (0..<n).map { i in
            let x = a[a.count == 1 ? 0 : i], y = b[b.count == 1 ? 0 : i]
            guard let u = x.value, let v = y.value, let r = f(u, v) else { return .unknown }
            return .known(r)
        }
    }
}
