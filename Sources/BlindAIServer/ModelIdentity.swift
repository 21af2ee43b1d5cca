import BlindAIProtocol
import BlindAIReceipts
import BlindAITensor
import Foundation

/// What an inference request asks about model identity (docs/receipts.md): a required model digest, a receipt.
struct ModelIdentityRequest {
    /// Lowercase hex, 64 digits.
    var requiredSHA256: String?
    var wantsReceipt = false

    init(_ parameters: Parameters?, receiptsAvailable: Bool) throws {
        if let value = parameters?[ModelIdentityParameter.requireSHA256] {
            guard let hex = value.stringValue.flatMap(ModelDigest.normalized) else {
                throw ServerError.badRequest("parameter '\(ModelIdentityParameter.requireSHA256)' must be a SHA-256 of 64 hex digits")
            }
            requiredSHA256 = hex
        }
        if let value = parameters?[ModelIdentityParameter.receipt] {
            guard let wanted = value.boolValue else {
                throw ServerError.badRequest("parameter '\(ModelIdentityParameter.receipt)' must be true or false")
            }
            guard !wanted || receiptsAvailable else { throw ServerError(.notImplemented, "this server does not sign receipts") }
            wantsReceipt = wanted
        }
    }
}

extension TensorCoding {
    /// The tensor in the OIP binary form: little-endian elements, one byte per BOOL, BYTES elements as a u32 length
    /// then their bytes.
    static func binaryForm(_ t: Tensor) -> Data {
        t.dataType == .string ? BinaryFraming.encodeBytesElements(t.strings.map { Array($0.utf8) }) : Data(t.rawBytes)
    }

    /// The receipt digest of a tensor (`TensorDigest`).
    static func digest(_ t: Tensor, name: String) -> String {
        TensorDigest.sha256(name: name, datatype: oip(t.dataType).rawValue, shape: t.shape, bytes: binaryForm(t))
    }
}
