import BlindAITensor
import BlindAIKernels
import CBlindAIKernels

/// How a plan is built.
public struct PlanOptions: Sendable {
    /// Run the optimiser (constant folding, dead-node removal). The plain plan runs every node as written.
    public var optimize: Bool
    /// Limits applied to every tensor while planning (constant folding) and running.
    public var limits: TensorLimits
    /// Check every value produced against the fact inferred for it at plan time (a test aid: a mismatch is a
    /// `shape_mismatch` error naming the node).
    public var verifyFacts: Bool

    public init(optimize: Bool = true, limits: TensorLimits = .default, verifyFacts: Bool = false) {
        self.optimize = optimize
        self.limits = limits
        self.verifyFacts = verifyFacts
    }
}

/// A subgraph compiled for an `If`, `Loop` or `Scan`, with the outer-scope values it reads.
public struct SubgraphPlan: Sendable {
    public let plan: Plan
    /// Names of outer-scope values the subgraph reads; the planner appends them to the node's inputs.
    public let captured: [String]
}

/// A graph compiled once: operators built, steps in topological order, constants folded, and for each step
/// the values that die after it. Immutable; `run` may be called from many threads at once.
public final class Plan: Sendable {
    /// A class, not a struct: a run walks the steps for every inference, and copying a struct of nine reference
    /// fields cost nine retains and releases per step (about 16 % of a small transformer's run).
    final class Step: Sendable {
        let op: any Operator
        let inputs: [Int]   // -1 for an omitted optional input
        let outputs: [Int]  // -1 for an unused optional output
        let frees: [Int]
        let name: String
        let opType: String
        /// What is known of each output at plan time.
        let facts: [ValueFact]
        /// The step's operator when it may run in place, and the input positions it may overwrite, in order of
        /// preference (each dies at this step).
        let inPlaceOp: (any InPlaceElementwise)?
        let inPlace: [Int]

        init(op: any Operator, inputs: [Int], outputs: [Int], frees: [Int], name: String, opType: String,
             facts: [ValueFact], inPlaceOp: (any InPlaceElementwise)?, inPlace: [Int]) {
            self.op = op
            self.inputs = inputs
            self.outputs = outputs
            self.frees = frees
            self.name = name
            self.opType = opType
            self.facts = facts
            self.inPlaceOp = inPlaceOp
            self.inPlace = inPlace
        }
    }

    let steps: [Step]
    let slotCount: Int
    let constantSlots: [Int]
    let constantValues: [Tensor]
    /// The graph's inputs that a caller must provide.
    public let inputs: [ValueInfo]
    let inputSlots: [Int]
    /// The graph's outputs (declared types and shapes are informative only).
    public let outputs: [ValueInfo]
    let outputSlots: [Int]
    let capturedSlots: [Int]
    public let captured: [String]
    public let options: PlanOptions
    /// What is known at plan time of each input (declared type and shape) and each output (inferred; declared
    /// output shapes are not used). Symbolic dimensions are informative.
    public let inputFacts: [ValueFact]
    public let outputFacts: [ValueFact]

    /// Number of operator steps run per inference (after optimisation).
    public var stepCount: Int { steps.count }
    /// Op types of the steps, in execution order.
    public var stepOpTypes: [String] { steps.map(\.opType) }
    /// Number of steps that may write their output over an input they read last (element-wise steps).
    public var inPlaceStepCount: Int { steps.lazy.filter { $0.inPlaceOp != nil }.count }

    init(_ p: Planner.Compiled, options: PlanOptions) {
        steps = p.steps
        slotCount = p.slotCount
        constantSlots = p.constantSlots
        constantValues = p.constantValues
        inputs = p.inputs
        inputSlots = p.inputSlots
        outputs = p.outputs
        outputSlots = p.outputSlots
        captured = p.captured
        capturedSlots = p.capturedSlots
        inputFacts = p.inputFacts
        outputFacts = p.outputFacts
        self.options = options
    }

    /// Compiles `graph` with the operators of `registry`.
    public convenience init(graph: Graph, registry: OperatorRegistry, options: PlanOptions = PlanOptions()) throws {
        self.init(try Planner(registry: registry, options: options).compile(graph, allowCapture: false), options: options)
    }

    /// The fact of each output by name.
    public var outputFactsByName: [String: ValueFact] {
        Dictionary(zip(outputs.map(\.name), outputFacts), uniquingKeysWith: { a, _ in a })
    }

    /// Runs the plan on named inputs and returns every graph output by name.
    public func run(_ feeds: [String: Tensor], context: ExecutionContext? = nil) throws -> [String: Tensor] {
        // Counted in the engine's thread pool: concurrent runs share the cores instead of each taking them all,
        // and when the last run ends the helpers stop spinning for a next parallel loop.
        blindai_parallel_run_began()
        defer { blindai_parallel_run_ended() }
        let ctx = context ?? ExecutionContext(limits: options.limits)
        var values = [Tensor?](repeating: nil, count: inputs.count)
        let known = Set(inputs.map(\.name))
        for name in feeds.keys.sorted() where !known.contains(name) {
            throw EngineError(.unknownInput, "the model has no input named '\(name)' (inputs: \(inputs.map(\.name).joined(separator: ", ")))")
        }
        for (i, info) in inputs.enumerated() {
            guard let t = feeds[info.name] else {
                throw EngineError(.missingInput, "input '\(info.name)' is required")
            }
            try Plan.check(t, against: info)
            // Feeds come from outside (a request, a file): the same limits as any tensor the engine makes, which
            // also refuse empty tensors whose other dimensions multiply past them (their strides would overflow).
            _ = try ctx.limits.checkedCount(t.shape, t.dataType)
            values[i] = t
        }
        let out = try runPositional(values, context: ctx)
        var result: [String: Tensor] = [:]
        for (i, info) in outputs.enumerated() { result[info.name] = out[i] }
        return result
    }

    /// Checks a tensor against a declared input: element type, rank and fixed dimensions.
    public static func check(_ t: Tensor, against info: ValueInfo) throws {
        if let dt = info.dataType, dt != t.dataType {
            throw EngineError(.typeMismatch, "input '\(info.name)' must be \(dt), got \(t.dataType)")
        }
        if let shape = info.shape {
            guard shape.count == t.rank else {
                throw EngineError(.shapeMismatch, "input '\(info.name)' must have rank \(shape.count) (shape [\(shape.map(\.description).joined(separator: ", "))]), got shape \(t.shape)")
            }
            for (i, d) in shape.enumerated() {
                if let v = d.value, v >= 0, v != t.shape[i] {
                    throw EngineError(.shapeMismatch, "input '\(info.name)' must have shape [\(shape.map(\.description).joined(separator: ", "))], got \(t.shape)")
                }
            }
        }
    }

    /// Runs with inputs given in order (formal inputs, then captured outer values); returns outputs in order.
    public func runPositional(_ values: [Tensor?], context: ExecutionContext) throws -> [Tensor] {
        var slots = [Tensor?](repeating: nil, count: slotCount)
        for (s, v) in zip(constantSlots, constantValues) { slots[s] = v }
        for (i, s) in inputSlots.enumerated() where i < values.count { slots[s] = values[i] }
        for (i, s) in capturedSlots.enumerated() {
            let j = inputSlots.count + i
            if j < values.count { slots[s] = values[j] }
        }
        try execute(&slots, context: context)
        var out: [Tensor] = []
        out.reserveCapacity(outputSlots.count)
        for (i, s) in outputSlots.enumerated() {
            guard let t = slots[s] else {
                throw EngineError(.invalidModel, "output '\(outputs[i].name)' was not produced")
            }
            out.append(t)
        }
        return out
    }

    func execute(_ slots: inout [Tensor?], context: ExecutionContext) throws {
        var args: [Tensor?] = []
        for step in steps {
            if context.isCancelled() { throw EngineError(.cancelled, "the run was cancelled") }
            args.removeAll(keepingCapacity: true)
            for s in step.inputs { args.append(s >= 0 ? slots[s] : nil) }
            var produced: [Tensor]? = nil
            do {
                if let op = step.inPlaceOp {
                    for k in step.inPlace where Plan.takeUnique(&slots, &args, slot: step.inputs[k], position: k) {
                        if let r = try op.runInPlace(args, reusing: k, context) {
                            produced = r
                            break
                        }
                    }
                }
                if produced == nil { produced = try step.op.run(args, context) }
            } catch {
                throw EngineError.wrap(error).at(node: step.name, opType: step.opType)
            }
            args.removeAll(keepingCapacity: true)
            let results = produced ?? []
            for (i, s) in step.outputs.enumerated() where s >= 0 {
                guard i < results.count else {
                    throw EngineError(.invalidModel, "output #\(i) was not produced", node: step.name, opType: step.opType)
                }
                if options.verifyFacts { try Plan.verify(results[i], against: step.facts[i], output: i, of: step) }
                slots[s] = results[i]
            }
            for s in step.frees { slots[s] = nil }
        }
    }
}

extension Plan {
    /// Takes the value in `slot` (read at `position` of the step's arguments, and dying at this step) out of the
    /// run's slots, and tells whether its storage is now referenced by `args` alone and owns its memory, so the
    /// step may overwrite it. The argument stays in place either way.
    static func takeUnique(_ slots: inout [Tensor?], _ args: inout [Tensor?], slot: Int, position k: Int) -> Bool {
        var storage: TensorStorage?
        let dataType: DataType
        let shape: [Int]
        do {
            guard k < args.count, let t = args[k] else { return false }
            storage = t.storage
            dataType = t.dataType
            shape = t.shape
        }
        args[k] = nil
        slots[slot] = nil
        let unique = isKnownUniquelyReferenced(&storage)
        guard let owned = storage else { return false }
        storage = nil
        args[k] = Tensor(dataType: dataType, shape: shape, storage: owned)
        return unique && owned.ownsMemory && dataType != .string
    }

    /// Checks a value produced by `step` against the fact inferred for it at plan time.
    static func verify(_ t: Tensor, against f: ValueFact, output i: Int, of step: Step) throws {
        func fail(_ what: String) -> EngineError {
            EngineError(.shapeMismatch, "shape inference is wrong (\(what)): output #\(i) is \(t.dataType)\(t.shape), inferred \(f)", node: step.name, opType: step.opType)
        }
        if let dt = f.dataType, dt != t.dataType { throw fail("element type") }
        if let shape = f.shape {
            guard shape.count == t.rank else { throw fail("rank") }
            for (d, v) in zip(shape, t.shape) where d.value != nil && d.value != v { throw fail("dimension") }
        }
        if let e = f.elements, t.dataType == .int64 || t.dataType == .int32 {
            let values = try t.intValues()
            guard values.count == e.count else { throw fail("element count") }
            for (d, v) in zip(e, values) where d.value != nil && d.value != v { throw fail("element values \(values)") }
        }
    }
}

extension SubgraphPlan {
    /// Runs the subgraph with its formal inputs and the captured outer values taken from `inputs` starting at
    /// `capturedOffset` (the node's formal input count plus the captured counts of earlier subgraphs).
    public func run(_ formal: [Tensor?], capturedFrom inputs: [Tensor?], at capturedOffset: Int, context: ExecutionContext) throws -> [Tensor] {
        var values = formal
        if formal.count < plan.inputs.count {
            throw EngineError(.invalidModel, "subgraph expects \(plan.inputs.count) inputs, got \(formal.count)")
        }
        values.removeLast(formal.count - plan.inputs.count)
        for i in 0..<captured.count { values.append(inputs[capturedOffset + i]) }
        return try plan.runPositional(values, context: context)
    }
}
