/// Shape helpers shared by operators.
public enum Shape {
    /// Row-major strides of `shape`.
    @inlinable
    public static func strides(_ shape: [Int]) -> [Int] {
        var s = [Int](repeating: 1, count: shape.count)
        var acc = 1
        for i in stride(from: shape.count - 1, through: 0, by: -1) {
            s[i] = acc
            acc *= shape[i]
        }
        return s
    }

    /// The multidirectional (NumPy) broadcast of several shapes.
    public static func broadcast(_ shapes: [[Int]]) throws -> [Int] {
        let rank = shapes.map(\.count).max() ?? 0
        var out = [Int](repeating: 1, count: rank)
        for s in shapes {
            let off = rank - s.count
            for (i, d) in s.enumerated() {
                let j = off + i
                if out[j] == 1 {
                    out[j] = d
                } else if d != 1 && d != out[j] {
                    throw EngineError(.shapeMismatch, "shapes \(shapes.map { "\($0)" }.joined(separator: ", ")) do not broadcast")
                }
            }
        }
        return out
    }

    /// Normalises a possibly negative axis for a tensor of `rank`.
    @inlinable
    public static func axis(_ axis: Int, rank: Int) throws -> Int {
        let a = axis < 0 ? axis + rank : axis
        guard a >= 0 && a < max(rank, 1) else {
            throw EngineError(.invalidArgument, "axis \(axis) is out of range for rank \(rank)")
        }
        return a
    }
}

/// Iteration plan for reading several inputs broadcast to one output shape.
///
/// Dimensions are collapsed where every input is contiguous across them, so the common cases
/// (same shape, scalar, per-channel bias) become one or two loops. The body is called once per
/// innermost row, never per element.
public struct BroadcastPlan: Sendable {
    public let outShape: [Int]
    public let outCount: Int
    /// Collapsed dimensions; the last one is the inner loop.
    public let dims: [Int]
    /// Per input, its stride (in elements) along each collapsed dimension (0 where broadcast).
    public let strides: [[Int]]

    public init(outShape: [Int], inputShapes: [[Int]]) {
        self.outShape = outShape
        outCount = outShape.reduce(1, *)
        let rank = outShape.count
        // Strides of each input aligned to the output rank.
        var inStrides: [[Int]] = []
        for s in inputShapes {
            let st = Shape.strides(s)
            var aligned = [Int](repeating: 0, count: rank)
            let off = rank - s.count
            for i in 0..<s.count where s[i] != 1 {
                aligned[off + i] = st[i]
            }
            inStrides.append(aligned)
        }
        // Drop size-1 dims, then merge adjacent dims where every input's strides compose.
        var dims: [Int] = []
        var strides: [[Int]] = Array(repeating: [], count: inputShapes.count)
        for i in 0..<rank where outShape[i] != 1 {
            if let last = dims.last {
                var mergeable = true
                for k in 0..<inStrides.count {
                    if strides[k].last! != inStrides[k][i] * outShape[i] { mergeable = false; break }
                }
                if mergeable {
                    dims[dims.count - 1] = last * outShape[i]
                    for k in 0..<inStrides.count { strides[k][strides[k].count - 1] = inStrides[k][i] }
                    continue
                }
            }
            dims.append(outShape[i])
            for k in 0..<inStrides.count { strides[k].append(inStrides[k][i]) }
        }
        if dims.isEmpty {
            dims = [1]
            strides = Array(repeating: [0], count: inputShapes.count)
        }
        self.dims = dims
        self.strides = strides
    }

    /// Calls `body(outOffset, inputOffsets, innerCount, innerStrides)` for each innermost row. Always inlined, so
    /// that the caller's element function is inlined into the row loops instead of being called per element.
    @inlinable @inline(__always)
    public func forEachRow(_ body: (Int, [Int], Int, [Int]) -> Void) {
        let n = dims.count
        let inner = dims[n - 1]
        let innerStrides = strides.map { $0[n - 1] }
        if outCount == 0 { return }
        if n == 1 {
            body(0, [Int](repeating: 0, count: strides.count), inner, innerStrides)
            return
        }
        var index = [Int](repeating: 0, count: n - 1)
        var offsets = [Int](repeating: 0, count: strides.count)
        var out = 0
        while true {
            body(out, offsets, inner, innerStrides)
            out += inner
            // Increment the multi-index over the outer dimensions.
            var d = n - 2
            while d >= 0 {
                index[d] += 1
                for k in 0..<offsets.count { offsets[k] += strides[k][d] }
                if index[d] < dims[d] { break }
                for k in 0..<offsets.count { offsets[k] -= strides[k][d] * dims[d] }
                index[d] = 0
                d -= 1
            }
            if d < 0 { return }
        }
    }
}
