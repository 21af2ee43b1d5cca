import BlindAITensor

// Shape rules for operators defined in other files of Ops/. They read the node's ONNX attributes (through
// `ShapeInferenceContext`) rather than the operators' stored properties, so they follow the ONNX definition
// and do not depend on how each operator stores its attributes.

extension TransposeOp: ShapeInferring {
    func inferFacts(_ inputs: [ValueFact?], _ ctx: ShapeInferenceContext) throws -> [ValueFact] {
        guard ctx.is(["Transpose"]) else { return [] }
        guard let x = inputs.first ?? nil else { return [] }
        guard let s = x.shape else { return [ValueFact(dataType: x.dataType)] }
        let p = ctx.ints("perm") ?? Array((0..<s.count).reversed())
        guard p.count == s.count, Set(p).count == p.count, p.allSatisfy({ $0 >= 0 && $0 < s.count }) else { throw ShapeFacts.Unknowable() }
        var out = ValueFact(dataType: x.dataType, shape: p.map { s[$0] })
        if s.count <= 1 { out.elements = x.elements }
        return [out]
    }
}

extension ConcatOp: ShapeInferring {
    func inferFacts(_ inputs: [ValueFact?], _ ctx: ShapeInferenceContext) throws -> [ValueFact] {
        guard ctx.is(["Concat"]) else { return [] }
        let xs = inputs.compactMap { $0 }
        guard !xs.isEmpty else { return [] }
        var out = ValueFact(dataType: xs.lazy.compactMap(\.dataType).first)
        guard let rank = xs.lazy.compactMap(\.rank).first, rank > 0 else { return [out] }
        let a = try ShapeFacts.axis(ctx.int("axis") ?? 1, rank: rank)
        var dims = [DimFact](repeating: .unknown, count: rank)
        var total: DimFact = .known(0)
        for x in xs {
            guard let s = x.shape else {
                total = .unknown
                continue
            }
            guard s.count == rank else { throw ShapeFacts.Unknowable() }
            for k in 0..<rank where k != a {
                switch (dims[k], s[k]) {
                case let (.known(u), .known(v)) where u != v: throw ShapeFacts.Unknowable()
                case (.known, _): break
                case (_, .known): dims[k] = s[k]
                case (.unknown, .symbolic): dims[k] = s[k]
                default: break
                }
            }
            if case .known(let t) = total, let v = s[a].value { total = .known(t + v) } else { total = .unknown }
        }
        dims[a] = total
        out.shape = dims
        if rank == 1 {
            var e: [DimFact] = []
            for x in xs {
                guard let xe = x.elements else { return [out] }
                e += xe
            }
            if e.count <= ValueFact.maxElements, dims[0].value == e.count { out.elements = e }
        }
        return [out]
    }
}

extension SplitOp: ShapeInferring {
    func inferFacts(_ inputs: [ValueFact?], _ ctx: ShapeInferenceContext) throws -> [ValueFact] {
        guard ctx.is(["Split"]) else { return [] }
        guard let x = inputs.first ?? nil else { return [] }
        let n = ctx.node.outputs.count
        guard let s = x.shape else { return Array(repeating: ValueFact(dataType: x.dataType), count: n) }
        let a = try ShapeFacts.axis(ctx.int("axis", default: 0), rank: s.count)
        var sizes: [DimFact]
        if ctx.opset < 13, let split = ctx.ints("split") {
            sizes = split.map { .known($0) }
        } else if ctx.opset >= 13, inputs.count > 1, inputs[1] != nil {
            if let split = ctx.intValues(1, inputs) {
                sizes = split.map { .known($0) }
            } else {
                sizes = Array(repeating: .unknown, count: n)
            }
        } else if let d = s[a].value, n > 0 {
            // Equal parts; with num_outputs (opset 18) the last one may be smaller.
            let part = ctx.opset >= 18 ? (d + n - 1) / n : d / n
            guard ctx.opset >= 18 || d % n == 0 else { throw ShapeFacts.Unknowable() }
            sizes = (0..<n).map { i in .known(Swift.max(0, Swift.min(part, d - i * part))) }
        } else {
            sizes = Array(repeating: .unknown, count: n)
        }
        guard sizes.count == n else { throw ShapeFacts.Unknowable() }
        return sizes.map { size in
            var dims = s
            dims[a] = size
            return ValueFact(dataType: x.dataType, shape: dims)
        }
    }
}

extension SliceOp: ShapeInferring {
    func inferFacts(_ inputs: [ValueFact?], _ ctx: ShapeInferenceContext) throws -> [ValueFact] {
        guard ctx.is(["Slice"]) else { return [] }
        guard let x = inputs.first ?? nil else { return [] }
        var out = ValueFact(dataType: x.dataType)
        guard let s = x.shape else { return [out] }
        out.shape = s.map { _ in .unknown }
        let starts: [Int], ends: [Int], axesIn: [Int]?, steps: [Int]?
        if ctx.opset < 10 {
            guard let st = ctx.ints("starts"), let en = ctx.ints("ends") else { return [out] }
            starts = st; ends = en; axesIn = ctx.ints("axes"); steps = nil
        } else {
            guard let st = ctx.intValues(1, inputs), let en = ctx.intValues(2, inputs) else {
                // Unknown bounds: axes that are not sliced keep their size, but which axes are sliced is unknown
                // unless `axes` is known.
                if let ax = inputs.count > 3 && inputs[3] != nil ? ctx.intValues(3, inputs) : nil {
                    let sliced = Set(try ax.map { try ShapeFacts.axis($0, rank: s.count) })
                    out.shape = s.enumerated().map { sliced.contains($0.offset) ? .unknown : $0.element }
                }
                return [out]
            }
            starts = st; ends = en
            if inputs.count > 3, inputs[3] != nil {
                guard let a = ctx.intValues(3, inputs) else { return [out] }
                axesIn = a
            } else {
                axesIn = nil
            }
            if inputs.count > 4, inputs[4] != nil {
                guard let st = ctx.intValues(4, inputs) else { return [out] }
                steps = st
            } else {
                steps = nil
            }
        }
        guard starts.count == ends.count else { throw ShapeFacts.Unknowable() }
        let axes = axesIn ?? Array(0..<starts.count)
        guard axes.count == starts.count, steps == nil || steps!.count == starts.count else { throw ShapeFacts.Unknowable() }
        var dims = s
        var ranges: [(start: Int, step: Int, count: Int)?] = Array(repeating: nil, count: s.count)
        var seen = Set<Int>()
        for i in 0..<axes.count {
            let a = try ShapeFacts.axis(axes[i], rank: s.count)
            guard seen.insert(a).inserted else { throw ShapeFacts.Unknowable() }
            let step = steps?[i] ?? 1
            guard step != 0 else { throw ShapeFacts.Unknowable() }
            guard let d = s[a].value else {
                dims[a] = .unknown
                continue
            }
            let (b, count) = SliceOp.range(start: starts[i], end: ends[i], step: step, dimension: d)
            dims[a] = .known(count)
            ranges[a] = (b, step, count)
        }
        out.shape = dims
        if s.count == 1, let e = x.elements, e.count == s[0].value {
            if let r = ranges[0] {
                out.elements = (0..<r.count).map { e[r.start + $0 * r.step] }
            } else {
                out.elements = e
            }
        }
        return [out]
    }
}

extension GatherOp: ShapeInferring {
    func inferFacts(_ inputs: [ValueFact?], _ ctx: ShapeInferenceContext) throws -> [ValueFact] {
        guard ctx.is(["Gather"]) else { return [] }
        guard inputs.count >= 2, let data = inputs[0], let indices = inputs[1] else { return [] }
        var out = ValueFact(dataType: data.dataType)
        guard let s = data.shape, let si = indices.shape else { return [out] }
        guard s.count >= 1 else { throw ShapeFacts.Unknowable() }
        let a = try ShapeFacts.axis(ctx.int("axis", default: 0), rank: s.count)
        out.shape = Array(s[..<a]) + si + Array(s[(a + 1)...])
        // Picking entries of a shape vector: Shape(x)[i].
        if s.count == 1, let e = data.elements, let idx = ctx.intValues(1, inputs), si.count <= 1 {
            var picked: [DimFact] = []
            for i in idx {
                let j = i < 0 ? i + e.count : i
                guard j >= 0 && j < e.count else { throw ShapeFacts.Unknowable() }
                picked.append(e[j])
            }
            out.elements = picked
        }
        return [out]
    }
}

extension ExpandOp: ShapeInferring {
    func inferFacts(_ inputs: [ValueFact?], _ ctx: ShapeInferenceContext) throws -> [ValueFact] {
        guard ctx.is(["Expand"]) else { return [] }
        guard inputs.count >= 2, let x = inputs[0], let spec = inputs[1] else { return [] }
        var out = ValueFact(dataType: x.dataType)
        // A target dimension of 1 keeps the input's; an unknown one against an input dimension over 1 must be
        // that dimension or 1 for the run to succeed: the broadcast rule of `ShapeFacts` says exactly this.
        if let e = spec.elements {
            if e.contains(where: { ($0.value ?? 0) < 0 }) { throw ShapeFacts.Unknowable() }
            out.shape = try ShapeFacts.broadcast([x.shape, e])
        } else if let n = spec.shape?.first?.value, spec.rank == 1 {
            out.shape = try ShapeFacts.broadcast([x.shape, Array(repeating: .unknown, count: n)])
        }
        return [out]
    }
}

extension ConstantOfShapeOp: ShapeInferring {
    func inferFacts(_ inputs: [ValueFact?], _ ctx: ShapeInferenceContext) throws -> [ValueFact] {
        guard ctx.is(["ConstantOfShape"]) else { return [] }
        guard let spec = inputs.first ?? nil else { return [] }
        var out = ValueFact(dataType: value.dataType)
        if let e = spec.elements {
            if e.contains(where: { ($0.value ?? 0) < 0 }) { throw ShapeFacts.Unknowable() }
            out.shape = e
        } else if let n = spec.shape?.first?.value, spec.rank == 1 {
            out.shape = Array(repeating: .unknown, count: n)
        }
        return [out]
    }
}

extension MatMulOp: ShapeInferring {
    func inferFacts(_ inputs: [ValueFact?], _ ctx: ShapeInferenceContext) throws -> [ValueFact] {
        guard ctx.is(["MatMul", "FusedMatMul"]) else { return [] }
        guard inputs.count >= 2, let a = inputs[0], let b = inputs[1] else { return [] }
        var out = ValueFact(dataType: a.dataType)
        guard var sa = a.shape, var sb = b.shape, !sa.isEmpty, !sb.isEmpty else { return [out] }
        let transA = ctx.int("transA", default: 0) != 0, transB = ctx.int("transB", default: 0) != 0
        let vecA = sa.count == 1, vecB = sb.count == 1
        if vecA { sa = [.known(1)] + sa }
        if vecB { sb = sb + [.known(1)] }
        if transA { sa.swapAt(sa.count - 1, sa.count - 2) }
        if transB { sb.swapAt(sb.count - 1, sb.count - 2) }
        let m = sa[sa.count - 2], ka = sa[sa.count - 1], kb = sb[sb.count - 2], n = sb[sb.count - 1]
        if let x = ka.value, let y = kb.value, x != y { throw ShapeFacts.Unknowable() }
        guard var batch = try ShapeFacts.broadcast([Array(sa.dropLast(2)), Array(sb.dropLast(2))]) else { return [out] }
        if !vecA { batch.append(m) }
        if !vecB { batch.append(n) }
        out.shape = batch
        return [out]
    }
}

extension GemmOp: ShapeInferring {
    func inferFacts(_ inputs: [ValueFact?], _ ctx: ShapeInferenceContext) throws -> [ValueFact] {
        guard ctx.is(["Gemm"]) else { return [] }
        guard inputs.count >= 2, let a = inputs[0], let b = inputs[1] else { return [] }
        var out = ValueFact(dataType: a.dataType)
        guard let sa = a.shape, let sb = b.shape, sa.count == 2, sb.count == 2 else { return [out] }
        let m = ctx.int("transA", default: 0) != 0 ? sa[1] : sa[0]
        let n = ctx.int("transB", default: 0) != 0 ? sb[0] : sb[1]
        out.shape = [m, n]
        return [out]
    }
}

extension ConvOp: ShapeInferring {
    func inferFacts(_ inputs: [ValueFact?], _ ctx: ShapeInferenceContext) throws -> [ValueFact] {
        guard inputs.count >= 2, let x = inputs[0], let w = inputs[1] else { return [] }
        var out = ValueFact(dataType: x.dataType)
        guard ctx.node.opType == "Conv", let sx = x.shape, let sw = w.shape, sx.count >= 3, sw.count == sx.count else { return [out] }
        let r = sx.count - 2
        let kernel = ctx.ints("kernel_shape") ?? sw[2...].compactMap(\.value)
        guard kernel.count == r else { return [out] }
        let strides = ctx.ints("strides") ?? Array(repeating: 1, count: r)
        let dilations = ctx.ints("dilations") ?? Array(repeating: 1, count: r)
        let pads = ctx.ints("pads") ?? Array(repeating: 0, count: 2 * r)
        guard strides.count == r, dilations.count == r, pads.count == 2 * r, strides.allSatisfy({ $0 > 0 }), dilations.allSatisfy({ $0 > 0 }) else {
            throw ShapeFacts.Unknowable()
        }
        guard let autoPad = ConvAttributes.AutoPad(onnx: ctx.string("auto_pad") ?? "NOTSET") else { throw ShapeFacts.Unknowable() }
        var dims: [DimFact] = [sx[0], sw[0]]
        for i in 0..<r {
            guard let input = sx[i + 2].value else { dims.append(.unknown); continue }
            dims.append(.known(try ConvGeometry.axis(input: input, kernel: kernel[i], stride: strides[i], dilation: dilations[i],
                                                     padBegin: pads[i], padEnd: pads[i + r], autoPad: autoPad).out))
        }
        out.shape = dims
        return [out]
    }
}

private func poolFacts(_ x: ValueFact, _ ctx: ShapeInferenceContext) throws -> ValueFact {
    var out = ValueFact(dataType: x.dataType)
    guard let k = ctx.ints("kernel_shape"), !k.isEmpty, let s = x.shape, s.count == k.count + 2 else { return out }
    let n = k.count
    let strides = ctx.ints("strides") ?? Array(repeating: 1, count: n)
    let pads = ctx.ints("pads") ?? Array(repeating: 0, count: 2 * n)
    let dilations = ctx.ints("dilations") ?? Array(repeating: 1, count: n)
    guard strides.count == n, pads.count == 2 * n, dilations.count == n, strides.allSatisfy({ $0 > 0 }), dilations.allSatisfy({ $0 > 0 }) else {
        throw ShapeFacts.Unknowable()
    }
    let autoPad = ctx.string("auto_pad") ?? "NOTSET"
    guard PoolWindowAttributes.autoPadValues.contains(autoPad) else { throw ShapeFacts.Unknowable() }
    let ceilMode = ctx.int("ceil_mode", default: 0) != 0
    var dims = [s[0], s[1]]
    for i in 0..<n {
        guard let input = s[i + 2].value else { dims.append(.unknown); continue }
        dims.append(.known(try PoolWindowAttributes.axis(input: input, kernel: k[i], stride: strides[i], dilation: dilations[i],
                                                         padBegin: pads[i], padEnd: pads[i + n], autoPad: autoPad, ceilMode: ceilMode).out))
    }
    out.shape = dims
    return out
}

extension MaxPoolOp: ShapeInferring {
    func inferFacts(_ inputs: [ValueFact?], _ ctx: ShapeInferenceContext) throws -> [ValueFact] {
        guard ctx.is(["MaxPool"]) else { return [] }
        guard let x = inputs.first ?? nil else { return [] }
        let y = try poolFacts(x, ctx)
        return [y, ValueFact(dataType: .int64, shape: y.shape)]
    }
}

extension AveragePoolOp: ShapeInferring {
    func inferFacts(_ inputs: [ValueFact?], _ ctx: ShapeInferenceContext) throws -> [ValueFact] {
        guard ctx.is(["AveragePool", "LpPool"]) else { return [] }
        guard let x = inputs.first ?? nil else { return [] }
        return [try poolFacts(x, ctx)]
    }
}

extension GlobalPoolOp: ShapeInferring {
    func inferFacts(_ inputs: [ValueFact?], _ ctx: ShapeInferenceContext) throws -> [ValueFact] {
        guard let x = inputs.first ?? nil else { return [] }
        guard let s = x.shape, s.count >= 2 else { return [ValueFact(dataType: x.dataType)] }
        return [ValueFact(dataType: x.dataType, shape: [s[0], s[1]] + Array(repeating: .known(1), count: s.count - 2))]
    }
}

extension BatchNormOp: ShapeInferring {
    func inferFacts(_ inputs: [ValueFact?], _ ctx: ShapeInferenceContext) throws -> [ValueFact] {
        guard let x = inputs.first ?? nil else { return [] }
        return [ValueFact(dataType: x.dataType, shape: x.shape)]
    }
}

extension LayerNormOp: ShapeInferring {
    func inferFacts(_ inputs: [ValueFact?], _ ctx: ShapeInferenceContext) throws -> [ValueFact] {
        guard let x = inputs.first ?? nil else { return [] }
        return [ValueFact(dataType: x.dataType, shape: x.shape)]
    }
}

extension GroupNormOp: ShapeInferring {
    func inferFacts(_ inputs: [ValueFact?], _ ctx: ShapeInferenceContext) throws -> [ValueFact] {
        guard let x = inputs.first ?? nil else { return [] }
        return [ValueFact(dataType: x.dataType, shape: x.shape)]
    }
}

extension SoftmaxOp: ShapeInferring {
    func inferFacts(_ inputs: [ValueFact?], _ ctx: ShapeInferenceContext) throws -> [ValueFact] {
        guard let x = inputs.first ?? nil else { return [] }
        return [ValueFact(dataType: x.dataType, shape: x.shape)]
    }
}

extension ReduceOp: ShapeInferring {
    func inferFacts(_ inputs: [ValueFact?], _ ctx: ShapeInferenceContext) throws -> [ValueFact] {
        guard ctx.node.domain.isEmpty, ctx.node.opType.hasPrefix("Reduce") else { return [] }
        guard let x = inputs.first ?? nil else { return [] }
        var out = ValueFact(dataType: x.dataType)
        guard let s = x.shape else { return [out] }
        let inputSince = ctx.node.opType == "ReduceSum" ? 13 : 18
        let keep = ctx.int("keepdims", default: 1) != 0
        var axes: [Int]
        var noop = false
        if ctx.opset < inputSince {
            axes = ctx.ints("axes") ?? []
        } else if inputs.count > 1, inputs[1] != nil {
            guard let a = ctx.intValues(1, inputs) else {
                if keep { out.shape = s.map { _ in .unknown } }
                return [out]
            }
            axes = a
            noop = ctx.int("noop_with_empty_axes", default: 0) != 0
        } else {
            axes = []
            noop = ctx.int("noop_with_empty_axes", default: 0) != 0
        }
        if axes.isEmpty {
            if noop {
                out.shape = s
                return [out]
            }
            axes = Array(0..<s.count)
        }
        let reduced = Set(try axes.map { try ShapeFacts.axis($0, rank: Swift.max(s.count, 1)) })
        var dims: [DimFact] = []
        for (i, d) in s.enumerated() {
            if reduced.contains(i) {
                if keep { dims.append(.known(1)) }
            } else {
                dims.append(d)
            }
        }
        out.shape = dims
        return [out]
    }
}

extension ArgExtremumOp: ShapeInferring {
    func inferFacts(_ inputs: [ValueFact?], _ ctx: ShapeInferenceContext) throws -> [ValueFact] {
        guard ctx.is(["ArgMax", "ArgMin"]) else { return [] }
        guard let x = inputs.first ?? nil else { return [] }
        var out = ValueFact(dataType: .int64)
        guard let s = x.shape, !s.isEmpty else { return [out] }
        let a = try ShapeFacts.axis(ctx.int("axis", default: 0), rank: s.count)
        var dims = s
        if ctx.int("keepdims", default: 1) != 0 { dims[a] = .known(1) } else { dims.remove(at: a) }
        out.shape = dims
        return [out]
    }
}

extension CumulativeOp: ShapeInferring {
    func inferFacts(_ inputs: [ValueFact?], _ ctx: ShapeInferenceContext) throws -> [ValueFact] {
        guard let x = inputs.first ?? nil else { return [] }
        return [ValueFact(dataType: x.dataType, shape: x.shape)]
    }
}
