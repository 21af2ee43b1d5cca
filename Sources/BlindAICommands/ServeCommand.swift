import ArgumentParser
import BlindAIServer
import Foundation

/// `blindai serve`: the inference server that runs inside the confidential VM (Open Inference Protocol v2
/// over HTTPS). Limits and their defaults are documented in docs/server.md ("Server limits").
public struct ServeCommand: AsyncParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "serve",
        abstract: "Serve ONNX models over the Open Inference Protocol v2 (KServe/Triton REST), with TLS."
    )

    @Option(help: "Address to listen on.")
    var host = "0.0.0.0"

    @Option(help: "Port of the inference API.")
    var port = 8000

    @Option(name: .customLong("metrics-port"), help: "Port of the Prometheus endpoint (GET /metrics, plain HTTP); 0 disables it.")
    var metricsPort = 8002

    @Option(name: .customLong("metrics-host"), help: "Address of the Prometheus endpoint.")
    var metricsHost = "127.0.0.1"

    @Option(name: .customLong("api-keys"), help: "API key file: one 'key-id:secret' or 'key-id:secret:admin' per line. Without it the server is open.")
    var apiKeys: String?

    @Option(name: .customLong("tls-cert"), help: "PEM certificate (development only, with --tee simulated: a real TEE refuses a key that existed outside the VM; by default a key and self-signed certificate are generated in memory).")
    var tlsCert: String?

    @Option(name: .customLong("tls-key"), help: "PEM private key for --tls-cert (development only).")
    var tlsKey: String?

    @Option(name: .customLong("tls-hostname"), help: "Extra DNS name or IP address for the generated certificate. Repeatable.")
    var tlsHostnames: [String] = []

    @Flag(name: .customLong("insecure-http"), help: "Serve plain HTTP without TLS. INSECURE: development only.")
    var insecureHTTP = false

    @Option(name: .customLong("max-model-size"), help: "Largest model upload (e.g. 1GiB).")
    var maxModelSize = "1GiB"

    @Option(name: .customLong("max-request-size"), help: "Largest inference request body (e.g. 64MiB).")
    var maxRequestSize = "64MiB"

    @Option(name: .customLong("max-tensor-elements"), help: "Largest tensor, in elements.")
    var maxTensorElements = 1 << 28

    @Option(name: .customLong("max-tensor-size"), help: "Largest tensor, in bytes (e.g. 1GiB).")
    var maxTensorSize = "1GiB"

    @Option(name: .customLong("max-total-model-size"), help: "Total size of all loaded models (e.g. 4GiB).")
    var maxTotalModelSize = "4GiB"

    @Option(name: .customLong("max-models"), help: "Number of loaded models.")
    var maxModels = 64

    @Option(help: "Inferences computing at once (worker threads). Default: the number of cores.")
    var workers: Int?

    @Option(name: .customLong("queue-length"), help: "Inference requests admitted beyond the running ones; more get 429.")
    var queueLength = 32

    @Option(name: .customLong("max-uploads"), help: "Model uploads in progress at once; more get 429.")
    var maxUploads = 2

    @Option(name: .customLong("request-timeout"), help: "Time limit of an inference request, queue wait included (e.g. 60s, 500ms).")
    var requestTimeout = "60s"

    @Option(name: .customLong("idle-timeout"), help: "Idle time before a connection is closed (e.g. 60s).")
    var idleTimeout = "60s"

    @Option(name: .customLong("body-timeout"), help: "Time a request body may take to arrive in full, however fast (e.g. 600s).")
    var bodyTimeout = "600s"

    @Option(name: .customLong("body-grace"), help: "Time a request body has before --min-body-rate applies (e.g. 10s).")
    var bodyGrace = "10s"

    @Option(name: .customLong("min-body-rate"), help: "Slowest average rate of a request body, per second, after --body-grace (e.g. 64KiB; 0 disables the rate rule).")
    var minBodyRate = "64KiB"

    @Option(name: .customLong("max-buffered-size"), help: "Request body bytes held in memory by all requests together (e.g. 3GiB); more get 503.")
    var maxBufferedSize = "3GiB"

    @Option(name: .customLong("attestation-threads"), help: "Threads that call the TEE for attestation evidence.")
    var attestationThreads = 1

    @Option(name: .customLong("attestation-queue"), help: "Attestation requests admitted beyond the running ones; more get 429.")
    var attestationQueue = 8

    @Option(name: .customLong("log-level"), help: "trace, debug, info, notice, warning, error or critical.")
    var logLevel = "info"

    @Option(name: .customLong("tee"), help: "Attestation: auto (the TEE of this machine; refuse to start without one), sev-snp, tdx, or simulated (development only).")
    var tee = "auto"

    @Option(name: .customLong("attestation-certs"), help: "Directory of SEV-SNP VCEK/ASK/ARK (vcek.pem, ask.pem, ark.pem or cert_chain.pem) or TDX collateral, for hosts that supply none.")
    var attestationCerts: String?

    @Option(name: .customLong("write-policy"), help: "Write the attestation policy clients need to trust this server (JSON) to this file.")
    var writePolicy: String?

    @Option(name: .customLong("model-repository"), help: "Load these models before answering (DIR/NAME/VERSION/model.onnx or DIR/NAME.onnx): shared, owned by the operator (no key can replace or unload them), their SHA-256 in the attested claims.")
    var modelRepository: String?

    public init() {}

    func options() throws -> ServerLauncher.Options {
        func bytes(_ s: String, _ flag: String) throws -> Int {
            guard let v = ServerLauncher.parseBytes(s), v > 0 else { throw ValidationError("\(flag): '\(s)' is not a size such as 512MiB") }
            return v
        }
        func duration(_ s: String, _ flag: String) throws -> Duration {
            guard let v = ServerLauncher.parseDuration(s), v > .zero else { throw ValidationError("\(flag): '\(s)' is not a duration such as 30s") }
            return v
        }
        func positive(_ v: Int, _ flag: String) throws -> Int {
            guard v > 0 else { throw ValidationError("\(flag) must be positive") }
            return v
        }
        var o = ServerLauncher.Options()
        var c = ServerConfiguration()
        c.host = host
        guard (1...65535).contains(port) else { throw ValidationError("--port must be 1 to 65535") }
        c.port = port
        guard (0...65535).contains(metricsPort) else { throw ValidationError("--metrics-port must be 0 to 65535") }
        c.metricsPort = metricsPort == 0 ? nil : metricsPort
        c.metricsHost = metricsHost
        c.insecureHTTP = insecureHTTP
        c.certificateHostnames = tlsHostnames
        c.limits.maxModelBytes = try bytes(maxModelSize, "--max-model-size")
        c.limits.maxRequestBytes = try bytes(maxRequestSize, "--max-request-size")
        c.limits.maxTensorElements = try positive(maxTensorElements, "--max-tensor-elements")
        c.limits.maxTensorBytes = try bytes(maxTensorSize, "--max-tensor-size")
        c.limits.maxTotalModelBytes = try bytes(maxTotalModelSize, "--max-total-model-size")
        c.limits.maxModels = try positive(maxModels, "--max-models")
        if let workers { c.limits.concurrentInferences = try positive(workers, "--workers") }
        guard queueLength >= 0 else { throw ValidationError("--queue-length must not be negative") }
        c.limits.queueLength = queueLength
        c.limits.concurrentUploads = try positive(maxUploads, "--max-uploads")
        c.limits.requestTimeout = try duration(requestTimeout, "--request-timeout")
        c.limits.idleTimeout = try duration(idleTimeout, "--idle-timeout")
        c.limits.bodyTimeout = try duration(bodyTimeout, "--body-timeout")
        c.limits.bodyGracePeriod = try duration(bodyGrace, "--body-grace")
        guard let rate = ServerLauncher.parseBytes(minBodyRate) else { throw ValidationError("--min-body-rate: '\(minBodyRate)' is not a size such as 64KiB") }
        c.limits.minBodyBytesPerSecond = rate
        c.limits.maxBufferedBodyBytes = try bytes(maxBufferedSize, "--max-buffered-size")
        c.limits.attestationThreads = try positive(attestationThreads, "--attestation-threads")
        guard attestationQueue >= 0 else { throw ValidationError("--attestation-queue must not be negative") }
        c.limits.attestationQueueLength = attestationQueue
        o.configuration = c
        o.apiKeysFile = apiKeys
        o.tlsCertificateFile = tlsCert
        o.tlsKeyFile = tlsKey
        guard let level = ServerLauncher.LogLevel(rawValue: logLevel) else { throw ValidationError("--log-level: unknown level '\(logLevel)'") }
        o.logLevel = level.level
        return o
    }

    public func run() async throws {
        let o = try options()
        ServerLauncher.bootstrapLogging(level: o.logLevel)
        // The operator's models are read and hashed first: their digests go into the written policy, and the bytes
        // hashed are the bytes compiled.
        let operatorModels: [OperatorModelFile]
        do {
            operatorModels = try modelRepository.map {
                try OperatorModelRepository.scan(URL(fileURLWithPath: $0), maxModelBytes: o.configuration.limits.maxModelBytes)
            } ?? []
        } catch let e as ServerError {
            throw ValidationError("--model-repository: \(e.message)")
        }
        let attestation = try await ServeAttestation.setUp(
            tee: tee, certificates: attestationCerts, writePolicy: writePolicy, plainHTTP: insecureHTTP, tlsFromFiles: tlsCert != nil,
            operatorModels: operatorModels.map { ($0.name, $0.sha256) })
        let server: InferenceServer
        do {
            server = try ServerLauncher.makeServer(o, attestation: attestation)
            try await server.preload(operatorModels)
        } catch let e as ServerError {
            throw ValidationError(e.message)
        }
        try await server.run()
    }
}
