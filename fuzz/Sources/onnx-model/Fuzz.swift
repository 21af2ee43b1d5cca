import BlindAIGraph
import BlindAIONNX
import BlindAITensor
import Foundation
import FuzzSupport

// The model loader as an upload reaches it (`ONNXModel(serialized:options:)`: protobuf decoding, graph
// conversion, function inlining, shape inference, planning and constant folding), then one run of a model
// that loads, on zero-filled inputs of its declared types (symbolic and unknown dimensions set to 1).
// Small limits keep a run's memory within libFuzzer's; a run is cancelled after two seconds.

let limits = TensorLimits(maxTensorBytes: 16 << 20, maxTensorElements: 4 << 20)

func feeds(for inputs: [ValueInfo]) -> [String: Tensor]? {
    var feeds: [String: Tensor] = [:]
    for input in inputs {
        guard input.nonTensorType == nil, let type = input.dataType else { return nil }
        let shape = (input.shape ?? [.fixed(1)]).map { d -> Int in
            if case .fixed(let v) = d { return v }
            return 1
        }
        guard let zero = try? Tensor(zeros: type, shape: shape, limits: limits) else { return nil }
        feeds[input.name] = zero
    }
    return feeds
}

@_cdecl("LLVMFuzzerTestOneInput")
public func testOneInput(_ data: UnsafePointer<UInt8>?, _ count: Int) -> CInt {
    guard let model = try? ONNXModel(serialized: Data(bytes(data, count)), options: PlanOptions(limits: limits)) else { return 0 }
    guard let feeds = feeds(for: model.inputs) else { return 0 }
    let deadline = ContinuousClock.now + .seconds(2)
    let context = ExecutionContext(limits: limits, isCancelled: { ContinuousClock.now >= deadline })
    _ = try? model.run(feeds, context: context)
    return 0
}

@main enum Main {
    static func main() { runFuzzer(testOneInput) }
}
