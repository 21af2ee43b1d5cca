import BlindAIGraph
import BlindAIONNX
import BlindAIProtocol
import BlindAIReceipts
import BlindAITensor
import Crypto
import Foundation
import Logging
import NIOCore

/// The inference server without its HTTP transport: models, workers, access rules, limits and metrics.
/// `HTTPServer.swift` maps routes onto these operations and their errors onto HTTP statuses.
public final class InferenceServer: Sendable {
    public let configuration: ServerConfiguration
    public let repository: ModelRepository
    /// Inference (request decoding, run, response encoding).
    public let inferencePool: WorkerPool
    /// Model loading (parse and compile), separate so that loading never takes a thread from inference.
    public let loadPool: WorkerPool
    public let metrics: ServerMetrics
    public let authenticator: Authenticator
    public let tlsIdentity: TLSIdentity?
    public let attestation: (any AttestationProvider)?
    /// Signs inference receipts (docs/receipts.md). Generated in memory at start, inside the TEE; its public key is
    /// in the attested claims document.
    public let receiptKey = ReceiptKey()
    /// The threads that call the attestation provider (its calls block), with their own admission limit.
    public let attestationExecutor: BlockingExecutor
    /// Request body bytes held in memory by all requests together.
    public let bodyBudget: BodyBudget
    let logger: Logger

    public init(configuration: ServerConfiguration, apiKeys: APIKeyStore?, tlsIdentity: TLSIdentity?,
                attestation: (any AttestationProvider)? = nil, metrics: ServerMetrics = ServerMetrics(),
                logger: Logger = Logger(label: "blindai.server")) {
        self.configuration = configuration
        let limits = configuration.limits
        self.metrics = metrics
        self.repository = ModelRepository(limits: limits) { count, bytes in metrics.models(count: count, bytes: bytes) }
        self.inferencePool = WorkerPool(name: "blindai-infer", threads: limits.concurrentInferences, maxQueued: limits.queueLength)
        self.loadPool = WorkerPool(name: "blindai-load", threads: 1, maxQueued: max(limits.concurrentUploads - 1, 0))
        self.authenticator = Authenticator(keys: apiKeys)
        self.tlsIdentity = tlsIdentity
        self.attestation = attestation
        self.attestationExecutor = BlockingExecutor(name: "blindai-attest", threads: limits.attestationThreads,
                                                    maxQueued: limits.attestationQueueLength)
        self.bodyBudget = BodyBudget(limit: limits.maxBufferedBodyBytes)
        self.logger = logger
        metrics.models(count: 0, bytes: 0)
    }

    /// Stops the worker pools (after the HTTP server has stopped).
    public func shutdown() async {
        await inferencePool.shutdown()
        await loadPool.shutdown()
        attestationExecutor.shutdown()
    }

    var limits: ServerLimits { configuration.limits }

    func updatePoolMetrics() {
        metrics.pool(waiting: inferencePool.waitingCount, running: inferencePool.runningCount)
    }

    // MARK: Inference

    /// Reads a whole request body, counting against `limit` as it arrives and holding what it buffers in `lease`
    /// (the server's body budget: 503 when other requests hold it, 413 when this one alone needs more).
    /// `expected` (a declared length: a hint only, never trusted) sizes the buffer up front, at most `limit`.
    /// With a declared length and `alignedAt`, the bytes are gathered in one allocation placed so that the byte at
    /// that offset (where an inference request's binary tensors start) is 64-byte aligned: the engine can then use
    /// input tensors in place instead of copying them out of the body (`TensorStorage.borrowing`).
    func collectRequestBody<S: AsyncSequence>(_ body: S, limit: Int, lease: BodyBudget.Lease, expected: Int? = nil,
                                              alignedAt offset: Int? = nil) async throws -> Data
    where S.Element == ByteBuffer {
        if let expected, let offset, expected > 0, expected <= limit, offset >= 0, offset <= expected {
            try lease.grow(by: expected)
            return try await collectAligned(body, length: expected, alignedAt: offset)
        }
        var data = Data()
        if let expected, expected > 0 {
            try lease.grow(by: min(expected, limit))
            data.reserveCapacity(min(expected, limit))
        }
        do {
            for try await chunk in body {
                guard data.count + chunk.readableBytes <= limit else {
                    throw ServerError(.payloadTooLarge, "the request body is over the limit of \(limit) bytes")
                }
                try lease.grow(by: data.count + chunk.readableBytes - lease.bytes)
                data.append(contentsOf: chunk.readableBytesView)
            }
        } catch let e as ServerError {
            throw e
        } catch {
            throw ServerError(.badRequest, "the request body could not be read")
        }
        return data
    }

    private func collectAligned<S: AsyncSequence>(_ body: S, length: Int, alignedAt offset: Int) async throws -> Data
    where S.Element == ByteBuffer {
        let pad = (64 - offset % 64) % 64
        let base = UnsafeMutableRawPointer.allocate(byteCount: pad + length, alignment: 64)
        var count = 0
        do {
            for try await chunk in body {
                // HTTP framing holds the body to its declared length; checked again here all the same.
                guard chunk.readableBytes <= length - count else {
                    throw ServerError(.badRequest, "the request body is longer than its declared length")
                }
                chunk.withUnsafeReadableBytes { raw in
                    if let b = raw.baseAddress { (base + pad + count).copyMemory(from: b, byteCount: raw.count) }
                }
                count += chunk.readableBytes
            }
        } catch let e as ServerError {
            base.deallocate()
            throw e
        } catch {
            base.deallocate()
            throw ServerError(.badRequest, "the request body could not be read")
        }
        return Data(bytesNoCopy: base + pad, count: count, deallocator: .custom { _, _ in base.deallocate() })
    }

    /// Runs one inference request on `model`: the body (413 over the limit, 503 over the body budget), then
    /// admission (429 when saturated: checked before the body is read too, but a place is taken only once the
    /// body is complete, so a slow client holds no worker place), then decoding, the run and encoding on a
    /// worker thread, within the request timeout counted from admission.
    /// `connectionClosed` turns true when the client has gone away: a queued job then never starts and a running
    /// one stops at its next node.
    public func infer<S: AsyncSequence>(model: LoadedModel, headerLength: String?, declaredLength: Int? = nil, body: S,
                                        connectionClosed: @escaping @Sendable () -> Bool = { false }) async throws -> (body: Data, headerLength: Int?)
    where S.Element == ByteBuffer {
        let start = ContinuousClock.now
        if let declaredLength, declaredLength > limits.maxRequestBytes {
            metrics.inference(outcome: "too_large", seconds: 0)
            throw ServerError(.payloadTooLarge, "the request body is \(declaredLength) bytes, over the limit of \(limits.maxRequestBytes) bytes")
        }
        do {
            try inferencePool.checkAdmission()
        } catch {
            metrics.inference(outcome: "saturated", seconds: 0)
            throw error
        }
        var reservation: WorkerPool.Reservation?
        defer { updatePoolMetrics() }
        do {
            let hl: Int?
            if let headerLength {
                guard let n = Int(headerLength.trimmingCharacters(in: .whitespaces)), n >= 0 else {
                    throw ServerError.badRequest("\(BinaryFraming.headerContentLength) must be a non-negative integer")
                }
                hl = n
            } else {
                hl = nil
            }
            let lease = bodyBudget.lease()
            let data = try await collectRequestBody(body, limit: limits.maxRequestBytes, lease: lease, expected: declaredLength, alignedAt: hl)
            let admitted = try inferencePool.reserve()
            reservation = admitted
            updatePoolMetrics()
            let deadline = ContinuousClock.now + limits.requestTimeout
            let tensorLimits = limits.tensorLimits
            let result = try await inferencePool.run(admitted, deadline: deadline) { flag in
                if connectionClosed() { throw ServerError(.clientClosed, "the client closed the connection") }
                return try Self.runInference(model: model, body: data, headerLength: hl, limits: tensorLimits, deadline: deadline,
                                             receiptKey: self.receiptKey,
                                             isCancelled: { flag.isCancelled || connectionClosed() }, clientGone: connectionClosed,
                                             computed: { [metrics = self.metrics] in metrics.computation(seconds: $0) })
            }
            metrics.inference(outcome: "ok", seconds: Self.seconds(since: start))
            withExtendedLifetime(lease) {}
            return result
        } catch {
            reservation?.release()
            let e = ServerError.wrap(error)
            metrics.inference(outcome: Self.outcome(e), seconds: Self.seconds(since: start))
            throw e
        }
    }

    static func outcome(_ e: ServerError) -> String {
        switch e.code {
        case .payloadTooLarge: "too_large"
        case .timeout: "timeout"
        case .clientClosed: "client_closed"
        case .tooManyRequests: "saturated"
        case .badRequest, .notFound, .unauthorized, .forbidden, .modelDigestMismatch, .operatorModel: "client_error"
        default: "error"
        }
    }

    static func seconds(since start: ContinuousClock.Instant) -> Double {
        let d = ContinuousClock.now - start
        return Double(d.components.seconds) + Double(d.components.attoseconds) * 1e-18
    }

    /// The CPU-bound part of an inference, run on a worker thread.
    static func runInference(model: LoadedModel, body: Data, headerLength: Int?, limits: TensorLimits,
                             deadline: ContinuousClock.Instant, receiptKey: ReceiptKey? = nil, isCancelled: @escaping @Sendable () -> Bool,
                             clientGone: @Sendable () -> Bool = { false },
                             computed: (Double) -> Void = { _ in }) throws -> (body: Data, headerLength: Int?) {
        guard ContinuousClock.now < deadline else {
            throw ServerError(.timeout, "the request waited longer than the request timeout")
        }
        let request: InferenceRequest
        let slices: [String: Data]
        do {
            let (json, binary) = try BinaryFraming.split(body, headerLength: headerLength)
            request = try JSONDecoder().decode(InferenceRequest.self, from: json)
            slices = try BinaryFraming.slices(of: binary, sizes: request.binarySizes)
        } catch let e as ProtocolError {
            throw ServerError.badRequest(e.message)
        } catch let e as DecodingError {
            throw ServerError.badRequest("malformed inference request: \(describe(e))")
        }
        let identity = try ModelIdentityRequest(request.parameters, receiptsAvailable: receiptKey != nil)
        if let required = identity.requiredSHA256, required != model.sha256 {
            throw ServerError(.modelDigestMismatch, "model '\(model.name)' (version \(model.versionString)) has SHA-256 \(model.sha256), not the "
                              + "required \(required): it was replaced; nothing was run")
        }
        let feeds = try TensorCoding.inputs(of: request, binary: slices, model: model.model.inputs, limits: limits)
        let context = ExecutionContext(limits: limits, isCancelled: { isCancelled() || ContinuousClock.now >= deadline })
        let results: [String: Tensor]
        do {
            let started = ContinuousClock.now
            results = try model.model.run(feeds, context: context)
            computed(Self.seconds(since: started))
        } catch let e as EngineError where e.code == .cancelled {
            if ContinuousClock.now >= deadline {
                throw ServerError(.timeout, "the inference exceeded the request timeout and was stopped")
            }
            if clientGone() { throw ServerError(.clientClosed, "the inference was stopped: the client closed the connection") }
            throw ServerError(.unavailable, "the inference was stopped: the server is cancelling the request")
        } catch let e as EngineError {
            throw ServerError(engine: e)
        }
        let (outputs, binary) = try TensorCoding.outputs(results, request: request, model: model.model.outputs)
        var parameters: Parameters = [ModelIdentityParameter.sha256: .string(model.sha256)]
        if identity.wantsReceipt, let receiptKey {
            let receipt = Receipt(
                model: .init(name: model.name, version: model.versionString, sha256: model.sha256),
                inputs: feeds.map { Receipt.Tensor(name: $0.key, sha256: TensorCoding.digest($0.value, name: $0.key)) },
                outputs: try outputs.map { o in
                    guard let t = results[o.name] else { throw ServerError(.internal, "internal error") }
                    return Receipt.Tensor(name: o.name, sha256: TensorCoding.digest(t, name: o.name))
                },
                requestId: request.id, issuedAt: Date(), receiptKey: receiptKey.publicKey)
            let signed = try receiptKey.sign(receipt)
            parameters[ModelIdentityParameter.receiptPayload] = .string(signed.payload.base64EncodedString())
            parameters[ModelIdentityParameter.receiptSignature] = .string(signed.signature.base64EncodedString())
        }
        let response = InferenceResponse(modelName: model.name, modelVersion: model.versionString, id: request.id, parameters: parameters,
                                         outputs: outputs)
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.withoutEscapingSlashes]
        let json = try encoder.encode(response)
        if binary.isEmpty { return (json, nil) }
        let (b, n) = BinaryFraming.assemble(json: json, binary: binary)
        return (b, n)
    }

    /// A decoding error in words, with the path of the offending field but never its value.
    static func describe(_ e: DecodingError) -> String {
        func path(_ c: [any CodingKey]) -> String {
            c.isEmpty ? "the body" : c.map { $0.intValue.map { "[\($0)]" } ?? ".\($0.stringValue)" }.joined()
        }
        switch e {
        case .keyNotFound(let key, let c): return "missing field '\(key.stringValue)' in \(path(c.codingPath))"
        case .typeMismatch(_, let c): return "wrong type at \(path(c.codingPath))"
        case .valueNotFound(_, let c): return "missing value at \(path(c.codingPath))"
        case .dataCorrupted(let c): return c.codingPath.isEmpty ? "not valid JSON" : "invalid value at \(path(c.codingPath))"
        @unknown default: return "invalid JSON"
        }
    }

    // MARK: Upload

    /// Streams a model upload into memory (counting bytes against the model limit and the body budget as they
    /// arrive, hashing on the way), then takes a load slot and the name, validates, compiles (on the load pool)
    /// and registers it. Rights, capacity and free slots are checked before any byte is read, but nothing is
    /// reserved until the body is complete: a slow client holds no upload slot and no name. Any failure,
    /// including the client going away, registers nothing and leaves the previous version of the name in place.
    public func upload<S: AsyncSequence>(name: String, principal: Principal, shared: Bool?, declaredLength: Int?, body: S) async throws -> ModelUploadResponse
    where S.Element == ByteBuffer {
        var machine = UploadStateMachine(maxBytes: limits.maxModelBytes, declaredLength: declaredLength)
        do {
            if case .abort(let e)? = machine.initialAction { throw e }
            try await repository.checkUpload(name: name, principal: principal, shared: shared)
            try checkLoadSlot()
        } catch {
            metrics.upload(outcome: ServerError.wrap(error).code.rawValue)
            throw error
        }
        let lease = bodyBudget.lease()
        var data = Data()
        var hasher = SHA256()
        do {
            // Content-Length is a hint only: reserve at most 64 MiB up front, grow as bytes really arrive.
            let initial = declaredLength.map { min($0, limits.maxModelBytes, 64 << 20) } ?? 0
            try lease.grow(by: initial)
            data.reserveCapacity(initial)
            do {
                for try await chunk in body {
                    switch machine.received(chunk.readableBytes) {
                    case .store:
                        try lease.grow(by: data.count + chunk.readableBytes - lease.bytes)
                        chunk.withUnsafeReadableBytes { raw in
                            hasher.update(bufferPointer: raw)
                            data.append(contentsOf: raw)
                        }
                    case .abort(let e): throw e
                    default: throw ServerError(.internal, "internal error")
                    }
                }
            } catch let e as ServerError {
                throw e
            } catch {
                throw ServerError(.badRequest, "the upload was interrupted")
            }
        } catch {
            let e = ServerError.wrap(error)
            _ = machine.interrupted(e)
            uploadFailed(name: name, principal: principal, e)
            throw e
        }
        let digest = Self.hex(hasher.finalize())
        return try await install(name: name, principal: principal, shared: shared, machine: &machine, data: data, sha256: digest, lease: lease)
    }

    static func hex(_ digest: SHA256.Digest) -> String {
        digest.map { String(format: "%02x", $0) }.joined()
    }

    /// 429 when every load slot is taken now (checked before reading a body; `install` takes the slot).
    private func checkLoadSlot() throws {
        do { try loadPool.checkAdmission() } catch { throw uploadSlotError(error) }
    }

    private func reserveLoadSlot() throws -> WorkerPool.Reservation {
        do { return try loadPool.reserve() } catch { throw uploadSlotError(error) }
    }

    private func uploadSlotError(_ error: any Error) -> ServerError {
        let e = ServerError.wrap(error)
        guard e.code == .tooManyRequests else { return e }
        return ServerError(.tooManyRequests, "too many uploads in progress (at most \(limits.concurrentUploads)); retry later")
    }

    private func uploadFailed(name: String, principal: Principal, _ e: ServerError) {
        metrics.upload(outcome: e.code.rawValue)
        logger.info("model upload failed", metadata: ["model": "\(name)", "key": "\(principal)", "code": "\(e.code.rawValue)"])
    }

    /// A complete model body (`machine` has received it): takes a load slot (429) and the name (409 while another
    /// upload of it by the same namespace is being compiled), then validates, compiles and registers it. `lease`
    /// holds the body's bytes in the body budget until the model is compiled.
    private func install(name: String, principal: Principal, shared: Bool?, machine: inout UploadStateMachine, data: Data,
                         sha256: String, lease: BodyBudget.Lease) async throws -> ModelUploadResponse {
        let reservation: WorkerPool.Reservation
        let ticket: ModelRepository.UploadTicket
        do {
            reservation = try reserveLoadSlot()
        } catch {
            let e = ServerError.wrap(error)
            _ = machine.interrupted(e)
            uploadFailed(name: name, principal: principal, e)
            throw e
        }
        do {
            ticket = try await repository.beginUpload(name: name, principal: principal, shared: shared)
        } catch {
            reservation.release()
            let e = ServerError.wrap(error)
            _ = machine.interrupted(e)
            uploadFailed(name: name, principal: principal, e)
            throw e
        }
        metrics.uploads.record(await repository.uploadsInProgress)
        do {
            let response = try await finishUpload(&machine, data: data, sha256: sha256, ticket: ticket, reservation: reservation, shared: shared)
            metrics.uploads.record(await repository.uploadsInProgress)
            withExtendedLifetime(lease) {}
            return response
        } catch {
            let e = ServerError.wrap(error)
            _ = machine.interrupted(e)
            reservation.release()
            await repository.abort(ticket)
            metrics.uploads.record(await repository.uploadsInProgress)
            uploadFailed(name: name, principal: principal, e)
            throw e
        }
    }

    /// validating → loading → registered, driven by the state machine.
    private func finishUpload(_ machine: inout UploadStateMachine, data: Data, sha256: String, ticket: ModelRepository.UploadTicket,
                              reservation: WorkerPool.Reservation, shared: Bool?) async throws -> ModelUploadResponse {
        guard machine.bodyEnded() == .validate else { try machine.throwIfFailed(); throw ServerError(.internal, "internal error") }
        guard machine.validated(UploadValidator.check(firstBytes: data.prefix(1))) == .load else { try machine.throwIfFailed(); throw ServerError(.internal, "internal error") }
        let options = limits.planOptions
        var loaded: ONNXModel?
        var loadError: ServerError?
        do {
            loaded = try await loadPool.run(reservation) { _ in try ONNXModel(serialized: data, options: options) }
        } catch {
            loadError = ServerError.wrap(error)
        }
        guard machine.loaded(loadError) == .register, let model = loaded else {
            try machine.throwIfFailed()
            throw ServerError(.internal, "internal error")
        }
        let committed: (LoadedModel, replaced: Bool)
        do {
            committed = try await repository.commit(ticket, model: model, sha256: sha256, byteSize: data.count, shared: shared)
        } catch {
            _ = machine.registered(ServerError.wrap(error))
            throw error
        }
        _ = machine.registered(nil)
        let (entry, replaced) = committed
        metrics.upload(outcome: "ok")
        logger.info("model loaded", metadata: [
            "model": "\(entry.name)", "version": "\(entry.version)", "sha256": "\(entry.sha256)", "bytes": "\(entry.byteSize)",
            "owner": "\(entry.owner ?? "-")", "shared": "\(entry.shared)", "replaced": "\(replaced)",
        ])
        return ModelUploadResponse(name: entry.name, version: entry.versionString, sha256: entry.sha256, size: entry.byteSize,
                                   shared: entry.shared, replaced: replaced, inputs: entry.inputs, outputs: entry.outputs)
    }

    /// Triton's `load`: a JSON body whose `parameters` may hold the model inline (`file:<path>.onnx`, base64).
    /// Without a file the model must already be loaded (nothing to reload from: models live in memory only).
    public func inlineLoad<S: AsyncSequence>(name: String, principal: Principal, body: S) async throws -> ModelUploadResponse
    where S.Element == ByteBuffer {
        guard principal.isAuthenticated else { throw ServerError(.unauthorized, "loading a model needs an API key") }
        try checkLoadSlot()
        let lease = bodyBudget.lease()
        let raw = try await collectRequestBody(body, limit: limits.maxInlineLoadBytes, lease: lease)
        let maxModel = limits.maxModelBytes
        // Decoding a large base64 JSON body is CPU work: do it on the load pool, once the body is complete. Its
        // copies (the base64 string, then the model) count against the body budget with the body.
        let decodeReservation = try reserveLoadSlot()
        let parsed: (file: Data?, shared: Bool?) = try await loadPool.run(decodeReservation) { _ in
            try lease.grow(by: raw.count)
            let request: RepositoryModelRequest
            if raw.allSatisfy({ $0 == 0x20 || $0 == 0x0A || $0 == 0x0D || $0 == 0x09 }) {
                request = RepositoryModelRequest()
            } else {
                do {
                    request = try JSONDecoder().decode(RepositoryModelRequest.self, from: raw)
                } catch let e as DecodingError {
                    throw ServerError.badRequest("malformed load request: \(Self.describe(e))")
                }
            }
            let params = request.parameters ?? [:]
            let files = params.filter { $0.key.hasPrefix("file:") }
            let shared = try Self.sharedParameter(params)
            guard !files.isEmpty else { return (nil, shared) }
            guard files.count == 1, let (key, value) = files.first, key.hasSuffix(".onnx") else {
                throw ServerError.badRequest("give exactly one file parameter, 'file:<path>.onnx' (for example 'file:1/model.onnx')")
            }
            guard let b64 = value.stringValue else { throw ServerError.badRequest("'\(key)' must be a base64 string") }
            guard b64.utf8.count / 4 * 3 <= maxModel + 3 else {
                throw ServerError(.payloadTooLarge, "the model is over the limit of \(maxModel) bytes")
            }
            guard let bytes = Data(base64Encoded: b64) else {
                throw ServerError.badRequest("'\(key)' is not valid base64")
            }
            return (bytes, shared)
        }
        guard let file = parsed.file else {
            let m = try await repository.existingForLoad(name: name, principal: principal)
            return ModelUploadResponse(name: m.name, version: m.versionString, sha256: m.sha256, size: m.byteSize, shared: m.shared,
                                       replaced: false, inputs: m.inputs, outputs: m.outputs)
        }
        lease.shrink(by: raw.count - file.count)
        var machine = UploadStateMachine(maxBytes: maxModel, declaredLength: file.count)
        if case .abort(let e) = machine.received(file.count) {
            uploadFailed(name: name, principal: principal, e)
            throw e
        }
        let digest = Self.hex(SHA256.hash(data: file))
        return try await install(name: name, principal: principal, shared: parsed.shared, machine: &machine, data: file, sha256: digest, lease: lease)
    }

    /// The `shared` upload parameter: `shared=true|false`, or `visibility=shared|private`.
    static func sharedParameter(_ params: [String: ParameterValue]) throws -> Bool? {
        if let v = params["shared"] {
            guard let b = v.boolValue else { throw ServerError.badRequest("'shared' must be true or false") }
            return b
        }
        if let v = params["visibility"] {
            switch v.stringValue?.lowercased() {
            case "shared": return true
            case "private": return false
            default: throw ServerError.badRequest("'visibility' must be 'shared' or 'private'")
            }
        }
        return nil
    }

    public func unload(name: String, principal: Principal) async throws {
        let m = try await repository.unload(name: name, principal: principal)
        logger.info("model unloaded", metadata: ["model": "\(m.name)", "version": "\(m.version)", "by": "\(principal)"])
    }

    // MARK: Attestation

    public func attestationEvidence(nonceBase64: String) async throws -> AttestationEvidence {
        guard let attestation else {
            throw ServerError(.notImplemented, "attestation is not configured on this server")
        }
        guard let tlsIdentity else {
            throw ServerError(.notImplemented, "attestation needs TLS: this server runs plain HTTP")
        }
        guard let nonce = Data(base64Encoded: nonceBase64), nonce.count == AttestationRequest.nonceLength else {
            throw ServerError.badRequest("'nonce' must be the base64 of exactly \(AttestationRequest.nonceLength) bytes")
        }
        let tls = tlsIdentity.publicInfo
        do {
            // The providers block their thread (configfs-tsm, ioctl, the host's quote service): on the executor's
            // own threads, with its own admission limit (429 beyond it).
            let claims = ServerClaims(
                operatorModels: await repository.operatorModels.map { .init(name: $0.name, version: $0.versionString, sha256: $0.sha256) },
                receiptKey: receiptKey.publicKey)
            return try await attestationExecutor.run { try await attestation.evidence(nonce: Array(nonce), tls: tls, claims: claims) }
        } catch let e as ServerError {
            throw e
        } catch {
            logger.error("attestation provider failed", metadata: ["error_type": "\(type(of: error))"])
            throw ServerError(.internal, "the attestation provider failed")
        }
    }
}

extension UploadStateMachine {
    func throwIfFailed() throws {
        if case .failed(let e) = state { throw e }
    }
}

