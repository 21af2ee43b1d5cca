import BlindAITensor

/// The server's error: a stable code and a message safe to show to the client (never a tensor value, a stack
/// trace or a path). Turned into an HTTP status only at the HTTP boundary (`HTTPServer.swift`).
public struct ServerError: Error, Sendable, Equatable, CustomStringConvertible {
    public enum Code: String, Sendable {
        /// Malformed request, invalid input or invalid model.
        case badRequest = "bad_request"
        /// No valid API key where one is needed.
        case unauthorized
        /// A valid key without the right to do this.
        case forbidden
        /// Unknown model (or one the caller may not see), unknown route.
        case notFound = "not_found"
        /// Another upload of the same name is in progress.
        case conflict
        /// A body, model or tensor over its limit.
        case payloadTooLarge = "payload_too_large"
        /// The inference queue (or the upload slots) are full.
        case tooManyRequests = "too_many_requests"
        /// The request did not finish within the request timeout.
        case timeout
        /// The request body did not arrive within its deadline (too slow overall, or slower than the minimum
        /// rate); the connection is closed.
        case bodyTimeout = "body_timeout"
        /// The client closed its connection (or its side of it) before the answer was ready; the work was stopped.
        /// Logged and counted as 499; a client that only half-closed receives it.
        case clientClosed = "client_closed"
        /// The server is shutting down or not ready, or it holds as many request bodies in memory as it may
        /// (retry later).
        case unavailable
        /// The model repository is full (model count or total model memory).
        case insufficientStorage = "insufficient_storage"
        /// A feature that is not configured (attestation without a provider) or not implemented.
        case notImplemented = "not_implemented"
        /// A bug. The message never carries internals.
        case `internal`
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
