import BlindAIONNX
import BlindAITensor
import Foundation

/// Builds small ONNX models in code for tests (no Python needed). Shared by the engine, server and client tests.
public struct ModelBuilder {
    /// How dynamic dimensions (nil in a shape) are named.
    public enum Symbols: Sendable {
        /// One symbol for every dynamic dimension (e.g. a batch "N" shared by all inputs and outputs).
        case shared(String)
        /// A symbol of its own for each: "<value>_<axis>", so that inputs may differ in length.
        case perValue
    }

    public var proto = Onnx_ModelProto()
    public var symbols: Symbols

    public init(opset: Int64 = 17, irVersion: Int64 = 8, symbols: Symbols = .shared("N")) {
        self.symbols = symbols
        proto.irVersion = irVersion
        var o = Onnx_OperatorSetIdProto()
        o.domain = ""
        o.version = opset
        proto.opsetImport = [o]
        proto.producerName = "blindai-tests"
        proto.graph = Onnx_GraphProto()
        proto.graph.name = "test"
    }

    public static func valueInfo(_ name: String, _ type: DataType, _ dims: [Int?], symbols: Symbols = .shared("N")) -> Onnx_ValueInfoProto {
        var v = Onnx_ValueInfoProto()
        v.name = name
        var t = Onnx_TypeProto.Tensor()
        t.elemType = Int32(type.rawValue)
        var shape = Onnx_TensorShapeProto()
        shape.dim = dims.enumerated().map { axis, d in
            var dim = Onnx_TensorShapeProto.Dimension()
            if let d {
                dim.dimValue = Int64(d)
            } else {
                switch symbols {
                case .shared(let s): dim.dimParam = s
                case .perValue: dim.dimParam = "\(name)_\(axis)"
                }
            }
            return dim
        }
        t.shape = shape
        var tp = Onnx_TypeProto()
        tp.tensorType = t
        v.type = tp
        return v
    }

    public mutating func input(_ name: String, _ type: DataType = .float32, _ dims: [Int?]) {
        proto.graph.input.append(Self.valueInfo(name, type, dims, symbols: symbols))
    }

    public mutating func output(_ name: String, _ type: DataType = .float32, _ dims: [Int?] = []) {
        proto.graph.output.append(Self.valueInfo(name, type, dims, symbols: symbols))
    }

    /// An initializer from raw little-endian bytes.
    public mutating func initializer(_ name: String, _ type: DataType, _ dims: [Int], raw: Data) {
        var t = Onnx_TensorProto()
        t.name = name
        t.dataType = Int32(type.rawValue)
        t.dims = dims.map { Int64($0) }
        t.rawData = raw
        proto.graph.initializer.append(t)
    }

    public mutating func initializer(_ name: String, _ tensor: Tensor) {
        initializer(name, tensor.dataType, tensor.shape, raw: Data(tensor.rawBytes))
    }

    public mutating func node(_ op: String, _ inputs: [String], _ outputs: [String], name: String? = nil, domain: String = "",
                              attributes: [Onnx_AttributeProto] = []) {
        var n = Onnx_NodeProto()
        n.opType = op
        n.input = inputs
        n.output = outputs
        n.name = name ?? "\(op)_\(proto.graph.node.count)"
        n.domain = domain
        n.attribute = attributes
        proto.graph.node.append(n)
    }

    public static func intAttribute(_ name: String, _ value: Int) -> Onnx_AttributeProto {
        var a = Onnx_AttributeProto()
        a.name = name
        a.type = .int
        a.i = Int64(value)
        return a
    }

    public static func intsAttribute(_ name: String, _ values: [Int]) -> Onnx_AttributeProto {
        var a = Onnx_AttributeProto()
        a.name = name
        a.type = .ints
        a.ints = values.map { Int64($0) }
        return a
    }

    /// Imports operator set `version` of `domain` (nothing for the default domain, which `init` imports).
    public mutating func importDomain(_ domain: String, version: Int64 = 1) {
        guard !domain.isEmpty else { return }
        var o = Onnx_OperatorSetIdProto()
        o.domain = domain
        o.version = version
        proto.opsetImport.append(o)
    }

    public func data() throws -> Data { try proto.serializedData() }
}
