import Crypto
import Foundation

/// A signed statement of one inference: this server (holder of the receipt key, which its attested claims
/// document names) ran this model on inputs with these digests and produced outputs with these digests, at this
/// time. Format and verification: docs/receipts.md.
///
/// Shared by the server (which signs) and the clients (which verify): Crypto and Foundation only, no engine, no
/// server, no attestation.
public struct Receipt: Codable, Sendable, Equatable {
    public static let currentFormat = "blindai-receipt/1"

    public struct Model: Codable, Sendable, Equatable {
        public var name: String
        public var version: String
        /// SHA-256 (lowercase hex) of the model's bytes as uploaded or loaded.
        public var sha256: String

        public init(name: String, version: String, sha256: String) {
            self.name = name
            self.version = version
            self.sha256 = sha256
        }
    }

    /// A tensor's name and the SHA-256 of its canonical encoding (`TensorDigest`).
    public struct Tensor: Codable, Sendable, Equatable {
        public var name: String
        public var sha256: String

        public init(name: String, sha256: String) {
            self.name = name
            self.sha256 = sha256
        }
    }

    public var format: String
    public var model: Model
    /// Sorted by name.
    public var inputs: [Tensor]
    /// Sorted by name.
    public var outputs: [Tensor]
    /// The request's `id`, when it had one.
    public var requestId: String?
    /// ISO 8601 UTC with milliseconds: when the server finished the inference.
    public var issuedAt: String
    /// Base64 of the signing key's SubjectPublicKeyInfo (DER, P-256): the key the claims document names.
    public var receiptKey: String

    public init(model: Model, inputs: [Tensor], outputs: [Tensor], requestId: String?, issuedAt: Date, receiptKey: String) {
        self.format = Self.currentFormat
        self.model = model
        self.inputs = inputs.sorted { $0.name < $1.name }
        self.outputs = outputs.sorted { $0.name < $1.name }
        self.requestId = requestId
        self.issuedAt = Self.timestamp(issuedAt)
        self.receiptKey = receiptKey
    }

    /// Canonical bytes (sorted keys, no whitespace): what is signed.
    public func encoded() throws -> Data {
        let e = JSONEncoder()
        e.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return try e.encode(self)
    }

    public var issuedAtDate: Date? { try? Date(issuedAt, strategy: Self.timestampStyle) }

    static let timestampStyle = Date.ISO8601FormatStyle(includingFractionalSeconds: true, timeZone: TimeZone(identifier: "UTC")!)

    public static func timestamp(_ date: Date) -> String { date.formatted(timestampStyle) }
}

/// A receipt's canonical bytes and the signature over them, as they travel (response parameters `receipt` and
/// `receipt_signature`, base64) and as a receipt file keeps them.
public struct SignedReceipt: Sendable, Equatable {
    /// The canonical JSON of the `Receipt`.
    public var payload: Data
    /// ECDSA P-256 over SHA-256 of `payload`, DER.
    public var signature: Data

    public init(payload: Data, signature: Data) {
        self.payload = payload
        self.signature = signature
    }

    /// Decodes the receipt after checking the signature with the key it names, which must be `expectedKey` (base64
    /// SPKI DER, from the attested claims document).
    public func verify(expectedKey: String) throws(ReceiptError) -> Receipt {
        let receipt: Receipt
        do { receipt = try JSONDecoder().decode(Receipt.self, from: payload) } catch {
            throw ReceiptError(.malformed, "the receipt is not a JSON receipt: \(error)")
        }
        guard receipt.format == Receipt.currentFormat else {
            throw ReceiptError(.malformed, "receipt format \"\(receipt.format)\" is not \"\(Receipt.currentFormat)\"")
        }
        guard receipt.receiptKey == expectedKey else {
            throw ReceiptError(.keyMismatch, "the receipt was signed by key \(ReceiptKey.fingerprint(receipt.receiptKey)), but the evidence names "
                               + "\(ReceiptKey.fingerprint(expectedKey)): it comes from another server or another run")
        }
        guard let spki = Data(base64Encoded: expectedKey), let key = try? P256.Signing.PublicKey(derRepresentation: spki) else {
            throw ReceiptError(.malformed, "the receipt key is not a base64 P-256 SubjectPublicKeyInfo")
        }
        guard let sig = try? P256.Signing.ECDSASignature(derRepresentation: signature), key.isValidSignature(sig, for: payload) else {
            throw ReceiptError(.signatureInvalid, "the receipt's signature does not verify with its key: the receipt was altered")
        }
        return receipt
    }
}

/// The server's receipt-signing key: generated in memory at start (inside the TEE), never written anywhere.
public struct ReceiptKey: Sendable {
    private let key: P256.Signing.PrivateKey
    /// Base64 of the public key's SubjectPublicKeyInfo (DER): the value the claims document carries.
    public let publicKey: String

    public init() {
        key = P256.Signing.PrivateKey()
        publicKey = key.publicKey.derRepresentation.base64EncodedString()
    }

    public func sign(_ receipt: Receipt) throws -> SignedReceipt {
        let payload = try receipt.encoded()
        return SignedReceipt(payload: payload, signature: try key.signature(for: payload).derRepresentation)
    }

    /// A short form of a base64 key for messages: the first 8 bytes of its SHA-256, in hex.
    public static func fingerprint(_ base64: String) -> String {
        SHA256.hash(data: Data(base64.utf8)).prefix(8).map { String(format: "%02x", $0) }.joined()
    }
}

/// A model digest as requests carry it (`require_model_sha256`, `--model-sha256`).
public enum ModelDigest {
    /// `text` in lowercase when it is a SHA-256 in hex (64 ASCII hex digits, either case); nil otherwise.
    public static func normalized(_ text: String) -> String? {
        let hex = text.lowercased()
        guard hex.utf8.count == 64, hex.utf8.allSatisfy({ ($0 >= 48 && $0 <= 57) || ($0 >= 97 && $0 <= 102) }) else { return nil }
        return hex
    }
}

/// The SHA-256 of a tensor's canonical encoding, the same on the server (from the tensors it decoded and produced)
/// and on a verifier (from .npy files):
///
///     "blindai-tensor/1" 0x00 | u32 len(name) | name | u32 len(datatype) | datatype | u32 rank | i64 dims...
///     | u64 len(bytes) | bytes
///
/// integers big-endian; `datatype` the OIP v2 name (FP32, INT64, BYTES, ...); `bytes` the elements row-major in the
/// OIP binary form (little-endian numbers, one byte per BOOL, each BYTES element as a little-endian u32 length then
/// its bytes).
public enum TensorDigest {
    public static func sha256(name: String, datatype: String, shape: [Int], bytes: some DataProtocol) -> String {
        var h = SHA256()
        h.update(data: Array("blindai-tensor/1".utf8) + [0])
        func u32(_ v: Int) { h.update(data: withUnsafeBytes(of: UInt32(truncatingIfNeeded: v).bigEndian) { Array($0) }) }
        func u64(_ v: UInt64) { h.update(data: withUnsafeBytes(of: v.bigEndian) { Array($0) }) }
        u32(name.utf8.count)
        h.update(data: Array(name.utf8))
        u32(datatype.utf8.count)
        h.update(data: Array(datatype.utf8))
        u32(shape.count)
        for d in shape { u64(UInt64(bitPattern: Int64(d))) }
        u64(UInt64(bytes.count))
        h.update(data: bytes)
        return h.finalize().map { String(format: "%02x", $0) }.joined()
    }
}

/// Why a receipt was refused. Evidence problems are `AttestationError`s; these are the receipt's own.
public struct ReceiptError: Error, Sendable, Equatable, CustomStringConvertible {
    /// A stable code (a struct so that codes can be added without breaking a `switch`; docs/errors.md).
    public struct Code: RawRepresentable, Hashable, Sendable, CustomStringConvertible {
        public let rawValue: String
        public init(rawValue: String) { self.rawValue = rawValue }
        public var description: String { rawValue }
        /// The receipt file or receipt is not of the documented format.
        public static let malformed = Code(rawValue: "receipt_malformed")
        /// The signature does not verify: the receipt was altered.
        public static let signatureInvalid = Code(rawValue: "receipt_signature_invalid")
        /// The receipt was signed by another key than the one the evidence's claims document names.
        public static let keyMismatch = Code(rawValue: "receipt_key_mismatch")
        /// The receipt's time is not within the evidence's validity (its issue time plus the policy's maximum age).
        public static let outsideEvidenceValidity = Code(rawValue: "receipt_outside_evidence_validity")
        /// An input given to the verifier does not have the digest the receipt records.
        public static let inputMismatch = Code(rawValue: "receipt_input_mismatch")
        /// An output given to the verifier does not have the digest the receipt records.
        public static let outputMismatch = Code(rawValue: "receipt_output_mismatch")
        /// A tensor given to the verifier is not in the receipt.
        public static let tensorUnknown = Code(rawValue: "receipt_tensor_unknown")

        public static let allCases: [Code] = [
            .malformed, .signatureInvalid, .keyMismatch, .outsideEvidenceValidity, .inputMismatch, .outputMismatch, .tensorUnknown,
        ]
    }

    public let code: Code
    public let reason: String

    public init(_ code: Code, _ reason: String) {
        self.code = code
        self.reason = reason
    }

    public var description: String { "\(code.rawValue): \(reason)" }
}
