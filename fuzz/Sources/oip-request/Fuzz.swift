import BlindAIGraph
import BlindAIONNX
import BlindAIProtocol
@testable import BlindAIServer
import BlindAITensor
import Foundation
import FuzzSupport

// The server's inference request path after the body is read (`InferenceServer.runInference`): the
// binary-extension split and slices, JSON decoding of the OIP v2 request, tensor decoding checked against the
// model's inputs (JSON and binary data of every datatype, BYTES framing), the run, and the response encoding.
// A response the server writes must decode with the client's decoder.
//
// Input: one line `MODEL [INFERENCE-HEADER-CONTENT-LENGTH]`, then the request body (the same body is sent
// as plain JSON when the line has no header length). MODEL is one of the server test fixtures below (as in
// POST /v2/models/MODEL/infer); another name means all_types.

let limits = TensorLimits(maxTensorBytes: 16 << 20, maxTensorElements: 4 << 20)

let models: [String: LoadedModel] = {
    var out: [String: LoadedModel] = [:]
    for name in ["all_types", "add_relu", "scale", "bf16"] {
        let bytes = repositoryFile("Tests/BlindAIServerTests/Fixtures/\(name).onnx")
        do {
            let model = try ONNXModel(serialized: Data(bytes), options: PlanOptions(limits: limits))
            out[name] = LoadedModel(
                name: name, version: 1, model: model, owner: nil, shared: true, sha256: "", byteSize: bytes.count,
                inputs: model.inputs.map(TensorCoding.metadata), outputs: model.outputs.map(TensorCoding.metadata), loadedAt: Date())
        } catch {
            fatalError("fuzz target set-up: fixture \(name).onnx does not load: \(error)")
        }
    }
    return out
}()

@_cdecl("LLVMFuzzerTestOneInput")
public func testOneInput(_ data: UnsafePointer<UInt8>?, _ count: Int) -> CInt {
    let input = bytes(data, count)
    guard let newline = input.firstIndex(of: UInt8(ascii: "\n")) else { return 0 }
    let words = String(decoding: input[..<newline], as: UTF8.self).split(separator: " ", omittingEmptySubsequences: true)
    let model = models[words.first.map(String.init) ?? ""] ?? models["all_types"]!
    var headerLength: Int?
    if words.count > 1 {
        // As InferenceServer.infer reads the header.
        guard let n = Int(words[1].trimmingCharacters(in: .whitespaces)), n >= 0 else { return 0 }
        headerLength = n
    }
    let body = Data(input[(newline + 1)...])
    let response: (body: Data, headerLength: Int?)
    do {
        response = try InferenceServer.runInference(
            model: model, body: body, headerLength: headerLength, limits: limits, deadline: ContinuousClock.now + .seconds(2),
            isCancelled: { false })
    } catch {
        return 0
    }
    do {
        _ = try InferenceResponse.decode(body: response.body, headerLength: response.headerLength)
    } catch {
        property(false, "the client cannot decode the server's response: \(error)")
    }
    return 0
}

@main enum Main {
    static func main() {
        _ = models
        runFuzzer(testOneInput)
    }
}
