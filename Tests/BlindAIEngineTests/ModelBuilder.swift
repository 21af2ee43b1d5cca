import BlindAIONNX
import BlindAITensor
import Foundation

/// Builds small ONNX models in code for tests (no Python needed).
struct ModelBuilder {
    var proto = Onnx_ModelProto()

    init(opset: Int64 = 17, irVersion: Int64 = 8) {
        proto.irVersion = irVersion
        var o = Onnx_OperatorSetIdProto()
        o.domain = ""
        o.version = opset
        proto.opsetImport = [o]
        proto.producerName = "blindai-tests"
        proto.graph = Onnx_GraphProto()
        proto.graph.name = "test"
    }

    static func valueInfo(_ name: String, _ type: DataType, _ dims: [Int?]) -> Onnx_ValueInfoProto {
        var v = Onnx_ValueInfoProto()
        v.name = name
        var t = Onnx_TypeProto.Tensor()
        t.elemType = Int32(type.rawValue)
        var shape = Onnx_TensorShapeProto()
        shape.dim = dims.map { d in
            var dim = Onnx_TensorShapeProto.Dimension()
            if let d { dim.dimValue = Int64(d) } else { dim.dimParam = "N" }
            return dim
        }
        t.shape = shape
        var tp = Onnx_TypeProto()
        tp.tensorType = t
        v.type = tp
        return v
    }

    mutating func input(_ name: String, _ type: DataType = .float32, _ dims: [Int?]) {
        proto.graph.input.append(Self.valueInfo(name, type, dims))
    }

    mutating func output(_ name: String, _ type: DataType = .float32, _ dims: [Int?] = []) {
        proto.graph.output.append(Self.valueInfo(name, type, dims))
    }

    mutating func initializer(_ name: String, _ tensor: Tensor) {
        var t = Onnx_TensorProto()
        t.name = name
        t.dataType = Int32(tensor.dataType.rawValue)
        t.dims = tensor.shape.map { Int64($0) }
        t.rawData = Data(tensor.rawBytes)
        proto.graph.initializer.append(t)
    }

    mutating func node(_ op: String, _ inputs: [String], _ outputs: [String], name: String? = nil, domain: String = "", attributes: [Onnx_AttributeProto] = []) {
        var n = Onnx_NodeProto()
        n.opType = op
        n.input = inputs
        n.output = outputs
        n.name = name ?? "\(op)_\(proto.graph.node.count)"
        n.domain = domain
        n.attribute = attributes
        proto.graph.node.append(n)
    }

    static func intAttribute(_ name: String, _ value: Int) -> Onnx_AttributeProto {
        var a = Onnx_AttributeProto()
        a.name = name
        a.type = .int
        a.i = Int64(value)
        return a
    }

    func data() throws -> Data { try proto.serializedData() }
}
