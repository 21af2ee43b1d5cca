import AsyncHTTPClient
import BlindAIProtocol
import BlindAIServer
import BlindAITensor
import Crypto
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Logging
import NIOCore
import NIOHTTP1
import NIOSSL
import ServiceLifecycle
import Testing

/// Runs `server` on a loopback port (TLS unless the server is plain HTTP) and hands the base URL and an
/// AsyncHTTPClient that trusts exactly the server's generated certificate.
func withLiveServer<T: Sendable>(_ server: InferenceServer, _ body: @Sendable (String, HTTPClient) async throws -> T) async throws -> T {
    let (ports, portCont) = AsyncStream<Int>.makeStream()
    let app = try server.makeApplication { channel in
        portCont.yield(channel.localAddress?.port ?? 0)
    }
    // Stopped by a graceful shutdown, not by cancelling the task: cancelling swift-nio's async server channel can
    // drop a connection it has accepted but not handed out yet, which traps ("Deinited NIOAsyncWriter without
    // calling finish()", apple/swift-nio#3481).
    var logger = Logger(label: "blindai.test")
    logger.logLevel = .critical
    let group = ServiceGroup(configuration: .init(services: [app], gracefulShutdownSignals: [], logger: logger))
    let serverTask = Task { try await group.run() }
    var iterator = ports.makeAsyncIterator()
    guard let port = await iterator.next() else { throw CancellationError() }
    var tls = TLSConfiguration.makeClientConfiguration()
    if let identity = server.tlsIdentity {
        tls.trustRoots = .certificates([try NIOSSLCertificate(bytes: identity.certificateDER, format: .der)])
        tls.certificateVerification = .fullVerification
    }
    let client = HTTPClient(eventLoopGroupProvider: .singleton, configuration: .init(tlsConfiguration: tls))
    let scheme = server.tlsIdentity == nil ? "http" : "https"
    do {
        let result = try await body("\(scheme)://localhost:\(port)", client)
        try await client.shutdown()
        await group.triggerGracefulShutdown()
        _ = await serverTask.result
        return result
    } catch {
        try? await client.shutdown()
        await group.triggerGracefulShutdown()
        _ = await serverTask.result
        throw error
    }
}

struct LiveResponse: Sendable {
    var status: Int
    var headers: HTTPHeaders
    var body: Data

    var error: String { (try? JSONDecoder().decode(ErrorResponse.self, from: body).error) ?? "<\(String(decoding: body, as: UTF8.self))>" }
    func decoded<T: Decodable>(_: T.Type) throws -> T { try JSONDecoder().decode(T.self, from: body) }
}

extension HTTPClient {
    func send(_ url: String, _ method: NIOHTTP1.HTTPMethod = .GET, headers: [(String, String)] = [], body: Data? = nil,
              stream: HTTPClientRequest.Body? = nil, timeout: TimeAmount = .seconds(30)) async throws -> LiveResponse {
        var request = HTTPClientRequest(url: url)
        request.method = method
        for (k, v) in headers { request.headers.add(name: k, value: v) }
        if let body { request.body = .bytes(ByteBuffer(bytes: body)) }
        if let stream { request.body = stream }
        let response = try await execute(request, timeout: timeout)
        let buffer = try await response.body.collect(upTo: 256 << 20)
        return LiveResponse(status: Int(response.status.code), headers: response.headers, body: Data(buffer: buffer))
    }
}

/// Chunks of `chunkSize` bytes, `count` times, then (optionally) a failure: a client that disconnects.
struct ChunkStream: AsyncSequence, Sendable {
    typealias Element = ByteBuffer
    let chunks: [[UInt8]]
    let failAtEnd: Bool
    struct Gone: Error {}
    struct AsyncIterator: AsyncIteratorProtocol {
        var index = 0
        let chunks: [[UInt8]]
        let failAtEnd: Bool
        mutating func next() async throws -> ByteBuffer? {
            if index == chunks.count {
                if failAtEnd { throw Gone() }
                return nil
            }
            defer { index += 1 }
            if index > 0 { try await Task.sleep(for: .milliseconds(5)) }
            return ByteBuffer(bytes: chunks[index])
        }
    }
    func makeAsyncIterator() -> AsyncIterator { AsyncIterator(chunks: chunks, failAtEnd: failAtEnd) }
}

func slowRequest(elements n: Int) -> (InferenceRequest, Data) {
    let x = rawBytes([Float](repeating: 1, count: n))
    let request = InferenceRequest(parameters: ["binary_data_output": .bool(true)],
                                   inputs: [RequestInput(name: "x", shape: [Int64(n)], datatype: "FP32", parameters: ["binary_data_size": .int(Int64(x.count))])])
    return (request, x)
}

/// A request for the `heavy` fixture: x is an all-ones FP32 [m, m] matrix (4 * m * m bytes).
func heavyRequest(side m: Int) -> (InferenceRequest, Data) {
    let x = rawBytes([Float](repeating: 1, count: m * m))
    let request = InferenceRequest(parameters: ["binary_data_output": .bool(true)],
                                   inputs: [RequestInput(name: "x", shape: [Int64(m), Int64(m)], datatype: "FP32", parameters: ["binary_data_size": .int(Int64(x.count))])])
    return (request, x)
}

func binaryBody(_ request: InferenceRequest, _ binary: [Data]) throws -> (Data, [(String, String)]) {
    let (b, n) = BinaryFraming.assemble(json: try JSONEncoder().encode(request), binary: binary)
    return (b, [(BinaryFraming.headerContentLength, String(n)), ("Content-Type", "application/octet-stream")])
}

@Suite(.serialized) struct LiveTests {
    /// Every endpoint over real TLS, the client trusting only the server's generated certificate.
    @Test func tlsEndToEnd() async throws {
        let server = try makeServer(keys: true, tls: true)
        try await withLiveServer(server) { base, client in
            #expect(try await client.send(base + "/v2/health/live").status == 200)
            #expect(try await client.send(base + "/v2/health/ready").status == 200)
            #expect(try await client.send(base + "/v2").decoded(ServerMetadataResponse.self).name == "blindai")
            let auth = [("Authorization", "Bearer \(Keys.alice)")]

            // Streamed upload (chunked, no Content-Length).
            let model = Array(try Fixture.data("add_relu"))
            let chunks = stride(from: 0, to: model.count, by: 50).map { Array(model[$0..<min($0 + 50, model.count)]) }
            let up = try await client.send(base + "/v2/repository/models/adder", .PUT, headers: auth,
                                           stream: .stream(ChunkStream(chunks: chunks, failAtEnd: false), length: .unknown))
            #expect(up.status == 201, "\(up.error)")
            #expect(try up.decoded(ModelUploadResponse.self).sha256 == sha256Hex(Data(model)))

            #expect(try await client.send(base + "/v2/models/adder", headers: auth).status == 200)
            #expect(try await client.send(base + "/v2/models/adder/ready", headers: auth).status == 200)
            let json = try JSONEncoder().encode(addRequest(id: "tls"))
            let r = try await client.send(base + "/v2/models/adder/infer", .POST, headers: auth, body: json)
            #expect(r.status == 200)
            let resp = try r.decoded(InferenceResponse.self)
            #expect(resp.id == "tls")
            #expect(floats(resp.outputs[1]) == [0, 0.5, 1.5])
            #expect(try await client.send(base + "/v2/models/adder/infer", .POST, body: json).status == 401)

            // Binary request and response.
            let a = rawBytes([Float(1), 2, 3]), b = rawBytes([Float(-5), -5, -5])
            let req = InferenceRequest(parameters: ["binary_data_output": .bool(true)], inputs: [
                RequestInput(name: "a", shape: [1, 3], datatype: "FP32", parameters: ["binary_data_size": .int(12)]),
                RequestInput(name: "b", shape: [1, 3], datatype: "FP32", parameters: ["binary_data_size": .int(12)]),
            ])
            let (payload, h) = try binaryBody(req, [a, b])
            let br = try await client.send(base + "/v2/models/adder/infer", .POST, headers: auth + h, body: payload)
            #expect(br.status == 200)
            let hl = Int(br.headers.first(name: BinaryFraming.headerContentLength) ?? "")
            let (_, outs) = try InferenceResponse.decode(body: br.body, headerLength: hl)
            #expect(outs["sum"] == rawBytes([Float(-4), -3, -2]))
            #expect(outs["relu"] == rawBytes([Float(0), 0, 0]))

            // Triton-style inline load, index, unload.
            let load = RepositoryModelRequest(parameters: ["file:1/model.onnx": .string(try Fixture.data("scale").base64EncodedString())])
            #expect(try await client.send(base + "/v2/repository/models/scaler/load", .POST, headers: auth, body: try JSONEncoder().encode(load)).status == 200)
            let idx = try await client.send(base + "/v2/repository/index", .POST, headers: auth).decoded([RepositoryIndexEntry].self)
            #expect(idx.map(\.name) == ["adder", "scaler"])
            #expect(try await client.send(base + "/v2/repository/models/scaler/unload", .POST, headers: auth).status == 200)
            #expect(try await client.send(base + "/v2/attestation", .POST, body: Data(#"{"nonce":"AAAA"}"#.utf8)).status == 501)
        }
    }

    @Test func untrustedClientsAreRefused() async throws {
        let server = try makeServer(tls: true)
        try await withLiveServer(server) { base, _ in
            let strict = HTTPClient(eventLoopGroupProvider: .singleton)
            await #expect(throws: (any Error).self) { _ = try await strict.send(base + "/v2/health/live", timeout: .seconds(1)) }
            try await strict.shutdown()
        }
    }

    /// A streamed upload over the model limit is cut off with 413 without trusting any declared length, and an
    /// upload whose client disconnects registers nothing and leaves the previous version.
    @Test func streamingLimitsAndDisconnects() async throws {
        let model = Array(try Fixture.data("add_relu"))
        let server = try makeServer { $0.maxModelBytes = 4096 }
        try await withLiveServer(server) { base, client in
            #expect(try await client.send(base + "/v2/repository/models/m", .PUT, body: Data(model)).status == 201)

            let big = ChunkStream(chunks: Array(repeating: [UInt8](repeating: 8, count: 1000), count: 10), failAtEnd: false)
            do {
                let r = try await client.send(base + "/v2/repository/models/m", .PUT, stream: .stream(big, length: .unknown))
                #expect(r.status == 413)
            } catch {
                // The server may close the connection before the client finishes sending: also a refusal.
            }
            let lying = ChunkStream(chunks: Array(repeating: [UInt8](repeating: 8, count: 1000), count: 10), failAtEnd: false)
            do {
                let r = try await client.send(base + "/v2/repository/models/m", .PUT, stream: .stream(lying, length: .known(Int64(100))))
                #expect(r.status >= 400)
            } catch {}

            let replacement = Array(try Fixture.data("scale"))
            let broken = ChunkStream(chunks: [Array(replacement.prefix(30))], failAtEnd: true)
            await #expect(throws: (any Error).self) {
                _ = try await client.send(base + "/v2/repository/models/m", .PUT, stream: .stream(broken, length: .known(Int64(replacement.count))))
            }
            // The server notices the disconnect and gives the name back.
            for _ in 0..<100 where await server.repository.uploadsInProgress > 0 {
                try await Task.sleep(for: .milliseconds(20))
            }
            #expect(await server.repository.uploadsInProgress == 0)
            let meta = try await client.send(base + "/v2/models/m").decoded(ModelMetadataResponse.self)
            #expect(meta.versions == ["1"])
            #expect(meta.inputs.map(\.name) == ["a", "b"])
        }
    }

    /// Timeouts cancel a running inference; a full pool answers 429; health checks stay fast while every
    /// worker computes.
    @Test func saturationTimeoutAndHealthUnderLoad() async throws {
        let server = try makeServer { $0.concurrentInferences = 2; $0.queueLength = 0; $0.requestTimeout = .seconds(30) }
        try await server.repository.loadFixture("heavy", as: "heavy")
        // Size the input so that one run takes a while on this machine (and build).
        let m = try await calibrate(server)
        try await withLiveServer(server) { base, client in
            let (req, x) = heavyRequest(side: m)
            let (payload, h) = try binaryBody(req, [x])
            let running = (0..<2).map { _ in
                Task { try await client.send(base + "/v2/models/heavy/infer", .POST, headers: h, body: payload, timeout: .seconds(60)) }
            }
            for _ in 0..<2000 where server.inferencePool.runningCount < 2 { try await Task.sleep(for: .milliseconds(5)) }
            #expect(server.inferencePool.runningCount == 2)
            // Both workers busy and no queue: the next request is refused at once.
            let refused = try await client.send(base + "/v2/models/heavy/infer", .POST, headers: h, body: payload)
            #expect(refused.status == 429)
            #expect(refused.headers.first(name: "retry-after") == "1")
            // Health checks answer while both workers compute.
            var worst = Duration.zero
            for _ in 0..<5 {
                let start = ContinuousClock.now
                #expect(try await client.send(base + "/v2/health/ready").status == 200)
                worst = max(worst, ContinuousClock.now - start)
            }
            #expect(server.inferencePool.runningCount > 0, "the inferences finished before the health checks: calibrate longer")
            #expect(worst < .seconds(2), "health check took \(worst) under load")
            for t in running { #expect(try await t.value.status == 200) }
        }
        await server.shutdown()

        let strict = try makeServer { $0.requestTimeout = .milliseconds(150) }
        try await strict.repository.loadFixture("heavy", as: "heavy")
        try await withLiveServer(strict) { base, client in
            let (req, x) = heavyRequest(side: Int(Double(m) * 1.6))  // about 4 times the work
            let (payload, h) = try binaryBody(req, [x])
            let start = ContinuousClock.now
            let r = try await client.send(base + "/v2/models/heavy/infer", .POST, headers: h, body: payload)
            let took = ContinuousClock.now - start
            #expect(r.status == 503)
            #expect(r.error.contains("timeout"))
            #expect(took < .seconds(3), "the run was not stopped: \(took)")
        }
        await strict.shutdown()
    }

    /// Finds the side m of the `heavy` fixture's input for which one run takes about 1.5 seconds here. The run
    /// time grows as m³ for 4·m² bytes of input, so the request stays far under the server's body limit on a
    /// release build too (the `slow` fixture's input grew past 64 MiB there).
    func calibrate(_ server: InferenceServer) async throws -> Int {
        let model = try await server.repository.lookup(name: "heavy", version: nil, principal: .open)
        var m = 32
        while true {
            let x = try Tensor(zeros: .float32, shape: [m, m])
            let start = ContinuousClock.now
            _ = try model.model.run(["x": x])
            let took = ContinuousClock.now - start
            if took > .milliseconds(300) || m >= 2048 {
                let seconds = max(Double(took.components.attoseconds) * 1e-18 + Double(took.components.seconds), 0.001)
                return max(Int(Double(m) * cbrt(1.5 / seconds)), 16)
            }
            m *= 2
        }
    }

    /// HummingbirdTesting's live framework (a real socket, plain HTTP): upload, inference, limits.
    @Test func hummingbirdLiveClient() async throws {
        let server = try makeServer { $0.maxTensorElements = 1000 }
        try await server.makeApplication().test(.live) { client throws in
            #expect(try await client.upload("add_relu", as: "m").status == .created)
            let r = try await client.infer("m", addRequest(id: "live"))
            #expect(r.status == .ok)
            #expect(try decode(InferenceResponse.self, r).id == "live")
            try await client.execute(uri: "/v2/health/live", method: .get) { r throws in #expect(r.status == .ok) }
            // A shape over the tensor limits, found once the (small) body is read: 413 on a live socket.
            let bomb = #"{"inputs":[{"name":"a","shape":[100000,100000],"datatype":"FP32","data":[1]},{"name":"b","shape":[1,3],"datatype":"FP32","data":[1,2,3]}]}"#
            let big = try await client.execute(uri: "/v2/models/m/infer", method: .post, body: body(bomb))
            #expect(big.status == .contentTooLarge)
            #expect(errorMessage(big).contains("over the limit"))
        }
    }

    @Test func metricsEndpointHasNoData() async throws {
        let server = try makeServer()
        try await server.makeApplication().test(.router) { client throws in
            try await client.upload("add_relu", as: "secret-model-name")
            _ = try await client.infer("secret-model-name", addRequest())
        }
        try await server.makeMetricsApplication(port: 0).test(.router) { client throws in
            let r = try await client.execute(uri: "/metrics", method: .get)
            let text = String(buffer: r.body)
            #expect(text.contains("blindai_http_requests_total"))
            #expect(text.contains("blindai_inferences_total"))
            #expect(text.contains("blindai_models_loaded 1"))
            #expect(text.contains("blindai_inference_queue_depth"))
            #expect(text.contains("blindai_inference_duration_seconds_count 1"))
            #expect(text.contains("blindai_inference_compute_seconds_count 1"))
            #expect(!text.contains("secret-model-name"))
            #expect(text.contains(#"endpoint="/v2/models/{name}/infer""#) || text.contains("/v2/models/:name/infer"))
        }
    }
}

func sha256Hex(_ d: Data) -> String {
    SHA256.hash(data: d).map { String(format: "%02x", $0) }.joined()
}
