/// The engine's error: a stable code, a human reason, and where it happened (node name and op type when known).
/// Only the HTTP boundary turns these into protocol errors.
public struct EngineError: Error, Sendable, CustomStringConvertible, Equatable {
    public enum Code: String, Sendable {
        /// The file is not a valid ONNX model (truncated, garbage, inconsistent graph).
        case invalidModel = "invalid_model"
        /// The model uses operators this engine does not implement.
        case unsupportedOperator = "unsupported_operator"
        /// The graph contains a cycle.
        case graphCycle = "graph_cycle"
        /// A required model input was not supplied, or an unknown one was.
        case missingInput = "missing_input"
        case unknownInput = "unknown_input"
        /// An input tensor has the wrong element type.
        case typeMismatch = "type_mismatch"
        /// An input tensor has the wrong rank or dimension, or shapes do not broadcast.
        case shapeMismatch = "shape_mismatch"
        /// An attribute or input value is out of the operator's domain.
        case invalidArgument = "invalid_argument"
        /// A tensor would exceed the configured memory limit (shape bombs).
        case memoryLimit = "memory_limit"
        /// Reading or writing a file failed.
        case io = "io"
        /// The run was cancelled.
        case cancelled = "cancelled"
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
