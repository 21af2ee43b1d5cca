import BlindAIAttestation
import BlindAIProtocol
import Foundation

/// `host:port` of a BlindAI server (`[::1]:8000` for IPv6; an `https://` prefix is accepted).
public struct ServerAddress: Sendable, Equatable, CustomStringConvertible {
    public static let defaultPort = 8000

    public let host: String
    public let port: Int

    public init(host: String, port: Int) {
        self.host = host
        self.port = port
    }

    public init(parsing text: String) throws {
        var t = Substring(text.trimmingCharacters(in: .whitespaces))
        if t.hasPrefix("https://") { t = t.dropFirst(8) }
        if t.hasPrefix("http://") {
            throw BlindAIClientError.invalidInput("'\(text)': BlindAI clients only speak TLS; use host:port")
        }
        while t.hasSuffix("/") { t = t.dropLast() }
        var host: Substring
        var portText: Substring?
        if t.hasPrefix("[") {
            guard let close = t.firstIndex(of: "]") else { throw BlindAIClientError.invalidInput("'\(text)' is not host:port") }
            host = t[t.index(after: t.startIndex)..<close]
            let rest = t[t.index(after: close)...]
            if rest.hasPrefix(":") { portText = rest.dropFirst() } else if !rest.isEmpty {
                throw BlindAIClientError.invalidInput("'\(text)' is not host:port")
            }
        } else if let colon = t.lastIndex(of: ":"), t.firstIndex(of: ":") == colon {
            host = t[..<colon]
            portText = t[t.index(after: colon)...]
        } else {
            host = t
        }
        guard !host.isEmpty, !host.contains("/") else { throw BlindAIClientError.invalidInput("'\(text)' is not host:port") }
        var port = Self.defaultPort
        if let portText {
            guard let p = Int(portText), (1...65535).contains(p) else {
                throw BlindAIClientError.invalidInput("'\(text)': the port must be a number from 1 to 65535")
            }
            port = p
        }
        self.init(host: String(host), port: port)
    }

    /// `host:port` as it goes in a URL.
    public var authority: String { host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)" }

    public var description: String { authority }
}

/// What attestation established about the server of a session.
public struct AttestedServer: Sendable {
    public let address: ServerAddress
    /// The verified claims (TEE kind, measurement, report fields, `channelBound`).
    public let claims: VerifiedClaims
    /// The server's claims document (bound into the report data).
    public let claimsDocument: ClaimsDocument?
    /// SHA-256 (hex) of the SubjectPublicKeyInfo of the TLS key the evidence is bound to, which every connection of
    /// the session must present.
    public let tlsKeySHA256: String
    /// The evidence as received.
    public let evidence: EvidenceBundle

    /// The evidence came from the simulated TEE (it proves nothing).
    public var isSimulated: Bool { claims.simulated }

    /// SEV-SNP report version or TDX quote version.
    public var reportVersion: Int? {
        if let snp = claims.snp { return Int(snp.reportVersion) }
        if let tdx = claims.tdx { return Int(tdx.quoteVersion) }
        return nil
    }
}

/// An input or output of a model: name, datatype and shape (`-1` for a dynamic dimension).
public typealias TensorInfo = TensorMetadata

/// A model's metadata (`GET /v2/models/{name}`).
public typealias ModelMetadata = ModelMetadataResponse

/// A model listed by the server (`POST /v2/repository/index`).
public typealias ModelListing = RepositoryIndexEntry

/// The result of an upload.
public struct UploadedModel: Sendable, Equatable {
    public let name: String
    public let version: String
    /// SHA-256 (hex) of the model bytes, as computed by the server and checked against the client's own.
    public let sha256: String
    public let size: Int
    public let shared: Bool
    public let replaced: Bool
    public let inputs: [TensorInfo]
    public let outputs: [TensorInfo]
}

/// Upload progress: bytes handed to the connection so far, of `total`.
public struct UploadProgress: Sendable, Equatable {
    public let sent: Int64
    public let total: Int64

    public init(sent: Int64, total: Int64) {
        self.sent = sent
        self.total = total
    }

    public var fraction: Double { total > 0 ? Double(sent) / Double(total) : 1 }
}

/// What an inference returned: the outputs, which model answered (name, version, the SHA-256 of its bytes), and the
/// receipt when one was asked for.
public struct InferenceResult: Sendable {
    public let outputs: [String: Tensor]
    public let modelName: String
    public let modelVersion: String?
    /// SHA-256 (lowercase hex) of the model that answered, as the server states it (servers before model identity
    /// send none).
    public let modelSHA256: String?
    /// The signed receipt with its evidence, when `infer(..., receipt: true)` asked for one.
    public let receipt: ReceiptFile?
}
