import BlindAITensor

/// Integer helpers of the quantized operators (ConvInteger, MatMulInteger, QLinearConv, QLinearMatMul, ...).
package enum QuantizedIntegers {
    /// Values of a uint8/int8 (or other integer) tensor as an int32 tensor minus `zeroPoint` (broadcast per
    /// the given index function when not scalar).
    package static func int32Minus(_ t: Tensor, zeroPoints: [Int32], perRowOf rowLength: Int, _ ctx: ExecutionContext) throws -> Tensor {
        let out = try ctx.uninitialized(.int32, t.shape)
        let d = out.mutableBuffer(Int32.self)
        func fill<S: EngineInteger>(_: S.Type) {
            let s = t.buffer(S.self)
            if zeroPoints.count <= 1 {
                let z = zeroPoints.first ?? 0
                for i in 0..<t.count { d[i] = Int32(truncatingIfNeeded: s[i]) &- z }
            } else {
                // zero point i applies to the i-th block of `rowLength` elements, cycling.
                let nz = zeroPoints.count
                var i = 0
                var block = 0
                while i < t.count {
                    let z = zeroPoints[block % nz]
                    let end = Swift.min(i + rowLength, t.count)
                    for j in i..<end { d[j] = Int32(truncatingIfNeeded: s[j]) &- z }
                    i = end
                    block += 1
                }
            }
        }
        switch t.dataType {
        case .uint8: fill(UInt8.self)
        case .int8: fill(Int8.self)
        case .uint16: fill(UInt16.self)
        case .int16: fill(Int16.self)
        case .int32: fill(Int32.self)
        default: throw EngineError(.typeMismatch, "expected an 8-bit integer tensor, got \(t.dataType)")
        }
        return out
    }

    /// Zero points of an optional integer tensor (empty when absent).
    package static func zeroPoints(_ t: Tensor?, expectedType: DataType?, _ what: String) throws -> [Int32] {
        guard let t else { return [] }
        if let expectedType, t.dataType != expectedType {
            throw EngineError(.typeMismatch, "\(what) must be \(expectedType), got \(t.dataType)")
        }
        return try t.intValues().map { Int32(truncatingIfNeeded: $0) }
    }

    /// Round half to even, then saturate to the range of `Q`.
    @inlinable @inline(__always)
    package static func saturate<Q: EngineInteger>(_ v: Double, _: Q.Type) -> Q {
        let r = v.rounded(.toNearestOrEven)
        if r.isNaN { return 0 }
        if r <= Double(Q.min) { return Q.min }
        if r >= Double(Q.max) { return Q.max }
        return Q(r)
    }
}

/// A value (typically a raw pointer into a tensor being written) handed to worker threads, each of which
