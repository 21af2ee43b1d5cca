import BlindAIONNX
import BlindAIProtocol
import BlindAIServer
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Logging
import NIOCore

/// Helpers shared by the server tests.
enum Fixture {
    static func url(_ name: String) -> URL {
        guard let u = Bundle.module.url(forResource: name, withExtension: "onnx", subdirectory: "Fixtures") else {
            fatalError("missing fixture \(name).onnx (run scripts/make-server-fixtures.py)")
        }
        return u
    }

    static func data(_ name: String) throws -> Data { try Data(contentsOf: url(name)) }
}

enum Keys {
    static let alice = "alice-secret-0123456789"
    static let bob = "bob-secret-0123456789ab"
    static let admin = "admin-secret-0123456789"
    static let file = """
        # test keys
        alice:\(alice)
        bob:\(bob)
        root:\(admin):admin
        """

    static func store() throws -> APIKeyStore { try APIKeyStore(parsing: file) }
}

func makeServer(keys: Bool = false, tls: Bool = false, attestation: (any AttestationProvider)? = nil,
                _ adjust: (inout ServerLimits) -> Void = { _ in }) throws -> InferenceServer {
    var c = ServerConfiguration()
    c.host = "127.0.0.1"
    c.port = 0
    c.insecureHTTP = !tls
    c.metricsPort = nil
    c.limits.concurrentInferences = 2
    adjust(&c.limits)
    var logger = Logger(label: "blindai.test")
    logger.logLevel = .warning
    return InferenceServer(configuration: c, apiKeys: keys ? try Keys.store() : nil,
                           tlsIdentity: tls ? try TLSIdentity.generate() : nil, attestation: attestation, logger: logger)
}

func headers(_ pairs: [(HTTPField.Name, String)]) -> HTTPFields {
    var h = HTTPFields()
    for (k, v) in pairs { h[k] = v }
    return h
}

func bearer(_ secret: String?) -> HTTPFields {
    guard let secret else { return [:] }
    return headers([(.authorization, "Bearer \(secret)")])
}

extension HTTPField.Name {
    static let inferenceHeader = HTTPField.Name(BinaryFraming.headerContentLength)!
}

let jsonEncoder: JSONEncoder = {
    let e = JSONEncoder()
    e.outputFormatting = [.sortedKeys]
    return e
}()

func body<T: Encodable>(_ value: T) throws -> ByteBuffer { ByteBuffer(bytes: try jsonEncoder.encode(value)) }
func body(_ string: String) -> ByteBuffer { ByteBuffer(string: string) }

func decode<T: Decodable>(_ type: T.Type, _ response: TestResponse) throws -> T {
    try JSONDecoder().decode(T.self, from: Data(buffer: response.body))
}

func errorMessage(_ response: TestResponse) -> String {
    (try? decode(ErrorResponse.self, response).error) ?? "<no error body: \(String(buffer: response.body))>"
}

extension TestClientProtocol {
    /// Uploads a fixture with PUT and returns the response.
    @discardableResult
    func upload(_ fixture: String, as name: String, key: String? = nil, query: String = "") async throws -> TestResponse {
        let data = try Fixture.data(fixture)
        return try await execute(uri: "/v2/repository/models/\(name)\(query)", method: .put, headers: bearer(key), body: ByteBuffer(bytes: data))
    }

    func infer(_ name: String, _ request: InferenceRequest, key: String? = nil, version: String? = nil) async throws -> TestResponse {
        let path = version.map { "/v2/models/\(name)/versions/\($0)/infer" } ?? "/v2/models/\(name)/infer"
        return try await execute(uri: path, method: .post, headers: bearer(key), body: try body(request))
    }

    /// Sends a request with binary inputs: `binary` holds each binary input's bytes, in the order of
    /// `request.inputs` that carry `binary_data_size`.
    func inferBinary(_ name: String, _ request: InferenceRequest, binary: [Data], key: String? = nil) async throws -> TestResponse {
        let json = try jsonEncoder.encode(request)
        let (payload, headerLength) = BinaryFraming.assemble(json: json, binary: binary)
        var h = bearer(key)
        h[.inferenceHeader] = String(headerLength)
        h[.contentType] = "application/octet-stream"
        return try await execute(uri: "/v2/models/\(name)/infer", method: .post, headers: h, body: ByteBuffer(bytes: payload))
    }
}

func addRequest(id: String? = "req-1", batch: Int = 1) -> InferenceRequest {
    let n = batch * 3
    return InferenceRequest(id: id, inputs: [
        RequestInput(name: "a", shape: [Int64(batch), 3], datatype: "FP32", data: .float32((0..<n).map { Float($0) - 1 })),
        RequestInput(name: "b", shape: [Int64(batch), 3], datatype: "FP32", data: .float32(Array(repeating: 0.5, count: n))),
    ])
}

/// Floats of an output given in JSON.
func floats(_ output: ResponseOutput) -> [Float] {
    (output.data?.scalars ?? []).map {
        switch $0 {
        case .double(let d): Float(d)
        case .int(let i): Float(i)
        case .uint(let u): Float(u)
        default: .nan
        }
    }
}

func rawBytes<T>(_ values: [T]) -> Data {
    values.withUnsafeBytes { Data($0) }
}

extension ModelRepository {
    /// Registers a fixture directly (no HTTP), as an open-server upload.
    func loadFixture(_ fixture: String, as name: String) async throws {
        let data = try Fixture.data(fixture)
        let model = try ONNXModel(serialized: data)
        let ticket = try beginUpload(name: name, principal: .open)
        _ = try commit(ticket, model: model, sha256: "", byteSize: data.count, shared: true)
    }
}

/// JSON tensor data as doubles (integers, floats and the non-finite strings alike).
func numbers(_ data: TensorData) -> [Double] {
    data.scalars.map {
        switch $0 {
        case .double(let d): d
        case .int(let i): Double(i)
        case .uint(let u): Double(u)
        case .bool(let b): b ? 1 : 0
        case .string(let s): TensorData.nonFiniteValue(s) ?? .nan
        }
    }
}
