import BlindAITensor

/// How a plan is built.
public struct PlanOptions: Sendable {
    /// Run the optimiser (constant folding, dead-node removal). The plain plan runs every node as written.
    public var optimize: Bool
    /// Limits applied to every tensor while planning (constant folding) and running.
    public var limits: TensorLimits

    public init(optimize: Bool = true, limits: TensorLimits = .default) {
        self.optimize = optimize
        self.limits = limits
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
    struct Step: Sendable {
        let op: any Operator
        let inputs: [Int]   // -1 for an omitted optional input
        let outputs: [Int]  // -1 for an unused optional output
        let frees: [Int]
        let name: String
        let opType: String
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

    /// Number of operator steps run per inference (after optimisation).
    public var stepCount: Int { steps.count }
    /// Op types of the steps, in execution order.
    public var stepOpTypes: [String] { steps.map(\.opType) }

    init(steps: [Step], slotCount: Int, constants: [(Int, Tensor)], inputs: [ValueInfo], inputSlots: [Int],
         outputs: [ValueInfo], outputSlots: [Int], captured: [String], capturedSlots: [Int], options: PlanOptions) {
        self.steps = steps
        self.slotCount = slotCount
        self.constantSlots = constants.map(\.0)
        self.constantValues = constants.map(\.1)
        self.inputs = inputs
        self.inputSlots = inputSlots
        self.outputs = outputs
        self.outputSlots = outputSlots
        self.captured = captured
        self.capturedSlots = capturedSlots
        self.options = options
    }

    /// Compiles `graph` with the operators of `registry`.
    public convenience init(graph: Graph, registry: OperatorRegistry, options: PlanOptions = PlanOptions()) throws {
        let p = try Planner(registry: registry, options: options).compile(graph, allowCapture: false)
        self.init(steps: p.steps, slotCount: p.slotCount, constants: zip(p.constantSlots, p.constantValues).map { ($0, $1) },
                  inputs: p.inputs, inputSlots: p.inputSlots, outputs: p.outputs, outputSlots: p.outputSlots,
                  captured: p.captured, capturedSlots: p.capturedSlots, options: options)
    }

    /// Runs the plan on named inputs and returns every graph output by name.
    public func run(_ feeds: [String: Tensor], context: ExecutionContext? = nil) throws -> [String: Tensor] {
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
            let results: [Tensor]
            do {
                results = try step.op.run(args, context)
            } catch {
                throw EngineError.wrap(error).at(node: step.name, opType: step.opType)
            }
            args.removeAll(keepingCapacity: true)
            for (i, s) in step.outputs.enumerated() where s >= 0 {
                guard i < results.count else {
                    throw EngineError(.invalidModel, "output #\(i) was not produced", node: step.name, opType: step.opType)
                }
                slots[s] = results[i]
            }
            for s in step.frees { slots[s] = nil }
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
