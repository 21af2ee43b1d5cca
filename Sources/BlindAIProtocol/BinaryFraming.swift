import Foundation

/// An error in a message of the protocol (malformed JSON, inconsistent binary sizes).
public struct ProtocolError: Error, Sendable, Equatable, CustomStringConvertible {
    public var message: String

    public init(_ message: String) {
        self.message = message
    }

    public var description: String { message }
}

/// The binary tensor data extension: a JSON header of `Inference-Header-Content-Length` bytes, then the raw
/// tensors of the inputs (or outputs) that carry `parameters.binary_data_size`, in the order they are listed.
///
/// Fixed-size datatypes are little-endian, row-major. A BYTES tensor is its elements one after another, each a
/// 4-byte little-endian length followed by that many bytes.
public enum BinaryFraming {
    /// HTTP header giving the length of the JSON part when binary data follows it.
    public static let headerContentLength = "Inference-Header-Content-Length"

    /// Splits a body into its JSON header and its binary part. `headerLength` nil means the whole body is JSON.
    public static func split(_ body: Data, headerLength: Int?) throws -> (json: Data, binary: Data) {
        guard let headerLength else { return (body, Data()) }
        guard headerLength >= 0, headerLength <= body.count else {
            throw ProtocolError("\(headerContentLength) is \(headerLength) but the body has \(body.count) bytes")
        }
        let start = body.startIndex
        return (body[start..<(start + headerLength)], body[(start + headerLength)...])
    }

    /// Cuts the binary part into the byte ranges of the named tensors, in order. `sizes` lists, for each tensor
    /// in message order, its `binary_data_size` or nil when it is given in JSON. The sizes must account for the
    /// binary part exactly (nothing missing, nothing left over).
    public static func slices(of binary: Data, sizes: [(name: String, size: Int?)]) throws -> [String: Data] {
        var result: [String: Data] = [:]
        var offset = binary.startIndex
        for (name, size) in sizes {
            guard let size else { continue }
            guard size >= 0 else { throw ProtocolError("'\(name)' has a negative \(BinaryDataParameter.size)") }
            guard binary.endIndex - offset >= size else {
                throw ProtocolError("'\(name)' declares \(size) bytes of binary data but only \(binary.endIndex - offset) remain in the body")
            }
            result[name] = binary[offset..<(offset + size)]
            offset += size
        }
        guard offset == binary.endIndex else {
            throw ProtocolError("the body has \(binary.endIndex - offset) bytes of binary data that no tensor declares")
        }
        return result
    }

    /// The binary form of a BYTES tensor.
    public static func encodeBytesElements<S: Sequence>(_ elements: S) -> Data where S.Element: Collection, S.Element.Element == UInt8 {
        var out = Data()
        for e in elements {
            var n = UInt32(e.count).littleEndian
            withUnsafeBytes(of: &n) { out.append(contentsOf: $0) }
            out.append(contentsOf: e)
        }
        return out
    }

    /// Reads exactly `count` BYTES elements from `data`, which they must fill exactly.
    public static func decodeBytesElements(_ data: Data, count: Int) throws -> [Data] {
        var out: [Data] = []
        out.reserveCapacity(min(count, data.count / 4 + 1))
        var i = data.startIndex
        while out.count < count {
            guard data.endIndex - i >= 4 else { throw ProtocolError("BYTES data ends inside the length of element \(out.count)") }
            let n = Int(UInt32(data[i]) | UInt32(data[i + 1]) << 8 | UInt32(data[i + 2]) << 16 | UInt32(data[i + 3]) << 24)
            i += 4
            guard data.endIndex - i >= n else { throw ProtocolError("BYTES element \(out.count) declares \(n) bytes but only \(data.endIndex - i) remain") }
            out.append(data[i..<(i + n)])
            i += n
        }
        guard i == data.endIndex else { throw ProtocolError("BYTES data has \(data.endIndex - i) bytes after its \(count) elements") }
        return out
    }

    /// Builds a body from a JSON header and binary parts; returns it with the header length to send.
    public static func assemble(json: Data, binary: [Data]) -> (body: Data, headerLength: Int) {
        var body = Data(capacity: json.count + binary.reduce(0) { $0 + $1.count })
        body.append(json)
        for b in binary { body.append(b) }
        return (body, json.count)
    }
}

extension InferenceRequest {
    /// `binary_data_size` of each input, in order (nil for inputs given in JSON).
    public var binarySizes: [(name: String, size: Int?)] {
        get throws {
            try inputs.map { input in
                guard let p = input.parameters?[BinaryDataParameter.size] else { return (input.name, nil) }
                guard let n = p.intValue, n >= 0, n <= Int64(Int.max) else {
                    throw ProtocolError("input '\(input.name)' has an invalid \(BinaryDataParameter.size) \(p)")
                }
                return (input.name, Int(n))
            }
        }
    }
}

extension InferenceResponse {
    /// `binary_data_size` of each output, in order (nil for outputs given in JSON).
    public var binarySizes: [(name: String, size: Int?)] {
        get throws {
            try outputs.map { output in
                guard let p = output.parameters?[BinaryDataParameter.size] else { return (output.name, nil) }
                guard let n = p.intValue, n >= 0, n <= Int64(Int.max) else {
                    throw ProtocolError("output '\(output.name)' has an invalid \(BinaryDataParameter.size) \(p)")
                }
                return (output.name, Int(n))
            }
        }
    }

    /// Decodes a response body (JSON, or JSON plus binary outputs when `headerLength` is given). Returns the
    /// JSON part and the binary data of each output that has some.
    public static func decode(body: Data, headerLength: Int?) throws -> (response: InferenceResponse, binary: [String: Data]) {
        let (json, binary) = try BinaryFraming.split(body, headerLength: headerLength)
        let response = try JSONDecoder().decode(InferenceResponse.self, from: json)
        return (response, try BinaryFraming.slices(of: binary, sizes: response.binarySizes))
    }
}
