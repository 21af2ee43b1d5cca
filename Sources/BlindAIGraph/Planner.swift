import BlindAITensor
import BlindAIKernels

/// Compiles a `Graph` into a `Plan` through named passes (`compile` lists them): slots, build, outputs, order,
/// fold and infer, prune, lifetimes, in-place.
struct Planner {
    let registry: OperatorRegistry
    let options: PlanOptions

    struct Compiled {
        var steps: [Plan.Step]
        var slotCount: Int
        var constantSlots: [Int]
        var constantValues: [Tensor]
        var inputs: [ValueInfo]
        var inputSlots: [Int]
        var outputs: [ValueInfo]
        var outputSlots: [Int]
        var captured: [String]
        var capturedSlots: [Int]
        /// Facts of the graph's inputs and outputs (what is known at plan time).
        var inputFacts: [ValueFact]
        var outputFacts: [ValueFact]
    }

    private struct PendingNode {
        var node: Node
        var opset: Int
        var op: any Operator
        var inputs: [Int]
        var outputs: [Int]
        /// Facts of the outputs, inferred at plan time.
        var facts: [ValueFact] = []
    }

    /// The planning pipeline. Each pass is a function below, in this order:
    /// slots → build → outputs → order → fold and infer → prune → lifetimes → in-place.
    func compile(_ graph: Graph, allowCapture: Bool) throws -> Compiled {
        var slots = try Slots(graph, allowCapture: allowCapture)
        var nodes = try buildOperators(graph, &slots)
        let outputSlots = try slots.resolveOutputs(graph)
        nodes = try Self.topologicalOrder(nodes, slotCount: slots.count)
        var facts = slots.initialFacts(declaredInputsHold: !allowCapture)
        nodes = foldAndInfer(nodes, &slots, &facts)
        if options.optimize { nodes = Self.pruneDeadNodes(nodes, outputSlots: outputSlots, &slots) }
        let frees = Self.lifetimes(nodes, slotCount: slots.count, outputSlots: outputSlots)
        let steps = Self.inPlaceSteps(nodes, frees: frees, slots: slots, facts: facts)
        let constantList = slots.constants.sorted { $0.key < $1.key }
        return Compiled(steps: steps, slotCount: slots.count, constantSlots: constantList.map(\.key), constantValues: constantList.map(\.value),
                        inputs: slots.inputs, inputSlots: slots.inputSlots, outputs: graph.outputs, outputSlots: outputSlots,
                        captured: slots.captured, capturedSlots: slots.capturedSlots,
                        inputFacts: slots.inputSlots.map { facts[$0] }, outputFacts: outputSlots.map { facts[$0] })
    }

    /// Pass 1, slots: every value name gets an integer slot. Constants (initializers) first, then the graph inputs
    /// that are not initializers, then node outputs; names read but never defined are captured from an outer
    /// scope (subgraphs) or are an error.
    struct Slots {
        private(set) var slotOf: [String: Int] = [:]
        private(set) var count = 0
        var constants: [Int: Tensor] = [:]
        private(set) var inputs: [ValueInfo] = []
        private(set) var inputSlots: [Int] = []
        private(set) var captured: [String] = []
        private(set) var capturedSlots: [Int] = []
        let allowCapture: Bool

        init(_ graph: Graph, allowCapture: Bool) throws {
            self.allowCapture = allowCapture
            for name in graph.initializers.keys.sorted() {
                constants[newSlot(name)] = graph.initializers[name]!
            }
            for info in graph.inputs where graph.initializers[info.name] == nil {
                guard slotOf[info.name] == nil else {
                    throw EngineError(.invalidModel, "graph input '\(info.name)' is declared twice")
                }
                if let t = info.nonTensorType {
                    throw EngineError(.invalidModel, "graph input '\(info.name)' has type \(t); only tensors are supported")
                }
                inputs.append(info)
                inputSlots.append(newSlot(info.name))
            }
            for node in graph.nodes {
                for o in node.outputs where !o.isEmpty {
                    if slotOf[o] != nil {
                        throw EngineError(.invalidModel, "value '\(o)' is produced more than once (by node '\(node.name)')", node: node.name, opType: node.opType)
                    }
                    _ = newSlot(o)
                }
            }
        }

        private mutating func newSlot(_ name: String) -> Int {
            let s = count
            count += 1
            slotOf[name] = s
            return s
        }

        private mutating func capture(_ name: String) -> Int {
            let s = newSlot(name)
            captured.append(name)
            capturedSlots.append(s)
            return s
        }

        func slot(_ name: String) -> Int? { slotOf[name] }

        /// The slot of a name a node reads.
        mutating func resolve(_ name: String, by node: Node) throws -> Int {
            if let s = slotOf[name] { return s }
            guard allowCapture else {
                throw EngineError(.invalidModel, "value '\(name)' is used but never defined", node: node.name, opType: node.opType)
            }
            return capture(name)
        }

        /// Pass 3, outputs: the slots of the graph's outputs (a subgraph may output an outer value directly).
        mutating func resolveOutputs(_ graph: Graph) throws -> [Int] {
            var outputSlots: [Int] = []
            for o in graph.outputs {
                guard let s = slotOf[o.name] else {
                    if allowCapture {
                        outputSlots.append(capture(o.name))
                        continue
                    }
                    throw EngineError(.invalidModel, "graph output '\(o.name)' is never produced")
                }
                outputSlots.append(s)
            }
            return outputSlots
        }

        /// What is known before any node: the initializers, and the declared inputs when they are checked on every
        /// run (a top-level plan checks its inputs' types and fixed dimensions; a subgraph's inputs are not
        /// checked, so nothing is assumed of them).
        func initialFacts(declaredInputsHold: Bool) -> [ValueFact] {
            var facts = [ValueFact](repeating: .unknown, count: count)
            for (s, t) in constants { facts[s] = ValueFact(constant: t) }
            if declaredInputsHold {
                for (info, s) in zip(inputs, inputSlots) { facts[s] = ValueFact(declared: info) }
            }
            return facts
        }
    }

    /// Pass 2, build: every node's operator is built from the registry (attributes parsed once), collecting every
    /// unsupported operator into one error; each node's inputs and outputs become slots, and the outer values its
    /// subgraphs read become extra inputs.
    private func buildOperators(_ graph: Graph, _ slots: inout Slots) throws -> [PendingNode] {
        var pending: [PendingNode] = []
        var unsupported: [String] = []
        for node in graph.nodes {
            let opset = graph.opsets[node.domain == "ai.onnx" ? "" : node.domain] ?? graph.opsets[""] ?? 1
            guard let entry = registry.builder(domain: node.domain, opType: node.opType, opset: opset) else {
                let d = node.domain.isEmpty ? "" : "\(node.domain)."
                unsupported.append("\(d)\(node.opType) (node '\(node.name)')")
                continue
            }
            let constantInputs: [Tensor?] = node.inputs.map { $0.isEmpty ? nil : slots.slot($0).flatMap { slots.constants[$0] } }
            var ctx = OpBuildContext(node: node, opset: opset, constantInputs: constantInputs) { [registry, options] (g: Graph) throws -> SubgraphPlan in
                let p = try Planner(registry: registry, options: options).compile(g, allowCapture: true)
                return SubgraphPlan(plan: Plan(p, options: options), captured: p.captured)
            }
            let op: any Operator
            do {
                op = try entry.build(&ctx)
            } catch {
                throw EngineError.wrap(error).at(node: node.name, opType: node.opType)
            }
            var ins: [Int] = []
            for name in node.inputs {
                ins.append(name.isEmpty ? -1 : try slots.resolve(name, by: node))
            }
            // Outer values read by this node's subgraphs become extra inputs, subgraph by subgraph, in the
            // order of each subgraph's `captured` list (see `SubgraphPlan.run`).
            for sub in ctx.compiled {
                for name in sub.captured { ins.append(try slots.resolve(name, by: node)) }
            }
            pending.append(PendingNode(node: node, opset: opset, op: op, inputs: ins, outputs: node.outputs.map { $0.isEmpty ? -1 : slots.slot($0)! }))
        }
        if !unsupported.isEmpty {
            throw EngineError(.unsupportedOperator, "unsupported operators: \(unsupported.joined(separator: ", "))")
        }
        return pending
    }

    /// Pass 4, order: topological order (Kahn), stable with respect to the file's order; a cycle is an error
    /// naming its nodes.
    private static func topologicalOrder(_ pending: [PendingNode], slotCount: Int) throws -> [PendingNode] {
        var producer = [Int](repeating: -1, count: slotCount)
        for (i, p) in pending.enumerated() { for s in p.outputs where s >= 0 { producer[s] = i } }
        var indegree = [Int](repeating: 0, count: pending.count)
        var consumers = [[Int]](repeating: [], count: pending.count)
        for (i, p) in pending.enumerated() {
            var seen = Set<Int>()
            for s in p.inputs where s >= 0 && producer[s] >= 0 && seen.insert(producer[s]).inserted {
                indegree[i] += 1
                consumers[producer[s]].append(i)
            }
        }
        var ready = (0..<pending.count).filter { indegree[$0] == 0 }.reversed().map { $0 }
        var order: [Int] = []
        order.reserveCapacity(pending.count)
        while let i = ready.popLast() {
            order.append(i)
            var newly: [Int] = []
            for c in consumers[i] {
                indegree[c] -= 1
                if indegree[c] == 0 { newly.append(c) }
            }
            // Keep file order among nodes that become ready together.
            ready.append(contentsOf: newly.sorted(by: >))
            ready.sort(by: >)
        }
        if order.count != pending.count {
            let stuck = (0..<pending.count).filter { indegree[$0] > 0 }.prefix(10).map { "'\(pending[$0].node.name)' (\(pending[$0].node.opType))" }
            throw EngineError(.graphCycle, "the graph has a cycle through nodes \(stuck.joined(separator: ", "))")
        }
        return order.map { pending[$0] }
    }

    /// Pass 5, fold and infer, in topological order: in the optimised plan, every deterministic node whose inputs
    /// are all constants runs now and becomes a constant; every other node gets its output facts, and a node whose
    /// outputs the facts fully determine (Shape of a static shape, Gather of a known dimension, ...) is folded too.
    private func foldAndInfer(_ nodes: [PendingNode], _ slots: inout Slots, _ facts: inout [ValueFact]) -> [PendingNode] {
        let capturedSet = Set(slots.capturedSlots)
        var kept: [PendingNode] = []
        let foldContext = ExecutionContext(limits: options.limits)
        for var p in nodes {
            let foldable = options.optimize && p.op.isDeterministic && !p.inputs.contains { capturedSet.contains($0) }
            if foldable && p.inputs.allSatisfy({ $0 < 0 || slots.constants[$0] != nil }),
               let results = try? p.op.run(p.inputs.map { $0 < 0 ? nil : slots.constants[$0] }, foldContext),
               results.count >= p.outputs.filter({ $0 >= 0 }).count {
                for (i, s) in p.outputs.enumerated() where s >= 0 && i < results.count {
                    slots.constants[s] = results[i]
                    facts[s] = ValueFact(constant: results[i])
                }
                continue
            }
            p.facts = Self.inferFacts(p, facts, slots.constants)
            for (i, s) in p.outputs.enumerated() where s >= 0 { facts[s] = p.facts[i] }
            if foldable {
                var values: [(Int, Tensor)] = []
                for (i, s) in p.outputs.enumerated() where s >= 0 {
                    guard let t = p.facts[i].materialized() else { break }
                    values.append((s, t))
                }
                if values.count == p.outputs.filter({ $0 >= 0 }).count {
                    for (s, t) in values { slots.constants[s] = t }
                    continue
                }
            }
            kept.append(p)
        }
        return kept
    }

    /// Pass 6, prune (optimised plan only): keep only the nodes that contribute to an output, and the constants
    /// someone still reads.
    private static func pruneDeadNodes(_ nodes: [PendingNode], outputSlots: [Int], _ slots: inout Slots) -> [PendingNode] {
        var live = Set(outputSlots)
        var alive: [PendingNode] = []
        for p in nodes.reversed() where p.outputs.contains(where: { live.contains($0) }) {
            alive.append(p)
            for s in p.inputs where s >= 0 { live.insert(s) }
        }
        let read = Set(alive.flatMap(\.inputs)).union(outputSlots)
        slots.constants = slots.constants.filter { read.contains($0.key) }
        return alive.reversed()
    }

    /// Pass 7, lifetimes: the values each step frees, right after their last reader (never outputs); a value
    /// produced but never read dies right after the step that produced it.
    private static func lifetimes(_ nodes: [PendingNode], slotCount: Int, outputSlots: [Int]) -> [[Int]] {
        var lastUse = [Int](repeating: -1, count: slotCount)
        for (i, p) in nodes.enumerated() { for s in p.inputs where s >= 0 { lastUse[s] = i } }
        for (i, p) in nodes.enumerated() { for s in p.outputs where s >= 0 && lastUse[s] < 0 { lastUse[s] = i } }
        let outputSet = Set(outputSlots)
        var frees = [[Int]](repeating: [], count: nodes.count)
        for s in 0..<slotCount where lastUse[s] >= 0 && !outputSet.contains(s) { frees[lastUse[s]].append(s) }
        return frees
    }

    /// Pass 8, in-place: the plan's steps, with their in-place candidates. A candidate is an input of an
    /// element-wise step that dies at the step, is not a graph input, a constant or an outer value (never uniquely
    /// owned by the run), is read once by the step, and whose facts do not rule out the output's type and shape.
    /// Uniqueness is checked again on every run.
    private static func inPlaceSteps(_ nodes: [PendingNode], frees: [[Int]], slots: Slots, facts: [ValueFact]) -> [Plan.Step] {
        let inputSet = Set(slots.inputSlots)
        let capturedSet = Set(slots.capturedSlots)
        return nodes.enumerated().map { i, p in
            var inPlace: [Int] = []
            let inPlaceOp = p.op as? any InPlaceElementwise
            if let op = inPlaceOp, let out = p.facts.first {
                for k in op.inPlaceCandidates(inputCount: p.node.inputs.count) where k < p.inputs.count {
                    let s = p.inputs[k]
                    guard s >= 0, frees[i].contains(s), slots.constants[s] == nil, !inputSet.contains(s), !capturedSet.contains(s),
                          p.inputs.lazy.filter({ $0 == s }).count == 1, mayMatch(facts[s], out) else { continue }
                    inPlace.append(k)
                }
            }
            return Plan.Step(op: p.op, inputs: p.inputs, outputs: p.outputs, frees: frees[i], name: p.node.name, opType: p.node.opType,
                             facts: p.outputs.indices.map { $0 < p.facts.count ? p.facts[$0] : .unknown },
                             inPlaceOp: inPlace.isEmpty ? nil : inPlaceOp, inPlace: inPlace)
        }
    }

    /// Whether a value with fact `a` may have the type and shape of fact `b` (false only when facts rule it out).
    static func mayMatch(_ a: ValueFact, _ b: ValueFact) -> Bool {
        if let x = a.dataType, let y = b.dataType, x != y { return false }
        if let x = a.shape, let y = b.shape {
            guard x.count == y.count else { return false }
            for (u, v) in zip(x, y) {
                if let u = u.value, let v = v.value, u != v { return false }
            }
        }
        return true
    }

    /// The facts of a node's outputs from its inputs' facts (unknown when its operator has no shape rule).
    private static func inferFacts(_ p: PendingNode, _ facts: [ValueFact], _ constants: [Int: Tensor]) -> [ValueFact] {
        let formal = p.inputs.prefix(p.node.inputs.count)
        var result: [ValueFact] = []
        if let op = p.op as? any ShapeInferring {
            let ctx = ShapeInferenceContext(node: p.node, opset: p.opset, constants: formal.map { $0 < 0 ? nil : constants[$0] })
            result = (try? op.inferFacts(formal.map { $0 < 0 ? nil : facts[$0].withDimensionsInRange }, ctx)) ?? []
        }
        result = result.map(\.withDimensionsInRange)
        if result.count > p.outputs.count { result.removeLast(result.count - p.outputs.count) }
        while result.count < p.outputs.count { result.append(.unknown) }
        return result
    }
}
