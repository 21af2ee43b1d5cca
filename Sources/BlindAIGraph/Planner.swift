import BlindAITensor

/// Compiles a `Graph` into a `Plan`: resolves names to slots, builds operators (collecting every unsupported
/// one), orders nodes topologically (rejecting cycles), folds constants, removes dead nodes and computes
/// when each value can be freed.
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
    }

    private struct PendingNode {
        var node: Node
        var op: any Operator
        var inputs: [Int]
        var outputs: [Int]
    }

    func compile(_ graph: Graph, allowCapture: Bool) throws -> Compiled {
        var slotOf: [String: Int] = [:]
        var slotCount = 0
        func newSlot(_ name: String) -> Int {
            let s = slotCount
            slotCount += 1
            slotOf[name] = s
            return s
        }

        // Constants (initializers), then graph inputs that are not initializers.
        var constants: [Int: Tensor] = [:]
        for name in graph.initializers.keys.sorted() {
            constants[newSlot(name)] = graph.initializers[name]!
        }
        var inputs: [ValueInfo] = []
        var inputSlots: [Int] = []
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
        // Node outputs.
        for node in graph.nodes {
            for o in node.outputs where !o.isEmpty {
                if slotOf[o] != nil {
                    throw EngineError(.invalidModel, "value '\(o)' is produced more than once (by node '\(node.name)')", node: node.name, opType: node.opType)
                }
                _ = newSlot(o)
            }
        }
        // Names read but not defined: captured from an outer scope (subgraphs) or an error.
        var captured: [String] = []
        var capturedSlots: [Int] = []
        func resolve(_ name: String, by node: Node) throws -> Int {
            if let s = slotOf[name] { return s }
            guard allowCapture else {
                throw EngineError(.invalidModel, "value '\(name)' is used but never defined", node: node.name, opType: node.opType)
            }
            let s = newSlot(name)
            captured.append(name)
            capturedSlots.append(s)
            return s
        }

        // Build the operators, collecting every unsupported one.
        var pending: [PendingNode] = []
        var unsupported: [String] = []
        for node in graph.nodes {
            let opset = graph.opsets[node.domain == "ai.onnx" ? "" : node.domain] ?? graph.opsets[""] ?? 1
            guard let entry = registry.builder(domain: node.domain, opType: node.opType, opset: opset) else {
                let d = node.domain.isEmpty ? "" : "\(node.domain)."
                unsupported.append("\(d)\(node.opType) (node '\(node.name)')")
                continue
            }
            let constantInputs: [Tensor?] = node.inputs.map { $0.isEmpty ? nil : slotOf[$0].flatMap { constants[$0] } }
            var ctx = OpBuildContext(node: node, opset: opset, constantInputs: constantInputs) { (g: Graph) throws -> SubgraphPlan in
                let p = try Planner(registry: registry, options: options).compile(g, allowCapture: true)
                let plan = Plan(steps: p.steps, slotCount: p.slotCount, constants: zip(p.constantSlots, p.constantValues).map { ($0, $1) },
                                inputs: p.inputs, inputSlots: p.inputSlots, outputs: p.outputs, outputSlots: p.outputSlots,
                                captured: p.captured, capturedSlots: p.capturedSlots, options: options)
                return SubgraphPlan(plan: plan, captured: p.captured)
            }
            let op: any Operator
            do {
                op = try entry.build(&ctx)
            } catch {
                throw EngineError.wrap(error).at(node: node.name, opType: node.opType)
            }
            var ins: [Int] = []
            for name in node.inputs {
                ins.append(name.isEmpty ? -1 : try resolve(name, by: node))
            }
            // Outer values read by this node's subgraphs become extra inputs, subgraph by subgraph, in the
            // order of each subgraph's `captured` list (see `SubgraphPlan.run`).
            for sub in ctx.compiled {
                for name in sub.captured { ins.append(try resolve(name, by: node)) }
            }
            pending.append(PendingNode(node: node, op: op, inputs: ins, outputs: node.outputs.map { $0.isEmpty ? -1 : slotOf[$0]! }))
        }
        if !unsupported.isEmpty {
            throw EngineError(.unsupportedOperator, "unsupported operators: \(unsupported.joined(separator: ", "))")
        }

        // Outputs.
        var outputSlots: [Int] = []
        for o in graph.outputs {
            guard let s = slotOf[o.name] else {
                if allowCapture {
                    // A subgraph may output an outer value directly.
                    let s = newSlot(o.name)
                    captured.append(o.name)
                    capturedSlots.append(s)
                    outputSlots.append(s)
                    continue
                }
                throw EngineError(.invalidModel, "graph output '\(o.name)' is never produced")
            }
            outputSlots.append(s)
        }

        // Topological order (Kahn), stable with respect to the file's order.
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
        var nodes = order.map { pending[$0] }

        if options.optimize {
            // Constant folding: run, at plan time, every deterministic node whose inputs are all constants.
            var kept: [PendingNode] = []
            let ctx = ExecutionContext(limits: options.limits)
            for p in nodes {
                let allConstant = p.op.isDeterministic && p.inputs.allSatisfy { $0 < 0 || constants[$0] != nil }
                    && !p.inputs.contains { capturedSlots.contains($0) }
                if allConstant, let results = try? p.op.run(p.inputs.map { $0 < 0 ? nil : constants[$0] }, ctx),
                   results.count >= p.outputs.filter({ $0 >= 0 }).count {
                    for (i, s) in p.outputs.enumerated() where s >= 0 && i < results.count { constants[s] = results[i] }
                    continue
                }
                kept.append(p)
            }
            nodes = kept
            // Dead-node removal: keep only nodes that contribute to an output.
            var live = Set(outputSlots)
            var alive: [PendingNode] = []
            for p in nodes.reversed() where p.outputs.contains(where: { live.contains($0) }) {
                alive.append(p)
                for s in p.inputs where s >= 0 { live.insert(s) }
            }
            nodes = alive.reversed()
            // Drop constants nobody reads.
            let read = Set(nodes.flatMap(\.inputs)).union(outputSlots)
            constants = constants.filter { read.contains($0.key) }
        }

        // Free each value right after its last reader (never outputs).
        var lastUse = [Int](repeating: -1, count: slotCount)
        for (i, p) in nodes.enumerated() { for s in p.inputs where s >= 0 { lastUse[s] = i } }
        // Values produced but never read die right after the step that produced them.
        for (i, p) in nodes.enumerated() { for s in p.outputs where s >= 0 && lastUse[s] < 0 { lastUse[s] = i } }
        let outputSet = Set(outputSlots)
        var frees = [[Int]](repeating: [], count: nodes.count)
        for s in 0..<slotCount where lastUse[s] >= 0 && !outputSet.contains(s) { frees[lastUse[s]].append(s) }

        let steps = nodes.enumerated().map { i, p in
            Plan.Step(op: p.op, inputs: p.inputs, outputs: p.outputs, frees: frees[i], name: p.node.name, opType: p.node.opType)
        }
        let constantList = constants.sorted { $0.key < $1.key }
        return Compiled(steps: steps, slotCount: slotCount, constantSlots: constantList.map(\.key), constantValues: constantList.map(\.value),
                        inputs: inputs, inputSlots: inputSlots, outputs: graph.outputs, outputSlots: outputSlots,
                        captured: captured, capturedSlots: capturedSlots)
    }
}
