import BlindAITensor
import BlindAIKernels
import BlindAIGraph
import Foundation

// Classical ML operators of the ai.onnx.ml domain: LabelEncoder, Binarizer, ArrayFeatureExtractor, Scaler,
// Normalizer, LinearRegressor and the tree ensembles (TreeEnsemble, TreeEnsembleRegressor, TreeEnsembleClassifier).

private let mlDomain = "ai.onnx.ml"

/// A lookup key for LabelEncoder: integers, floats (NaN keys match NaN) or strings.
enum MLLabelKey: Hashable, Sendable {
    case int(Int64)
    case float(Double)
    case nan
    case string(String)

    static func of(_ d: Double) -> MLLabelKey { d.isNaN ? .nan : .float(d) }

    /// The keys of every element of `t`.
    static func keys(_ t: Tensor) throws -> [MLLabelKey] {
        switch t.dataType {
        case .string: return t.strings.map { .string($0) }
        case .float32, .float64, .float16, .bfloat16: return try t.doubleValues().map { of($0) }
        case .uint64: return t.buffer(UInt64.self).map { .int(Int64(bitPattern: $0)) }
        default: return try t.intValues().map { .int(Int64($0)) }
        }
    }
}

/// Copies elements of `values` (or `fallback`, a one-element tensor, where an index is -1) into a new tensor.
enum MLGather {
    static func gather(_ values: Tensor, _ fallback: Tensor, _ indices: [Int], shape: [Int], _ ctx: ExecutionContext) throws -> Tensor {
        if values.dataType == .string {
            let v = values.strings, d = fallback.strings.first ?? ""
            return Tensor(shape: shape, strings: indices.map { $0 >= 0 ? v[$0] : d })
        }
        let out = try ctx.uninitialized(values.dataType, shape)
        let size = values.dataType.byteSize
        let src = values.storage.base, def = fallback.storage.base, dst = out.storage.base
        for (i, j) in indices.enumerated() {
            (dst + i * size).copyMemory(from: j >= 0 ? src + j * size : def, byteCount: size)
        }
        return out
    }
}

/// LabelEncoder: maps each input element through a key -> value table, with a default for missing keys.
struct LabelEncoderOp: Operator {
    let table: [MLLabelKey: Int]
    let values: Tensor
    let fallback: Tensor

    func run(_ inputs: [Tensor?], _ ctx: ExecutionContext) throws -> [Tensor] {
        let x = try inputs.required(0)
        let keys = try MLLabelKey.keys(x)
        let indices = keys.map { table[$0] ?? -1 }
        return [try MLGather.gather(values, fallback, indices, shape: x.shape, ctx)]
    }
}

/// LabelEncoder (opset 1): strings to their index in `classes_strings`, or int64 indices to the strings.
struct LabelEncoderV1Op: Operator {
    let classes: [String]
    let index: [String: Int]
    let defaultInt: Int64
    let defaultString: String

    func run(_ inputs: [Tensor?], _ ctx: ExecutionContext) throws -> [Tensor] {
        let x = try inputs.required(0)
        if x.dataType == .string {
            return [Tensor(shape: x.shape, scalars: x.strings.map { index[$0].map { Int64($0) } ?? defaultInt })]
        }
        guard x.dataType == .int64 else { throw EngineError(.typeMismatch, "LabelEncoder needs string or int64 input, got \(x.dataType)") }
        return [Tensor(shape: x.shape, strings: x.buffer(Int64.self).map { $0 >= 0 && $0 < Int64(classes.count) ? classes[Int($0)] : defaultString })]
    }
}

/// Binarizer: 1 where x > threshold, else 0 (same element type).
struct BinarizerOp: Operator {
    let threshold: Double

    func run(_ inputs: [Tensor?], _ ctx: ExecutionContext) throws -> [Tensor] {
        let x = try inputs.required(0)
        switch x.dataType {
        case .float32: return [try apply(x, Float.self, ctx)]
        case .float64: return [try apply(x, Double.self, ctx)]
        case .float16: return [try apply(x, Float16.self, ctx)]
        default: throw EngineError(.typeMismatch, "Binarizer does not support \(x.dataType) tensors")
        }
    }

    private func apply<T: EngineFloat>(_ x: Tensor, _: T.Type, _ ctx: ExecutionContext) throws -> Tensor {
        let t = T(double: threshold)
        return try Loops.map(x, T.self, T.self, ctx) { $0 > t ? 1 : 0 }
    }
}

/// ArrayFeatureExtractor: selects entries of the last axis; a 1-D input gives a [1, k] output.
struct ArrayFeatureExtractorOp: Operator {
    func run(_ inputs: [Tensor?], _ ctx: ExecutionContext) throws -> [Tensor] {
        let x = try inputs.required(0), idx = try inputs.required(1, "indices")
        guard x.rank >= 1 else { throw EngineError(.shapeMismatch, "ArrayFeatureExtractor needs an input of rank >= 1") }
        let indices = try idx.intValues()
        let n = x.shape[x.rank - 1]
        for i in indices where i < 0 || i >= n {
            throw EngineError(.invalidArgument, "ArrayFeatureExtractor index \(i) is out of range for a last axis of size \(n)")
        }
        let rows = x.count / Swift.max(n, 1)
        let shape = x.rank == 1 ? [1, indices.count] : Array(x.shape.dropLast()) + [indices.count]
        var flat: [Int] = []
        flat.reserveCapacity(rows * indices.count)
        for r in 0..<(n == 0 ? x.shape.dropLast().reduce(1, *) : rows) {
            for i in indices { flat.append(r * n + i) }
        }
        return [try MLGather.gather(x, x, flat, shape: shape, ctx)]
    }
}

/// Reads any numeric tensor as rows of `Double` features: [N, C] (a 1-D input is one row).
enum MLFeatures {
    static func rows(_ x: Tensor) throws -> (values: [Double], rows: Int, columns: Int) {
        guard x.dataType != .string else { throw EngineError(.typeMismatch, "expected a numeric tensor, got string") }
        let values = try x.doubleValues()
        let columns = x.rank == 0 ? 1 : x.shape[x.rank - 1]
        let rows = x.rank <= 1 ? 1 : x.count / Swift.max(columns, 1)
        return (values, x.rank <= 1 && x.count == 0 ? 0 : rows, columns)
    }

    /// Writes doubles as a float32 tensor (the output type of the legacy ML operators).
    static func float32(_ values: [Double], shape: [Int], _ ctx: ExecutionContext) throws -> Tensor {
        let out = try ctx.uninitialized(.float32, shape)
        let d = out.mutableBuffer(Float.self)
        for i in 0..<values.count { d[i] = Float(values[i]) }
        return out
    }
}

/// Scaler: (x - offset) * scale per feature, output float32.
struct ScalerOp: Operator {
    let offset: [Float]
    let scale: [Float]

    func run(_ inputs: [Tensor?], _ ctx: ExecutionContext) throws -> [Tensor] {
        let x = try inputs.required(0)
        let (v, _, c) = try MLFeatures.rows(x)
        guard offset.count == 1 || offset.count == c, scale.count == 1 || scale.count == c else {
            throw EngineError(.shapeMismatch, "Scaler has \(offset.count) offsets and \(scale.count) scales for \(c) features")
        }
        var out = [Double](repeating: 0, count: v.count)
        for i in 0..<v.count {
            let f = c == 0 ? 0 : i % c
            let o = Double(offset.count == 1 ? offset[0] : offset[f]), s = Double(scale.count == 1 ? scale[0] : scale[f])
            out[i] = (v[i] - o) * s
        }
        return [try MLFeatures.float32(out, shape: x.shape, ctx)]
    }
}

/// Normalizer: per-row MAX, L1 or L2 normalisation, output float32.
struct NormalizerOp: Operator {
    enum Norm: Sendable { case max, l1, l2 }
    let norm: Norm

    func run(_ inputs: [Tensor?], _ ctx: ExecutionContext) throws -> [Tensor] {
        let x = try inputs.required(0)
        let (v, rows, c) = try MLFeatures.rows(x)
        var out = v
        for r in 0..<rows {
            let row = v[(r * c)..<((r + 1) * c)]
            let d: Double
            switch norm {
            case .max: d = row.max() ?? 1
            case .l1: d = row.reduce(0) { $0 + Swift.abs($1) }
            case .l2: d = row.reduce(0) { $0 + $1 * $1 }.squareRoot()
            }
            if d != 0 { for i in (r * c)..<((r + 1) * c) { out[i] = v[i] / d } }
        }
        return [try MLFeatures.float32(out, shape: x.shape, ctx)]
    }
}

/// The post transforms of the ML regressors and classifiers.
enum MLPostTransform: Int, Sendable {
    case none = 0, softmax, logistic, softmaxZero, probit

    init(name: String) throws {
        switch name {
        case "NONE": self = .none
        case "SOFTMAX": self = .softmax
        case "LOGISTIC": self = .logistic
        case "SOFTMAX_ZERO": self = .softmaxZero
        case "PROBIT": self = .probit
        default: throw EngineError(.invalidModel, "unknown post_transform '\(name)'")
        }
    }

    /// Applies the transform to one row of scores in place.
    func apply(_ row: inout ArraySlice<Double>) {
        switch self {
        case .none: return
        case .logistic:
            for i in row.indices { row[i] = 1 / (1 + Foundation.exp(-row[i])) }
        case .softmax:
            let m = row.max() ?? 0
            var s = 0.0
            for i in row.indices { row[i] = Foundation.exp(row[i] - m); s += row[i] }
            if s > 0 { for i in row.indices { row[i] /= s } }
        case .softmaxZero:
            // Values within 1e-7 of zero stay (scaled) zeros, as in onnxruntime.
            let m = row.max() ?? 0
            let scale = Foundation.exp(-m)
            var s = 0.0
            for i in row.indices {
                if row[i] > 1e-7 || row[i] < -1e-7 {
                    row[i] = Foundation.exp(row[i] - m)
                    s += row[i]
                } else {
                    row[i] *= scale
                }
            }
            if s > 0 { for i in row.indices { row[i] /= s } }
        case .probit:
            for i in row.indices { row[i] = MLPostTransform.probit(row[i]) }
        }
    }

    /// The inverse of the standard normal CDF, sqrt(2) * erfinv(2p - 1), with the single-precision Winitzki
    /// approximation of erfinv that onnxruntime uses (so that results match it, not the exact function).
    static func probit(_ p: Double) -> Double {
        var x = Float(2 * p - 1)
        let sign: Float = x < 0 ? -1 : 1
        x = (1 - x) * (1 + x)
        let ln = Foundation.log(x)
        let v = 2 / (3.14159 * Float(0.147)) + 0.5 * ln
        let v2 = 1 / Float(0.147) * ln
        let v3 = -v + (v * v - v2).squareRoot()
        return Double(1.41421356 * sign * v3.squareRoot())
    }
}

/// LinearRegressor: y = x * coefficients^T + intercepts, then a post transform; output float32 [N, targets].
struct LinearRegressorOp: Operator {
    let coefficients: [Float]
    let intercepts: [Float]
    let targets: Int
    let post: MLPostTransform

    func run(_ inputs: [Tensor?], _ ctx: ExecutionContext) throws -> [Tensor] {
        let x = try inputs.required(0)
        let (v, rows, c) = try MLFeatures.rows(x)
        guard coefficients.count == targets * c else {
            throw EngineError(.shapeMismatch, "LinearRegressor has \(coefficients.count) coefficients for \(targets) targets and \(c) features")
        }
        var out = [Double](repeating: 0, count: try ctx.limits.checkedCount([rows, targets], .float64))
        for r in 0..<rows {
            for t in 0..<targets {
                var s = t < intercepts.count ? Double(intercepts[t]) : 0
                for f in 0..<c { s += v[r * c + f] * Double(coefficients[t * c + f]) }
                out[r * targets + t] = s
            }
            var row = out[(r * targets)..<((r + 1) * targets)]
            post.apply(&row)
            out.replaceSubrange((r * targets)..<((r + 1) * targets), with: row)
        }
        return [try MLFeatures.float32(out, shape: [rows, targets], ctx)]
    }
}

/// LinearClassifier: scores = x * coefficients^T + intercepts; labels by the best class (or by the sign of
/// the single score in the binary case); scores post-transformed following onnxruntime's conventions.
struct LinearClassifierOp: Operator {
    let coefficients: [Float]
    let intercepts: [Float]
    let labels: Tensor?   // int64 or string labels (nil: none given)
    let post: MLPostTransform

    func run(_ inputs: [Tensor?], _ ctx: ExecutionContext) throws -> [Tensor] {
        let x = try inputs.required(0)
        guard x.rank >= 1 else { throw EngineError(.shapeMismatch, "LinearClassifier needs an input of rank >= 1") }
        let (v, rows, c) = try MLFeatures.rows(x)
        let classes = intercepts.count
        guard classes > 0, coefficients.count == classes * c else {
            throw EngineError(.shapeMismatch, "LinearClassifier has \(coefficients.count) coefficients and \(classes) intercepts for \(c) features")
        }
        let labelCount = labels?.count ?? 0
        if classes > 1 && labelCount != classes {
            throw EngineError(.invalidModel, "LinearClassifier has \(classes) classes but \(labelCount) class labels")
        }
        let addSecond = classes == 1 && labelCount == 2
        let width = addSecond ? 2 : classes
        var scores = [Double](repeating: 0, count: rows * width)
        var best = [Int](repeating: 0, count: rows)
        var raw = [Float](repeating: 0, count: classes)
        for r in 0..<rows {
            for k in 0..<classes {
                var sum: Float = 0
                for f in 0..<c { sum += Float(v[r * c + f]) * coefficients[k * c + f] }
                raw[k] = sum + intercepts[k]
            }
            if classes == 1 {
                best[r] = raw[0] > 0 ? 1 : 0
                let sc = Double(raw[0])
                if post == .probit {
                    scores[r * width] = MLPostTransform.probit(sc)
                } else if addSecond {
                    // onnxruntime applies only the logistic transform to a single score, then adds its complement.
                    let p = post == .logistic ? 1 / (1 + Foundation.exp(-sc)) : sc
                    scores[r * 2] = 1 - p
                    scores[r * 2 + 1] = p
                } else {
                    scores[r * width] = post == .logistic ? 1 / (1 + Foundation.exp(-sc)) : sc
                }
            } else {
                var bi = 0
                for k in 1..<classes where raw[k] > raw[bi] { bi = k }
                best[r] = bi
                var row = ArraySlice(raw.map { Double($0) })
                post.apply(&row)
                for k in 0..<classes { scores[r * classes + k] = row[row.startIndex + k] }
            }
        }
        let labelOut: Tensor
        if let labels, labels.dataType == .string {
            let names = labels.strings
            let fallback = ["0", "1"]
            labelOut = Tensor(shape: [rows], strings: best.map { classes == 1 && labelCount != 2 ? fallback[$0] : names[$0] })
        } else {
            let ids = labels.map { $0.buffer(Int64.self).map { $0 } } ?? []
            labelOut = Tensor(shape: [rows], scalars: best.map { classes == 1 && labelCount != 2 ? Int64($0) : ids[$0] })
        }
        return [labelOut, try MLFeatures.float32(scores, shape: [rows, width], ctx)]
    }
}

// MARK: - Tree ensembles

/// A compiled forest. Children are node indices (>= 0) or leaves encoded as -(leaf + 1); a leaf is a range of
/// (target, weight) pairs.
struct MLForest: Sendable {
    enum Mode: UInt8, Sendable { case leq = 0, lt, gte, gt, eq, neq, member }
    var feature: [Int] = []
    var split: [Double] = []
    var mode: [Mode] = []
    var trueChild: [Int] = []
    var falseChild: [Int] = []
    var missingTracksTrue: [Bool] = []
    var memberStart: [Int] = []
    var memberCount: [Int] = []
    var members: [Double] = []
    var leafStart: [Int] = []
    var leafCount: [Int] = []
    var leafTarget: [Int] = []
    var leafWeight: [Double] = []
    /// Root of each tree (node index or encoded leaf).
    var roots: [Int] = []
    var maxFeature = -1

    /// Checks every reference and that trees have no cycles (each walk is bounded by the node count).
    func validate(targets: Int) throws {
        let n = feature.count, leaves = leafStart.count
        func check(_ c: Int) throws {
            if c >= 0 { guard c < n else { throw EngineError(.invalidModel, "tree node id \(c) is out of range (\(n) nodes)") } }
            else { guard -c - 1 < leaves else { throw EngineError(.invalidModel, "tree leaf id \(-c - 1) is out of range (\(leaves) leaves)") } }
        }
        for c in roots { try check(c) }
        for i in 0..<n {
            try check(trueChild[i])
            try check(falseChild[i])
            guard feature[i] >= 0 else { throw EngineError(.invalidModel, "negative feature id \(feature[i]) in a tree node") }
        }
        for t in leafTarget where t < 0 || t >= targets {
            throw EngineError(.invalidModel, "leaf target id \(t) is out of range for \(targets) targets")
        }
        // Cycle check: a depth-first walk from each root must not revisit a node on its path.
        var state = [UInt8](repeating: 0, count: n)   // 0 new, 1 on stack, 2 done
        for r in roots where r >= 0 {
            var stack: [(Int, Bool)] = [(r, false)]
            while let (node, expanded) = stack.popLast() {
                if expanded { state[node] = 2; continue }
                if state[node] == 2 { continue }
                if state[node] == 1 { throw EngineError(.invalidModel, "tree nodes form a cycle through node \(node)") }
                state[node] = 1
                stack.append((node, true))
                for c in [trueChild[node], falseChild[node]] where c >= 0 {
                    if state[c] == 1 { throw EngineError(.invalidModel, "tree nodes form a cycle through node \(c)") }
                    if state[c] == 0 { stack.append((c, false)) }
                }
            }
        }
    }

    /// Nodes packed into one contiguous array for traversal (built by `pack()` after validation).
    var packed: [MLTreeNode] = []

    mutating func pack() throws {
        guard feature.count < Int(Int32.max), leafStart.count < Int(Int32.max), feature.allSatisfy({ $0 <= Int(Int32.max) }) else {
            throw EngineError(.invalidModel, "tree ensemble has too many nodes")
        }
        packed = (0..<feature.count).map { i in
            MLTreeNode(split: split[i], feature: Int32(feature[i]), trueChild: Int32(trueChild[i]), falseChild: Int32(falseChild[i]),
                       mode: mode[i], missingTrue: missingTracksTrue[i])
        }
        // Sentinels (never reached) so that the traversal's buffers are never empty.
        packed.append(MLTreeNode(split: 0, feature: 0, trueChild: -1, falseChild: -1, mode: .leq, missingTrue: false))
        memberStart.append(members.count)
        memberCount.append(0)
        members.append(.nan)
    }

    /// The leaf reached from `root` for the feature row starting at `x`.
    @inline(__always)
    static func leaf(_ nodes: UnsafePointer<MLTreeNode>, _ root: Int, _ x: UnsafePointer<Double>,
                     _ members: UnsafePointer<Double>, _ memberStart: UnsafePointer<Int>, _ memberCount: UnsafePointer<Int>) -> Int {
        var c = root
        while c >= 0 {
            let n = nodes[c]
            let v = x[Int(n.feature)]
            let s = n.split
            var goTrue: Bool
            switch n.mode {
            case .leq: goTrue = v <= s
            case .lt: goTrue = v < s
            case .gte: goTrue = v >= s
            case .gt: goTrue = v > s
            case .eq: goTrue = v == s
            case .neq: goTrue = v != s
            case .member:
                goTrue = false
                let start = memberStart[c]
                for k in start..<(start + memberCount[c]) where members[k] == v { goTrue = true; break }
            }
            if n.missingTrue && v.isNaN { goTrue = true }
            c = Int(goTrue ? n.trueChild : n.falseChild)
        }
        return -c - 1
    }
}

/// A tree node for traversal: children are node indices (>= 0) or encoded leaves (< 0).
struct MLTreeNode: Sendable {
    var split: Double
    var feature: Int32
    var trueChild: Int32
    var falseChild: Int32
    var mode: MLForest.Mode
    var missingTrue: Bool
}

/// Finds the position of a (tree id, node id) pair of the legacy tree attributes: per tree a dense table when
/// its node ids are compact (the usual case), else a dictionary.
struct MLNodeIndex {
    private var slotOf: [Int: Int] = [:]
    private var dense: [[Int]] = []
    private var sparse: [[Int: Int]] = []

    init(trees: [Int], nodes: [Int]) {
        var members: [[Int]] = []
        var lastTree = Int.min, lastSlot = -1
        for (i, t) in trees.enumerated() {
            if t != lastTree {
                lastTree = t
                if let s = slotOf[t] { lastSlot = s } else {
                    lastSlot = members.count
                    slotOf[t] = lastSlot
                    members.append([])
                }
            }
            members[lastSlot].append(i)
        }
        for list in members {
            let maxNode = list.map { nodes[$0] }.max() ?? -1
            let minNode = list.map { nodes[$0] }.min() ?? 0
            if minNode >= 0 && maxNode < 4 * list.count + 16 {
                var table = [Int](repeating: -1, count: maxNode + 1)
                for i in list { table[nodes[i]] = i }
                dense.append(table)
                sparse.append([:])
            } else {
                var d: [Int: Int] = [:]
                for i in list { d[nodes[i]] = i }
                dense.append([])
                sparse.append(d)
            }
        }
    }

    func find(tree: Int, node: Int) -> Int? {
        guard let s = slotOf[tree] else { return nil }
        let table = dense[s]
        if !table.isEmpty {
            return node >= 0 && node < table.count && table[node] >= 0 ? table[node] : nil
        }
        return sparse[s][node]
    }
}

enum MLAggregate: Int, Sendable { case average = 0, sum, min, max }

/// Scores of a forest: aggregated leaf weights per target for each row, with whether any leaf hit each target.
struct MLForestScorer: Sendable {
    let forest: MLForest
    let targets: Int
    let aggregate: MLAggregate
    let baseValues: [Double]
    /// Accumulate in float32 (rounding after each operation), as onnxruntime does for float outputs.
    var float32: Bool

    @inline(__always) func round(_ v: Double) -> Double { float32 ? Double(Float(v)) : v }

    /// Raw aggregated scores (averaged for AVERAGE, without base values) and hit flags, row-major [rows, targets].
    func scores(_ x: Tensor) throws -> (scores: [Double], hit: [Bool], rows: Int) {
        let (v, rows, c) = try MLFeatures.rows(x)
        guard forest.maxFeature < c else {
            throw EngineError(.shapeMismatch, "the trees read feature \(forest.maxFeature) but the input has \(c) features (shape \(x.shape))")
        }
        var out = [Double](repeating: 0, count: rows * targets)
        var hit = [Bool](repeating: false, count: rows * targets)
        let trees = Double(forest.roots.count)
        let f = forest
        let targets = self.targets, aggregate = self.aggregate, float32 = self.float32
        // Tree by tree (each tree stays in cache), every row; per row the trees are still added in order.
        v.withUnsafeBufferPointer { vp in
        f.packed.withUnsafeBufferPointer { np in
        f.members.withUnsafeBufferPointer { mp in
        f.memberStart.withUnsafeBufferPointer { msp in
        f.memberCount.withUnsafeBufferPointer { mcp in
        f.leafStart.withUnsafeBufferPointer { lsp in
        f.leafCount.withUnsafeBufferPointer { lcp in
        f.leafTarget.withUnsafeBufferPointer { ltp in
        f.leafWeight.withUnsafeBufferPointer { lwp in
        out.withUnsafeMutableBufferPointer { op in
        hit.withUnsafeMutableBufferPointer { hp in
            // `pack()` leaves a sentinel at the end of the node and membership arrays, so they are never empty.
            guard let base = vp.baseAddress, let nodes = np.baseAddress, let ms = msp.baseAddress, let mc = mcp.baseAddress,
                  let o = op.baseAddress, let h = hp.baseAddress else { return }
            for root in f.roots {
                for r in 0..<rows {
                    let l = MLForest.leaf(nodes, root, base + r * c, mp.baseAddress!, ms, mc)
                    let start = lsp[l]
                    for k in start..<(start + lcp[l]) {
                        let t = r * targets + ltp[k], w = lwp[k]
                        switch aggregate {
                        case .sum, .average:
                            let sum = o[t] + w
                            o[t] = float32 ? Double(Float(sum)) : sum
                        case .min: o[t] = h[t] ? Swift.min(o[t], w) : w
                        case .max: o[t] = h[t] ? Swift.max(o[t], w) : w
                        }
                        h[t] = true
                    }
                }
            }
            if aggregate == .average && trees > 0 {
                for t in 0..<(rows * targets) { o[t] = float32 ? Double(Float(o[t] / trees)) : o[t] / trees }
            }
        }}}}}}}}}}}
        return (out, hit, rows)
    }

    /// Regression scores: base values added (when there is one per target), targets no leaf reached are 0
    /// (as onnxruntime writes them), then the post transform per row.
    func regression(_ x: Tensor, _ post: MLPostTransform) throws -> (scores: [Double], rows: Int) {
        var (s, hit, rows) = try scores(x)
        let useBase = baseValues.count == targets
        for i in 0..<s.count {
            s[i] = hit[i] ? round(s[i] + (useBase ? baseValues[i % targets] : 0)) : 0
        }
        if post != .none {
            for r in 0..<rows {
                var row = s[(r * targets)..<((r + 1) * targets)]
                post.apply(&row)
                s.replaceSubrange((r * targets)..<((r + 1) * targets), with: row)
            }
        }
        return (s, rows)
    }
}

/// TreeEnsemble (ai.onnx.ml 5): output has the input's float type, shape [N, n_targets].
struct TreeEnsembleOp: Operator {
    let scorer: MLForestScorer
    let post: MLPostTransform

    func run(_ inputs: [Tensor?], _ ctx: ExecutionContext) throws -> [Tensor] {
        let x = try inputs.required(0)
        guard x.dataType.isFloatingPoint else { throw EngineError(.typeMismatch, "TreeEnsemble needs a float input, got \(x.dataType)") }
        var scorer = self.scorer
        scorer.float32 = x.dataType != .float64
        let (s, rows) = try scorer.regression(x, post)
        let out = try ctx.uninitialized(x.dataType, [rows, scorer.targets])
        try CastOp.write(out, x.dataType, count: s.count) { s[$0] }
        return [out]
    }
}

/// TreeEnsembleRegressor (legacy): float32 output [N, n_targets].
struct TreeEnsembleRegressorOp: Operator {
    let scorer: MLForestScorer
    let post: MLPostTransform

    func run(_ inputs: [Tensor?], _ ctx: ExecutionContext) throws -> [Tensor] {
        let (s, rows) = try scorer.regression(try inputs.required(0), post)
        return [try MLFeatures.float32(s, shape: [rows, scorer.targets], ctx)]
    }
}

/// TreeEnsembleClassifier (legacy): labels [N] and scores [N, classes] (float32), following onnxruntime's
/// conventions for two classes (binary case with one class id, label choice by the positive score).
struct TreeEnsembleClassifierOp: Operator {
    let scorer: MLForestScorer
    let post: MLPostTransform
    let labels: Tensor   // int64 or string class labels
    /// Two labels and a single class id among the leaf weights.
    let binary: Bool
    let weightsAllPositive: Bool

    func run(_ inputs: [Tensor?], _ ctx: ExecutionContext) throws -> [Tensor] {
        let x = try inputs.required(0)
        var (s, hit, rows) = try scorer.scores(x)
        let n = scorer.targets
        let base = scorer.baseValues
        var scores = [Double](repeating: 0, count: rows * n)
        // Per row: a label index into `labels`, or for int64 labels in the two-class non-binary case the literal 0/1.
        var labelIndex = [Int](repeating: 0, count: rows)
        var literal = [Int64?](repeating: nil, count: rows)
        for r in 0..<rows {
            let o = r * n
            if n > 2 {
                for k in 0..<Swift.min(base.count, n) {
                    s[o + k] = hit[o + k] ? scorer.round(s[o + k] + base[k]) : base[k]
                    hit[o + k] = true
                }
                var best = -1
                for k in 0..<n where hit[o + k] && (best < 0 || s[o + k] > s[o + best]) { best = k }
                labelIndex[r] = Swift.max(best, 0)
                var row = ArraySlice((0..<n).map { hit[o + $0] ? s[o + $0] : 0 })
                post.apply(&row)
                for k in 0..<n { scores[o + k] = row[row.startIndex + k] }
                continue
            }
            // Two classes.
            var p0 = s[o], p1 = n > 1 ? s[o + 1] : 0
            let h0 = hit[o]
            let h1 = n > 1 && hit[o + 1]
            var additional = -1
            if base.count == 2 {
                if h1 {
                    p1 = scorer.round(base[1] + p0)
                    p0 = -p1
                } else {
                    p1 = scorer.round(p1 + base[1])
                    p0 = scorer.round(p0 + base[0])
                }
            } else if base.count == 1 {
                p0 = scorer.round(p0 + base[0])
            } else if base.isEmpty {
                additional = 3
            }
            let single = base.count != 2 && !h1
            let positive = (!single && h1) ? p1 : (h0 ? p0 : 0)
            if binary {
                if weightsAllPositive {
                    if positive > 0.5 { additional = 0; labelIndex[r] = 1 } else { additional = 1; labelIndex[r] = 0 }
                } else {
                    if positive > 0 { additional = 2; labelIndex[r] = 1 } else { additional = 3; labelIndex[r] = 0 }
                }
            } else {
                labelIndex[r] = positive > 0 ? 1 : 0
                if labels.dataType == .int64 { literal[r] = positive > 0 ? 1 : 0 }
            }
            var row: ArraySlice<Double>
            if !single {
                row = [h0 ? p0 : 0, h1 ? p1 : 0]
                post.apply(&row)
            } else if post == .probit {
                row = [MLPostTransform.probit(p0), 0]
            } else {
                let v = p0
                if post == .logistic && additional >= 0 {
                    row = [Self.logistic(-v), Self.logistic(v)]
                } else {
                    switch additional {
                    case 0, 1: row = [1 - v, v]
                    case 2, 3: row = [-v, v]
                    default: row = [v, 0]
                    }
                }
            }
            scores[o] = row[row.startIndex]
            if n > 1 { scores[o + 1] = row[row.startIndex + 1] }
        }
        let labelOut: Tensor
        if labels.dataType == .int64 {
            let l = labels.buffer(Int64.self)
            labelOut = Tensor(shape: [rows], scalars: (0..<rows).map { literal[$0] ?? l[labelIndex[$0]] })
        } else {
            labelOut = try MLGather.gather(labels, labels, labelIndex, shape: [rows], ctx)
        }
        return [labelOut, try MLFeatures.float32(scores, shape: [rows, n], ctx)]
    }

    static func logistic(_ v: Double) -> Double { 1 / (1 + Foundation.exp(-v)) }
}

extension StandardOperators {
    static func registerML(_ r: inout OperatorRegistry) {
        r.register("LabelEncoder", domain: mlDomain) { c in try buildLabelEncoder(&c) }
        r.register("Binarizer", domain: mlDomain) { c in BinarizerOp(threshold: Double(try c.float("threshold", default: 0))) }
        r.register("ArrayFeatureExtractor", domain: mlDomain) { _ in ArrayFeatureExtractorOp() }
        r.register("Scaler", domain: mlDomain) { c in
            ScalerOp(offset: try c.floats("offset") ?? [0], scale: try c.floats("scale") ?? [1])
        }
        r.register("Normalizer", domain: mlDomain) { c in
            switch try c.string("norm", default: "MAX") {
            case "MAX": return NormalizerOp(norm: .max)
            case "L1": return NormalizerOp(norm: .l1)
            case "L2": return NormalizerOp(norm: .l2)
            case let n: throw c.error(.invalidModel, "unknown norm '\(n)'")
            }
        }
        r.register("LinearRegressor", domain: mlDomain) { c in
            let coefficients = try c.floats("coefficients") ?? []
            let targets = try c.int("targets", default: 1)
            guard targets > 0, targets <= 1 << 24 else { throw c.error(.invalidModel, "targets must be in 1...\(1 << 24), got \(targets)") }
            return LinearRegressorOp(coefficients: coefficients, intercepts: try c.floats("intercepts") ?? [],
                                     targets: targets, post: try MLPostTransform(name: try c.string("post_transform", default: "NONE")))
        }
        r.register("LinearClassifier", domain: mlDomain) { c in
            guard let coefficients = try c.floats("coefficients"), !coefficients.isEmpty else {
                throw c.error(.invalidModel, "LinearClassifier needs coefficients")
            }
            let labels: Tensor?
            if let ints = try c.ints("classlabels_ints"), !ints.isEmpty {
                labels = Tensor(shape: [ints.count], scalars: ints.map { Int64($0) })
            } else if let strings = try c.strings("classlabels_strings"), !strings.isEmpty {
                labels = Tensor(shape: [strings.count], strings: strings)
            } else {
                labels = nil
            }
            return LinearClassifierOp(coefficients: coefficients, intercepts: try c.floats("intercepts") ?? [], labels: labels,
                                      post: try MLPostTransform(name: try c.string("post_transform", default: "NONE")))
        }
        r.register("TreeEnsemble", domain: mlDomain) { c in try buildTreeEnsemble(&c) }
        r.register("TreeEnsembleRegressor", domain: mlDomain) { c in
            let (scorer, post) = try buildLegacyForest(&c, prefix: "target", targets: try c.int("n_targets", default: 1))
            return TreeEnsembleRegressorOp(scorer: scorer, post: post)
        }
        r.register("TreeEnsembleClassifier", domain: mlDomain) { c in
            let labels: Tensor
            if let ints = try c.ints("classlabels_int64s"), !ints.isEmpty {
                labels = Tensor(shape: [ints.count], scalars: ints.map { Int64($0) })
            } else if let strings = try c.strings("classlabels_strings"), !strings.isEmpty {
                labels = Tensor(shape: [strings.count], strings: strings)
            } else {
                throw c.error(.invalidModel, "TreeEnsembleClassifier needs classlabels_int64s or classlabels_strings")
            }
            let classIds = try c.ints("class_ids") ?? []
            let binary = labels.count == 2 && Set(classIds).count == 1
            let weights: [Double]
            if let t = try c.tensor("class_weights_as_tensor") { weights = try t.doubleValues() } else { weights = (try c.floats("class_weights") ?? []).map { Double($0) } }
            let (scorer, post) = try buildLegacyForest(&c, prefix: "class", targets: labels.count)
            return TreeEnsembleClassifierOp(scorer: scorer, post: post, labels: labels, binary: binary,
                                            weightsAllPositive: weights.allSatisfy { $0 >= 0 })
        }
    }

    private static func buildLabelEncoder(_ c: inout OpBuildContext) throws -> any Operator {
        if c.opset < 2 {
            let classes = try c.strings("classes_strings") ?? []
            var index: [String: Int] = [:]
            for (i, s) in classes.enumerated() where index[s] == nil { index[s] = i }
            return LabelEncoderV1Op(classes: classes, index: index, defaultInt: Int64(try c.int("default_int64", default: -1)),
                                    defaultString: try c.string("default_string", default: "_Unused"))
        }
        var keys: [MLLabelKey]
        if let k = try c.tensor("keys_tensor") {
            keys = try MLLabelKey.keys(k)
        } else if let k = try c.strings("keys_strings") {
            keys = k.map { .string($0) }
        } else if let k = try c.ints("keys_int64s") {
            keys = k.map { .int(Int64($0)) }
        } else if let k = try c.floats("keys_floats") {
            keys = k.map { MLLabelKey.of(Double($0)) }
        } else {
            throw c.error(.invalidModel, "LabelEncoder needs keys")
        }
        let values: Tensor, fallback: Tensor
        if let v = try c.tensor("values_tensor") {
            values = v
            if let d = try c.tensor("default_tensor") {
                guard d.dataType == v.dataType, d.count >= 1 else {
                    throw c.error(.invalidModel, "default_tensor must be one value of the values' type")
                }
                fallback = d
            } else if v.dataType == .string {
                fallback = Tensor(shape: [1], strings: ["_Unused"])
            } else {
                fallback = try CastOp.fromDoubles([v.dataType.isFloatingPoint ? -0.0 : -1], shape: [1], to: v.dataType,
                                                  ExecutionContext())
            }
        } else if let v = try c.strings("values_strings") {
            values = Tensor(shape: [v.count], strings: v)
            fallback = Tensor(shape: [1], strings: [try c.string("default_string", default: "_Unused")])
        } else if let v = try c.ints("values_int64s") {
            values = Tensor(shape: [v.count], scalars: v.map { Int64($0) })
            fallback = Tensor(shape: [1], scalars: [Int64(try c.int("default_int64", default: -1))])
        } else if let v = try c.floats("values_floats") {
            values = Tensor(shape: [v.count], scalars: v)
            fallback = Tensor(shape: [1], scalars: [try c.float("default_float", default: -0.0)])
        } else {
            throw c.error(.invalidModel, "LabelEncoder needs values")
        }
        guard keys.count == values.count else {
            throw c.error(.invalidModel, "LabelEncoder has \(keys.count) keys but \(values.count) values")
        }
        var table: [MLLabelKey: Int] = [:]
        for (i, k) in keys.enumerated() where table[k] == nil { table[k] = i }
        return LabelEncoderOp(table: table, values: values, fallback: fallback)
    }

    private static func aggregate(_ name: String) throws -> MLAggregate {
        switch name {
        case "AVERAGE": return .average
        case "SUM": return .sum
        case "MIN": return .min
        case "MAX": return .max
        default: throw EngineError(.invalidModel, "unknown aggregate_function '\(name)'")
        }
    }

    /// TreeEnsemble (opset 5): node arrays indexed by node id, leaves by leaf id, modes and splits as tensors.
    private static func buildTreeEnsemble(_ c: inout OpBuildContext) throws -> any Operator {
        guard let modesT = try c.tensor("nodes_modes"), let splitsT = try c.tensor("nodes_splits"),
              let featureIds = try c.ints("nodes_featureids"), let trueIds = try c.ints("nodes_truenodeids"),
              let falseIds = try c.ints("nodes_falsenodeids"), let trueLeafs = try c.ints("nodes_trueleafs"),
              let falseLeafs = try c.ints("nodes_falseleafs"), let leafTargets = try c.ints("leaf_targetids"),
              let leafWeightsT = try c.tensor("leaf_weights"), let roots = try c.ints("tree_roots") else {
            throw c.error(.invalidModel, "TreeEnsemble is missing node, leaf or root attributes")
        }
        let modes = try modesT.intValues()
        let splits = try splitsT.doubleValues()
        let leafWeights = try leafWeightsT.doubleValues()
        let n = modes.count
        guard splits.count == n, featureIds.count == n, trueIds.count == n, falseIds.count == n,
              trueLeafs.count == n, falseLeafs.count == n else {
            throw c.error(.invalidModel, "TreeEnsemble node attributes have different lengths")
        }
        guard (trueIds + falseIds + featureIds + leafTargets).allSatisfy({ $0 >= 0 }) else {
            throw c.error(.invalidModel, "TreeEnsemble node, leaf, feature and target ids must be non-negative")
        }
        guard leafTargets.count == leafWeights.count else {
            throw c.error(.invalidModel, "leaf_targetids and leaf_weights have different lengths")
        }
        let missing = try c.ints("nodes_missing_value_tracks_true") ?? []
        let membership = try c.tensor("membership_values").map { try $0.doubleValues() } ?? []
        var forest = MLForest()
        var memberCursor = 0
        for i in 0..<n {
            guard let mode = MLForest.Mode(rawValue: UInt8(clamping: Swift.max(modes[i], 0))), modes[i] >= 0 else {
                throw c.error(.invalidModel, "unknown node mode \(modes[i])")
            }
            forest.mode.append(mode)
            forest.feature.append(featureIds[i])
            forest.maxFeature = Swift.max(forest.maxFeature, featureIds[i])
            forest.split.append(splits[i])
            forest.trueChild.append(trueLeafs[i] != 0 ? -trueIds[i] - 1 : trueIds[i])
            forest.falseChild.append(falseLeafs[i] != 0 ? -falseIds[i] - 1 : falseIds[i])
            forest.missingTracksTrue.append(i < missing.count && missing[i] != 0)
            forest.memberStart.append(forest.members.count)
            var count = 0
            if mode == .member {
                while memberCursor < membership.count {
                    let v = membership[memberCursor]
                    memberCursor += 1
                    if v.isNaN { break }
                    forest.members.append(v)
                    count += 1
                }
            }
            forest.memberCount.append(count)
        }
        for (i, t) in leafTargets.enumerated() {
            forest.leafStart.append(i)
            forest.leafCount.append(1)
            forest.leafTarget.append(t)
            forest.leafWeight.append(leafWeights[i])
        }
        for r in roots {
            guard r >= 0 && r < n else { throw c.error(.invalidModel, "tree root \(r) is out of range (\(n) nodes)") }
            // A root whose both branches lead to the same leaf is that leaf.
            if trueLeafs[r] != 0 && falseLeafs[r] != 0 && trueIds[r] == falseIds[r] {
                forest.roots.append(-trueIds[r] - 1)
            } else {
                forest.roots.append(r)
            }
        }
        let targets = try c.int("n_targets", default: (leafTargets.max() ?? -1) + 1)
        try forest.validate(targets: targets)
        try forest.pack()
        let agg = try c.int("aggregate_function", default: 1)
        guard let aggregate = MLAggregate(rawValue: agg) else { throw c.error(.invalidModel, "unknown aggregate_function \(agg)") }
        let postValue = try c.int("post_transform", default: 0)
        guard let post = MLPostTransform(rawValue: postValue) else { throw c.error(.invalidModel, "unknown post_transform \(postValue)") }
        return TreeEnsembleOp(scorer: MLForestScorer(forest: forest, targets: targets, aggregate: aggregate, baseValues: [],
                                                     float32: true), post: post)
    }

    /// TreeEnsembleRegressor / TreeEnsembleClassifier: nodes identified by (tree id, node id), modes as strings,
    /// leaf weights as `<prefix>_treeids/_nodeids/_ids/_weights`.
    private static func buildLegacyForest(_ c: inout OpBuildContext, prefix: String, targets: Int) throws -> (MLForestScorer, MLPostTransform) {
        guard let treeIds = try c.ints("nodes_treeids"), let nodeIds = try c.ints("nodes_nodeids"),
              let modes = try c.strings("nodes_modes") else {
            throw c.error(.invalidModel, "tree ensemble is missing nodes_treeids, nodes_nodeids or nodes_modes")
        }
        let n = nodeIds.count
        let featureIds = try c.ints("nodes_featureids") ?? []
        let values: [Double]
        if let t = try c.tensor("nodes_values_as_tensor") { values = try t.doubleValues() } else { values = (try c.floats("nodes_values") ?? []).map { Double($0) } }
        let trueIds = try c.ints("nodes_truenodeids") ?? []
        let falseIds = try c.ints("nodes_falsenodeids") ?? []
        let missing = try c.ints("nodes_missing_value_tracks_true") ?? []
        guard treeIds.count == n, modes.count == n, featureIds.count == n, values.count == n, trueIds.count == n, falseIds.count == n else {
            throw c.error(.invalidModel, "tree ensemble node attributes have different lengths")
        }
        let wTree = try c.ints("\(prefix)_treeids") ?? [], wNode = try c.ints("\(prefix)_nodeids") ?? []
        let wIds = try c.ints("\(prefix)_ids") ?? []
        let wValues: [Double]
        if let t = try c.tensor("\(prefix)_weights_as_tensor") { wValues = try t.doubleValues() } else { wValues = (try c.floats("\(prefix)_weights") ?? []).map { Double($0) } }
        guard wTree.count == wNode.count, wNode.count == wIds.count, wIds.count == wValues.count else {
            throw c.error(.invalidModel, "tree ensemble leaf weight attributes have different lengths")
        }
        // Position of each (tree, node) pair.
        let position = MLNodeIndex(trees: treeIds, nodes: nodeIds)
        // Leaf weights grouped by node position.
        var weightsOf = [[Int]](repeating: [], count: n)
        for k in 0..<wTree.count {
            guard let p = position.find(tree: wTree[k], node: wNode[k]) else {
                throw c.error(.invalidModel, "leaf weight refers to unknown node (tree \(wTree[k]), node \(wNode[k]))")
            }
            weightsOf[p].append(k)
        }
        var forest = MLForest()
        // Branch nodes keep their positions; leaves get leaf indices.
        var leafIndex = [Int](repeating: -1, count: n)
        for i in 0..<n where modes[i] == "LEAF" {
            leafIndex[i] = forest.leafStart.count
            forest.leafStart.append(forest.leafTarget.count)
            forest.leafCount.append(weightsOf[i].count)
            for k in weightsOf[i] {
                forest.leafTarget.append(wIds[k])
                forest.leafWeight.append(wValues[k])
            }
        }
        func ref(_ tree: Int, _ node: Int) throws -> Int {
            guard let p = position.find(tree: tree, node: node) else {
                throw c.error(.invalidModel, "tree \(tree) refers to unknown node \(node)")
            }
            return leafIndex[p] >= 0 ? -leafIndex[p] - 1 : p
        }
        for i in 0..<n {
            let mode: MLForest.Mode
            switch modes[i] {
            case "BRANCH_LEQ": mode = .leq
            case "BRANCH_LT": mode = .lt
            case "BRANCH_GTE": mode = .gte
            case "BRANCH_GT": mode = .gt
            case "BRANCH_EQ": mode = .eq
            case "BRANCH_NEQ": mode = .neq
            case "LEAF": mode = .leq
            default: throw c.error(.invalidModel, "unknown node mode '\(modes[i])'")
            }
            forest.mode.append(mode)
            forest.feature.append(featureIds[i])
            forest.split.append(values[i])
            forest.missingTracksTrue.append(i < missing.count && missing[i] != 0)
            forest.memberStart.append(0)
            forest.memberCount.append(0)
            if modes[i] == "LEAF" {
                forest.trueChild.append(-leafIndex[i] - 1)
                forest.falseChild.append(-leafIndex[i] - 1)
            } else {
                forest.maxFeature = Swift.max(forest.maxFeature, featureIds[i])
                forest.trueChild.append(try ref(treeIds[i], trueIds[i]))
                forest.falseChild.append(try ref(treeIds[i], falseIds[i]))
            }
        }
        // Roots: the first node of each tree (in order of appearance), or the node id 0 of each tree.
        var seen = Set<Int>()
        for i in 0..<n where seen.insert(treeIds[i]).inserted {
            let root = position.find(tree: treeIds[i], node: 0) ?? i
            forest.roots.append(leafIndex[root] >= 0 ? -leafIndex[root] - 1 : root)
        }
        try forest.validate(targets: targets)
        try forest.pack()
        let base: [Double]
        if let t = try c.tensor("base_values_as_tensor") { base = try t.doubleValues() } else { base = (try c.floats("base_values") ?? []).map { Double($0) } }
        let aggregate = try Self.aggregate(try c.string("aggregate_function", default: "SUM"))
        let post = try MLPostTransform(name: try c.string("post_transform", default: "NONE"))
        return (MLForestScorer(forest: forest, targets: targets, aggregate: aggregate, baseValues: base, float32: true), post)
    }
}
