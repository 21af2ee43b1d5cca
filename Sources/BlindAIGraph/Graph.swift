import BlindAITensor
import BlindAIKernels

/// A dimension of a declared shape.
public enum Dimension: Sendable, Equatable, CustomStringConvertible {
    case fixed(Int)
    case symbolic(String)
    case unknown

    public var description: String {
        switch self {
        case .fixed(let v): "\(v)"
        case .symbolic(let s): s
        case .unknown: "?"
        }
    }

    public var value: Int? {
        if case .fixed(let v) = self { return v }
        return nil
    }
}

/// A named value of a graph, with its declared type and shape where the model gives them.
/// Declared shapes are hints: the engine checks inputs against them but never trusts declared output shapes.
public struct ValueInfo: Sendable, Equatable {
    public var name: String
    public var dataType: DataType?
    public var shape: [Dimension]?
    /// A non-tensor type (sequence, map, optional) that the engine does not run.
    public var nonTensorType: String?

    public init(name: String, dataType: DataType? = nil, shape: [Dimension]? = nil, nonTensorType: String? = nil) {
        self.name = name
        self.dataType = dataType
        self.shape = shape
        self.nonTensorType = nonTensorType
    }
}

/// An operator attribute.
public enum Attribute: Sendable {
    case float(Float)
    case int(Int)
    case string(String)
    case tensor(Tensor)
    case graph(Graph)
    case floats([Float])
    case ints([Int])
    case strings([String])
    case tensors([Tensor])
    case graphs([Graph])
}

/// One node of a graph: an operator applied to named values. An empty input name is an omitted optional input.
public struct Node: Sendable {
    public var name: String
    public var opType: String
    public var domain: String
    public var inputs: [String]
    public var outputs: [String]
    public var attributes: [String: Attribute]

    public init(name: String, opType: String, domain: String = "", inputs: [String], outputs: [String], attributes: [String: Attribute] = [:]) {
        self.name = name
        self.opType = opType
        self.domain = domain
        self.inputs = inputs
        self.outputs = outputs
        self.attributes = attributes
    }
}

/// The engine's graph IR, independent of any file format.
public struct Graph: Sendable {
    public var name: String
    public var inputs: [ValueInfo]
    public var outputs: [ValueInfo]
    public var initializers: [String: Tensor]
    public var nodes: [Node]
    /// Operator set versions by domain ("" is the default ONNX domain).
    public var opsets: [String: Int]

    public init(name: String = "", inputs: [ValueInfo], outputs: [ValueInfo], initializers: [String: Tensor] = [:], nodes: [Node], opsets: [String: Int] = ["": 21]) {
        self.name = name
        self.inputs = inputs
        self.outputs = outputs
        self.initializers = initializers
        self.nodes = nodes
        self.opsets = opsets
    }
}
