import AsyncHTTPClient
import BlindAIAttestation
import BlindAIProtocol
import BlindAIReceipts
import Crypto
import Foundation
import NIOConcurrencyHelpers
import NIOCore
import NIOHTTP1
import NIOSSL

/// A client session with a BlindAI server, established only after remote attestation.
///
/// `connect` opens TLS, records the key the server's connection presents, asks the server for evidence bound to a
/// fresh nonce and that key, and verifies it with the policy. Nothing else (no API key, no model, no input) is sent
/// before that. From then on every connection of the session must present the same key (`serverKeyChanged`
/// otherwise); `reconnect()` attests again. Call `close()` when done.
///
/// ```swift
/// let policy = try AttestationPolicy.load(contentsOf: URL(fileURLWithPath: "policy.json"))
/// let client = try await BlindAIClient.connect(to: "localhost:8000", policy: policy)
/// let model = try await client.uploadModel(at: URL(fileURLWithPath: "model.onnx"), name: "resnet18")
/// let outputs = try await client.predict(model: "resnet18", inputs: ["input": try Tensor(npyFile: imageURL)])
/// await client.close()
/// ```
public actor BlindAIClient {
    public struct Configuration: Sendable {
        public var connectTimeout: Duration = .seconds(10)
        /// Time limit of a request other than an upload (inference included).
        public var requestTimeout: Duration = .seconds(300)
        /// Time limit of an upload.
        public var uploadTimeout: Duration = .seconds(3600)
        /// Largest response body accepted.
        public var maxResponseBytes: Int = 1 << 30
        /// Bytes read from a model file per chunk of a streamed upload.
        public var uploadChunkSize: Int = 1 << 20

        public init() {}
    }

    public nonisolated let address: ServerAddress
    /// The policy evidence is verified with (`allowSimulated` merged in).
    public nonisolated let policy: AttestationPolicy
    public nonisolated let configuration: Configuration
    private let apiKey: String?
    private var session: Session?
    /// What the last successful attestation established.
    public private(set) var attestation: AttestedServer

    private init(address: ServerAddress, policy: AttestationPolicy, apiKey: String?, configuration: Configuration, session: Session,
                 attestation: AttestedServer) {
        self.address = address
        self.policy = policy
        self.apiKey = apiKey
        self.configuration = configuration
        self.session = session
        self.attestation = attestation
    }

    // MARK: Connection and attestation

    /// Connects to `address` (`host:port`) and attests the server.
    /// - Parameters:
    ///   - policy: what the server must prove (measurement, TEE, TCB...). See docs/attestation.md.
    ///   - apiKey: sent as `Authorization: Bearer` on every request after attestation (never before).
    ///   - allowSimulated: accept evidence from the simulated TEE even if the policy does not. It proves nothing.
    public static func connect(to address: String, policy: AttestationPolicy, apiKey: String? = nil, allowSimulated: Bool = false,
                               configuration: Configuration = Configuration()) async throws -> BlindAIClient {
        try await connect(to: try ServerAddress(parsing: address), policy: policy, apiKey: apiKey, allowSimulated: allowSimulated,
                          configuration: configuration)
    }

    public static func connect(to address: ServerAddress, policy: AttestationPolicy, apiKey: String? = nil, allowSimulated: Bool = false,
                               configuration: Configuration = Configuration()) async throws -> BlindAIClient {
        var effective = policy
        if allowSimulated { effective.allowSimulated = true }
        if let apiKey, apiKey.isEmpty || apiKey.contains(where: { $0.isWhitespace || $0.isNewline }) {
            throw BlindAIClientError.invalidInput("the API key must be non-empty without spaces")
        }
        let session = Session(configuration: configuration)
        do {
            let attested = try await attest(session: session, address: address, policy: effective, configuration: configuration)
            return BlindAIClient(address: address, policy: effective, apiKey: apiKey, configuration: configuration, session: session,
                                 attestation: attested)
        } catch {
            await session.shutdown()
            throw error
        }
    }

    /// Drops the session's connections and pinned key, connects again and attests the server again (for example
    /// after the server restarted with a new key). On failure the client stays disconnected.
    public func reconnect() async throws {
        if let old = session {
            session = nil
            await old.shutdown()
        }
        let fresh = Session(configuration: configuration)
        do {
            attestation = try await Self.attest(session: fresh, address: address, policy: policy, configuration: configuration)
            session = fresh
        } catch {
            await fresh.shutdown()
            throw error
        }
    }

    /// Closes the session's connections.
    public func close() async {
        if let old = session {
            session = nil
            await old.shutdown()
        }
    }

    /// Attestation on a new session: fresh nonce, evidence, verification against the key the connection presented.
    static func attest(session: Session, address: ServerAddress, policy: AttestationPolicy, configuration: Configuration) async throws
        -> AttestedServer
    {
        let nonce = ChannelBindingExpectation.freshNonce()
        let request = try JSONEncoder().encode(AttestationRequest(nonce: Data(nonce).base64EncodedString()))
        // No Authorization header: nothing secret leaves before the server is attested.
        let response = try await session.send(
            address: address, method: .POST, path: "/v2/attestation", headers: [("Content-Type", "application/json")],
            body: .bytes(ByteBuffer(bytes: request)), timeout: configuration.requestTimeout, maxResponseBytes: 16 << 20)
        switch response.status {
        case 200..<300: break
        case 501: throw BlindAIClientError.attestationUnavailable(response.errorMessage)
        default: throw BlindAIClientError.server(status: response.status, message: response.errorMessage)
        }
        guard let spki = session.pin.subjectPublicKeyInfo else {
            throw BlindAIClientError.protocolViolation("no TLS connection was recorded for the attestation request")
        }
        do {
            let bundle = try EvidenceBundle.decode(json: response.body)
            let binding = ChannelBindingExpectation(nonce: nonce, tlsSubjectPublicKeyInfo: spki)
            let claims = try await AttestationVerifier(policy: policy).verify(bundle: bundle, binding: binding, at: Date())
            guard claims.channelBound else { throw AttestationError(.reportDataMismatch, "the evidence was not bound to this connection") }
            session.pin.pin()
            return AttestedServer(
                address: address, claims: claims, claimsDocument: try bundle.claims.map { try ClaimsDocument.decode([UInt8]($0)) },
                tlsKeySHA256: TLSKeyPin.fingerprint(spki), evidence: bundle)
        } catch let e as AttestationError {
            throw BlindAIClientError.attestation(e)
        }
    }

    // MARK: Requests

    private func currentSession() throws -> Session {
        guard let session else { throw BlindAIClientError.notConnected }
        return session
    }

    private var authorization: [(String, String)] {
        apiKey.map { [("Authorization", "Bearer \($0)")] } ?? []
    }

    /// Sends a request on the attested session and returns the body of a 2xx answer (other statuses throw `.server`).
    private func request(_ method: HTTPMethod, _ path: String, headers: [(String, String)] = [], body: HTTPClientRequest.Body? = nil,
                         timeout: Duration? = nil) async throws -> Session.Response {
        let response = try await currentSession().send(
            address: address, method: method, path: path, headers: authorization + headers, body: body,
            timeout: timeout ?? configuration.requestTimeout, maxResponseBytes: configuration.maxResponseBytes)
        guard (200..<300).contains(response.status) else {
            throw BlindAIClientError.server(status: response.status, message: response.errorMessage)
        }
        return response
    }

    private func decode<T: Decodable>(_ type: T.Type, _ response: Session.Response, _ what: String) throws -> T {
        do {
            return try JSONDecoder().decode(T.self, from: response.body)
        } catch {
            throw BlindAIClientError.protocolViolation("\(what): \(error)")
        }
    }

    /// Model names the server accepts: 1 to 128 characters of `A-Z a-z 0-9 . _ -`, not starting with `.` or `-`.
    public static func validateModelName(_ name: String) throws {
        let ok = (1...128).contains(name.utf8.count) && !name.hasPrefix(".") && !name.hasPrefix("-")
            && name.utf8.allSatisfy { ($0 >= 0x30 && $0 <= 0x39) || ($0 >= 0x41 && $0 <= 0x5A) || ($0 >= 0x61 && $0 <= 0x7A) || $0 == 0x2E || $0 == 0x5F || $0 == 0x2D }
        guard ok else {
            throw BlindAIClientError.invalidInput("model name '\(name)' is invalid: use 1 to 128 of A-Z a-z 0-9 . _ - (not starting with . or -)")
        }
    }

    /// A model name from a file name (its stem, with other characters replaced by `_`).
    public static func modelName(forFile url: URL) -> String {
        let stem = url.deletingPathExtension().lastPathComponent
        var name = String(stem.map { $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "." || $0 == "_" || $0 == "-") ? $0 : "_" }.prefix(128))
        while name.hasPrefix(".") || name.hasPrefix("-") { name.removeFirst() }
        return name.isEmpty ? "model" : name
    }

    // MARK: Models

    /// Streams an ONNX file to the server (`PUT /v2/repository/models/{name}`), reporting progress as chunks are
    /// handed to the connection. The server's SHA-256 of what it received is checked against the file's.
    public func uploadModel(at file: URL, name: String? = nil, shared: Bool? = nil,
                            progress: (@Sendable (UploadProgress) -> Void)? = nil) async throws -> UploadedModel {
        let attributes: [FileAttributeKey: Any]
        do {
            attributes = try FileManager.default.attributesOfItem(atPath: file.path)
        } catch {
            throw BlindAIClientError.invalidInput("cannot read \(file.path): \(error.localizedDescription)")
        }
        guard let size = (attributes[.size] as? NSNumber)?.int64Value, size > 0 else {
            throw BlindAIClientError.invalidInput("\(file.path) is empty or not a regular file")
        }
        return try await upload(source: .file(file, size: size), name: name ?? Self.modelName(forFile: file), shared: shared, progress: progress)
    }

    /// Uploads an ONNX model held in memory.
    public func uploadModel(_ model: Data, name: String, shared: Bool? = nil,
                            progress: (@Sendable (UploadProgress) -> Void)? = nil) async throws -> UploadedModel {
        guard !model.isEmpty else { throw BlindAIClientError.invalidInput("the model is empty") }
        return try await upload(source: .memory(model), name: name, shared: shared, progress: progress)
    }

    private func upload(source: ModelChunks.Source, name: String, shared: Bool?, progress: (@Sendable (UploadProgress) -> Void)?) async throws
        -> UploadedModel
    {
        try Self.validateModelName(name)
        let digest = NIOLockedValueBox<String?>(nil)
        let chunks = ModelChunks(source: source, chunkSize: configuration.uploadChunkSize, progress: progress, digest: digest)
        var path = "/v2/repository/models/\(name)"
        if let shared { path += "?shared=\(shared)" }
        let response = try await request(
            .PUT, path, headers: [("Content-Type", "application/octet-stream")], body: .stream(chunks, length: .known(source.size)),
            timeout: configuration.uploadTimeout)
        let r = try decode(ModelUploadResponse.self, response, "upload response")
        guard let sent = digest.withLockedValue({ $0 }) else {
            throw BlindAIClientError.protocolViolation("the server answered before receiving the whole model")
        }
        guard sent == r.sha256.lowercased() else {
            throw BlindAIClientError.protocolViolation("the server's SHA-256 of the model (\(r.sha256)) is not the file's (\(sent))")
        }
        return UploadedModel(name: r.name, version: r.version, sha256: r.sha256, size: r.size, shared: r.shared, replaced: r.replaced,
                             inputs: r.inputs, outputs: r.outputs)
    }

    /// The models this client may see.
    public func models() async throws -> [ModelListing] {
        let response = try await request(.POST, "/v2/repository/index", headers: [("Content-Type", "application/json")],
                                         body: .bytes(ByteBuffer(string: "{}")))
        return try decode([RepositoryIndexEntry].self, response, "model index")
    }

    /// A model's inputs and outputs.
    public func metadata(of model: String) async throws -> ModelMetadata {
        try Self.validateModelName(model)
        return try decode(ModelMetadataResponse.self, try await request(.GET, "/v2/models/\(model)"), "model metadata")
    }

    /// Unloads a model (only its owner or an admin key may).
    public func unloadModel(_ model: String) async throws {
        try Self.validateModelName(model)
        _ = try await request(.POST, "/v2/repository/models/\(model)/unload", headers: [("Content-Type", "application/json")],
                              body: .bytes(ByteBuffer(string: "{}")))
    }

    /// Server name, version and protocol extensions.
    public func serverMetadata() async throws -> ServerMetadataResponse {
        try decode(ServerMetadataResponse.self, try await request(.GET, "/v2"), "server metadata")
    }

    // MARK: Inference

    /// Runs `model` on named input tensors and returns the named outputs (all of them, or `outputs`). Tensors travel
    /// in the binary tensor extension both ways.
    public func predict(model: String, inputs: [String: Tensor], outputs: [String]? = nil) async throws -> [String: Tensor] {
        try await infer(model: model, inputs: inputs, outputs: outputs).outputs
    }

    /// Runs `model` like `predict`, with the model-identity options (docs/receipts.md): `requireModelSHA256` makes the
    /// server refuse (`model_digest_mismatch`, nothing run) unless the model of that name has that digest;
    /// `receipt` asks for a signed receipt, checked here with the receipt key of the attested claims and returned
    /// with the session's evidence, ready to save (`ReceiptFile.jsonData()`) and verify later (`ReceiptVerifier`).
    public func infer(model: String, inputs: [String: Tensor], outputs: [String]? = nil, requireModelSHA256: String? = nil,
                      receipt: Bool = false) async throws -> InferenceResult {
        try Self.validateModelName(model)
        guard !inputs.isEmpty else { throw BlindAIClientError.invalidInput("no input tensors") }
        var parameters: Parameters = [BinaryDataParameter.allOutputs: .bool(true)]
        if let requireModelSHA256 {
            guard let hex = ModelDigest.normalized(requireModelSHA256) else {
                throw BlindAIClientError.invalidInput("a required model SHA-256 is 64 hex digits, got '\(requireModelSHA256)'")
            }
            parameters[ModelIdentityParameter.requireSHA256] = .string(hex)
        }
        if receipt {
            // A receipt is checkable only within its evidence's validity: re-attest (fresh evidence, same checks) when
            // the session's evidence is within a minute of the end of it.
            if let issued = attestation.claimsDocument.flatMap({ try? Date($0.issuedAt, strategy: .iso8601) }) {
                let validity = policy.maxEvidenceAgeSeconds ?? ReceiptVerifier.defaultEvidenceValidity
                if Date().timeIntervalSince(issued) > validity - min(60, validity / 2) { try await reconnect() }
            }
            guard attestation.claims.receiptKey != nil else {
                throw BlindAIClientError.invalidInput("this server's attested claims name no receipt key: it does not sign receipts")
            }
            parameters[ModelIdentityParameter.receipt] = .bool(true)
        }
        // The attestation the receipt will be checked against and saved with (a concurrent reconnect may replace the
        // session's while this request is in flight).
        let attested = attestation
        let ordered = inputs.sorted { $0.key < $1.key }
        let request = InferenceRequest(
            parameters: parameters,
            inputs: ordered.map { name, t in
                RequestInput(name: name, shape: t.shape.map(Int64.init), datatype: t.datatype.rawValue,
                              parameters: [BinaryDataParameter.size: .int(Int64(t.data.count))])
            },
            outputs: outputs?.map { RequestOutput(name: $0, parameters: [BinaryDataParameter.output: .bool(true)]) })
        let json = try JSONEncoder().encode(request)
        let (body, headerLength) = BinaryFraming.assemble(json: json, binary: ordered.map { $0.value.data })
        let response = try await self.request(
            .POST, "/v2/models/\(model)/infer",
            headers: [("Content-Type", "application/octet-stream"), (BinaryFraming.headerContentLength, String(headerLength))],
            body: .bytes(ByteBuffer(bytes: body)))
        let responseHeaderLength = response.headers.first(name: BinaryFraming.headerContentLength).flatMap { Int($0) }
        let decoded: (response: InferenceResponse, binary: [String: Data])
        do {
            decoded = try InferenceResponse.decode(body: response.body, headerLength: responseHeaderLength)
        } catch {
            throw BlindAIClientError.protocolViolation("inference response: \(error)")
        }
        var result: [String: Tensor] = [:]
        for output in decoded.response.outputs {
            guard let datatype = Tensor.DataType(rawValue: output.datatype) else {
                throw BlindAIClientError.protocolViolation("output '\(output.name)' has unknown datatype \(output.datatype)")
            }
            let shape = output.shape.map { Int($0) }
            do {
                if let binary = decoded.binary[output.name] {
                    result[output.name] = try Tensor(datatype: datatype, shape: shape, data: binary)
                } else if let data = output.data {
                    result[output.name] = try Tensor(datatype: datatype, shape: shape, json: data)
                } else {
                    throw BlindAIClientError.protocolViolation("output '\(output.name)' has no data")
                }
            } catch BlindAIClientError.invalidInput(let m) {
                throw BlindAIClientError.protocolViolation("output '\(output.name)': \(m)")
            }
        }
        let params = decoded.response.parameters ?? [:]
        let digest = params[ModelIdentityParameter.sha256]?.stringValue
        if let required = parameters[ModelIdentityParameter.requireSHA256]?.stringValue, digest != required {
            throw BlindAIClientError.protocolViolation("the server answered from model digest \(digest ?? "(none)"), not the required \(required)")
        }
        var file: ReceiptFile?
        if receipt {
            guard let payload = params[ModelIdentityParameter.receiptPayload]?.stringValue.flatMap({ Data(base64Encoded: $0) }),
                  let signature = params[ModelIdentityParameter.receiptSignature]?.stringValue.flatMap({ Data(base64Encoded: $0) })
            else {
                throw BlindAIClientError.protocolViolation("the server sent no receipt although one was asked for")
            }
            let signed = SignedReceipt(payload: payload, signature: signature)
            do {
                // The receipt must verify with the attested key and describe this exchange.
                let r = try signed.verify(expectedKey: attested.claims.receiptKey ?? "")
                try ReceiptVerifier.check(inputs, against: r.inputs, kind: "input", mismatch: .inputMismatch)
                try ReceiptVerifier.check(result, against: r.outputs, kind: "output", mismatch: .outputMismatch)
                guard r.model.sha256 == digest, r.inputs.count == inputs.count, r.outputs.count == result.count else {
                    throw ReceiptError(.malformed, "the receipt does not describe this request")
                }
            } catch {
                throw BlindAIClientError.protocolViolation("the server's receipt does not check: \(error)")
            }
            file = ReceiptFile(receipt: signed, evidence: attested.evidence)
        }
        return InferenceResult(outputs: result, modelName: decoded.response.modelName, modelVersion: decoded.response.modelVersion,
                               modelSHA256: digest, receipt: file)
    }
}

// MARK: - Session

/// One HTTP client (its connection pool) bound to one TLS key pin.
final class Session: Sendable {
    struct Response: Sendable {
        var status: Int
        var headers: HTTPHeaders
        var body: Data

        var errorMessage: String {
            if let e = try? JSONDecoder().decode(ErrorResponse.self, from: body) { return e.error }
            let text = String(decoding: body.prefix(200), as: UTF8.self)
            return text.isEmpty ? "no details" : text
        }
    }

    let http: HTTPClient
    let pin: TLSKeyPin
    private let closed = NIOLockedValueBox(false)

    init(configuration: BlindAIClient.Configuration) {
        var tls = TLSConfiguration.makeClientConfiguration()
        // Trust comes from attestation and the key pin (checked on every connection), not from a CA.
        tls.certificateVerification = .none
        tls.minimumTLSVersion = .tlsv12
        var config = HTTPClient.Configuration(tlsConfiguration: tls)
        config.httpVersion = .http1Only
        config.decompression = .disabled
        config.redirectConfiguration = .disallow
        // A refused connection must fail its request at once with the pin's error, not be retried.
        config.connectionPool.retryConnectionEstablishment = false
        config.timeout = HTTPClient.Configuration.Timeout(connect: Self.amount(configuration.connectTimeout))
        let pin = TLSKeyPin()
        self.pin = pin
        config.http1_1ConnectionDebugInitializer = { channel in pin.admit(channel: channel) }
        http = HTTPClient(eventLoopGroupProvider: .singleton, configuration: config)
    }

    deinit {
        // A client dropped without close(): release the connections in the background.
        if !closed.withLockedValue({ $0 }) {
            let http = self.http
            Task { try? await http.shutdown() }
        }
    }

    func shutdown() async {
        let wasClosed = closed.withLockedValue { c in
            defer { c = true }
            return c
        }
        if !wasClosed { try? await http.shutdown() }
    }

    static func amount(_ d: Duration) -> TimeAmount {
        let (s, atto) = d.components
        return .nanoseconds(s * 1_000_000_000 + atto / 1_000_000_000)
    }

    func send(address: ServerAddress, method: HTTPMethod, path: String, headers: [(String, String)], body: HTTPClientRequest.Body?,
              timeout: Duration, maxResponseBytes: Int) async throws -> Response {
        var request = HTTPClientRequest(url: "https://\(address.authority)\(path)")
        request.method = method
        for (k, v) in headers { request.headers.add(name: k, value: v) }
        if let body { request.body = body }
        do {
            let response = try await http.execute(request, timeout: Self.amount(timeout))
            let buffer = try await response.body.collect(upTo: maxResponseBytes)
            return Response(status: Int(response.status.code), headers: response.headers, body: Data(buffer.readableBytesView))
        } catch {
            throw Self.map(error, address: address)
        }
    }

    static func map(_ error: any Error, address: ServerAddress) -> BlindAIClientError {
        switch error {
        case let e as BlindAIClientError:
            return e
        case let e as PinViolation:
            if case .keyChanged(let pinned, let presented, _) = e {
                return .serverKeyChanged(pinnedSPKISHA256: pinned, presentedSPKISHA256: presented)
            }
            return .connection("\(address): \(e)")
        case is NIOTooManyBytesError:
            return .protocolViolation("the answer is larger than the client's limit")
        case let e as HTTPClientError where e == .deadlineExceeded:
            return .connection("\(address): the request timed out")
        case let e as IOError:
            return .connection("\(address): \(String(cString: strerror(e.errnoCode)).lowercased())")
        case let e as NIOSSLError:
            return .connection("\(address): TLS failed (\(e))")
        case let e as BoringSSLError:
            return .connection("\(address): TLS failed (\(e))")
        default:
            return .connection("\(address): \(error)")
        }
    }
}

// MARK: - Streamed upload body

/// The chunks of a model (from a file or memory) as the body stream of an upload, hashing them on the way and
/// reporting progress.
struct ModelChunks: AsyncSequence, Sendable {
    typealias Element = ByteBuffer

    enum Source: Sendable {
        case file(URL, size: Int64)
        case memory(Data)

        var size: Int64 {
            switch self {
            case .file(_, let size): return size
            case .memory(let d): return Int64(d.count)
            }
        }
    }

    let source: Source
    let chunkSize: Int
    let progress: (@Sendable (UploadProgress) -> Void)?
    /// Set to the SHA-256 (hex) of the whole body when the last chunk has been read.
    let digest: NIOLockedValueBox<String?>

    struct AsyncIterator: AsyncIteratorProtocol {
        let owner: ModelChunks
        var handle: FileHandle?
        var sent: Int64 = 0
        var hasher = SHA256()
        var finished = false

        mutating func next() async throws -> ByteBuffer? {
            if finished { return nil }
            let total = owner.source.size
            let chunk: Data
            switch owner.source {
            case .memory(let data):
                let start = data.startIndex + Int(sent)
                chunk = data[start..<Swift.min(start + owner.chunkSize, data.endIndex)]
            case .file(let url, _):
                if handle == nil {
                    do {
                        handle = try FileHandle(forReadingFrom: url)
                    } catch {
                        throw BlindAIClientError.invalidInput("cannot read \(url.path): \(error.localizedDescription)")
                    }
                }
                chunk = try handle?.read(upToCount: owner.chunkSize) ?? Data()
            }
            if chunk.isEmpty || sent + Int64(chunk.count) > total {
                finished = true
                try? handle?.close()
                guard sent == total, chunk.isEmpty else {
                    throw BlindAIClientError.invalidInput("the model file changed size while it was being uploaded")
                }
                return nil
            }
            hasher.update(data: chunk)
            sent += Int64(chunk.count)
            if sent == total {
                let hex = hasher.finalize().map { String(format: "%02x", $0) }.joined()
                owner.digest.withLockedValue { $0 = hex }
            }
            owner.progress?(UploadProgress(sent: sent, total: total))
            return ByteBuffer(bytes: chunk)
        }
    }

    func makeAsyncIterator() -> AsyncIterator { AsyncIterator(owner: self) }
}
