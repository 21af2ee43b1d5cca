import BlindAIGraph
import BlindAITensor
import Foundation

/// Every limit of the server, with the defaults documented in docs/server.md ("Server limits").
public struct ServerLimits: Sendable, Equatable {
    /// Largest ONNX model accepted by an upload or inline load, in bytes.
    public var maxModelBytes: Int = 1 << 30
    /// Largest request body for everything but model uploads (inference requests), in bytes.
    public var maxRequestBytes: Int = 64 << 20
    /// Largest tensor (input, intermediate or output), in elements.
    public var maxTensorElements: Int = 1 << 28
    /// Largest tensor (input, intermediate or output), in bytes.
    public var maxTensorBytes: Int = 1 << 30
    /// Sum of the sizes of all loaded models, in bytes.
    public var maxTotalModelBytes: Int = 4 << 30
    /// Number of loaded models.
    public var maxModels: Int = 64
    /// Inferences computing at once (worker threads). Default: the number of cores.
    public var concurrentInferences: Int = ProcessInfo.processInfo.activeProcessorCount
    /// Inference requests admitted beyond those computing (reading their body or waiting for a worker).
    public var queueLength: Int = 32
    /// Uploads (or inline loads) in progress at once.
    public var concurrentUploads: Int = 2
    /// Time an inference request may take from admission to its answer (queue wait and compute).
    public var requestTimeout: Duration = .seconds(60)
    /// Idle time after which a connection is closed (also bounds a stalled upload).
    public var idleTimeout: Duration = .seconds(60)
    /// Time a request body may take to arrive in full, from its headers to its last byte, however fast it comes.
    public var bodyTimeout: Duration = .seconds(600)
    /// Time a request body has before the minimum rate applies (`minBodyBytesPerSecond`).
    public var bodyGracePeriod: Duration = .seconds(10)
    /// Slowest average rate a request body may arrive at: its deadline is `bodyGracePeriod` plus one second
    /// per this many bytes received (capped by `bodyTimeout`). A client trickling a byte at a time is cut off
    /// after about `bodyGracePeriod`. 0 disables the rate rule (the total deadline stays).
    public var minBodyBytesPerSecond: Int = 64 << 10
    /// Bytes of request bodies held in memory at once by all requests together (inference requests, uploads,
    /// inline loads and their decoded models, until they are done with). Past it a request gets 503; a request
    /// that alone needs more gets 413. Must hold the largest inline load (its base64 body twice while decoding, plus the model)
    /// for such loads to be possible at all.
    public var maxBufferedBodyBytes: Int = 3 << 30
    /// Threads that call the TEE for attestation evidence (blocking calls: configfs-tsm, ioctl, quote service),
    /// kept off the event loops and the Swift concurrency pool.
    public var attestationThreads: Int = 1
    /// Attestation requests admitted beyond those being served; more get 429.
    public var attestationQueueLength: Int = 8

    public init() {}

    /// The engine's tensor limits.
    public var tensorLimits: TensorLimits {
        TensorLimits(maxTensorBytes: maxTensorBytes, maxTensorElements: maxTensorElements)
    }

    /// Plan options for loading a model under these limits (constant folding is bounded too).
    public var planOptions: PlanOptions {
        PlanOptions(optimize: true, limits: tensorLimits)
    }

    /// The body deadline rule.
    public var bodyPace: BodyPace {
        BodyPace(total: bodyTimeout, grace: bodyGracePeriod, minBytesPerSecond: minBodyBytesPerSecond)
    }

    /// Largest body of an inline load (base64 of the largest model plus a JSON envelope).
    public var maxInlineLoadBytes: Int {
        let (b64, o) = maxModelBytes.multipliedReportingOverflow(by: 4)
        return o ? Int.max : b64 / 3 + 64 * 1024
    }
}

/// Configuration of one server instance.
public struct ServerConfiguration: Sendable {
    public var host: String = "0.0.0.0"
    public var port: Int = 8000
    /// Plain HTTP instead of TLS (development only; the server says so loudly).
    public var insecureHTTP: Bool = false
    /// Prometheus endpoint (plain HTTP, `GET /metrics`); nil disables it.
    public var metricsHost: String = "127.0.0.1"
    public var metricsPort: Int? = 8002
    public var limits = ServerLimits()
    /// Extra names for the generated certificate's subject alternative names (besides localhost and loopback).
    public var certificateHostnames: [String] = []
    public var serverName = "blindai"
    public var serverVersion = BlindAIServerVersion.current

    public init() {}
}

public enum BlindAIServerVersion {
    public static let current = "0.1.0"
}
