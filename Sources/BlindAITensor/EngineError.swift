/// The engine's error: a stable code, a human reason, and where it happened (node name and op type when known).
/// Only the HTTP boundary turns these into protocol errors.
public struct EngineError: Error, Sendable, CustomStringConvertible, Equatable {
    /// A stable, machine-readable code. A struct rather than an enum so that new codes can be added without
    /// breaking a client's `switch` (which needs a `default:`); codes are snake_case strings, printed by the CLI and
    /// sent in protocol errors, and never renamed once published (docs/errors.md).
    public struct Code: RawRepresentable, Hashable, Sendable, CustomStringConvertible {
        public let rawValue: String
        public init(rawValue: String) { self.rawValue = rawValue }
        public var description: String { rawValue }
        /// The file is not a valid ONNX model (truncated, garbage, inconsistent graph).
        public static let invalidModel = Code(rawValue: "invalid_model")
        /// The model uses operators this engine does not implement.
        public static let unsupportedOperator = Code(rawValue: "unsupported_operator")
        /// The graph contains a cycle.
        public static let graphCycle = Code(rawValue: "graph_cycle")
        /// A required model input was not supplied, or an unknown one was.
        public static let missingInput = Code(rawValue: "missing_input")
        /// A supplied input is not one of the model's inputs.
        public static let unknownInput = Code(rawValue: "unknown_input")
        /// An input tensor has the wrong element type.
        public static let typeMismatch = Code(rawValue: "type_mismatch")
        /// An input tensor has the wrong rank or dimension, or shapes do not broadcast.
        public static let shapeMismatch = Code(rawValue: "shape_mismatch")
        /// An attribute or input value is out of the operator's domain.
        public static let invalidArgument = Code(rawValue: "invalid_argument")
        /// A tensor would exceed the configured memory limit (shape bombs).
        public static let memoryLimit = Code(rawValue: "memory_limit")
        /// Reading or writing a file failed.
        public static let io = Code(rawValue: "io")
        /// The run was cancelled.
        public static let cancelled = Code(rawValue: "cancelled")

        /// Every code this version defines.
        public static let allCases: [Code] = [
            .invalidModel,
            .unsupportedOperator,
            .graphCycle,
            .missingInput,
            .unknownInput,
            .typeMismatch,
            .shapeMismatch,
            .invalidArgument,
            .memoryLimit,
            .io,
            .cancelled,
        ]
    }

    public var code: Code
    public var reason: String
    public var node: String?
    public var opType: String?

    public init(_ code: Code, _ reason: String, node: String? = nil, opType: String? = nil) {
        self.code = code
        self.reason = reason
        self.node = node
        self.opType = opType
    }

    public var description: String {
        var s = "\(code.rawValue): \(reason)"
        if let opType {
            s += " (in \(opType) node '\(node ?? "")')"
        } else if let node {
            s += " (in node '\(node)')"
        }
        return s
    }

    /// The same error annotated with a node, unless it already names one.
    public func at(node: String, opType: String) -> EngineError {
        if self.opType != nil { return self }
        var e = self
        e.node = node
        e.opType = opType
        return e
    }
}

extension EngineError {
    /// Any error as an engine error (errors from outside the engine become `.invalidArgument` with their text).
    public static func wrap(_ error: any Error) -> EngineError {
        if let e = error as? EngineError { return e }
        return EngineError(.invalidArgument, "\(error)")
    }
}
