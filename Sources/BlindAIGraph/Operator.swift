import BlindAITensor
import BlindAIKernels

/// A compiled operator. Built once per model by the planner; `run` may be called concurrently.
public protocol Operator: Sendable {
    /// Runs the operator. `inputs` follow the node's inputs (nil for omitted optional ones), followed by the
    /// values captured by its subgraphs, if any. Returns the node's outputs in order (fewer if trailing
    /// optional outputs are not produced).
    func run(_ inputs: [Tensor?], _ context: ExecutionContext) throws -> [Tensor]

    /// False for operators whose result may vary between runs (random generators): never constant-folded.
    var isDeterministic: Bool { get }
}

extension Operator {
    public var isDeterministic: Bool { true }
}

extension Array where Element == Tensor? {
    /// The input at `i`, which must be present.
    @inlinable
    public func required(_ i: Int, _ what: String = "input") throws -> Tensor {
        guard i < count, let t = self[i] else {
            throw EngineError(.invalidArgument, "required \(what) #\(i) is missing")
        }
        return t
    }

    /// The input at `i` if present.
    @inlinable
    public func optional(_ i: Int) -> Tensor? {
        i < count ? self[i] : nil
    }
}
