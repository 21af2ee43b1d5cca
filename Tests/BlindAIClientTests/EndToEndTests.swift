import AsyncHTTPClient
import BlindAIAttestation
import BlindAIAttestationProducer
import BlindAIClient
import BlindAIServer
import BlindAIServerAttestation
import Crypto
import Foundation
import NIOCore
import NIOSSL
import Testing

/// Server and client in one process, over real TLS sockets on loopback.
@Suite(.serialized) struct InProcessEndToEndTests {
    @Test func attestUploadPredictUnloadDigits() async throws {
        try await withServer(try makeAttestedServer()) { running in
            try await withClient(running.port) { client in
                let a = await client.attestation
                #expect(a.claims.tee == .sevSNP)
                #expect(a.claims.simulated)
                #expect(a.claims.channelBound)
                #expect(a.claims.measurement == TestTEE.measurement.map { String(format: "%02x", $0) }.joined())
                #expect(a.reportVersion == 3)
                #expect(a.claimsDocument?.attributes["server"] == "blindai")
                #expect(a.claimsDocument?.attributes["teeBackend"] == "simulated")
                #expect(a.tlsKeySHA256 == running.server.tlsIdentity?.spkiSHA256)

                let model = try TestModels.digits()
                let progress = ProgressLog()
                let up = try await client.uploadModel(model, name: "digits", progress: { progress.add($0) })
                #expect(up.sha256 == SHA256.hash(data: model).map { String(format: "%02x", $0) }.joined())
                #expect(up.size == model.count)
                #expect(up.inputs.map(\.name) == ["image"])
                #expect(up.outputs.map(\.name) == ["logits"])
                #expect(progress.last == UploadProgress(sent: Int64(model.count), total: Int64(model.count)))

                for label in 0...9 {
                    let out = try await client.predict(model: "digits", inputs: ["image": try TestModels.sample("digit_\(label)_0")])
                    let logits = try #require(out["logits"])
                    #expect(logits.shape == [1, 10])
                    let values = try logits.floats()
                    #expect(values.indices.max { values[$0] < values[$1] } == label, "digit \(label)")
                }
                #expect(try await client.models().map(\.name) == ["digits"])
                #expect(try await client.metadata(of: "digits").outputs.first?.shape == [-1, 10])
                try await client.unloadModel("digits")
                #expect(try await client.models().isEmpty)
                await #expect(throws: BlindAIClientError.self) { try await client.predict(model: "digits", inputs: ["image": try TestModels.sample("digit_1_0")]) }
            }
        }
    }

    @Test func everyDatatypeRoundTrips() async throws {
        try await withServer(try makeAttestedServer()) { running in
            try await withClient(running.port) { client in
                _ = try await client.uploadModel(try TestModels.allTypes(), name: "all-types")
                _ = try await client.uploadModel(try TestModels.scale(), name: "scale")
                var inputs: [String: Tensor] = [:]
                inputs["x_FP32"] = try Tensor([Float(1.5), -2, .infinity])
                inputs["x_FP64"] = try Tensor([1.25, -1e300, 0])
                inputs["x_FP16"] = try Tensor(datatype: .fp16, shape: [2], data: Data([0x00, 0x3C, 0x00, 0xC0]))  // 1, -2
                inputs["x_BF16"] = try Tensor(datatype: .bf16, shape: [1], data: Data([0x80, 0x3F]))  // 1
                inputs["x_INT8"] = try Tensor([Int8.min, 0, Int8.max])
                inputs["x_INT16"] = try Tensor([Int16.min, Int16.max])
                inputs["x_INT32"] = try Tensor([Int32(7), -7], shape: [2])
                inputs["x_INT64"] = try Tensor([Int64(1) << 40, -3])
                inputs["x_UINT8"] = try Tensor([UInt8(0), 255])
                inputs["x_UINT16"] = try Tensor([UInt16.max])
                inputs["x_UINT32"] = try Tensor([UInt32.max, 1])
                inputs["x_UINT64"] = try Tensor([UInt64.max])
                inputs["x_BOOL"] = try Tensor([true, false, true])
                inputs["x_BYTES"] = try Tensor(strings: ["héllo", "", "wörld"])
                let out = try await client.predict(model: "all-types", inputs: inputs)
                for (name, _) in TestModels.identityTypes {
                    let sent = try #require(inputs["x_\(name)"])
                    #expect(out["y_\(name)"] == sent, "\(name)")
                }
                #expect(try out["sum"]?.values(as: Int64.self) == [Int64(1) << 41, -6])
                #expect(try out["neg"]?.values(as: Double.self) == [-1.25, 1e300, -0.0])
                #expect(try out["not"]?.values(as: Bool.self) == [false, true, false])
                #expect(try out["y_BYTES"]?.strings() == ["héllo", "", "wörld"])
                #expect(try out["y_FP16"]?.floats() == [1, -2])

                // Only some outputs.
                let some = try await client.predict(model: "all-types", inputs: inputs, outputs: ["sum"])
                #expect(Array(some.keys) == ["sum"])

                let scaled = try await client.predict(model: "scale", inputs: ["x": try Tensor([Float](repeating: 1.5, count: 100_000))])
                #expect(try scaled["y"]?.floats() == [Float](repeating: 3, count: 100_000))
                try await client.unloadModel("scale")
                try await client.unloadModel("all-types")
            }
        }
    }

    @Test func serverErrorsAreTyped() async throws {
        try await withServer(try makeAttestedServer()) { running in
            // Without an API key: attestation works (it needs none), uploads are refused with 401.
            try await withClient(running.port, key: nil) { client in
                do {
                    _ = try await client.uploadModel(try TestModels.scale(), name: "scale")
                    Issue.record("an upload without a key succeeded")
                } catch BlindAIClientError.server(let status, let message) {
                    #expect(status == 401)
                    #expect(!message.isEmpty)
                }
            }
            try await withClient(running.port) { client in
                _ = try await client.uploadModel(try TestModels.scale(), name: "scale")
                // Wrong input name: 400 with the server's message.
                do {
                    _ = try await client.predict(model: "scale", inputs: ["nope": try Tensor([Float(1)])])
                    Issue.record("a bad input was accepted")
                } catch BlindAIClientError.server(let status, _) {
                    #expect(status == 400)
                }
                // Not a model.
                do {
                    _ = try await client.uploadModel(Data("not onnx".utf8), name: "junk")
                    Issue.record("junk was accepted")
                } catch BlindAIClientError.server(let status, _) {
                    #expect(status == 400)
                }
                await #expect(throws: BlindAIClientError.self) { try await client.predict(model: "../etc", inputs: ["x": try Tensor([Float(1)])]) }
            }
            // Another key cannot see alice's private model.
            try await withClient(running.port, key: TestKeys.bob) { client in
                do {
                    try await client.unloadModel("scale")
                    Issue.record("bob unloaded alice's model")
                } catch BlindAIClientError.server(let status, _) {
                    #expect(status == 404)
                }
            }
        }
    }

    /// A model of more than 100 MB, generated here, uploaded as a stream and used.
    @Test func modelOver100MB() async throws {
        let count = 26_500_000
        let model = try TestModels.big(count: count)
        #expect(model.count > 100_000_000)
        let dir = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let file = dir.appendingPathComponent("big.onnx")
        try model.write(to: file)
        try await withServer(try makeAttestedServer()) { running in
            try await withClient(running.port) { client in
                let progress = ProgressLog()
                let up = try await client.uploadModel(at: file, progress: { progress.add($0) })
                #expect(up.name == "big")
                #expect(up.size == model.count)
                #expect(progress.count >= 100)  // 1 MiB chunks
                #expect(progress.isMonotonic)
                let idx: [Int64] = [0, 1, 4095, 4096, 26_499_999, 12_345_678]
                let x: [Float] = [1, 2, 3, 4, 5, 6]
                let out = try await client.predict(model: "big", inputs: ["idx": try Tensor(idx), "x": try Tensor(x)])
                let expected = zip(idx, x).map { TestModels.bigWeight(Int($0)) + $1 }
                #expect(try out["y"]?.floats() == expected)
                try await client.unloadModel("big")
            }
        }
    }

    // MARK: Refusals

    @Test func refusesEvidenceThatFailsThePolicy() async throws {
        try await withServer(try makeAttestedServer()) { running in
            let good = try await TestTEE.policy()
            func refusal(_ policy: AttestationPolicy, port: Int? = nil, allowSimulated: Bool = false) async throws -> AttestationError.Code? {
                do {
                    let c = try await BlindAIClient.connect(to: "127.0.0.1:\(port ?? running.port)", policy: policy, apiKey: TestKeys.alice,
                                                            allowSimulated: allowSimulated)
                    await c.close()
                    return nil
                } catch BlindAIClientError.attestation(let e) {
                    return e.code
                }
            }
            var other = good
            other.snp?.measurements = [String(repeating: "ab", count: 48)]
            #expect(try await refusal(other) == .measurementNotAllowed)

            var noSimulated = good
            noSimulated.allowSimulated = false
            #expect(try await refusal(noSimulated) == .simulatedRootNotAllowed)
            // The explicit override accepts it.
            #expect(try await refusal(noSimulated, allowSimulated: true) == nil)

            var tdxOnly = good
            tdxOnly.snp = nil
            tdxOnly.tdx = AttestationPolicy.TDXRules(anyMeasurement: true)
            #expect(try await refusal(tdxOnly) == .teeNotAllowed)

            var otherChip = good
            otherChip.snp?.chipIDs = [String(repeating: "cd", count: 64)]
            #expect(try await refusal(otherChip) == .chipIDNotAllowed)

            // Another simulated platform copying every public value the policy also pins (measurement and chip ID) but
            // with its own generated root: only the root pin tells it apart (issue 10, item 8).
            let impostor = try SimulatedSNPTEE(measurement: TestTEE.measurement, chipID: TestTEE.shared.chipID)
            try await withServer(try makeAttestedServer(tee: impostor)) { other in
                let code = try await refusal(good, port: other.port)
                #expect(code == .simulatedRootNotPinned)
            }

            // A server that loaded its TLS key from a file says so in its claims; the default policy refuses it
            // (issue 10, item 3), a policy that opts out accepts it.
            let fileKey = TEESetup.simulated(TestTEE.shared).attestationProvider(tlsKeyGeneratedInMemory: false)
            try await withServer(try makeAttestedServer(attestation: fileKey)) { other in
                let refused = try await refusal(good, port: other.port)
                #expect(refused == .tlsKeyNotGeneratedInTEE)
                var optOut = good
                optOut.allowTLSKeyFromFile = true
                let accepted = try await refusal(optOut, port: other.port)
                #expect(accepted == nil)
            }
        }
    }

    @Test func refusesServerWithoutAttestation() async throws {
        var c = ServerConfiguration()
        c.host = "127.0.0.1"
        c.port = 0
        c.metricsPort = nil
        let server = InferenceServer(configuration: c, apiKeys: nil, tlsIdentity: try TLSIdentity.generate(), attestation: nil)
        try await withServer(server) { running in
            do {
                let client = try await BlindAIClient.connect(to: "127.0.0.1:\(running.port)", policy: try await TestTEE.policy())
                await client.close()
                Issue.record("a server without attestation was accepted")
            } catch BlindAIClientError.attestationUnavailable {
            }
        }
        do {
            let client = try await BlindAIClient.connect(to: "127.0.0.1:\(try freePort())", policy: try await TestTEE.policy())
            await client.close()
            Issue.record("connected to nothing")
        } catch BlindAIClientError.connection {
        }
    }

    /// A relay presenting its own certificate forwards the client's nonce to the genuine server and returns the
    /// genuine evidence: the evidence is bound to the genuine server's key, not the relay's, so it is refused.
    @Test func refusesRelayWithItsOwnCertificate() async throws {
        try await withServer(try makeAttestedServer()) { genuine in
            let relay = RelayingProvider(target: genuine.port)
            try await withServer(try makeAttestedServer(attestation: relay)) { proxy in
                do {
                    let c = try await BlindAIClient.connect(to: "127.0.0.1:\(proxy.port)", policy: try await TestTEE.policy(), apiKey: TestKeys.alice)
                    await c.close()
                    Issue.record("the relay was trusted")
                } catch BlindAIClientError.attestation(let e) {
                    #expect(e.code == .tlsKeyMismatch)
                }
                #expect(relay.forwarded.withLock { $0 } == 1)
            }
            await relay.shutdown()
        }
    }

    /// The server restarts on the same address with a new TLS key: the next request fails loudly (nothing is sent
    /// on the new connection) until `reconnect()` attests the new key.
    @Test func restartedServerWithNewKeyFailsUntilReconnect() async throws {
        let first = try await InProcessServer.start(try makeAttestedServer())
        let port = first.port
        let client = try await BlindAIClient.connect(to: "127.0.0.1:\(port)", policy: try await TestTEE.policy(), apiKey: TestKeys.alice)
        do {
            let firstKey = await client.attestation.tlsKeySHA256
            _ = try await client.uploadModel(try TestModels.scale(), name: "scale")
            await first.stop()

            let second = try await InProcessServer.start(try makeAttestedServer(port: port))
            do {
                var sawKeyChange = false
                for _ in 0..<3 {
                    do {
                        _ = try await client.models()
                    } catch BlindAIClientError.serverKeyChanged(let pinned, let presented) {
                        #expect(pinned == firstKey)
                        #expect(presented == second.server.tlsIdentity?.spkiSHA256)
                        sawKeyChange = true
                        break
                    } catch BlindAIClientError.connection {
                        // A pooled connection closed by the restart: the next attempt opens a new one.
                        continue
                    }
                }
                #expect(sawKeyChange)
                // Still refused: no silent re-trust.
                await #expect(throws: BlindAIClientError.self) { _ = try await client.models() }

                try await client.reconnect()
                let newKey = await client.attestation.tlsKeySHA256
                #expect(newKey != firstKey)
                #expect(newKey == second.server.tlsIdentity?.spkiSHA256)
                #expect(try await client.models().isEmpty)  // models lived in the old server's memory
                await second.stop()
            } catch {
                await second.stop()
                throw error
            }
        } catch {
            await client.close()
            throw error
        }
        await client.close()
    }
}

/// Upload progress callbacks, recorded.
final class ProgressLog: @unchecked Sendable {
    private let lock = NSLock()
    private var entries: [UploadProgress] = []

    func add(_ p: UploadProgress) {
        lock.lock()
        entries.append(p)
        lock.unlock()
    }

    var last: UploadProgress? { lock.withLock { entries.last } }
    var count: Int { lock.withLock { entries.count } }
    var isMonotonic: Bool { lock.withLock { zip(entries, entries.dropFirst()).allSatisfy { $0.sent < $1.sent } } }
}

/// The attestation provider of a relay: forwards the nonce to the genuine server and returns its evidence.
final class RelayingProvider: AttestationProvider, @unchecked Sendable {
    let target: Int
    let http: HTTPClient
    let forwarded = NSLockedCounter()

    init(target: Int) {
        self.target = target
        var tls = TLSConfiguration.makeClientConfiguration()
        tls.certificateVerification = .none
        http = HTTPClient(eventLoopGroupProvider: .singleton, configuration: .init(tlsConfiguration: tls))
    }

    func evidence(nonce: [UInt8], tls: TLSPublicIdentity, claims: ServerClaims) async throws -> AttestationEvidence {
        var request = HTTPClientRequest(url: "https://127.0.0.1:\(target)/v2/attestation")
        request.method = .POST
        request.body = .bytes(ByteBuffer(string: "{\"nonce\":\"\(Data(nonce).base64EncodedString())\"}"))
        let response = try await http.execute(request, timeout: .seconds(30))
        let body = try await response.body.collect(upTo: 1 << 24)
        forwarded.withLock { $0 += 1 }
        return AttestationEvidence(contentType: "application/json", body: Data(body.readableBytesView))
    }

    func shutdown() async { try? await http.shutdown() }
}

final class NSLockedCounter: @unchecked Sendable {
    private let lock = NSLock()
    private var value = 0

    func withLock<T>(_ body: (inout Int) -> T) -> T {
        lock.lock()
        defer { lock.unlock() }
        return body(&value)
    }
}
