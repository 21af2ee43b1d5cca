
/// Everything an operator may use while running: limits and cancellation. No global state.
public struct ExecutionContext: Sendable {
    public var limits: TensorLimits
    /// Checked between nodes; a cancelled run throws `.cancelled`.
    public var isCancelled: @Sendable () -> Bool

    public init(limits: TensorLimits = .default, isCancelled: @escaping @Sendable () -> Bool = { false }) {
        self.limits = limits
        self.isCancelled = isCancelled
    }

    /// Allocates a zero-filled output tensor, checked against the limits.
    @inlinable
    public func zeros(_ dataType: DataType, _ shape: [Int]) throws -> Tensor {
        try Tensor(zeros: dataType, shape: shape, limits: limits)
    }

    /// Allocates an output tensor the operator will fully overwrite.
    @inlinable
    public func uninitialized(_ dataType: DataType, _ shape: [Int]) throws -> Tensor {
        if dataType == .string { return try Tensor(zeros: dataType, shape: shape, limits: limits) }
        return try Tensor(uninitialized: dataType, shape: shape, limits: limits)
    }
}
