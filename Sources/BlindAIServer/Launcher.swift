import CBlindAIServerShims
import Foundation
import Logging

/// Starting a server from command-line settings: logging, keys, TLS identity, warnings. Kept here so that
/// the `serve` command stays a thin parser.
public enum ServerLauncher {
    public struct Options: Sendable {
        public var configuration = ServerConfiguration()
        public var apiKeysFile: String?
        public var tlsCertificateFile: String?
        public var tlsKeyFile: String?
        public var logLevel: Logger.Level = .info

        public init() {}
    }

    /// Sets up swift-log once for the process (text lines with key=value metadata on standard error).
    public static func bootstrapLogging(level: Logger.Level) {
        LoggingSystem.bootstrap { label in
            var h = StreamLogHandler.standardError(label: label)
            h.logLevel = level
            return h
        }
    }

    /// Sets the C allocator up for a long-running server: one malloc arena for all threads (unless the
    /// operator chose with `MALLOC_ARENA_MAX`). glibc gives one arena to each thread that allocates
    /// concurrently (workers, the engine's parallel kernels, event loops) and `malloc_trim` cannot shrink the
    /// top of those per-thread arenas, so a server that had run a large model stayed 30 MB or more above its
    /// base after unloading it; with one arena, unloading returns to the base (docs/performance-results.md). The
    /// engine allocates per tensor, not per element, so the shared arena's lock is not contended on the few
    /// cores measured; on a large guest serving many JSON requests at once (JSON decoding allocates per value),
    /// `MALLOC_ARENA_MAX=4` (or `GLIBC_TUNABLES=glibc.malloc.arena_max=4`) trades memory returned for less lock
    /// contention (docs/server.md).
    /// Call first thing in `main`, before any other thread exists (a thread that already has an arena keeps
    /// it); it changes the whole process. The `blindai` executable does (`BlindAICommand.prepareProcess`).
    public static func configureAllocator() {
        let env = ProcessInfo.processInfo.environment
        let chosen = env["MALLOC_ARENA_MAX"] != nil || (env["GLIBC_TUNABLES"]?.contains("malloc.arena_max") ?? false)
        if !chosen { _ = blindai_limit_malloc_arenas(1) }
    }

    /// Builds the server for `options` and logs what matters at start (open server, plain HTTP, identity).
    public static func makeServer(_ options: Options, attestation: (any AttestationProvider)? = nil) throws -> InferenceServer {
        var logger = Logger(label: "blindai.server")
        logger.logLevel = options.logLevel
        let c = options.configuration

        let keys = try options.apiKeysFile.map { try APIKeyStore(contentsOf: URL(fileURLWithPath: $0)) }
        if let keys {
            logger.info("API keys loaded", metadata: ["keys": "\(keys.count)", "admin_keys": "\(keys.adminCount)"])
        } else {
            logger.warning("NO API KEYS CONFIGURED: THIS SERVER IS OPEN. Anyone who can reach it can upload, replace, unload and run any model. Use --api-keys FILE.")
        }

        var identity: TLSIdentity?
        if c.insecureHTTP {
            logger.critical("""
                PLAIN HTTP (--insecure-http): NO TLS. Requests, models and results cross the network in clear text \
                and attestation is unavailable. For local development only.
                """)
        } else if let cert = options.tlsCertificateFile, let key = options.tlsKeyFile {
            identity = try TLSIdentity.load(certificatePEMFile: cert, keyPEMFile: key)
            logger.warning("TLS certificate and key read from files (development only): the private key exists outside this process.")
        } else if options.tlsCertificateFile != nil || options.tlsKeyFile != nil {
            throw ServerError(.badRequest, "--tls-cert and --tls-key go together")
        } else {
            var names = c.certificateHostnames
            if c.host != "0.0.0.0" && c.host != "::" { names.append(c.host) }
            identity = try TLSIdentity.generate(hostnames: names)
        }
        if let identity {
            logger.info("TLS identity", metadata: [
                "generated_in_memory": "\(identity.generated)", "spki_sha256": "\(identity.spkiSHA256)",
            ])
        }
        let l = c.limits
        logger.info("limits", metadata: [
            "max_model_bytes": "\(l.maxModelBytes)", "max_request_bytes": "\(l.maxRequestBytes)",
            "max_tensor_elements": "\(l.maxTensorElements)", "max_tensor_bytes": "\(l.maxTensorBytes)",
            "max_total_model_bytes": "\(l.maxTotalModelBytes)", "max_models": "\(l.maxModels)",
            "workers": "\(l.concurrentInferences)", "queue": "\(l.queueLength)", "uploads": "\(l.concurrentUploads)",
            "request_timeout": "\(l.requestTimeout)", "body_timeout": "\(l.bodyTimeout)", "body_grace": "\(l.bodyGracePeriod)",
            "min_body_bytes_per_second": "\(l.minBodyBytesPerSecond)", "max_buffered_body_bytes": "\(l.maxBufferedBodyBytes)",
            "attestation_threads": "\(l.attestationThreads)", "attestation_queue": "\(l.attestationQueueLength)",
        ])
        let scheme = c.insecureHTTP ? "http" : "https"
        logger.info("listening", metadata: ["url": "\(scheme)://\(c.host):\(c.port)/v2",
                                             "metrics": "\(c.metricsPort.map { "http://\(c.metricsHost):\($0)/metrics" } ?? "off")"])
        return InferenceServer(configuration: c, apiKeys: keys, tlsIdentity: identity, attestation: attestation, logger: logger)
    }

    /// Parses a byte size: a number with an optional unit (B, K/KB/KiB, M/MB/MiB, G/GB/GiB; all powers of 1024).
    public static func parseBytes(_ s: String) -> Int? {
        let t = s.trimmingCharacters(in: .whitespaces).lowercased()
        let digits = t.prefix { $0.isNumber }
        guard let n = Int(digits), !digits.isEmpty else { return nil }
        let unit = t.dropFirst(digits.count).trimmingCharacters(in: .whitespaces)
        let shift: Int
        switch unit {
        case "", "b": shift = 0
        case "k", "kb", "kib": shift = 10
        case "m", "mb", "mib": shift = 20
        case "g", "gb", "gib": shift = 30
        case "t", "tb", "tib": shift = 40
        default: return nil
        }
        let (v, o) = n.multipliedReportingOverflow(by: 1 << shift)
        return o ? nil : v
    }

    /// Parses a duration: a number with a unit (ms, s, m, h); a bare number is seconds.
    public static func parseDuration(_ s: String) -> Duration? {
        let t = s.trimmingCharacters(in: .whitespaces).lowercased()
        let number = t.prefix { $0.isNumber || $0 == "." }
        guard let v = Double(number), v >= 0 else { return nil }
        switch t.dropFirst(number.count) {
        case "ms": return .milliseconds(Int64(v))
        case "", "s": return .milliseconds(Int64(v * 1000))
        case "m", "min": return .seconds(Int64(v * 60))
        case "h": return .seconds(Int64(v * 3600))
        default: return nil
        }
    }
}

extension ServerLauncher {
    /// Log levels by name (so the command line needs no swift-log import).
    public enum LogLevel: String, Sendable {
        case trace, debug, info, notice, warning, error, critical

        public var level: Logger.Level { Logger.Level(rawValue: rawValue) ?? .info }
    }
}
