import BlindAITensor

/// The server's error: a stable code and a message safe to show to the client (never a tensor value, a stack
/// trace or a path). Turned into an HTTP status only at the HTTP boundary (`HTTPServer.swift`).
public struct ServerError: Error, Sendable, Equatable, CustomStringConvertible {
    /// A stable, machine-readable code. A struct rather than an enum so that new codes can be added without
    /// breaking a client's `switch` (which needs a `default:`); codes are snake_case strings, printed by the CLI and
    /// sent in protocol errors, and never renamed once published (docs/errors.md).
    public struct Code: RawRepresentable, Hashable, Sendable, CustomStringConvertible {
        public let rawValue: String
        public init(rawValue: String) { self.rawValue = rawValue }
        public var description: String { rawValue }
        /// Malformed request, invalid input or invalid model.
        public static let badRequest = Code(rawValue: "bad_request")
        /// No valid API key where one is needed.
        public static let unauthorized = Code(rawValue: "unauthorized")
        /// A valid key without the right to do this.
        public static let forbidden = Code(rawValue: "forbidden")
        /// Unknown model (or one the caller may not see), unknown route.
        public static let notFound = Code(rawValue: "not_found")
        /// Another upload of the same name is in progress.
        public static let conflict = Code(rawValue: "conflict")
        /// A body, model or tensor over its limit.
        public static let payloadTooLarge = Code(rawValue: "payload_too_large")
        /// The inference queue (or the upload slots) are full.
        public static let tooManyRequests = Code(rawValue: "too_many_requests")
        /// The request did not finish within the request timeout.
        public static let timeout = Code(rawValue: "timeout")
        /// The request body did not arrive within its deadline (too slow overall, or slower than the minimum
        /// rate); the connection is closed.
        public static let bodyTimeout = Code(rawValue: "body_timeout")
        /// The client closed its connection (or its side of it) before the answer was ready; the work was stopped.
        /// Logged and counted as 499; a client that only half-closed receives it.
        public static let clientClosed = Code(rawValue: "client_closed")
        /// The server is shutting down or not ready, or it holds as many request bodies in memory as it may
        /// (retry later).
        public static let unavailable = Code(rawValue: "unavailable")
        /// The model repository is full (model count or total model memory).
        public static let insufficientStorage = Code(rawValue: "insufficient_storage")
        /// A feature that is not configured (attestation without a provider) or not implemented.
        public static let notImplemented = Code(rawValue: "not_implemented")
        /// A bug. The message never carries internals.
        public static let `internal` = Code(rawValue: "internal")
        /// The request required a model digest (`model_sha256`) that the model of that name does not have (it was
        /// replaced); nothing was run.
        public static let modelDigestMismatch = Code(rawValue: "model_digest_mismatch")
        /// The model was loaded by the operator at start (`--model-repository`): no key may replace or unload it.
        public static let operatorModel = Code(rawValue: "operator_model")

        /// Every code this version defines.
        public static let allCases: [Code] = [
            .badRequest,
            .unauthorized,
            .forbidden,
            .notFound,
            .conflict,
            .payloadTooLarge,
            .tooManyRequests,
            .timeout,
            .bodyTimeout,
            .clientClosed,
            .unavailable,
            .insufficientStorage,
            .notImplemented,
            .`internal`,
            .modelDigestMismatch,
            .operatorModel,
        ]
    }

    public var code: Code
    public var message: String

    public init(_ code: Code, _ message: String) {
        self.code = code
        self.message = message
    }

    public var description: String { "\(code.rawValue): \(message)" }

    static func badRequest(_ m: String) -> ServerError { ServerError(.badRequest, m) }
    static func notFound(_ m: String) -> ServerError { ServerError(.notFound, m) }
    static func tooLarge(_ m: String) -> ServerError { ServerError(.payloadTooLarge, m) }

    /// Maps an engine error: memory limits are 413, cancellation is a timeout, everything else is the
    /// client's input or model (400). The reason is kept (it describes the client's own request or model).
    public init(engine e: EngineError) {
        switch e.code {
        case .memoryLimit: self.init(.payloadTooLarge, e.description)
        case .cancelled: self.init(.timeout, "the request was cancelled or exceeded the request timeout")
        case .io: self.init(.badRequest, "the model refers to external data, which the server does not read")
        default: self.init(.badRequest, e.description)
        }
    }

    /// Any error as a server error; unknown errors become `.internal` without their text.
    public static func wrap(_ error: any Error) -> ServerError {
        if let e = error as? ServerError { return e }
        if let e = error as? EngineError { return ServerError(engine: e) }
        if error is CancellationError { return ServerError(.timeout, "the request was cancelled") }
        return ServerError(.internal, "internal error")
    }
}
