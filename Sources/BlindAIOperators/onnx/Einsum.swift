import BlindAITensor
import BlindAIKernels
import BlindAIGraph
import CBlindAIKernels
import Foundation

// Einsum: the equation parser and the contraction.

// MARK: - Einsum

/// A parsed einsum equation. Labels are integers: letters use their ASCII code, ellipsis dimensions use
/// `ellipsisBase + position` (positions aligned to the right across operands, like broadcasting).
struct EinsumEquation: Sendable {
    static let ellipsisBase = 1000

    /// Per input: its letters with `-1` standing for the ellipsis.
    let inputs: [[Int]]
    /// Output letters (-1 for the ellipsis); nil for the implicit form.
    let output: [Int]?

    init(_ equation: String) throws {
        let eq = equation.filter { $0 != " " }
        let parts = eq.components(separatedBy: "->")
        guard parts.count <= 2 else { throw EngineError(.invalidArgument, "Einsum equation '\(equation)' has more than one '->'") }
        func term(_ s: Substring) throws -> [Int] {
            var out: [Int] = []
            var i = s.startIndex
            var sawEllipsis = false
            while i < s.endIndex {
                let ch = s[i]
                if ch == "." {
                    guard s[i...].hasPrefix("..."), !sawEllipsis else {
                        throw EngineError(.invalidArgument, "Einsum equation '\(equation)' has a malformed or repeated ellipsis")
                    }
                    sawEllipsis = true
                    out.append(-1)
                    i = s.index(i, offsetBy: 3)
                    continue
                }
                guard let a = ch.asciiValue, ch.isLetter else {
                    throw EngineError(.invalidArgument, "Einsum equation '\(equation)' has an invalid character '\(ch)'")
                }
                out.append(Int(a))
                i = s.index(after: i)
            }
            return out
        }
        inputs = try parts[0].split(separator: ",", omittingEmptySubsequences: false).map { try term($0) }
        output = parts.count == 2 ? try term(Substring(parts[1])) : nil
    }
}

struct EinsumOp: Operator {
    let equation: EinsumEquation

    func run(_ inputs: [Tensor?], _ ctx: ExecutionContext) throws -> [Tensor] {
        let xs = try (0..<equation.inputs.count).map { try inputs.required($0) }
        guard xs.count == equation.inputs.count else {
            throw EngineError(.invalidArgument, "Einsum equation has \(equation.inputs.count) operands, got \(xs.count) inputs")
        }
        guard let dt = xs.first?.dataType else { throw EngineError(.invalidArgument, "Einsum needs at least one input") }
        for x in xs where x.dataType != dt {
            throw EngineError(.typeMismatch, "Einsum inputs have different types: \(dt) and \(x.dataType)")
        }
        switch dt {
        case .float32: return [try compute(xs, Float.self, ctx, { $0 + $1 }, { $0 * $1 })]
        case .float64: return [try compute(xs, Double.self, ctx, { $0 + $1 }, { $0 * $1 })]
        case .float16, .bfloat16:
            let wide = try xs.map { try FloatWidening.toFloat32($0, ctx) }
            return [try FloatWidening.fromFloat32(try compute(wide, Float.self, ctx, { $0 + $1 }, { $0 * $1 }), to: dt, ctx)]
        case .int32: return [try compute(xs, Int32.self, ctx, { $0 &+ $1 }, { $0 &* $1 })]
        case .int64: return [try compute(xs, Int64.self, ctx, { $0 &+ $1 }, { $0 &* $1 })]
        case .uint32: return [try compute(xs, UInt32.self, ctx, { $0 &+ $1 }, { $0 &* $1 })]
        case .uint64: return [try compute(xs, UInt64.self, ctx, { $0 &+ $1 }, { $0 &* $1 })]
        default: throw EngineError(.typeMismatch, "Einsum does not support \(dt) tensors")
        }
    }

    /// An operand during evaluation: a tensor whose dimensions carry labels.
    private struct Operand {
        var labels: [Int]
        var tensor: Tensor
    }

    @inline(__always)
    private func compute<T: EngineNumeric>(_ xs: [Tensor], _: T.Type, _ ctx: ExecutionContext,
                                           _ add: (T, T) -> T, _ mul: (T, T) -> T) throws -> Tensor {
        // Resolve ellipses into labels and collect label sizes.
        var ellipsisRank = 0
        for (i, t) in equation.inputs.enumerated() {
            let letters = t.filter { $0 >= 0 }.count
            if t.contains(-1) {
                guard xs[i].rank >= letters else {
                    throw EngineError(.shapeMismatch, "Einsum operand \(i) has rank \(xs[i].rank), fewer than its \(letters) labels")
                }
                ellipsisRank = Swift.max(ellipsisRank, xs[i].rank - letters)
            } else if xs[i].rank != letters {
                throw EngineError(.shapeMismatch, "Einsum operand \(i) has rank \(xs[i].rank) but the equation gives it \(letters) labels")
            }
        }
        var operands: [Operand] = []
        var sizes: [Int: Int] = [:]
        for (i, t) in equation.inputs.enumerated() {
            var labels: [Int] = []
            let e = xs[i].rank - t.filter { $0 >= 0 }.count
            for l in t {
                if l == -1 {
                    for k in 0..<e { labels.append(EinsumEquation.ellipsisBase + ellipsisRank - e + k) }
                } else {
                    labels.append(l)
                }
            }
            for (d, l) in labels.enumerated() {
                let s = xs[i].shape[d]
                if let old = sizes[l], old != s {
                    // Broadcasting: a dimension of 1 stretches (for ellipsis dimensions, as NumPy does, and tolerated elsewhere).
                    if old == 1 { sizes[l] = s } else if s != 1 {
                        throw EngineError(.shapeMismatch, "Einsum: label '\(Self.name(l))' has sizes \(old) and \(s)")
                    }
                } else if sizes[l] == nil {
                    sizes[l] = s
                }
            }
            operands.append(Operand(labels: labels, tensor: xs[i]))
        }
        let ellipsisLabels = (0..<ellipsisRank).map { EinsumEquation.ellipsisBase + $0 }
        var output: [Int] = []
        if let o = equation.output {
            for l in o {
                if l == -1 { output += ellipsisLabels } else {
                    guard sizes[l] != nil else { throw EngineError(.invalidArgument, "Einsum output label '\(Self.name(l))' does not appear in the inputs") }
                    guard !output.contains(l) else { throw EngineError(.invalidArgument, "Einsum output label '\(Self.name(l))' is repeated") }
                    output.append(l)
                }
            }
        } else {
            var counts: [Int: Int] = [:]
            for t in equation.inputs { for l in t where l >= 0 { counts[l, default: 0] += 1 } }
            output = ellipsisLabels + counts.keys.filter { counts[$0] == 1 }.sorted()
        }
        // Sizes of the output, checked against the limits before any work.
        _ = try ctx.limits.checkedCount(output.map { sizes[$0]! }, T.dataType)

        func needed(after index: Int, _ ops: [Operand]) -> Set<Int> {
            var s = Set(output)
            for (j, o) in ops.enumerated() where j != index { s.formUnion(o.labels) }
            return s
        }
        // Remove diagonals and sum out labels used by one operand only.
        for i in 0..<operands.count {
            let keep = needed(after: i, operands)
            var labels: [Int] = []
            for l in operands[i].labels where keep.contains(l) && !labels.contains(l) { labels.append(l) }
            operands[i] = try gather(operands[i], labels, sizes, T.self, ctx, add)
        }
        // Contract left to right.
        while operands.count > 1 {
            let a = operands.removeFirst(), b = operands.removeFirst()
            var keep = Set(output)
            for o in operands { keep.formUnion(o.labels) }
            var result = try contract(a, b, keep, sizes, T.self, ctx, add, mul)
            // Labels needed by neither the output nor the remaining operands are summed away.
            let labels = result.labels.filter { keep.contains($0) }
            if labels != result.labels { result = try gather(result, labels, sizes, T.self, ctx, add) }
            operands.insert(result, at: 0)
        }
        let final = try gather(operands[0], output, sizes, T.self, ctx, add)
        return final.tensor
    }

    private static func name(_ l: Int) -> String {
        l >= EinsumEquation.ellipsisBase ? "..." : String(UnicodeScalar(UInt8(l)))
    }

    /// Rearranges `op` to dimensions `labels` (sizes from `sizes`): repeated source labels take the diagonal,
    /// source labels not in `labels` are summed, size-1 source dimensions broadcast. No copy when nothing changes.
    private func gather<T: EngineNumeric>(_ op: Operand, _ labels: [Int], _ sizes: [Int: Int], _: T.Type, _ ctx: ExecutionContext,
                                          _ add: (T, T) -> T) throws -> Operand {
        let src = op.tensor
        let outShape = labels.map { sizes[$0]! }
        if op.labels == labels && src.shape == outShape { return op }
        let srcStrides = Shape.strides(src.shape)
        // Combined stride of each distinct source label (sum over repeats = diagonal).
        var stride: [Int: Int] = [:]
        var srcSize: [Int: Int] = [:]
        for (d, l) in op.labels.enumerated() {
            if let s = srcSize[l], s != src.shape[d] {
                throw EngineError(.shapeMismatch, "Einsum: repeated label '\(Self.name(l))' has sizes \(s) and \(src.shape[d])")
            }
            srcSize[l] = src.shape[d]
            stride[l, default: 0] += srcStrides[d]
        }
        // No diagonal and no broadcast: sum with the reduction kernels (no transpose of the input), then
        // transpose the smaller result if the order differs.
        if Set(op.labels).count == op.labels.count && labels.allSatisfy({ srcSize[$0] == sizes[$0] }) {
            var cur = src, curLabels = op.labels
            let summed = (0..<op.labels.count).filter { !labels.contains(op.labels[$0]) }
            if !summed.isEmpty {
                let sum = ReduceOp(kind: .sum, fixedAxes: summed, keepDims: false, noopWithEmptyAxes: false)
                cur = try sum.run([src], ctx)[0]
                curLabels = op.labels.filter { labels.contains($0) }
            }
            let perm = labels.map { l in curLabels.firstIndex(of: l)! }
            return Operand(labels: labels, tensor: try ReduceSupport.permute(cur, perm, ctx))
        }
        let outStrides = labels.map { l -> Int in
            guard let s = srcSize[l], s != 1 || sizes[l]! == 1 else { return 0 } // absent or broadcast
            return stride[l]!
        }
        var summedSizes: [Int] = [], summedStrides: [Int] = []
        for (l, s) in srcSize where !labels.contains(l) && s != 1 {
            summedSizes.append(s)
            summedStrides.append(stride[l]!)
        }
        let out = try ctx.uninitialized(T.dataType, outShape)
        let total = out.count
        if total == 0 { return Operand(labels: labels, tensor: out) }
        let dst = out.mutableBuffer(T.self).baseAddress!
        if summedSizes.contains(0) || src.count == 0 {
            for i in 0..<total { dst[i] = T.zero }
            return Operand(labels: labels, tensor: out)
        }
        let sp = src.buffer(T.self).baseAddress!
        let summedCount = summedSizes.reduce(1, *)
        let n = labels.count
        var idx = [Int](repeating: 0, count: n)
        var sidx = [Int](repeating: 0, count: summedSizes.count)
        var off = 0
        for o in 0..<total {
            if summedCount == 1 {
                dst[o] = sp[off]
            } else {
                var acc = T.zero
                var soff = off
                for _ in 0..<summedCount {
                    acc = add(acc, sp[soff])
                    var k = summedSizes.count - 1
                    while k >= 0 {
                        sidx[k] += 1
                        soff += summedStrides[k]
                        if sidx[k] < summedSizes[k] { break }
                        soff -= summedStrides[k] * summedSizes[k]
                        sidx[k] = 0
                        k -= 1
                    }
                }
                dst[o] = acc
            }
            var k = n - 1
            while k >= 0 {
                idx[k] += 1
                off += outStrides[k]
                if idx[k] < outShape[k] { break }
                off -= outStrides[k] * outShape[k]
                idx[k] = 0
                k -= 1
            }
        }
        return Operand(labels: labels, tensor: out)
    }

    /// Contracts two operands as a batched matrix product: [batch, m, k] x [batch, k, n] -> [batch, m, n].
    private func contract<T: EngineNumeric>(_ a: Operand, _ b: Operand, _ keep: Set<Int>, _ sizes: [Int: Int], _: T.Type,
                                            _ ctx: ExecutionContext, _ add: (T, T) -> T, _ mul: (T, T) -> T) throws -> Operand {
        let inB = Set(b.labels), inA = Set(a.labels)
        let batch = a.labels.filter { inB.contains($0) && keep.contains($0) }
        let contracted = a.labels.filter { inB.contains($0) && !keep.contains($0) }
        let aOnly = a.labels.filter { !inB.contains($0) }
        let bOnly = b.labels.filter { !inA.contains($0) }
        let size = { (ls: [Int]) in ls.reduce(1) { $0 * sizes[$1]! } }
        let nb = size(batch), m = size(aOnly), k = size(contracted), n = size(bOnly)
        func natural(_ op: Operand, _ order: [Int]) -> Bool {
            op.labels == order && op.tensor.shape == order.map { sizes[$0]! }
        }
        // Use the operands in place when their layout already is the matrix or its transpose.
        var transA = false, transB = false
        var ta: Tensor, tb: Tensor
        if natural(a, batch + aOnly + contracted) {
            ta = a.tensor
        } else if natural(a, batch + contracted + aOnly) {
            ta = a.tensor
            transA = true
        } else {
            ta = try gather(a, batch + aOnly + contracted, sizes, T.self, ctx, add).tensor
        }
        if natural(b, batch + contracted + bOnly) {
            tb = b.tensor
        } else if natural(b, batch + bOnly + contracted) {
            tb = b.tensor
            transB = true
        } else {
            tb = try gather(b, batch + contracted + bOnly, sizes, T.self, ctx, add).tensor
        }
        let outLabels = batch + aOnly + bOnly
        let out = try ctx.uninitialized(T.dataType, outLabels.map { sizes[$0]! })
        if out.count == 0 { return Operand(labels: outLabels, tensor: out) }
        let dst = out.mutableBuffer(T.self).baseAddress!
        if k == 0 || ta.count == 0 || tb.count == 0 {
            for i in 0..<out.count { dst[i] = T.zero }
            return Operand(labels: outLabels, tensor: out)
        }
        let pa = ta.buffer(T.self).baseAddress!, pb = tb.buffer(T.self).baseAddress!
        if T.self == Float.self {
            let fa = UnsafeRawPointer(pa).assumingMemoryBound(to: Float.self)
            let fb = UnsafeRawPointer(pb).assumingMemoryBound(to: Float.self)
            let fc = UnsafeMutableRawPointer(dst).assumingMemoryBound(to: Float.self)
            for i in 0..<nb {
                blindai_sgemm(transA ? 1 : 0, transB ? 1 : 0, m, n, k, 1, fa + i * m * k, transA ? m : k,
                              fb + i * k * n, transB ? k : n, 0, fc + i * m * n, n)
            }
            return Operand(labels: outLabels, tensor: out)
        }
        // Generic product (i, p, j order keeps the inner loop contiguous in B and C when not transposed).
        let row = UnsafeMutablePointer<T>.allocate(capacity: n)
        defer { row.deallocate() }
        for bi in 0..<nb {
            let A = pa + bi * m * k, B = pb + bi * k * n, C = dst + bi * m * n
            for i in 0..<m {
                row.initialize(repeating: T.zero, count: n)
                for p in 0..<k {
                    let av = transA ? A[p * m + i] : A[i * k + p]
                    if transB {
                        for j in 0..<n { row[j] = add(row[j], mul(av, B[j * k + p])) }
                    } else {
                        let brow = B + p * n
                        for j in 0..<n { row[j] = add(row[j], mul(av, brow[j])) }
                    }
                }
                (C + i * n).update(from: row, count: n)
            }
        }
        return Operand(labels: outLabels, tensor: out)
    }
}

extension StandardOperators {
    static func registerEinsum(_ r: inout OperatorRegistry) {
        r.register("Einsum") { c in
            guard let eq = try c.string("equation") else { throw c.error(.invalidModel, "Einsum needs an 'equation'") }
            let parsed = try EinsumEquation(eq)
            guard parsed.inputs.count == c.inputCount else {
                throw c.error(.invalidModel, "Einsum equation '\(eq)' has \(parsed.inputs.count) operands but the node has \(c.inputCount) inputs")
            }
            return EinsumOp(equation: parsed)
        }
    }
}
