import BlindAIGraph
import BlindAIOperators
import BlindAITensor
import Foundation
import SwiftProtobuf

/// An ONNX model loaded and compiled into a plan.
///
/// Only the plan keeps the weights. A model file's large initializers are read from the file straight into their
/// tensors (one copy, see `ModelFile`); the decoded message and the engine graph are released once the plan is
/// built, so initializers that the optimiser folded away are not kept.
public struct ONNXModel: Sendable {
    /// The model's interface in the engine's IR: name, inputs, outputs and opsets. Its nodes and initializers are
    /// not kept (the plan holds what running needs).
    public let graph: Graph
    public let plan: Plan
    public let irVersion: Int
    public let producer: String

    public var inputs: [ValueInfo] { plan.inputs }
    public var outputs: [ValueInfo] { plan.outputs }

    /// Newest IR version this loader reads (onnx 1.23 writes IR versions up to 14 in its node tests).
    public static let maxIRVersion = 14
    public static let minIRVersion = 3

    /// Loads a model file. External data files are read from the model's directory.
    public init(contentsOf url: URL, options: PlanOptions = PlanOptions(), registry: OperatorRegistry = StandardOperators.registry) throws {
        // Decoded in a function of its own so that the file mapping is released before the plan is built.
        let (proto, payloads) = try Self.decode(contentsOf: url)
        try self.init(proto: proto, payloads: payloads, baseDirectory: url.deletingLastPathComponent(), options: options, registry: registry)
    }

    /// Loads a model from its serialized bytes.
    public init(serialized data: Data, baseDirectory: URL? = nil, options: PlanOptions = PlanOptions(), registry: OperatorRegistry = StandardOperators.registry) throws {
        try self.init(proto: try Self.decode(data), baseDirectory: baseDirectory, options: options, registry: registry)
    }

    /// Decodes a model file; the large initializer payloads are left in the file, to be read straight into
    /// their tensors (see `ModelFile`).
    static func decode(contentsOf url: URL) throws -> (Onnx_ModelProto, ModelFile.PayloadReader?) {
        let data: Data
        do {
            data = try Data(contentsOf: url, options: .alwaysMapped)
        } catch {
            throw EngineError(.io, "cannot read model file '\(url.path)': \(error.localizedDescription)")
        }
        if let (stripped, payloads) = ModelFile.strip(data), let proto = try? decode(stripped) {
            return (proto, try ModelFile.PayloadReader(url: url, payloads: payloads))
        }
        return (try decode(data), nil)
    }

    static func decode(_ data: Data) throws -> Onnx_ModelProto {
        guard !data.isEmpty else { throw EngineError(.invalidModel, "the model file is empty") }
        do {
            var decodingOptions = BinaryDecodingOptions()
            decodingOptions.messageDepthLimit = 64
            return try Onnx_ModelProto(serializedBytes: data, options: decodingOptions)
        } catch {
            throw EngineError(.invalidModel, "not a valid ONNX model (protobuf decoding failed: \(error))")
        }
    }

    public init(proto: Onnx_ModelProto, baseDirectory: URL? = nil, options: PlanOptions = PlanOptions(), registry: OperatorRegistry = StandardOperators.registry) throws {
        try self.init(proto: proto, payloads: nil, baseDirectory: baseDirectory, options: options, registry: registry)
    }

    init(proto: Onnx_ModelProto, payloads: ModelFile.PayloadReader?, baseDirectory: URL?, options: PlanOptions, registry: OperatorRegistry) throws {
        guard proto.hasGraph else { throw EngineError(.invalidModel, "the model has no graph (is this an ONNX file?)") }
        let ir = Int(proto.irVersion)
        guard ir >= Self.minIRVersion && ir <= Self.maxIRVersion else {
            throw EngineError(.invalidModel, "IR version \(ir) is not supported (supported: \(Self.minIRVersion) to \(Self.maxIRVersion))")
        }
        var opsets: [String: Int] = [:]
        for o in proto.opsetImport {
            let d = o.domain == "ai.onnx" ? "" : o.domain
            opsets[d] = Int(o.version)
        }
        if opsets[""] == nil { opsets[""] = 1 }
        let converter = GraphConverter(opsets: opsets, baseDirectory: baseDirectory, limits: options.limits,
                                       functions: Dictionary(proto.functions.map { ($0.domain + "::" + $0.name, $0) }, uniquingKeysWith: { a, _ in a }))
        let graph = try converter.convert(proto.graph, payloads: payloads)
        self.irVersion = ir
        self.producer = proto.producerName + (proto.producerVersion.isEmpty ? "" : " " + proto.producerVersion)
        self.plan = try Plan(graph: graph, registry: registry, options: options)
        self.graph = Graph(name: graph.name, inputs: graph.inputs, outputs: graph.outputs, nodes: [], opsets: graph.opsets)
    }

    /// Runs the model.
    public func run(_ feeds: [String: Tensor], context: ExecutionContext? = nil) throws -> [String: Tensor] {
        try plan.run(feeds, context: context)
    }
}

/// Converts ONNX protobuf graphs to the engine IR, inlining model-local functions.
struct GraphConverter {
    let opsets: [String: Int]
    let baseDirectory: URL?
    let limits: TensorLimits
    let functions: [String: Onnx_FunctionProto]

    /// Converts a graph; `payloads` holds the main graph's initializer data left in the model file.
    func convert(_ g: Onnx_GraphProto, payloads: ModelFile.PayloadReader? = nil) throws -> Graph {
        var initializers: [String: Tensor] = [:]
        for (i, t) in g.initializer.enumerated() {
            if let payloads, let tensor = try payloads.tensor(t, index: i, limits: limits) {
                initializers[t.name] = tensor
                continue
            }
            initializers[t.name] = try ONNXTensor.tensor(from: t, baseDirectory: baseDirectory, limits: limits)
        }
        if !g.sparseInitializer.isEmpty {
            throw EngineError(.invalidModel, "sparse initializers are not supported")
        }
        var nodes: [Node] = []
        var counter = 0
        for n in g.node {
            try appendNode(n, to: &nodes, counter: &counter, depth: 0)
        }
        return Graph(name: g.name, inputs: try g.input.map(valueInfo), outputs: try g.output.map(valueInfo),
                     initializers: initializers, nodes: nodes, opsets: opsets)
    }

    /// Appends a node, expanding calls of model-local functions into their bodies.
    func appendNode(_ n: Onnx_NodeProto, to nodes: inout [Node], counter: inout Int, depth: Int) throws {
        let key = n.domain + "::" + n.opType
        if let f = functions[key] {
            guard depth < 16 else { throw EngineError(.invalidModel, "model-local functions nest too deeply (at '\(n.opType)')") }
            try inline(f, call: n, into: &nodes, counter: &counter, depth: depth)
            return
        }
        nodes.append(try node(n, name: n.name.isEmpty ? "\(n.opType)_\(nodes.count)" : n.name))
    }

    func inline(_ f: Onnx_FunctionProto, call: Onnx_NodeProto, into nodes: inout [Node], counter: inout Int, depth: Int) throws {
        counter += 1
        let prefix = "__\(f.name)_\(counter)__"
        var rename: [String: String] = [:]
        for (i, name) in f.input.enumerated() { rename[name] = i < call.input.count ? call.input[i] : "" }
        for (i, name) in f.output.enumerated() { rename[name] = i < call.output.count ? call.output[i] : prefix + name }
        var attrs: [String: Onnx_AttributeProto] = [:]
        for a in call.attribute { attrs[a.name] = a }
        for a in f.attributeProto where attrs[a.name] == nil { attrs[a.name] = a }
        for var inner in f.node {
            inner.input = inner.input.map { $0.isEmpty ? "" : rename[$0] ?? prefix + $0 }
            inner.output = inner.output.map { $0.isEmpty ? "" : rename[$0] ?? prefix + $0 }
            inner.name = prefix + inner.name
            var resolved: [Onnx_AttributeProto] = []
            for a in inner.attribute {
                if !a.refAttrName.isEmpty {
                    if var v = attrs[a.refAttrName] {
                        v.name = a.name
                        resolved.append(v)
                    }
                } else {
                    resolved.append(a)
                }
            }
            inner.attribute = resolved
            try appendNode(inner, to: &nodes, counter: &counter, depth: depth + 1)
        }
    }

    func node(_ n: Onnx_NodeProto, name: String) throws -> Node {
        var attributes: [String: Attribute] = [:]
        for a in n.attribute {
            attributes[a.name] = try attribute(a, node: name)
        }
        return Node(name: name, opType: n.opType, domain: n.domain == "ai.onnx" ? "" : n.domain, inputs: n.input, outputs: n.output, attributes: attributes)
    }

    func attribute(_ a: Onnx_AttributeProto, node: String) throws -> Attribute {
        switch a.type {
        case .float: return .float(a.f)
        case .int: return .int(Int(a.i))
        case .string: return .string(String(decoding: a.s, as: UTF8.self))
        case .tensor: return .tensor(try ONNXTensor.tensor(from: a.t, baseDirectory: baseDirectory, limits: limits))
        case .graph: return .graph(try convert(a.g))
        case .floats: return .floats(a.floats)
        case .ints: return .ints(a.ints.map { Int($0) })
        case .strings: return .strings(a.strings.map { String(decoding: $0, as: UTF8.self) })
        case .tensors: return .tensors(try a.tensors.map { (t) throws -> Tensor in try ONNXTensor.tensor(from: t, baseDirectory: baseDirectory, limits: limits) })
        case .graphs: return .graphs(try a.graphs.map { (g) throws -> Graph in try convert(g) })
        case .undefined:
            // Older files leave the type unset; infer it from the field that is present.
            if a.hasF { return .float(a.f) }
            if a.hasI { return .int(Int(a.i)) }
            if a.hasS { return .string(String(decoding: a.s, as: UTF8.self)) }
            if a.hasT { return .tensor(try ONNXTensor.tensor(from: a.t, baseDirectory: baseDirectory, limits: limits)) }
            if a.hasG { return .graph(try convert(a.g)) }
            if !a.floats.isEmpty { return .floats(a.floats) }
            if !a.ints.isEmpty { return .ints(a.ints.map { Int($0) }) }
            if !a.strings.isEmpty { return .strings(a.strings.map { String(decoding: $0, as: UTF8.self) }) }
            throw EngineError(.invalidModel, "attribute '\(a.name)' of node '\(node)' has no type")
        default:
            throw EngineError(.invalidModel, "attribute '\(a.name)' of node '\(node)' has unsupported type \(a.type)")
        }
    }

    func valueInfo(_ v: Onnx_ValueInfoProto) throws -> ValueInfo {
        guard v.hasType else { return ValueInfo(name: v.name) }
        switch v.type.value {
        case .tensorType(let t):
            let dt = t.elemType == 0 ? nil : DataType(rawValue: Int(t.elemType))
            if t.elemType != 0 && dt == nil {
                throw EngineError(.invalidModel, "value '\(v.name)' has unsupported element type \(t.elemType)")
            }
            var shape: [BlindAIGraph.Dimension]?
            if t.hasShape {
                shape = t.shape.dim.map { (d) -> BlindAIGraph.Dimension in
                    switch d.value {
                    case .dimValue(let x): .fixed(Int(x))
                    case .dimParam(let s): .symbolic(s)
                    case nil: .unknown
                    }
                }
            }
            return ValueInfo(name: v.name, dataType: dt, shape: shape)
        case .sequenceType: return ValueInfo(name: v.name, nonTensorType: "sequence")
        case .mapType: return ValueInfo(name: v.name, nonTensorType: "map")
        case .optionalType: return ValueInfo(name: v.name, nonTensorType: "optional")
        case .sparseTensorType: return ValueInfo(name: v.name, nonTensorType: "sparse tensor")
        default: return ValueInfo(name: v.name)
        }
    }
}
