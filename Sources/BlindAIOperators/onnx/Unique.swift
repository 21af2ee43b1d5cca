import BlindAITensor
import BlindAIKernels
import BlindAIGraph
import CBlindAIKernels
import Foundation

// Unique.

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

extension StandardOperators {
    static func registerUnique(_ r: inout OperatorRegistry) {
        r.register("Unique") { c in
            UniqueOp(axis: try c.int("axis"), sorted: try c.int("sorted", default: 1) != 0)
        }
    }
}
