import BlindAITensor
import BlindAIKernels
import BlindAIGraph

// Control flow: If, Loop, Scan. Bodies are compiled once at build time (`c.subgraph`); the outer values a body
// reads arrive as extra node inputs after the formal ones, subgraph by subgraph (see `SubgraphPlan.run`).

/// Tensor helpers for the control-flow family: slicing one index out of an axis and stacking along a new axis.
/// Element bytes are moved without interpretation (strings are moved as Swift strings).
enum ControlFlowTensors {
    /// `t` indexed at `index` along `axis`, with that axis removed.
    static func take(_ t: Tensor, axis: Int, index: Int, _ ctx: ExecutionContext) throws -> Tensor {
        guard axis >= 0 && axis < t.rank else {
            throw EngineError(.invalidArgument, "axis \(axis) is out of range for a tensor of shape \(t.shape)")
        }
        let n = t.shape[axis]
        guard index >= 0 && index < n else {
            throw EngineError(.invalidArgument, "index \(index) is out of range for axis \(axis) of shape \(t.shape)")
        }
        var shape = t.shape
        shape.remove(at: axis)
        let outer = t.shape[..<axis].reduce(1, *)
        let inner = t.shape[(axis + 1)...].reduce(1, *)
        if axis == 0 && t.dataType != .string && index == 0 && n == 1 { return try t.reshaped(shape, limits: ctx.limits) }
        if t.dataType == .string {
            let src = t.strings
            var out: [String] = []
            out.reserveCapacity(outer * inner)
            for o in 0..<outer {
                let base = (o * n + index) * inner
                out.append(contentsOf: src[base..<(base + inner)])
            }
            return Tensor(shape: shape, strings: out)
        }
        let out = try ctx.uninitialized(t.dataType, shape)
        let size = t.dataType.byteSize
        let rowBytes = inner * size
        if rowBytes > 0 {
            let src = t.storage.base, dst = out.storage.base
            for o in 0..<outer {
                (dst + o * rowBytes).copyMemory(from: src + (o * n + index) * rowBytes, byteCount: rowBytes)
            }
        }
        return out
    }

    /// Stacks tensors of one shape and type along a new axis `axis` (0...rank).
    static func stack(_ parts: [Tensor], axis: Int, _ ctx: ExecutionContext) throws -> Tensor {
        guard let first = parts.first else { throw EngineError(.invalidArgument, "nothing to stack") }
        for p in parts where p.shape != first.shape || p.dataType != first.dataType {
            throw EngineError(.shapeMismatch, "cannot stack values of different shapes or types: \(first) and \(p)")
        }
        guard axis >= 0 && axis <= first.rank else {
            throw EngineError(.invalidArgument, "stack axis \(axis) is out of range for rank \(first.rank + 1)")
        }
        var shape = first.shape
        shape.insert(parts.count, at: axis)
        let outer = first.shape[..<axis].reduce(1, *)
        let inner = first.shape[axis...].reduce(1, *)
        let k = parts.count
        if first.dataType == .string {
            let total = try ctx.limits.checkedCount(shape, .string)
            var out = [String](repeating: "", count: total)
            for (j, p) in parts.enumerated() {
                let src = p.strings
                for o in 0..<outer {
                    for i in 0..<inner { out[(o * k + j) * inner + i] = src[o * inner + i] }
                }
            }
            return Tensor(shape: shape, strings: out)
        }
        let out = try ctx.uninitialized(first.dataType, shape)
        let rowBytes = inner * first.dataType.byteSize
        if rowBytes > 0 {
            let dst = out.storage.base
            for (j, p) in parts.enumerated() {
                let src = p.storage.base
                for o in 0..<outer {
                    (dst + (o * k + j) * rowBytes).copyMemory(from: src + o * rowBytes, byteCount: rowBytes)
                }
            }
        }
        return out
    }

    /// An empty tensor for a scan output that received no values: the body's declared element type and shape
    /// (unknown dimensions as 0), with a zero-length axis inserted at `axis`.
    static func emptyStack(_ info: ValueInfo, axis: Int, _ ctx: ExecutionContext) throws -> Tensor {
        var shape = (info.shape ?? []).map { $0.value ?? 0 }
        shape.insert(0, at: Swift.min(Swift.max(axis, 0), shape.count))
        return try ctx.zeros(info.dataType ?? .float32, shape)
    }

    /// Adds `t` to the running total of a scan output and checks it against the limits, so that a long loop
    /// fails with `.memoryLimit` before the accumulated slices exhaust memory.
    static func account(_ t: Tensor, _ total: inout Int, _ ctx: ExecutionContext) throws {
        total += t.count
        let bytes = total.multipliedReportingOverflow(by: Swift.max(t.dataType.byteSize, 1))
        if total > ctx.limits.maxTensorElements || bytes.overflow || bytes.partialValue > ctx.limits.maxTensorBytes {
            throw EngineError(.memoryLimit, "scan output grows to \(total) elements (\(t.dataType)), over the memory limit")
        }
    }

    /// The boolean value of a one-element condition tensor.
    static func truth(_ t: Tensor, _ what: String) throws -> Bool {
        guard t.count == 1 else {
            throw EngineError(.invalidArgument, "\(what) must have exactly one element, got shape \(t.shape)")
        }
        switch t.dataType {
        case .bool: return t.buffer(Bool.self)[0]
        case .float32, .float64, .float16, .bfloat16: return try t.doubleValues()[0] != 0
        default: return try t.intValues()[0] != 0
        }
    }
}

/// If: runs `then_branch` or `else_branch`; the branches may produce outputs of different shapes.
struct IfOp: Operator {
    let thenBranch: SubgraphPlan
    let elseBranch: SubgraphPlan
    let formalCount: Int

    func run(_ inputs: [Tensor?], _ ctx: ExecutionContext) throws -> [Tensor] {
        let cond = try ControlFlowTensors.truth(try inputs.required(0, "cond"), "If condition")
        if cond {
            return try thenBranch.run([], capturedFrom: inputs, at: formalCount, context: ctx)
        }
        return try elseBranch.run([], capturedFrom: inputs, at: formalCount + thenBranch.captured.count, context: ctx)
    }
}

/// Loop: optional trip count M and condition; loop-carried values; scan outputs stacked along a new first axis.
struct LoopOp: Operator {
    let body: SubgraphPlan
    let formalCount: Int

    func run(_ inputs: [Tensor?], _ ctx: ExecutionContext) throws -> [Tensor] {
        var tripCount: Int64?
        if let m = inputs.optional(0) {
            guard m.count == 1 else { throw EngineError(.invalidArgument, "Loop trip count M must have one element, got shape \(m.shape)") }
            tripCount = Int64(try m.intValues()[0])
        }
        var cond = true
        if let c = inputs.optional(1) { cond = try ControlFlowTensors.truth(c, "Loop condition") }
        let carriedCount = formalCount - 2
        guard carriedCount >= 0 else { throw EngineError(.invalidModel, "Loop needs the inputs M and cond (possibly empty)") }
        let bodyInputs = body.plan.inputs.count
        guard bodyInputs == carriedCount + 2 else {
            throw EngineError(.invalidModel, "Loop body has \(bodyInputs) inputs; expected \(carriedCount + 2) (iteration number, condition and \(carriedCount) loop-carried values)")
        }
        let bodyOutputs = body.plan.outputs.count
        let scanCount = bodyOutputs - 1 - carriedCount
        guard scanCount >= 0 else {
            throw EngineError(.invalidModel, "Loop body has \(bodyOutputs) outputs; expected at least \(carriedCount + 1)")
        }
        var carried: [Tensor] = []
        carried.reserveCapacity(carriedCount)
        for i in 0..<carriedCount { carried.append(try inputs.required(2 + i, "loop-carried value")) }
        var scans = [[Tensor]](repeating: [], count: scanCount)
        var scanTotals = [Int](repeating: 0, count: scanCount)
        var formal = [Tensor?](repeating: nil, count: bodyInputs)
        var iteration: Int64 = 0
        let condTrue = Tensor(scalar: true)
        while cond, tripCount.map({ iteration < $0 }) ?? true {
            if ctx.isCancelled() { throw EngineError(.cancelled, "the run was cancelled") }
            formal[0] = Tensor(scalar: iteration)
            formal[1] = condTrue   // the loop only runs while the condition holds
            for i in 0..<carriedCount { formal[2 + i] = carried[i] }
            let out = try body.run(formal, capturedFrom: inputs, at: formalCount, context: ctx)
            guard out.count == bodyOutputs else {
                throw EngineError(.invalidModel, "Loop body produced \(out.count) outputs, expected \(bodyOutputs)")
            }
            cond = try ControlFlowTensors.truth(out[0], "Loop body condition output")
            for i in 0..<carriedCount { carried[i] = out[1 + i] }
            for k in 0..<scanCount {
                let v = out[1 + carriedCount + k]
                try ControlFlowTensors.account(v, &scanTotals[k], ctx)
                scans[k].append(v)
            }
            iteration += 1
        }
        var results = carried
        for k in 0..<scanCount {
            if scans[k].isEmpty {
                results.append(try ControlFlowTensors.emptyStack(body.plan.outputs[1 + carriedCount + k], axis: 0, ctx))
            } else {
                results.append(try ControlFlowTensors.stack(scans[k], axis: 0, ctx))
            }
        }
        return results
    }
}

/// Scan (opset 9+): state values carried across iterations, scan inputs sliced along their scan axes, scan
/// outputs stacked along theirs. Opset 8 adds a leading batch axis and optional sequence lengths.
struct ScanOp: Operator {
    let body: SubgraphPlan
    let formalCount: Int
    let scanInputCount: Int
    let inputAxes: [Int]?
    let inputDirections: [Int]?
    let outputAxes: [Int]?
    let outputDirections: [Int]?
    /// Opset 8: the first input is `sequence_lens` and every value has a leading batch axis.
    let batched: Bool

    func run(_ inputs: [Tensor?], _ ctx: ExecutionContext) throws -> [Tensor] {
        if batched { return try runBatched(inputs, ctx) }
        let stateCount = formalCount - scanInputCount
        guard stateCount >= 0 else {
            throw EngineError(.invalidModel, "Scan has \(formalCount) inputs but num_scan_inputs is \(scanInputCount)")
        }
        var states: [Tensor] = []
        for i in 0..<stateCount { states.append(try inputs.required(i, "state value")) }
        var scanInputs: [Tensor] = []
        for i in 0..<scanInputCount { scanInputs.append(try inputs.required(stateCount + i, "scan input")) }
        var axes: [Int] = []
        for (j, x) in scanInputs.enumerated() {
            let a = inputAxes.flatMap { j < $0.count ? $0[j] : nil } ?? 0
            axes.append(try Shape.axis(a, rank: x.rank))
            guard x.rank > 0 else { throw EngineError(.invalidArgument, "Scan input #\(j) must have rank >= 1") }
        }
        let length = scanInputs.first.map { $0.shape[axes[0]] } ?? 0
        for (j, x) in scanInputs.enumerated() where x.shape[axes[j]] != length {
            throw EngineError(.shapeMismatch, "Scan inputs have different sequence lengths: \(length) and \(x.shape[axes[j]]) (input #\(j), shape \(x.shape))")
        }
        let (finals, slices) = try scanCore(states: states, scanInputs: scanInputs, axes: axes,
                                            directions: inputDirections ?? [], length: length,
                                            outerInputs: inputs, ctx)
        var results = finals
        for (k, parts) in slices.enumerated() {
            let info = body.plan.outputs[stateCount + k]
            let rank = (parts.first?.rank ?? info.shape?.count ?? 0) + 1
            let a = outputAxes.flatMap { k < $0.count ? $0[k] : nil } ?? 0
            let axis = try Shape.axis(a, rank: rank)
            let reverse = (outputDirections.flatMap { k < $0.count ? $0[k] : nil } ?? 0) != 0
            if parts.isEmpty {
                results.append(try ControlFlowTensors.emptyStack(info, axis: axis, ctx))
            } else {
                results.append(try ControlFlowTensors.stack(reverse ? parts.reversed() : parts, axis: axis, ctx))
            }
        }
        return results
    }

    /// Runs the body `length` times. Returns the final states and, per scan output, the slices in iteration order.
    private func scanCore(states initial: [Tensor], scanInputs: [Tensor], axes: [Int], directions: [Int], length: Int,
                          outerInputs: [Tensor?], _ ctx: ExecutionContext) throws -> ([Tensor], [[Tensor]]) {
        let stateCount = initial.count
        let bodyInputs = body.plan.inputs.count
        guard bodyInputs == stateCount + scanInputs.count else {
            throw EngineError(.invalidModel, "Scan body has \(bodyInputs) inputs; expected \(stateCount) states + \(scanInputs.count) scan inputs")
        }
        let bodyOutputs = body.plan.outputs.count
        let scanOutputCount = bodyOutputs - stateCount
        guard scanOutputCount >= 0 else {
            throw EngineError(.invalidModel, "Scan body has \(bodyOutputs) outputs; expected at least \(stateCount)")
        }
        var states = initial
        var slices = [[Tensor]](repeating: [], count: scanOutputCount)
        var totals = [Int](repeating: 0, count: scanOutputCount)
        var formal = [Tensor?](repeating: nil, count: bodyInputs)
        for t in 0..<length {
            if ctx.isCancelled() { throw EngineError(.cancelled, "the run was cancelled") }
            for i in 0..<stateCount { formal[i] = states[i] }
            for (j, x) in scanInputs.enumerated() {
                let reverse = j < directions.count && directions[j] != 0
                formal[stateCount + j] = try ControlFlowTensors.take(x, axis: axes[j], index: reverse ? length - 1 - t : t, ctx)
            }
            let out = try body.run(formal, capturedFrom: outerInputs, at: formalCount, context: ctx)
            guard out.count == bodyOutputs else {
                throw EngineError(.invalidModel, "Scan body produced \(out.count) outputs, expected \(bodyOutputs)")
            }
            for i in 0..<stateCount { states[i] = out[i] }
            for k in 0..<scanOutputCount {
                try ControlFlowTensors.account(out[stateCount + k], &totals[k], ctx)
                slices[k].append(out[stateCount + k])
            }
        }
        return (states, slices)
    }

    /// Opset 8: inputs (sequence_lens?, states..., scan inputs...), all with a leading batch axis; scan axis 1.
    private func runBatched(_ inputs: [Tensor?], _ ctx: ExecutionContext) throws -> [Tensor] {
        let stateCount = formalCount - 1 - scanInputCount
        guard stateCount >= 0 else {
            throw EngineError(.invalidModel, "Scan has \(formalCount) inputs but num_scan_inputs is \(scanInputCount)")
        }
        var states: [Tensor] = []
        for i in 0..<stateCount { states.append(try inputs.required(1 + i, "state value")) }
        var scanInputs: [Tensor] = []
        for i in 0..<scanInputCount { scanInputs.append(try inputs.required(1 + stateCount + i, "scan input")) }
        guard let batch = (states.first ?? scanInputs.first)?.shape.first else {
            throw EngineError(.invalidArgument, "Scan (opset 8) needs inputs with a batch axis")
        }
        for x in states + scanInputs where x.shape.first != batch {
            throw EngineError(.shapeMismatch, "Scan (opset 8) inputs must share the batch size \(batch), got shape \(x.shape)")
        }
        var maxLength = 0
        for (j, x) in scanInputs.enumerated() {
            guard x.rank >= 2 else { throw EngineError(.shapeMismatch, "Scan (opset 8) scan inputs need shape [batch, sequence, ...], got \(x.shape)") }
            if j == 0 { maxLength = x.shape[1] }
            guard x.shape[1] == maxLength else {
                throw EngineError(.shapeMismatch, "Scan inputs have different sequence lengths: \(maxLength) and \(x.shape[1])")
            }
        }
        var lengths = [Int](repeating: maxLength, count: batch)
        if let sl = inputs.optional(0) {
            let v = try sl.intValues()
            guard v.count == batch else { throw EngineError(.shapeMismatch, "sequence_lens has \(v.count) values for batch size \(batch)") }
            for (b, l) in v.enumerated() {
                guard l >= 0 && l <= maxLength else {
                    throw EngineError(.invalidArgument, "sequence_lens[\(b)] = \(l) is outside [0, \(maxLength)]")
                }
                lengths[b] = l
            }
        }
        let scanOutputCount = body.plan.outputs.count - stateCount
        guard scanOutputCount >= 0 else { throw EngineError(.invalidModel, "Scan body has too few outputs") }
        var finalParts = [[Tensor]](repeating: [], count: stateCount)
        var outputParts = [[Tensor]](repeating: [], count: scanOutputCount)
        for b in 0..<batch {
            let s = try states.map { try ControlFlowTensors.take($0, axis: 0, index: b, ctx) }
            let x = try scanInputs.map { try ControlFlowTensors.take($0, axis: 0, index: b, ctx) }
            let (finals, slices) = try scanCore(states: s, scanInputs: x, axes: Array(repeating: 0, count: x.count),
                                                directions: inputDirections ?? [], length: lengths[b],
                                                outerInputs: inputs, ctx)
            for i in 0..<stateCount { finalParts[i].append(finals[i]) }
            for k in 0..<scanOutputCount {
                var parts = slices[k]
                if parts.count < maxLength {
                    // Pad shorter sequences with zeros shaped like the produced slices (or the declared shape).
                    let template: Tensor
                    if let p = parts.first {
                        template = try ctx.zeros(p.dataType, p.shape)
                    } else {
                        let info = body.plan.outputs[stateCount + k]
                        template = try ctx.zeros(info.dataType ?? .float32, (info.shape ?? []).map { $0.value ?? 0 })
                    }
                    parts.append(contentsOf: Array(repeating: template, count: maxLength - parts.count))
                }
                let reverse = (outputDirections.flatMap { k < $0.count ? $0[k] : nil } ?? 0) != 0
                if maxLength == 0 {
                    outputParts[k].append(try ControlFlowTensors.emptyStack(body.plan.outputs[stateCount + k], axis: 0, ctx))
                } else {
                    outputParts[k].append(try ControlFlowTensors.stack(reverse ? parts.reversed() : parts, axis: 0, ctx))
                }
            }
        }
        var results: [Tensor] = []
        for i in 0..<stateCount { results.append(try ControlFlowTensors.stack(finalParts[i], axis: 0, ctx)) }
        for k in 0..<scanOutputCount { results.append(try ControlFlowTensors.stack(outputParts[k], axis: 0, ctx)) }
        return results
    }
}

extension StandardOperators {
    static func registerControlFlow(_ r: inout OperatorRegistry) {
        r.register("If") { c in
            let formal = c.inputCount
            let thenBranch = try c.subgraph("then_branch")
            let elseBranch = try c.subgraph("else_branch")
            return IfOp(thenBranch: thenBranch, elseBranch: elseBranch, formalCount: formal)
        }
        r.register("Loop") { c in
            let formal = c.inputCount
            guard formal >= 2 else { throw c.error(.invalidModel, "Loop needs at least the inputs M and cond (possibly empty)") }
            return LoopOp(body: try c.subgraph("body"), formalCount: formal)
        }
        r.register("Scan") { c in
            let formal = c.inputCount
            guard let n = try c.int("num_scan_inputs"), n > 0 else {
                throw c.error(.invalidModel, "Scan needs a positive 'num_scan_inputs'")
            }
            let body = try c.subgraph("body")
            if c.opset < 9 {
                return ScanOp(body: body, formalCount: formal, scanInputCount: n, inputAxes: nil,
                              inputDirections: try c.ints("directions"), outputAxes: nil, outputDirections: nil, batched: true)
            }
            return ScanOp(body: body, formalCount: formal, scanInputCount: n,
                          inputAxes: try c.ints("scan_input_axes"), inputDirections: try c.ints("scan_input_directions"),
                          outputAxes: try c.ints("scan_output_axes"), outputDirections: try c.ints("scan_output_directions"),
                          batched: false)
        }
    }
}
