import BlindAITensor
import BlindAIKernels
import BlindAIGraph
import CBlindAIKernels
import Foundation

// NonMaxSuppression.

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

extension StandardOperators {
    static func registerNonMaxSuppression(_ r: inout OperatorRegistry) {
        r.register("NonMaxSuppression") { c in
            let cpb = try c.int("center_point_box", default: 0)
            guard cpb == 0 || cpb == 1 else { throw c.error(.invalidModel, "center_point_box must be 0 or 1, got \(cpb)") }
            return NonMaxSuppressionOp(centerPointBox: cpb == 1)
        }
    }
}
