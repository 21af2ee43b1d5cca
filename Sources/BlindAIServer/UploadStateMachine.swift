/// The life of one model upload, without I/O: the HTTP handler feeds it events (bytes arrived, body ended,
/// validation and loading finished, connection lost) and does what the returned action says.
///
///     receiving --end of body--> validating --valid--> loading --loaded--> ready
///         |                          |                    |
///         +--------------------------+--------------------+--> failed (nothing registered)
///
/// Sizes are counted as the bytes arrive: `Content-Length` is only a hint, checked against what arrived.
public struct UploadStateMachine: Sendable, Equatable {
    public enum State: Sendable, Equatable {
        case receiving(bytes: Int)
        case validating(bytes: Int)
        case loading(bytes: Int)
        case ready(bytes: Int)
        case failed(ServerError)
    }

    public enum Action: Sendable, Equatable {
        /// Keep the chunk and go on reading.
        case store
        /// Check the received bytes (cheap checks, on the caller's task).
        case validate
        /// Compile the model (on the load worker pool).
        case load
        /// Register the loaded model, replacing any earlier version of the name.
        case register
        /// Stop: discard everything received, register nothing, answer with the error.
        case abort(ServerError)
    }

    public private(set) var state: State
    public let maxBytes: Int
    /// The request's `Content-Length`, if any (checked, never trusted).
    public let declaredLength: Int?

    public init(maxBytes: Int, declaredLength: Int? = nil) {
        self.maxBytes = maxBytes
        self.declaredLength = declaredLength
        if let declaredLength, declaredLength > maxBytes {
            state = .failed(ServerError(.payloadTooLarge, "the model is \(declaredLength) bytes, over the limit of \(maxBytes) bytes"))
        } else {
            state = .receiving(bytes: 0)
        }
    }

    /// The action for a request whose declared length is already over the limit (before any byte is read).
    public var initialAction: Action? {
        if case .failed(let e) = state { return .abort(e) }
        return nil
    }

    public var isFinished: Bool {
        switch state {
        case .ready, .failed: true
        default: false
        }
    }

    /// `count` more bytes of the body arrived.
    public mutating func received(_ count: Int) -> Action {
        guard case .receiving(let bytes) = state else { return invalid("bytes received") }
        let (total, overflow) = bytes.addingReportingOverflow(count)
        if overflow || total > maxBytes {
            return fail(ServerError(.payloadTooLarge, "the model is over the limit of \(maxBytes) bytes"))
        }
        if let declaredLength, total > declaredLength {
            return fail(ServerError(.badRequest, "the body is longer than its Content-Length of \(declaredLength) bytes"))
        }
        state = .receiving(bytes: total)
        return .store
    }

    /// The body ended normally.
    public mutating func bodyEnded() -> Action {
        guard case .receiving(let bytes) = state else { return invalid("end of body") }
        if bytes == 0 { return fail(ServerError(.badRequest, "the body is empty: send the ONNX file")) }
        if let declaredLength, bytes != declaredLength {
            return fail(ServerError(.badRequest, "the body has \(bytes) bytes but its Content-Length is \(declaredLength)"))
        }
        state = .validating(bytes: bytes)
        return .validate
    }

    /// The cheap checks finished (`error` nil when they passed).
    public mutating func validated(_ error: ServerError?) -> Action {
        guard case .validating(let bytes) = state else { return invalid("validation result") }
        if let error { return fail(error) }
        state = .loading(bytes: bytes)
        return .load
    }

    /// The engine finished compiling the model (`error` nil when it succeeded).
    public mutating func loaded(_ error: ServerError?) -> Action {
        guard case .loading = state else { return invalid("load result") }
        if let error { return fail(error) }
        return .register
    }

    /// The repository registered the model (`error` nil) or refused it (limits or rights changed meanwhile).
    public mutating func registered(_ error: ServerError?) -> Action? {
        guard case .loading(let bytes) = state else { return invalid("registration result") }
        if let error { return fail(error) }
        state = .ready(bytes: bytes)
        return nil
    }

    /// The client went away, the request was cancelled or reading failed: abort unless already finished.
    public mutating func interrupted(_ error: ServerError) -> Action? {
        if isFinished { return nil }
        return fail(error)
    }

    private mutating func fail(_ error: ServerError) -> Action {
        state = .failed(error)
        return .abort(error)
    }

    private mutating func invalid(_ event: String) -> Action {
        if case .failed(let e) = state { return .abort(e) }
        return fail(ServerError(.internal, "upload: unexpected \(event) in state \(state)"))
    }
}

/// Cheap checks of an upload before the engine parses it.
enum UploadValidator {
    /// An ONNX file is a protobuf `ModelProto`: its first byte is a field tag with a known wire type and a
    /// non-zero field number. Rejects text, JSON, archives and other obvious mistakes early.
    static func check(firstBytes: some Collection<UInt8>) -> ServerError? {
        guard let b = firstBytes.first else { return ServerError(.badRequest, "the body is empty: send the ONNX file") }
        let wireType = b & 0x7
        let field = b >> 3
        guard [0, 1, 2, 5].contains(wireType), field != 0 else {
            return ServerError(.badRequest, "the body is not an ONNX model (not a protobuf message)")
        }
        return nil
    }
}
