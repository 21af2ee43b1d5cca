import BlindAITensor
import BlindAIKernels
import CBlindAIKernels

// In-place execution of element-wise operators. When an element-wise step reads a value for the last time, and
// that value's storage is owned by no one else (checked at run time with `isKnownUniquelyReferenced`), the step
// writes its output into that storage instead of allocating: no new buffer, no page faults on fresh memory,
// and a smaller live set. The planner chooses the candidate input (one that dies at the step); the plan checks
// uniqueness, ownership, element type and shape on every run and otherwise runs the operator normally.

/// An element-wise operator that can write its output over one of its inputs.
package protocol InPlaceElementwise: Operator {
    /// Inputs that may be overwritten by output 0: element `i` of the output is computed from element `i` of
    /// that input (when the input has the output's shape) and from nothing written before it.
    func inPlaceCandidates(inputCount: Int) -> [Int]

    /// Runs with output 0 written into the storage of `inputs[k]`, which the caller owns alone. Returns nil,
    /// having written nothing, when it cannot (element type not handled, or the input's shape is not the
    /// output's); the caller then runs the operator normally.
    func runInPlace(_ inputs: [Tensor?], reusing k: Int, _ ctx: ExecutionContext) throws -> [Tensor]?
}
