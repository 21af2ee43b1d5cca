import BlindAITensor
import Foundation

// NonMaxSuppression, Unique and the string operators (StringNormalizer, StringConcat, StringSplit, RegexFullMatch).

/// NonMaxSuppression: greedy per (batch, class) selection by descending score, suppressing boxes whose IoU with
/// an already selected box exceeds the threshold. Output rows are [batch, class, box] (int64).
struct NonMaxSuppressionOp: Operator {
    let centerPointBox: Bool

    func run(_ inputs: [Tensor?], _ ctx: ExecutionContext) throws -> [Tensor] {
        var boxes = try inputs.required(0, "boxes")
        var scores = try inputs.required(1, "scores")
        if boxes.dataType != .float32 { boxes = try CastOp.cast(boxes, to: .float32, ctx) }
        if scores.dataType != .float32 { scores = try CastOp.cast(scores, to: .float32, ctx) }
        guard boxes.rank == 3, boxes.shape[2] == 4 else {
            throw EngineError(.shapeMismatch, "NonMaxSuppression boxes must have shape [batch, boxes, 4], got \(boxes.shape)")
        }
        guard scores.rank == 3, scores.shape[0] == boxes.shape[0], scores.shape[2] == boxes.shape[1] else {
            throw EngineError(.shapeMismatch, "NonMaxSuppression scores must have shape [batch, classes, boxes] matching boxes \(boxes.shape), got \(scores.shape)")
        }
        var maxPerClass = 0
        if let m = inputs.optional(1 + 1), m.count > 0 { maxPerClass = try m.intValues()[0] }
        var iouThreshold: Float = 0
        if let t = inputs.optional(3), t.count > 0 { iouThreshold = Float(try t.doubleValues()[0]) }
        guard iouThreshold >= 0 && iouThreshold <= 1 else {
            throw EngineError(.invalidArgument, "NonMaxSuppression iou_threshold must be in [0, 1], got \(iouThreshold)")
        }
        var scoreThreshold: Float?
        if let t = inputs.optional(4), t.count > 0 { scoreThreshold = Float(try t.doubleValues()[0]) }
        let batches = boxes.shape[0], boxCount = boxes.shape[1], classes = scores.shape[1]
        var selected: [Int64] = []
        if maxPerClass > 0 && boxCount > 0 {
            let pb = boxes.buffer(Float.self), ps = scores.buffer(Float.self)
            // Boxes as (xmin, ymin, xmax, ymax) once per batch.
            var corners = [Float](repeating: 0, count: boxCount * 4)
            var candidates: [(score: Float, index: Int)] = []
            var kept: [Int] = []
            for b in 0..<batches {
                for i in 0..<boxCount {
                    let o = (b * boxCount + i) * 4
                    var x1, y1, x2, y2: Float
                    if centerPointBox {
                        let hw = pb[o + 2] / 2, hh = pb[o + 3] / 2
                        x1 = pb[o] - hw; x2 = pb[o] + hw
                        y1 = pb[o + 1] - hh; y2 = pb[o + 1] + hh
                    } else {
                        y1 = Swift.min(pb[o], pb[o + 2]); y2 = Swift.max(pb[o], pb[o + 2])
                        x1 = Swift.min(pb[o + 1], pb[o + 3]); x2 = Swift.max(pb[o + 1], pb[o + 3])
                    }
                    corners[i * 4] = x1; corners[i * 4 + 1] = y1; corners[i * 4 + 2] = x2; corners[i * 4 + 3] = y2
                }
                for cls in 0..<classes {
                    candidates.removeAll(keepingCapacity: true)
                    let so = (b * classes + cls) * boxCount
                    for i in 0..<boxCount {
                        let s = ps[so + i]
                        if let st = scoreThreshold, !(s > st) { continue }
                        candidates.append((s, i))
                    }
                    // Descending score; ties keep the lower box index first.
                    candidates.sort { $0.score != $1.score ? $0.score > $1.score : $0.index < $1.index }
                    kept.removeAll(keepingCapacity: true)
                    for cand in candidates {
                        if kept.count >= maxPerClass { break }
                        var suppressed = false
                        for k in kept where Self.overlaps(corners, cand.index, k, iouThreshold) {
                            suppressed = true
                            break
                        }
                        if !suppressed {
                            kept.append(cand.index)
                            selected.append(Int64(b)); selected.append(Int64(cls)); selected.append(Int64(cand.index))
                        }
                    }
                }
            }
        }
        return [Tensor(shape: [selected.count / 3, 3], scalars: selected)]
    }

    /// Whether the IoU of boxes `i` and `j` exceeds `threshold` (computed in float32, as onnxruntime does).
    @inline(__always)
    static func overlaps(_ c: [Float], _ i: Int, _ j: Int, _ threshold: Float) -> Bool {
        let ix1 = Swift.max(c[i * 4], c[j * 4]), ix2 = Swift.min(c[i * 4 + 2], c[j * 4 + 2])
        if ix2 <= ix1 { return false }
        let iy1 = Swift.max(c[i * 4 + 1], c[j * 4 + 1]), iy2 = Swift.min(c[i * 4 + 3], c[j * 4 + 3])
        if iy2 <= iy1 { return false }
        let inter = (ix2 - ix1) * (iy2 - iy1)
        if inter <= 0 { return false }
        let a1 = (c[i * 4 + 2] - c[i * 4]) * (c[i * 4 + 3] - c[i * 4 + 1])
        let a2 = (c[j * 4 + 2] - c[j * 4]) * (c[j * 4 + 3] - c[j * 4 + 1])
        let union = a1 + a2 - inter
        if a1 <= 0 || a2 <= 0 || union <= 0 { return false }
        return inter / union > threshold
    }
}

/// Unique: distinct elements (or slices along `axis`), sorted or in order of first occurrence, with the index
/// of each first occurrence, the inverse mapping and the counts.
struct UniqueOp: Operator {
    let axis: Int?
    let sorted: Bool

    func run(_ inputs: [Tensor?], _ ctx: ExecutionContext) throws -> [Tensor] {
        let x = try inputs.required(0)
        switch x.dataType {
        case .float32: return try unique(x, Float.self, ctx) { $0 }
        case .float64: return try unique(x, Double.self, ctx) { $0 }
        case .float16: return try unique(x, Float16.self, ctx) { $0 }
        case .bfloat16: return try unique(x, UInt16.self, ctx) { Float(bitPattern: UInt32($0) << 16) }
        case .int8: return try unique(x, Int8.self, ctx) { $0 }
        case .uint8: return try unique(x, UInt8.self, ctx) { $0 }
        case .int16: return try unique(x, Int16.self, ctx) { $0 }
        case .uint16: return try unique(x, UInt16.self, ctx) { $0 }
        case .int32: return try unique(x, Int32.self, ctx) { $0 }
        case .uint32: return try unique(x, UInt32.self, ctx) { $0 }
        case .int64: return try unique(x, Int64.self, ctx) { $0 }
        case .uint64: return try unique(x, UInt64.self, ctx) { $0 }
        case .bool: return try unique(x, Bool.self, ctx) { $0 ? 1 : 0 as UInt8 }
        case .string:
            let s = x.strings
            return try uniqueCore(x, ctx, key: { s[$0] }, gather: { idx, shape in
                Tensor(shape: shape, strings: idx.map { s[$0] })
            })
        }
    }

    private func unique<T: TensorElement, K: Comparable & Hashable>(_ x: Tensor, _: T.Type, _ ctx: ExecutionContext,
                                                                    _ key: (T) -> K) throws -> [Tensor] {
        let p = x.buffer(T.self)
        return try uniqueCore(x, ctx, key: { key(p[$0]) }, gather: { idx, shape in
            let out = try ctx.uninitialized(x.dataType, shape)
            let d = out.mutableBuffer(T.self)
            for (i, j) in idx.enumerated() { d[i] = p[j] }
            return out
        })
    }

    /// `key(i)` is the sort key of flat element i; `gather(indices, shape)` builds the output from flat indices.
    private func uniqueCore<K: Comparable & Hashable>(_ x: Tensor, _ ctx: ExecutionContext, key: (Int) -> K,
                                                      gather: ([Int], [Int]) throws -> Tensor) throws -> [Tensor] {
        // Slices along the axis: n slices of `outer * inner` elements each (one element each without an axis).
        let n: Int, outer: Int, inner: Int, a: Int?
        if let axis {
            let ax = try Shape.axis(axis, rank: x.rank)
            guard x.rank > 0 else { throw EngineError(.invalidArgument, "Unique with an axis needs a tensor of rank >= 1") }
            a = ax
            n = x.shape[ax]
            outer = x.shape[..<ax].reduce(1, *)
            inner = x.shape[(ax + 1)...].reduce(1, *)
        } else {
            a = nil
            n = x.count; outer = 1; inner = 1
        }
        let grouping: UniqueGrouping
        if a == nil {
            // One element per slice: group the keys themselves (no per-element arrays).
            grouping = UniqueGrouping((0..<n).map { key($0) }, sorted: sorted, less: <)
        } else {
            let sliceSize = outer * inner
            func flat(_ slice: Int, _ e: Int) -> Int { (e / inner * n + slice) * inner + e % inner }
            let keys: [[K]] = (0..<n).map { s in (0..<sliceSize).map { key(flat(s, $0)) } }
            grouping = UniqueGrouping(keys, sorted: sorted) { $0.lexicographicallyPrecedes($1) }
        }
        let uniques = grouping.uniques, inverse = grouping.inverse, counts = grouping.counts, order = grouping.order
        let m = order.count
        var flatIndices: [Int] = []
        flatIndices.reserveCapacity(m * outer * inner)
        var shape: [Int]
        if let a {
            shape = x.shape
            shape[a] = m
            for o in 0..<outer {
                for u in order {
                    let s = uniques[u]
                    for i in 0..<inner { flatIndices.append((o * n + s) * inner + i) }
                }
            }
        } else {
            shape = [m]
            for u in order { flatIndices.append(uniques[u]) }
        }
        let y = try gather(flatIndices, shape)
        let indices = Tensor(shape: [m], scalars: order.map { Int64(uniques[$0]) })
        let inv = Tensor(shape: [n], scalars: inverse.map { Int64($0) })
        let cnt = Tensor(shape: [m], scalars: order.map { Int64(counts[$0]) })
        return [y, indices, inv, cnt]
    }
}

/// Groups equal keys: each distinct key's first position, the inverse mapping and counts, optionally sorted.
struct UniqueGrouping {
    /// Position of the first occurrence of each distinct key, in order of first occurrence.
    var uniques: [Int] = []
    /// For each key, the output position of its group.
    var inverse: [Int]
    /// Occurrences of each distinct key (indexed like `uniques`).
    var counts: [Int] = []
    /// Output position -> index into `uniques`.
    var order: [Int]

    init<G: Hashable>(_ keys: [G], sorted: Bool, less: (G, G) -> Bool) {
        inverse = [Int](repeating: 0, count: keys.count)
        var firstIndex: [G: Int] = [:]
        for (s, k) in keys.enumerated() {
            if let u = firstIndex[k] {
                inverse[s] = u
                counts[u] += 1
            } else {
                firstIndex[k] = uniques.count
                inverse[s] = uniques.count
                uniques.append(s)
                counts.append(1)
            }
        }
        order = Array(0..<uniques.count)
        if sorted {
            let u = uniques
            order.sort { less(keys[u[$0]], keys[u[$1]]) }
            var rank = [Int](repeating: 0, count: order.count)
            for (pos, g) in order.enumerated() { rank[g] = pos }
            inverse = inverse.map { rank[$0] }
        }
    }
}

/// StringNormalizer: stop-word removal and case change on a [C] or [1, C] string tensor.
struct StringNormalizerOp: Operator {
    enum CaseChange: Sendable { case none, lower, upper }
    let caseChange: CaseChange
    let caseSensitive: Bool
    let stopwords: Set<String>

    func run(_ inputs: [Tensor?], _ ctx: ExecutionContext) throws -> [Tensor] {
        let x = try inputs.required(0)
        guard x.dataType == .string else { throw EngineError(.typeMismatch, "StringNormalizer needs a string tensor, got \(x.dataType)") }
        guard x.rank == 1 || (x.rank == 2 && x.shape[0] == 1) else {
            throw EngineError(.shapeMismatch, "StringNormalizer input must have shape [C] or [1, C], got \(x.shape)")
        }
        var out: [String] = []
        out.reserveCapacity(x.count)
        for s in x.strings {
            if !stopwords.isEmpty {
                let probe = caseSensitive ? s : s.lowercased()
                if stopwords.contains(probe) { continue }
            }
            switch caseChange {
            case .none: out.append(s)
            case .lower: out.append(s.lowercased())
            case .upper: out.append(s.uppercased())
            }
        }
        if out.isEmpty { out = [""] }
        return [Tensor(shape: x.rank == 2 ? [1, out.count] : [out.count], strings: out)]
    }
}

/// StringConcat: element-wise concatenation with broadcasting.
struct StringConcatOp: Operator {
    func run(_ inputs: [Tensor?], _ ctx: ExecutionContext) throws -> [Tensor] {
        let a = try inputs.required(0), b = try inputs.required(1)
        guard a.dataType == .string, b.dataType == .string else {
            throw EngineError(.typeMismatch, "StringConcat needs string tensors, got \(a.dataType) and \(b.dataType)")
        }
        let shape = try Shape.broadcast([a.shape, b.shape])
        let n = try ctx.limits.checkedCount(shape, .string)
        var out = [String](repeating: "", count: n)
        let sa = a.strings, sb = b.strings
        BroadcastPlan(outShape: shape, inputShapes: [a.shape, b.shape]).forEachRow { o, offs, count, st in
            for i in 0..<count { out[o + i] = sa[offs[0] + i * st[0]] + sb[offs[1] + i * st[1]] }
        }
        return [Tensor(shape: shape, strings: out)]
    }
}

/// StringSplit: splits each string by a delimiter (or by runs of whitespace), padding with empty strings.
struct StringSplitOp: Operator {
    let delimiter: String?
    let maxSplit: Int?

    func run(_ inputs: [Tensor?], _ ctx: ExecutionContext) throws -> [Tensor] {
        let x = try inputs.required(0)
        guard x.dataType == .string else { throw EngineError(.typeMismatch, "StringSplit needs a string tensor, got \(x.dataType)") }
        let parts = x.strings.map { split($0) }
        let width = parts.map(\.count).max() ?? 0
        let shape = x.shape + [width]
        let total = try ctx.limits.checkedCount(shape, .string)
        var out: [String] = []
        out.reserveCapacity(total)
        for p in parts {
            out.append(contentsOf: p)
            if p.count < width { out.append(contentsOf: repeatElement("", count: width - p.count)) }
        }
        return [Tensor(shape: shape, strings: out), Tensor(shape: x.shape, scalars: parts.map { Int64($0.count) })]
    }

    private func split(_ s: String) -> [String] {
        let limit = maxSplit ?? Int.max
        if let delimiter {
            var result: [String] = []
            var rest = Substring(s)
            while result.count < limit, let r = rest.range(of: delimiter) {
                result.append(String(rest[..<r.lowerBound]))
                rest = rest[r.upperBound...]
            }
            result.append(String(rest))
            return result
        }
        // Whitespace: runs of whitespace separate; leading and trailing whitespace is ignored (like Python's split()).
        var result: [String] = []
        var i = s.unicodeScalars.startIndex
        let scalars = s.unicodeScalars
        func isSpace(_ c: Unicode.Scalar) -> Bool { c.properties.isWhitespace }
        while i < scalars.endIndex {
            while i < scalars.endIndex && isSpace(scalars[i]) { i = scalars.index(after: i) }
            if i == scalars.endIndex { break }
            if result.count == limit {
                result.append(String(scalars[i...]))
                break
            }
            var j = i
            while j < scalars.endIndex && !isSpace(scalars[j]) { j = scalars.index(after: j) }
            result.append(String(scalars[i..<j]))
            i = j
        }
        return result
    }
}

/// RegexFullMatch: whether each string matches the whole pattern (compiled once, anchored at both ends).
struct RegexFullMatchOp: Operator {
    let regex: NSRegularExpression

    func run(_ inputs: [Tensor?], _ ctx: ExecutionContext) throws -> [Tensor] {
        let x = try inputs.required(0)
        guard x.dataType == .string else { throw EngineError(.typeMismatch, "RegexFullMatch needs a string tensor, got \(x.dataType)") }
        let out = try ctx.zeros(.bool, x.shape)
        let d = out.mutableBuffer(Bool.self)
        for (i, s) in x.strings.enumerated() {
            let whole = NSRange(location: 0, length: (s as NSString).length)
            d[i] = regex.firstMatch(in: s, options: [], range: whole) != nil
        }
        return [out]
    }
}

extension StandardOperators {
    static func registerControlFlowExtras(_ r: inout OperatorRegistry) {
        r.register("NonMaxSuppression") { c in
            let cpb = try c.int("center_point_box", default: 0)
            guard cpb == 0 || cpb == 1 else { throw c.error(.invalidModel, "center_point_box must be 0 or 1, got \(cpb)") }
            return NonMaxSuppressionOp(centerPointBox: cpb == 1)
        }
        r.register("Unique") { c in
            UniqueOp(axis: try c.int("axis"), sorted: try c.int("sorted", default: 1) != 0)
        }
        r.register("StringNormalizer") { c in
            let action = try c.string("case_change_action", default: "NONE")
            let change: StringNormalizerOp.CaseChange
            switch action {
            case "NONE": change = .none
            case "LOWER": change = .lower
            case "UPPER": change = .upper
            default: throw c.error(.invalidModel, "unknown case_change_action '\(action)'")
            }
            let sensitive = try c.int("is_case_sensitive", default: 0) != 0
            let words = try c.strings("stopwords") ?? []
            return StringNormalizerOp(caseChange: change, caseSensitive: sensitive,
                                      stopwords: Set(sensitive ? words : words.map { $0.lowercased() }))
        }
        r.register("StringConcat") { _ in StringConcatOp() }
        r.register("StringSplit") { c in
            let d = try c.string("delimiter")
            let m = try c.int("maxsplit")
            if let m, m < 0 { throw c.error(.invalidModel, "maxsplit must be non-negative, got \(m)") }
            return StringSplitOp(delimiter: (d?.isEmpty ?? true) ? nil : d, maxSplit: m)
        }
        r.register("RegexFullMatch") { c in
            guard let p = try c.string("pattern") else { throw c.error(.invalidModel, "RegexFullMatch needs a 'pattern'") }
            do {
                return RegexFullMatchOp(regex: try NSRegularExpression(pattern: "\\A(?:" + p + ")\\z"))
            } catch {
                throw c.error(.invalidModel, "RegexFullMatch: invalid pattern '\(p)': \(error)")
            }
        }
    }
}
