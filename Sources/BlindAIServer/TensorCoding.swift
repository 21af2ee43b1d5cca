import BlindAIGraph
import BlindAIProtocol
import BlindAITensor
import Foundation

/// Conversions between OIP v2 tensors (JSON or binary) and engine tensors. Pure and CPU-bound: the server
/// runs them on the inference workers, never on the event loops. Sizes are computed from the request's
/// shape under the tensor limits before anything is allocated; declared binary sizes must match exactly.
enum TensorCoding {
    static func oip(_ t: DataType) -> OIPDataType {
        switch t {
        case .bool: .bool
        case .uint8: .uint8
        case .uint16: .uint16
        case .uint32: .uint32
        case .uint64: .uint64
        case .int8: .int8
        case .int16: .int16
        case .int32: .int32
        case .int64: .int64
        case .float16: .fp16
        case .bfloat16: .bf16
        case .float32: .fp32
        case .float64: .fp64
        case .string: .bytes
        }
    }

    static func engine(_ t: OIPDataType) -> DataType {
        switch t {
        case .bool: .bool
        case .uint8: .uint8
        case .uint16: .uint16
        case .uint32: .uint32
        case .uint64: .uint64
        case .int8: .int8
        case .int16: .int16
        case .int32: .int32
        case .int64: .int64
        case .fp16: .float16
        case .bf16: .bfloat16
        case .fp32: .float32
        case .fp64: .float64
        case .bytes: .string
        }
    }

    /// Metadata of a model input or output: `-1` for dynamic dimensions, `[-1]` when even the rank is unknown.
    static func metadata(_ v: ValueInfo) -> TensorMetadata {
        let datatype = v.dataType.map { oip($0).rawValue } ?? (v.nonTensorType.map { "UNSUPPORTED(\($0))" } ?? "UNKNOWN")
        let shape: [Int64] = v.shape.map { dims in dims.map { d in d.value.map { Int64($0) } ?? -1 } } ?? [-1]
        return TensorMetadata(name: v.name, datatype: datatype, shape: shape)
    }

    // MARK: Inputs

    /// The engine tensors of a request's inputs, checked against the model's declared inputs.
    static func inputs(of request: InferenceRequest, binary: [String: Data], model: [ValueInfo], limits: TensorLimits) throws -> [String: Tensor] {
        var feeds: [String: Tensor] = [:]
        let declared = Dictionary(model.map { ($0.name, $0) }, uniquingKeysWith: { a, _ in a })
        for input in request.inputs {
            guard feeds[input.name] == nil else { throw ServerError.badRequest("input '\(input.name)' is given twice") }
            guard let info = declared[input.name] else {
                throw ServerError.badRequest("the model has no input named '\(input.name)' (inputs: \(model.map(\.name).joined(separator: ", ")))")
            }
            guard let oipType = OIPDataType(rawValue: input.datatype) else {
                throw ServerError.badRequest("input '\(input.name)' has unknown datatype '\(input.datatype)'")
            }
            let dataType = engine(oipType)
            if let want = info.dataType, want != dataType {
                throw ServerError.badRequest("input '\(input.name)' must be \(oip(want).rawValue), got \(input.datatype)")
            }
            var shape: [Int] = []
            for d in input.shape {
                guard d >= 0, d <= Int64(Int32.max) else { throw ServerError.badRequest("input '\(input.name)' has an invalid dimension \(d)") }
                shape.append(Int(d))
            }
            let count: Int
            do {
                count = try limits.checkedCount(shape, dataType)
            } catch let e as EngineError {
                throw ServerError(engine: EngineError(e.code, "input '\(input.name)': \(e.reason)"))
            }
            let tensor: Tensor
            switch (binary[input.name], input.data) {
            case (let bytes?, nil):
                tensor = try fromBinary(bytes, name: input.name, dataType: dataType, oip: oipType, shape: shape, count: count, limits: limits)
            case (nil, let data?):
                tensor = try fromJSON(data, name: input.name, dataType: dataType, shape: shape, count: count)
            case (.some, .some):
                throw ServerError.badRequest("input '\(input.name)' has both JSON data and binary data")
            case (nil, nil):
                throw ServerError.badRequest("input '\(input.name)' has no data")
            }
            feeds[input.name] = tensor
        }
        for info in model where feeds[info.name] == nil {
            throw ServerError.badRequest("input '\(info.name)' is required")
        }
        return feeds
    }

    static func fromBinary(_ bytes: Data, name: String, dataType: DataType, oip: OIPDataType, shape: [Int], count: Int, limits: TensorLimits) throws -> Tensor {
        guard let size = oip.elementSize else {
            let elements: [Data]
            do {
                elements = try BinaryFraming.decodeBytesElements(bytes, count: count)
            } catch let e as ProtocolError {
                throw ServerError.badRequest("input '\(name)': \(e.message)")
            }
            var strings: [String] = []
            strings.reserveCapacity(count)
            for e in elements {
                guard let s = String(validating: e, as: UTF8.self) else {
                    throw ServerError.badRequest("input '\(name)': BYTES elements must be UTF-8 text for this engine")
                }
                strings.append(s)
            }
            return Tensor(shape: shape, strings: strings)
        }
        guard bytes.count == count * size else {
            throw ServerError.badRequest("input '\(name)' of shape \(shape) and datatype \(oip.rawValue) needs \(count * size) bytes of binary data, got \(bytes.count)")
        }
        if dataType != .bool {
            // In place when the body put the bytes at a suitable address (the server gathers the body so that
            // the binary part is 64-byte aligned); the engine never writes into storage it does not own.
            _ = try limits.checkedCount(shape, dataType)
            return Tensor(dataType: dataType, shape: shape, storage: TensorStorage.borrowing(bytes, alignment: size))
        }
        // A Swift Bool must be 0 or 1: normalise instead of copying arbitrary bytes.
        let t = try Tensor(uninitialized: dataType, shape: shape, limits: limits)
        let out = t.storage.base.assumingMemoryBound(to: UInt8.self)
        for (i, b) in bytes.enumerated() { out[i] = b == 0 ? 0 : 1 }
        return t
    }

    static func fromJSON(_ data: TensorData, name: String, dataType: DataType, shape: [Int], count: Int) throws -> Tensor {
        guard data.count == count else {
            throw ServerError.badRequest("input '\(name)' of shape \(shape) needs \(count) elements, got \(data.count)")
        }
        let s = data.scalars
        switch dataType {
        case .bool: return Tensor(shape: shape, scalars: try s.map { try bool($0, name) })
        case .uint8: return Tensor(shape: shape, scalars: try integers(s, UInt8.self, name))
        case .uint16: return Tensor(shape: shape, scalars: try integers(s, UInt16.self, name))
        case .uint32: return Tensor(shape: shape, scalars: try integers(s, UInt32.self, name))
        case .uint64: return Tensor(shape: shape, scalars: try integers(s, UInt64.self, name))
        case .int8: return Tensor(shape: shape, scalars: try integers(s, Int8.self, name))
        case .int16: return Tensor(shape: shape, scalars: try integers(s, Int16.self, name))
        case .int32: return Tensor(shape: shape, scalars: try integers(s, Int32.self, name))
        case .int64: return Tensor(shape: shape, scalars: try integers(s, Int64.self, name))
        case .float16: return Tensor(shape: shape, scalars: try s.map { Float16(try double($0, name)) })
        case .float32: return Tensor(shape: shape, scalars: try s.map { Float(try double($0, name)) })
        case .float64: return Tensor(shape: shape, scalars: try s.map { try double($0, name) })
        case .bfloat16:
            let bits: [UInt16] = try s.map { bfloat16Bits(Float(try double($0, name))) }
            let t = Tensor(shape: shape, scalars: bits)
            return Tensor(dataType: .bfloat16, shape: shape, storage: t.storage)
        case .string:
            return Tensor(shape: shape, strings: try s.map {
                guard case .string(let str) = $0 else { throw ServerError.badRequest("input '\(name)' is BYTES: its JSON elements must be strings") }
                return str
            })
        }
    }

    static func bool(_ s: JSONScalar, _ name: String) throws -> Bool {
        switch s {
        case .bool(let b): return b
        case .int(0): return false
        case .int(1): return true
        default: throw ServerError.badRequest("input '\(name)' is BOOL: its elements must be true or false")
        }
    }

    static func integers<T: FixedWidthInteger>(_ s: [JSONScalar], _: T.Type, _ name: String) throws -> [T] {
        var out: [T] = []
        out.reserveCapacity(s.count)
        for x in s {
            let v: T?
            switch x {
            case .int(let i): v = T(exactly: i)
            case .uint(let u): v = T(exactly: u)
            case .double(let d): v = d.isFinite ? T(exactly: d) : nil
            case .bool(let b): v = b ? 1 : 0
            case .string: v = nil
            }
            guard let v else {
                throw ServerError.badRequest("input '\(name)' has an element that is not an integer in the range of \(T.self)")
            }
            out.append(v)
        }
        return out
    }

    static func double(_ s: JSONScalar, _ name: String) throws -> Double {
        switch s {
        case .int(let i): return Double(i)
        case .uint(let u): return Double(u)
        case .double(let d): return d
        case .bool(let b): return b ? 1 : 0
        case .string(let str):
            guard let d = TensorData.nonFiniteValue(str) else {
                throw ServerError.badRequest("input '\(name)' has a string element where a number is expected")
            }
            return d
        }
    }

    /// Round-to-nearest-even conversion of a Float to bfloat16 bits.
    static func bfloat16Bits(_ f: Float) -> UInt16 {
        if f.isNaN { return 0x7FC0 }
        let bits = f.bitPattern
        let rounding = ((bits >> 16) & 1) + 0x7FFF
        return UInt16((bits &+ rounding) >> 16)
    }

    // MARK: Outputs

    /// The response outputs: the requested ones (all model outputs when none are named), each as JSON or
    /// binary, and the binary parts in order.
    static func outputs(_ results: [String: Tensor], request: InferenceRequest, model: [ValueInfo]) throws -> ([ResponseOutput], [Data]) {
        let allBinary = request.parameters?[BinaryDataParameter.allOutputs]?.boolValue ?? false
        var wanted: [(name: String, binary: Bool)] = []
        if let requested = request.outputs, !requested.isEmpty {
            var seen = Set<String>()
            for o in requested {
                guard results[o.name] != nil else {
                    throw ServerError.badRequest("the model has no output named '\(o.name)' (outputs: \(model.map(\.name).joined(separator: ", ")))")
                }
                guard seen.insert(o.name).inserted else { throw ServerError.badRequest("output '\(o.name)' is requested twice") }
                if o.parameters?["classification"] != nil {
                    throw ServerError.badRequest("the classification extension is not supported")
                }
                wanted.append((o.name, o.parameters?[BinaryDataParameter.output]?.boolValue ?? allBinary))
            }
        } else {
            wanted = model.map { ($0.name, allBinary) }
        }
        var outputs: [ResponseOutput] = []
        var binary: [Data] = []
        for (name, asBinary) in wanted {
            guard let t = results[name] else { throw ServerError(.internal, "internal error") }
            let shape = t.shape.map { Int64($0) }
            let datatype = oip(t.dataType).rawValue
            if asBinary {
                let bytes = binaryForm(t)
                outputs.append(ResponseOutput(name: name, shape: shape, datatype: datatype,
                                              parameters: [BinaryDataParameter.size: .int(Int64(bytes.count))]))
                binary.append(bytes)
            } else {
                outputs.append(ResponseOutput(name: name, shape: shape, datatype: datatype, data: jsonData(t)))
            }
        }
        return (outputs, binary)
    }

    static func jsonData(_ t: Tensor) -> TensorData {
        switch t.dataType {
        case .bool: .bool(t.scalars(as: Bool.self))
        case .uint8: .uint64(t.buffer(UInt8.self).map { UInt64($0) })
        case .uint16: .uint64(t.buffer(UInt16.self).map { UInt64($0) })
        case .uint32: .uint64(t.buffer(UInt32.self).map { UInt64($0) })
        case .uint64: .uint64(t.scalars(as: UInt64.self))
        case .int8: .int64(t.buffer(Int8.self).map { Int64($0) })
        case .int16: .int64(t.buffer(Int16.self).map { Int64($0) })
        case .int32: .int64(t.buffer(Int32.self).map { Int64($0) })
        case .int64: .int64(t.scalars(as: Int64.self))
        case .float16: .float32(t.buffer(Float16.self).map { Float($0) })
        case .bfloat16: .float32(t.buffer(UInt16.self).map { Float(bitPattern: UInt32($0) << 16) })
        case .float32: .float32(t.scalars(as: Float.self))
        case .float64: .float64(t.scalars(as: Double.self))
        case .string: .string(t.strings)
        }
    }
}
