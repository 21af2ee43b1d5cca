import BlindAITensor
import BlindAIKernels

/// Records which attributes a builder reads, and as what (tests sweep each operator's own attributes with
/// extreme values). Not used in production, where `OpBuildContext.probe` is nil.
package final class AttributeProbe: @unchecked Sendable {
    package enum Kind: Sendable { case int, ints, float, floats, string, strings, tensor, graph }
    private(set) var asked: [(name: String, kind: Kind)] = []
    package func record(_ name: String, _ kind: Kind) {
        if !asked.contains(where: { $0.name == name }) { asked.append((name, kind)) }
    }
}

/// What an operator builder sees of its node: attributes, the opset in force, and a way to compile subgraphs.
public struct OpBuildContext {
    public let node: Node
    /// The version of the operator set of the node's domain imported by the model.
    public let opset: Int
    /// Inputs that are known constants at build time (initializers), by input position.
    public let constantInputs: [Tensor?]
    package let compileSubgraph: (Graph) throws -> SubgraphPlan
    /// Subgraphs compiled by the builder; the planner wires their captured outer values as extra inputs.
    package var compiled: [SubgraphPlan] = []
    /// Tests only: records the attributes the builder reads.
    package var probe: AttributeProbe?

    package init(node: Node, opset: Int, constantInputs: [Tensor?], compileSubgraph: @escaping (Graph) throws -> SubgraphPlan) {
        self.node = node
        self.opset = opset
        self.constantInputs = constantInputs
        self.compileSubgraph = compileSubgraph
    }

    public var inputCount: Int { node.inputs.count }
    public var outputCount: Int { node.outputs.count }
    /// Whether optional input `i` is given.
    public func hasInput(_ i: Int) -> Bool { i < node.inputs.count && !node.inputs[i].isEmpty }

    public func has(_ name: String) -> Bool { node.attributes[name] != nil }

    private func mismatch(_ name: String, _ expected: String) -> EngineError {
        EngineError(.invalidModel, "attribute '\(name)' should be \(expected)", node: node.name, opType: node.opType)
    }

    public func int(_ name: String) throws -> Int? {
        probe?.record(name, .int)
        switch node.attributes[name] {
        case nil: return nil
        case .int(let v): return v
        default: throw mismatch(name, "an int")
        }
    }
    public func int(_ name: String, default d: Int) throws -> Int { try int(name) ?? d }

    public func float(_ name: String) throws -> Float? {
        probe?.record(name, .float)
        switch node.attributes[name] {
        case nil: return nil
        case .float(let v): return v
        case .int(let v): return Float(v)
        default: throw mismatch(name, "a float")
        }
    }
    public func float(_ name: String, default d: Float) throws -> Float { try float(name) ?? d }

    public func string(_ name: String) throws -> String? {
        probe?.record(name, .string)
        switch node.attributes[name] {
        case nil: return nil
        case .string(let v): return v
        default: throw mismatch(name, "a string")
        }
    }
    public func string(_ name: String, default d: String) throws -> String { try string(name) ?? d }

    public func ints(_ name: String) throws -> [Int]? {
        probe?.record(name, .ints)
        switch node.attributes[name] {
        case nil: return nil
        case .ints(let v): return v
        case .int(let v): return [v]
        default: throw mismatch(name, "a list of ints")
        }
    }

    public func floats(_ name: String) throws -> [Float]? {
        probe?.record(name, .floats)
        switch node.attributes[name] {
        case nil: return nil
        case .floats(let v): return v
        case .float(let v): return [v]
        default: throw mismatch(name, "a list of floats")
        }
    }

    public func strings(_ name: String) throws -> [String]? {
        probe?.record(name, .strings)
        switch node.attributes[name] {
        case nil: return nil
        case .strings(let v): return v
        case .string(let v): return [v]
        default: throw mismatch(name, "a list of strings")
        }
    }

    public func tensor(_ name: String) throws -> Tensor? {
        probe?.record(name, .tensor)
        switch node.attributes[name] {
        case nil: return nil
        case .tensor(let v): return v
        default: throw mismatch(name, "a tensor")
        }
    }

    /// Compiles the subgraph attribute `name`; its captured outer-scope values become implicit node inputs.
    public mutating func subgraph(_ name: String) throws -> SubgraphPlan {
        probe?.record(name, .graph)
        guard case .graph(let g)? = node.attributes[name] else { throw mismatch(name, "a graph") }
        let plan = try compileSubgraph(g)
        compiled.append(plan)
        return plan
    }

    /// An error about this node.
    public func error(_ code: EngineError.Code, _ reason: String) -> EngineError {
        EngineError(code, reason, node: node.name, opType: node.opType)
    }
}

public typealias OperatorBuilder = (inout OpBuildContext) throws -> any Operator

/// Operators keyed by (domain, op type, opset): each entry applies from its `since` version until the next entry.
public struct OperatorRegistry: Sendable {
    package struct Entry: Sendable {
        package let since: Int
        package let build: @Sendable (inout OpBuildContext) throws -> any Operator
    }
    package var entries: [String: [Entry]] = [:]

    public init() {}

    package static func key(_ domain: String, _ opType: String) -> String {
        let d = domain == "ai.onnx" ? "" : domain
        return d + "::" + opType
    }

    /// Registers a builder for `opType` in `domain` from opset `since`.
    public mutating func register(_ opType: String, domain: String = "", since: Int = 1,
                                  _ build: @escaping @Sendable (inout OpBuildContext) throws -> any Operator) {
        entries[Self.key(domain, opType), default: []].append(Entry(since: since, build: build))
        entries[Self.key(domain, opType)]!.sort { $0.since < $1.since }
    }

    /// Registers one builder for several op types.
    public mutating func register(_ opTypes: [String], domain: String = "", since: Int = 1,
                                  _ build: @escaping @Sendable (inout OpBuildContext) throws -> any Operator) {
        for t in opTypes { register(t, domain: domain, since: since, build) }
    }

    package func builder(domain: String, opType: String, opset: Int) -> Entry? {
        guard let list = entries[Self.key(domain, opType)] else { return nil }
        return list.last { $0.since <= opset } ?? list.first
    }

    public func supports(domain: String, opType: String) -> Bool {
        entries[Self.key(domain, opType)] != nil
    }

    /// Every registered (domain, op type).
    public var operatorNames: [String] { entries.keys.sorted() }
}
