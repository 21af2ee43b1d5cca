import BlindAITensor
import Foundation

/// Conversion between ONNX `TensorProto` and engine tensors.
public enum ONNXTensor {
    /// Decodes a serialized `TensorProto` (the `.pb` files of the ONNX test layout).
    public static func decode(_ data: Data, limits: TensorLimits = .default) throws -> (name: String, tensor: Tensor) {
        let proto: Onnx_TensorProto
        do {
            proto = try Onnx_TensorProto(serializedBytes: data)
        } catch {
            throw EngineError(.invalidArgument, "not a valid ONNX TensorProto: \(error)")
        }
        return (proto.name, try tensor(from: proto, baseDirectory: nil, limits: limits))
    }

    /// Builds a tensor from a `TensorProto`. External data is read relative to `baseDirectory`.
    public static func tensor(from p: Onnx_TensorProto, baseDirectory: URL?, limits: TensorLimits = .default) throws -> Tensor {
        guard let dt = DataType(rawValue: Int(p.dataType)) else {
            throw EngineError(.invalidModel, "tensor '\(p.name)' has unsupported data type \(p.dataType)")
        }
        let shape = p.dims.map { Int($0) }
        let count = try limits.checkedCount(shape, dt)
        if p.dataLocation == .external {
            return try externalTensor(p, dt, shape, count, baseDirectory: baseDirectory, limits: limits)
        }
        if dt == .string {
            guard p.stringData.count == count else {
                throw EngineError(.invalidModel, "string tensor '\(p.name)' has \(p.stringData.count) values for shape \(shape)")
            }
            return Tensor(shape: shape, strings: p.stringData.map { String(decoding: $0, as: UTF8.self) })
        }
        if p.hasRawData {
            guard p.rawData.count == count * dt.byteSize else {
                throw EngineError(.invalidModel, "tensor '\(p.name)' has \(p.rawData.count) bytes of raw data, expected \(count * dt.byteSize) for \(dt) \(shape)")
            }
            return Tensor(dataType: dt, shape: shape, storage: .borrowing(p.rawData, alignment: dt.byteSize)).withCanonicalBools()
        }
        let t = try Tensor(zeros: dt, shape: shape, limits: limits)
        func fill<S: TensorElement, Src>(_ src: [Src], _ type: S.Type, _ convert: (Src) -> S) throws {
            guard src.count == count else {
                throw EngineError(.invalidModel, "tensor '\(p.name)' has \(src.count) values for shape \(shape)")
            }
            let dst = t.mutableBuffer(S.self)
            for i in 0..<count { dst[i] = convert(src[i]) }
        }
        switch dt {
        case .float32: try fill(p.floatData, Float.self) { $0 }
        case .float64: try fill(p.doubleData, Double.self) { $0 }
        case .int64: try fill(p.int64Data, Int64.self) { $0 }
        case .uint64: try fill(p.uint64Data, UInt64.self) { $0 }
        case .uint32: try fill(p.uint64Data, UInt32.self) { UInt32(truncatingIfNeeded: $0) }
        case .int32: try fill(p.int32Data, Int32.self) { $0 }
        case .int16: try fill(p.int32Data, Int16.self) { Int16(truncatingIfNeeded: $0) }
        case .uint16: try fill(p.int32Data, UInt16.self) { UInt16(truncatingIfNeeded: $0) }
        case .int8: try fill(p.int32Data, Int8.self) { Int8(truncatingIfNeeded: $0) }
        case .uint8: try fill(p.int32Data, UInt8.self) { UInt8(truncatingIfNeeded: $0) }
        case .bool: try fill(p.int32Data, Bool.self) { $0 != 0 }
        case .float16: try fill(p.int32Data, Float16.self) { Float16(bitPattern: UInt16(truncatingIfNeeded: $0)) }
        case .bfloat16: try fill(p.int32Data, UInt16.self) { UInt16(truncatingIfNeeded: $0) }
        case .string: break
        }
        return t
    }

    static func externalTensor(_ p: Onnx_TensorProto, _ dt: DataType, _ shape: [Int], _ count: Int, baseDirectory: URL?, limits: TensorLimits) throws -> Tensor {
        var location: String?
        var offset = 0
        var length: Int?
        for e in p.externalData {
            switch e.key {
            case "location": location = e.value
            case "offset": offset = Int(e.value) ?? -1
            case "length": length = Int(e.value)
            default: break
            }
        }
        guard let location, offset >= 0 else {
            throw EngineError(.invalidModel, "tensor '\(p.name)' has invalid external data fields")
        }
        guard let baseDirectory else {
            throw EngineError(.invalidModel, "tensor '\(p.name)' uses external data, which needs the model's directory")
        }
        // External data must stay inside the model's directory.
        guard !location.hasPrefix("/"), !location.split(separator: "/").contains("..") else {
            throw EngineError(.invalidModel, "tensor '\(p.name)' external data location '\(location)' leaves the model directory")
        }
        let url = baseDirectory.appendingPathComponent(location)
        let expected = count * dt.byteSize
        if let length, length != expected {
            throw EngineError(.invalidModel, "tensor '\(p.name)' external data length \(length) does not match \(expected) bytes")
        }
        guard let handle = try? FileHandle(forReadingFrom: url) else {
            throw EngineError(.io, "cannot open external data file '\(location)' of tensor '\(p.name)'")
        }
        defer { try? handle.close() }
        let t = try Tensor(uninitialized: dt, shape: shape, limits: limits)
        do {
            try handle.seek(toOffset: UInt64(offset))
            let data = try handle.read(upToCount: expected) ?? Data()
            guard data.count == expected else {
                throw EngineError(.invalidModel, "external data file '\(location)' is too short for tensor '\(p.name)'")
            }
            data.withUnsafeBytes { raw in
                if expected > 0 { t.storage.base.copyMemory(from: raw.baseAddress!, byteCount: expected) }
            }
            if dt == .bool { Tensor.canonicalizeBools(t.storage.base, count: count) }
        } catch let e as EngineError {
            throw e
        } catch {
            throw EngineError(.io, "reading external data '\(location)' failed: \(error)")
        }
        return t
    }

    /// Encodes a tensor as a `TensorProto` (raw data, little-endian).
    public static func encode(_ t: Tensor, name: String = "") -> Data {
        var p = Onnx_TensorProto()
        p.name = name
        p.dataType = Int32(t.dataType.rawValue)
        p.dims = t.shape.map { Int64($0) }
        if t.dataType == .string {
            p.stringData = t.strings.map { Data($0.utf8) }
        } else {
            p.rawData = Data(t.rawBytes)
        }
        return (try? p.serializedData()) ?? Data()
    }
}
