import BlindAIAttestation
import BlindAIAttestationProducer
import BlindAIClient
import BlindAIONNX
import BlindAIServer
import BlindAIServerAttestation
import BlindAITestSupport
import enum BlindAITensor.DataType
import Crypto
import Foundation
import Logging

#if canImport(Glibc)
import Glibc
#endif

/// The repository root (for demo/ and README.md).
let repositoryRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

/// One simulated platform shared by the in-process tests (RSA key generation takes a moment).
enum TestTEE {
    static let measurement = [UInt8](SHA384.hash(data: Data("blindai client tests".utf8)))
    static let shared: SimulatedSNPTEE = {
        do { return try SimulatedSNPTEE(measurement: measurement) } catch { fatalError("simulated TEE: \(error)") }
    }()

    static func policy(for tee: SimulatedSNPTEE = shared) async throws -> AttestationPolicy {
        let trust = try await TEESetup.simulated(tee).trustPolicy()
        return try AttestationPolicy.load(json: Data(trust.json.utf8))
    }
}

enum TestKeys {
    static let alice = "alice-secret-0123456789"
    static let bob = "bob-secret-0123456789ab"

    static func store() throws -> APIKeyStore {
        try APIKeyStore(keys: [.init(id: "alice", secret: alice), .init(id: "bob", secret: bob)])
    }
}

/// A TLS server with simulated attestation (or `attestation`), API keys, on loopback.
func makeAttestedServer(port: Int = 0, tee: SimulatedSNPTEE = TestTEE.shared, attestation: (any AttestationProvider)? = nil,
                        keys: Bool = true, identity: TLSIdentity? = nil, _ adjust: (inout ServerLimits) -> Void = { _ in }) throws -> InferenceServer {
    var c = ServerConfiguration()
    c.host = "127.0.0.1"
    c.port = port
    c.metricsPort = nil
    c.limits.concurrentInferences = 2
    adjust(&c.limits)
    var logger = Logger(label: "blindai.client-tests")
    logger.logLevel = .critical
    let provider = attestation ?? TEESetup.simulated(tee).attestationProvider()
    return InferenceServer(configuration: c, apiKeys: keys ? try TestKeys.store() : nil, tlsIdentity: try identity ?? TLSIdentity.generate(),
                           attestation: provider, logger: logger)
}

/// Runs `body` with a started server, and stops it afterwards.
func withServer<T>(_ server: InferenceServer, _ body: (InProcessServer) async throws -> T) async throws -> T {
    let running = try await InProcessServer.start(server)
    do {
        let result = try await body(running)
        await running.stop()
        return result
    } catch {
        await running.stop()
        throw error
    }
}

/// Runs `body` with a client connected to `running`, and closes it afterwards.
func withClient<T>(_ port: Int, policy: AttestationPolicy? = nil, key: String? = TestKeys.alice,
                   _ body: (BlindAIClient) async throws -> T) async throws -> T {
    let p: AttestationPolicy
    if let policy { p = policy } else { p = try await TestTEE.policy() }
    let client = try await BlindAIClient.connect(to: "127.0.0.1:\(port)", policy: p, apiKey: key)
    do {
        let result = try await body(client)
        await client.close()
        return result
    } catch {
        await client.close()
        throw error
    }
}

// MARK: - ONNX models built in the tests

enum TestModels {
    static let identityTypes: [(String, DataType)] = [
        ("FP32", .float32), ("FP64", .float64), ("FP16", .float16), ("BF16", .bfloat16), ("INT8", .int8), ("INT16", .int16), ("INT32", .int32),
        ("INT64", .int64), ("UINT8", .uint8), ("UINT16", .uint16), ("UINT32", .uint32), ("UINT64", .uint64), ("BOOL", .bool), ("BYTES", .string),
    ]

    /// y_T = Identity(x_T) for every datatype; also sum = x_INT64 + x_INT64, neg = -x_FP64, not = Not(x_BOOL).
    static func allTypes() throws -> Data {
        var b = ModelBuilder(symbols: .perValue)
        for (name, t) in identityTypes {
            b.input("x_\(name)", t, [nil])
            b.output("y_\(name)", t, [nil])
            b.node("Identity", ["x_\(name)"], ["y_\(name)"])
        }
        b.node("Add", ["x_INT64", "x_INT64"], ["sum"])
        b.output("sum", .int64, [nil])
        b.node("Neg", ["x_FP64"], ["neg"])
        b.output("neg", .float64, [nil])
        b.node("Not", ["x_BOOL"], ["not"])
        b.output("not", .bool, [nil])
        return try b.data()
    }

    /// y = 2 * x (FP32 [N]).
    static func scale() throws -> Data {
        var b = ModelBuilder(symbols: .perValue)
        b.input("x", .float32, [nil])
        b.output("y", .float32, [nil])
        b.initializer("two", .float32, [], raw: [Float(2)].withUnsafeBytes { Data($0) })
        b.node("Mul", ["x", "two"], ["y"])
        return try b.data()
    }

    /// y = Gather(w, idx) + x with a float initializer w of `count` elements (w[i] = (i % 4096) / 2): over 100 MB at
    /// the default count.
    static func big(count: Int = 26_500_000) throws -> Data {
        var w = [Float](repeating: 0, count: count)
        w.withUnsafeMutableBufferPointer { p in
            for i in 0..<count { p[i] = Float(i & 4095) * 0.5 }
        }
        var b = ModelBuilder(symbols: .perValue)
        b.input("idx", .int64, [nil])
        b.input("x", .float32, [nil])
        b.output("y", .float32, [nil])
        b.initializer("w", .float32, [count], raw: w.withUnsafeBytes { Data($0) })
        b.node("Gather", ["w", "idx"], ["g"])
        b.node("Add", ["g", "x"], ["y"])
        return try b.data()
    }

    static func bigWeight(_ i: Int) -> Float { Float(i & 4095) * 0.5 }

    /// A classifier with ResNet18's interface (input `input` FP32 [N,3,224,224], output `logits` [N,1000]), small:
    /// global average pooling then a fixed linear layer.
    static func tinyResNetInterface() throws -> Data {
        var b = ModelBuilder(symbols: .perValue)
        b.input("input", .float32, [nil, 3, 224, 224])
        b.output("logits", .float32, [nil, 1000])
        var w = [Float](repeating: 0, count: 3 * 1000)
        for i in 0..<w.count { w[i] = Float((i * 7919) % 1000) / 1000 - 0.5 }
        b.initializer("w", .float32, [3, 1000], raw: w.withUnsafeBytes { Data($0) })
        b.node("GlobalAveragePool", ["input"], ["pooled"])
        b.node("Flatten", ["pooled"], ["flat"])
        b.node("MatMul", ["flat", "w"], ["logits"])
        return try b.data()
    }

    static func digits() throws -> Data { try Data(contentsOf: repositoryRoot.appendingPathComponent("demo/digits.onnx")) }

    static func sample(_ name: String) throws -> Tensor {
        try Tensor(npyFile: repositoryRoot.appendingPathComponent("demo/samples/\(name).npy"))
    }
}

// MARK: - Processes and ports

/// A TCP port that was free a moment ago.
func freePort() throws -> Int {
    #if canImport(Glibc)
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    guard fd >= 0 else { throw TestFailure("socket failed") }
    defer { close(fd) }
    var addr = sockaddr_in()
    addr.sin_family = sa_family_t(AF_INET)
    addr.sin_port = 0
    addr.sin_addr.s_addr = inet_addr("127.0.0.1")
    let bound = withUnsafePointer(to: &addr) { p in
        p.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
    }
    guard bound == 0 else { throw TestFailure("bind failed") }
    var len = socklen_t(MemoryLayout<sockaddr_in>.size)
    _ = withUnsafeMutablePointer(to: &addr) { p in
        p.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &len) }
    }
    return Int(UInt16(bigEndian: addr.sin_port))
    #else
    return Int.random(in: 20000..<60000)
    #endif
}

struct TestFailure: Error, CustomStringConvertible {
    let description: String
    init(_ d: String) { description = d }
}

/// The `blindai` executable built next to the test bundle.
func blindaiExecutable() throws -> URL {
    var candidates: [URL] = []
    let exe = URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath()
    candidates.append(exe.deletingLastPathComponent().appendingPathComponent("blindai"))
    if let main = Bundle.main.executableURL { candidates.append(main.deletingLastPathComponent().appendingPathComponent("blindai")) }
    candidates.append(repositoryRoot.appendingPathComponent(".build/debug/blindai"))
    for c in candidates where FileManager.default.isExecutableFile(atPath: c.path) { return c }
    throw TestFailure("the blindai executable is not built (looked at \(candidates.map(\.path))): run `swift build --build-tests` first")
}

/// A child process with its output in a file.
final class ChildProcess: @unchecked Sendable {
    let process = Process()
    let log: URL

    init(_ executable: URL, _ arguments: [String], directory: URL, environment: [String: String] = [:]) throws {
        log = directory.appendingPathComponent("process-\(UUID().uuidString.prefix(8)).log")
        _ = FileManager.default.createFile(atPath: log.path, contents: nil)
        let handle = try FileHandle(forWritingTo: log)
        process.executableURL = executable
        process.arguments = arguments
        process.currentDirectoryURL = directory
        var env = ProcessInfo.processInfo.environment
        for (k, v) in environment { env[k] = v }
        process.environment = env
        process.standardOutput = handle
        process.standardError = handle
        try process.run()
    }

    var output: String { (try? String(contentsOf: log, encoding: .utf8)) ?? "" }

    func stop() {
        if process.isRunning {
            process.terminate()
            process.waitUntilExit()
        }
    }

    deinit { stop() }
}

/// Runs a command to completion; returns its status and output (stdout and stderr interleaved).
func runCommand(_ executable: URL, _ arguments: [String], directory: URL, environment: [String: String] = [:]) async throws -> (status: Int32, output: String) {
    let child = try ChildProcess(executable, arguments, directory: directory, environment: environment)
    while child.process.isRunning { try await Task.sleep(for: .milliseconds(50)) }
    return (child.process.terminationStatus, child.output)
}

/// A fresh temporary directory.
func temporaryDirectory() throws -> URL {
    let url = FileManager.default.temporaryDirectory.appendingPathComponent("blindai-client-tests-\(UUID().uuidString.prefix(8))")
    try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    return url
}

/// Waits until `condition` holds (polling), or fails after `seconds`.
func eventually(_ seconds: Double, _ what: String, _ condition: () async throws -> Bool) async throws {
    let deadline = Date().addingTimeInterval(seconds)
    while Date() < deadline {
        if (try? await condition()) == true { return }
        try await Task.sleep(for: .milliseconds(100))
    }
    throw TestFailure("timed out after \(seconds) s waiting for \(what)")
}
