import Foundation

/// A value of an OIP `parameters` object: a boolean, an integer, a number or a string.
public enum ParameterValue: Codable, Sendable, Equatable, CustomStringConvertible {
    case bool(Bool)
    case int(Int64)
    case double(Double)
    case string(String)

    public init(from decoder: any Decoder) throws {
        let c = try decoder.singleValueContainer()
        if let b = try? c.decode(Bool.self) {
            self = .bool(b)
        } else if let i = try? c.decode(Int64.self) {
            self = .int(i)
        } else if let d = try? c.decode(Double.self) {
            self = .double(d)
        } else if let s = try? c.decode(String.self) {
            self = .string(s)
        } else {
            throw DecodingError.dataCorruptedError(in: c, debugDescription: "a parameter must be a boolean, a number or a string")
        }
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.singleValueContainer()
        switch self {
        case .bool(let b): try c.encode(b)
        case .int(let i): try c.encode(i)
        case .double(let d): try c.encode(d)
        case .string(let s): try c.encode(s)
        }
    }

    public var boolValue: Bool? {
        switch self {
        case .bool(let b): b
        case .int(let i): i != 0
        case .string(let s): ["true", "1", "yes"].contains(s.lowercased()) ? true : (["false", "0", "no"].contains(s.lowercased()) ? false : nil)
        case .double: nil
        }
    }

    public var intValue: Int64? {
        switch self {
        case .int(let i): i
        case .double(let d): d.rounded() == d && abs(d) < 9.0e15 ? Int64(d) : nil
        case .string(let s): Int64(s)
        case .bool: nil
        }
    }

    public var stringValue: String? {
        if case .string(let s) = self { return s }
        return nil
    }

    public var description: String {
        switch self {
        case .bool(let b): "\(b)"
        case .int(let i): "\(i)"
        case .double(let d): "\(d)"
        case .string(let s): s
        }
    }
}

/// An OIP `parameters` object.
public typealias Parameters = [String: ParameterValue]

/// Parameter names of the binary tensor data extension.
public enum BinaryDataParameter {
    /// On an input or output: the size in bytes of its binary data, which follows the JSON header.
    public static let size = "binary_data_size"
    /// On a requested output: return this output as binary data.
    public static let output = "binary_data"
    /// On the request: return every output as binary data unless an output says otherwise.
    public static let allOutputs = "binary_data_output"
}

/// Model identity and receipts (docs/receipts.md): parameter names of requests, responses and model metadata.
public enum ModelIdentityParameter {
    /// Model metadata and inference responses: the SHA-256 (lowercase hex) of the model's bytes as uploaded or loaded.
    public static let sha256 = "model_sha256"
    /// Model metadata: true for a model the operator loaded at start (`--model-repository`).
    public static let operatorModel = "operator_model"
    /// Inference request: the SHA-256 the model must have; the server refuses (412, `model_digest_mismatch`) and runs
    /// nothing when the model of that name has another one.
    public static let requireSHA256 = "require_model_sha256"
    /// Inference request: `true` asks for a signed receipt.
    public static let receipt = "receipt"
    /// Inference response: the receipt's canonical JSON, base64.
    public static let receiptPayload = "receipt"
    /// Inference response: the receipt's signature (ECDSA P-256 over SHA-256, DER), base64.
    public static let receiptSignature = "receipt_signature"
}
