import BlindAIAttestation
import BlindAIClient
import BlindAIReceipts
import BlindAIServer
import BlindAITestSupport
import Crypto
import Foundation
import Testing

/// Model identity (digests in metadata and responses, a required digest per request), the operator's pre-loaded
/// models, and signed receipts verified offline (docs/receipts.md).
@Suite struct ModelIdentityTests {
    /// y = x + 1 (FP32 [N]): another model with the scale model's interface.
    static func plusOne() throws -> Data {
        var b = ModelBuilder(symbols: .perValue)
        b.input("x", .float32, [nil])
        b.output("y", .float32, [nil])
        b.initializer("one", .float32, [], raw: [Float(1)].withUnsafeBytes { Data($0) })
        b.node("Add", ["x", "one"], ["y"])
        return try b.data()
    }

    static func sha256(_ data: Data) -> String { SHA256Hex.of(data) }

    @Test func aReplacedModelIsRefusedWhenItsDigestIsRequired() async throws {
        try await withServer(try makeAttestedServer()) { running in
            try await withClient(running.port) { client in
                let first = try await client.uploadModel(try TestModels.scale(), name: "m")
                let x = try Tensor([Float(3)])
                let before = try await client.infer(model: "m", inputs: ["x": x], requireModelSHA256: first.sha256)
                #expect(before.modelSHA256 == first.sha256)
                #expect(try before.outputs["y"]?.floats() == [6])
                #expect(try await client.metadata(of: "m").parameters?["model_sha256"]?.stringValue == first.sha256)

                // The owner replaces it: a client that required the first digest is refused, and nothing runs.
                let second = try await client.uploadModel(try Self.plusOne(), name: "m")
                #expect(second.replaced && second.sha256 != first.sha256)
                do {
                    _ = try await client.infer(model: "m", inputs: ["x": x], requireModelSHA256: first.sha256)
                    Issue.record("the replaced model answered a request that required the first digest")
                } catch BlindAIClientError.server(let status, let message) {
                    #expect(status == 412)
                    #expect(message.contains("model_digest_mismatch") || message.contains("replaced"), "\(message)")
                }
                // Without a required digest: the new model, and its digest in the response.
                let after = try await client.infer(model: "m", inputs: ["x": x])
                #expect(after.modelSHA256 == second.sha256)
                #expect(try after.outputs["y"]?.floats() == [4])
                // A malformed digest is refused before anything is sent.
                await #expect(throws: BlindAIClientError.self) { _ = try await client.infer(model: "m", inputs: ["x": x], requireModelSHA256: "abc") }
            }
        }
    }

    /// A repository directory: `scale.onnx` (version 1) and `plus/2/model.onnx` and `plus/7/model.onnx` (7 is loaded).
    static func repository() throws -> (URL, scale: String, plus: String) {
        let dir = try temporaryDirectory()
        let scale = try TestModels.scale(), plus = try plusOne()
        try scale.write(to: dir.appendingPathComponent("scale.onnx"))
        for v in ["2", "7"] {
            let d = dir.appendingPathComponent("plus").appendingPathComponent(v)
            try FileManager.default.createDirectory(at: d, withIntermediateDirectories: true)
            try (v == "7" ? plus : scale).write(to: d.appendingPathComponent("model.onnx"))
        }
        try "name: \"plus\"\n".write(to: dir.appendingPathComponent("plus/config.pbtxt"), atomically: true, encoding: .utf8)
        return (dir, sha256(scale), sha256(plus))
    }

    @Test func operatorModelsArePreloadedImmutableAndAttested() async throws {
        let (dir, scaleSHA, plusSHA) = try Self.repository()
        defer { try? FileManager.default.removeItem(at: dir) }
        let files = try OperatorModelRepository.scan(dir, maxModelBytes: 1 << 20)
        #expect(files.map(\.name) == ["plus", "scale"])
        #expect(files.map(\.version) == [7, 1])
        for keys in [true, false] {
            let server = try makeAttestedServer(keys: keys)
            try await server.preload(files)
            try await withServer(server) { running in
                try await withClient(running.port, key: keys ? TestKeys.alice : nil) { client in
                    // Present before the first request, shared, with their digests.
                    #expect(Set(try await client.models().map(\.name)) == ["plus", "scale"])
                    let meta = try await client.metadata(of: "plus")
                    #expect(meta.versions == ["7"])
                    #expect(meta.parameters?["model_sha256"]?.stringValue == plusSHA)
                    #expect(meta.parameters?["operator_model"]?.boolValue == true)
                    #expect(try await client.infer(model: "scale", inputs: ["x": try Tensor([Float(2)])]).modelSHA256 == scaleSHA)
                    // Listed in the attested claims.
                    let claimed = await client.attestation.claims.operatorModels ?? []
                    #expect(claimed == [ClaimedModel(name: "plus", version: "7", sha256: plusSHA), ClaimedModel(name: "scale", version: "1", sha256: scaleSHA)])
                    // Nobody can unload them, replace them, or shadow them with a model of the same name in a key's own
                    // namespace (which that key's requests would find first).
                    do {
                        try await client.unloadModel("scale")
                        Issue.record("an operator model was unloaded")
                    } catch BlindAIClientError.server(let status, let message) {
                        #expect(status == 403, "\(message)")
                        #expect(message.contains("--model-repository"), "\(message)")
                    }
                    do {
                        _ = try await client.uploadModel(try Self.plusOne(), name: "scale")
                        Issue.record("an operator model was replaced or shadowed")
                    } catch BlindAIClientError.server(let status, _) {
                        #expect(status == 403)
                    }
                    #expect(try await client.metadata(of: "scale").parameters?["model_sha256"]?.stringValue == scaleSHA)
                }
                // A policy pinning exactly these models accepts the server; another digest, a missing or an extra model is refused.
                var policy = try await TestTEE.policy()
                policy.operatorModels = [.init(name: "scale", sha256: scaleSHA), .init(name: "plus", sha256: plusSHA)]
                try await withClient(running.port, policy: policy, key: keys ? TestKeys.alice : nil) { _ in }
                for pins in [[AttestationPolicy.PinnedModel(name: "scale", sha256: plusSHA), .init(name: "plus", sha256: plusSHA)],
                             [.init(name: "scale", sha256: scaleSHA)],
                             [.init(name: "scale", sha256: scaleSHA), .init(name: "plus", sha256: plusSHA), .init(name: "other", sha256: scaleSHA)]] {
                    policy.operatorModels = pins
                    do {
                        try await withClient(running.port, policy: policy, key: keys ? TestKeys.alice : nil) { _ in }
                        Issue.record("a policy pinning \(pins) accepted the server")
                    } catch BlindAIClientError.attestation(let e) {
                        #expect(e.code == .operatorModelsMismatch, "\(e)")
                    }
                }
            }
        }
        // A repository the server cannot use is refused before it starts.
        let bad = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: bad) }
        try Data().write(to: bad.appendingPathComponent("notes.txt"))
        #expect(throws: ServerError.self) { _ = try OperatorModelRepository.scan(bad, maxModelBytes: 1 << 20) }
    }

    /// Flips one bit of base64 text's decoded bytes.
    static func flipped(_ base64: String, bit: Int = 3) -> String {
        var d = Data(base64Encoded: base64)!
        d[d.count / 2] ^= UInt8(1 << bit)
        return d.base64EncodedString()
    }

    @Test func receiptsVerifyOfflineAndRefuseEveryAlteration() async throws {
        let x = try Tensor([Float(1.5), -2])
        let policy = try await TestTEE.policy()
        // A receipt from a live server, and the evidence of another server (another receipt key).
        let (file, outputs) = try await withServer(try makeAttestedServer()) { running in
            try await withClient(running.port) { client in
                let model = try await client.uploadModel(try TestModels.scale(), name: "m")
                // More than a second after the evidence was issued (claims times have whole seconds): the strict-policy
                // check below then finds the receipt outside a validity of a millisecond.
                try await Task.sleep(for: .milliseconds(1100))
                let r = try await client.infer(model: "m", inputs: ["x": x], receipt: true)
                let file = try #require(r.receipt)
                let receipt = try file.signedReceipt.verify(expectedKey: try #require(await client.attestation.claims.receiptKey))
                #expect(receipt.model == Receipt.Model(name: "m", version: "1", sha256: model.sha256))
                #expect(receipt.requestId == nil)
                return (file, r.outputs)
            }
        }
        let otherEvidence = try await withServer(try makeAttestedServer()) { running in
            try await withClient(running.port) { client in await client.attestation.evidence }
        }
        // Both servers have stopped: the receipt verifies offline, with and without the tensors.
        let y = try #require(outputs["y"])
        let verified = try await ReceiptVerifier.verify(file, policy: policy, inputs: ["x": x], outputs: ["y": y])
        #expect(verified.receipt.outputs.map(\.name) == ["y"])
        _ = try await ReceiptVerifier.verify(try ReceiptFile.decode(json: try file.jsonData()), policy: policy)

        func refusal(_ f: ReceiptFile, inputs: [String: Tensor] = ["x": x], outputs: [String: Tensor] = ["y": y],
                     policy p: AttestationPolicy? = nil) async -> String? {
            do {
                _ = try await ReceiptVerifier.verify(f, policy: p ?? policy, inputs: inputs, outputs: outputs)
                return nil
            } catch let e as ReceiptError {
                return e.code.rawValue
            } catch let e as AttestationError {
                return e.code.rawValue
            } catch {
                return "\(error)"
            }
        }
        var altered = file
        altered.receipt = Self.flipped(file.receipt)
        #expect(await refusal(altered) == ReceiptError.Code.signatureInvalid.rawValue)
        altered = file
        altered.signature = Self.flipped(file.signature, bit: 0)
        #expect(await refusal(altered) == ReceiptError.Code.signatureInvalid.rawValue)
        #expect(await refusal(file, inputs: ["x": try Tensor([Float(1.5), -2.0000002])]) == ReceiptError.Code.inputMismatch.rawValue)
        var yBytes = Data(y.data)
        yBytes[yBytes.startIndex] ^= 1
        #expect(await refusal(file, outputs: ["y": try Tensor(datatype: y.datatype, shape: y.shape, data: yBytes)]) == ReceiptError.Code.outputMismatch.rawValue)
        #expect(await refusal(file, outputs: ["z": y]) == ReceiptError.Code.tensorUnknown.rawValue)
        altered = file
        var report = Data(file.evidence.report)
        report[report.startIndex + 100] ^= 0x10
        altered.evidence.report = report
        #expect(await refusal(altered) == AttestationError.Code.reportSignatureInvalid.rawValue)
        altered = file
        var claims = Data(try #require(file.evidence.claims))
        claims[claims.startIndex + claims.count / 2] ^= 0x01
        altered.evidence.claims = claims
        let claimsRefusal = await refusal(altered)
        #expect(claimsRefusal == AttestationError.Code.reportDataMismatch.rawValue || claimsRefusal == AttestationError.Code.claimsDocumentMismatch.rawValue,
                "\(claimsRefusal ?? "accepted")")
        altered = file
        altered.evidence = otherEvidence
        #expect(await refusal(altered) == ReceiptError.Code.keyMismatch.rawValue)
        // A receipt issued after its evidence's validity.
        var strict = policy
        strict.maxEvidenceAgeSeconds = 0.001
        #expect(await refusal(file, policy: strict) == ReceiptError.Code.outsideEvidenceValidity.rawValue)
        // Another policy (another measurement) refuses the evidence itself.
        var otherPolicy = policy
        otherPolicy.snp?.measurements = [String(repeating: "0", count: 96)]
        #expect(await refusal(file, policy: otherPolicy) == AttestationError.Code.measurementNotAllowed.rawValue)
    }
}

enum SHA256Hex {
    static func of(_ data: Data) -> String {
        var h = Crypto.SHA256()
        h.update(data: data)
        return h.finalize().map { String(format: "%02x", $0) }.joined()
    }
}
