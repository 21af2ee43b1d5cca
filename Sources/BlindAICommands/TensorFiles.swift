import BlindAIONNX
import BlindAITensor
import Foundation

/// Reading and writing tensors in the file formats the CLI accepts: NumPy `.npy` and ONNX `TensorProto` `.pb`.
public enum TensorFiles {
    public static func read(_ path: String, limits: TensorLimits = .default) throws -> Tensor {
        let url = URL(fileURLWithPath: path)
        let data: Data
        do {
            data = try Data(contentsOf: url)
        } catch {
            throw EngineError(.io, "cannot read '\(path)': \(error.localizedDescription)")
        }
        if data.starts(with: [0x93, 0x4E, 0x55, 0x4D, 0x50, 0x59]) || url.pathExtension == "npy" {
            return try NPY.decode(data, limits: limits)
        }
        return try ONNXTensor.decode(data, limits: limits).tensor
    }

    /// A short human rendering: type, shape and the first values.
    public static func summary(_ t: Tensor, maxValues: Int = 8) -> String {
        var values: [String]
        switch t.dataType {
        case .string: values = t.strings.prefix(maxValues).map { "\"\($0)\"" }
        case .bool: values = t.buffer(Bool.self).prefix(maxValues).map { $0 ? "true" : "false" }
        case .float32, .float64, .float16, .bfloat16:
            values = ((try? t.doubleValues()) ?? []).prefix(maxValues).map { String(format: "%.6g", $0) }
        default: values = ((try? t.intValues()) ?? []).prefix(maxValues).map(String.init)
        }
        if t.count > maxValues { values.append("…") }
        return "\(t.dataType) \(t.shape) [\(values.joined(separator: ", "))]"
    }
}
