import BlindAIAttestation
import BlindAIClient
import Crypto
import Foundation
import Testing

/// `blindai serve` as a separate process (the built executable), used by the client library and by the CLI.
@Suite(.serialized) struct SeparateProcessTests {
    /// Starts `blindai serve --tee simulated` on a free port; returns the process, port and the policy it wrote.
    static func startServer(in dir: URL, port fixedPort: Int? = nil, extra: [String] = []) async throws -> (ChildProcess, Int, URL) {
        let exe = try blindaiExecutable()
        let port = try fixedPort ?? freePort()
        let policyFile = dir.appendingPathComponent("policy-\(port)-\(UUID().uuidString.prefix(6)).json")
        let server = try ChildProcess(
            exe, ["serve", "--tee", "simulated", "--host", "127.0.0.1", "--port", "\(port)", "--metrics-port", "0", "--log-level", "warning",
                  "--write-policy", policyFile.path] + extra, directory: dir)
        try await eventually(90, "the server to write its policy (output: \(server.output))") {
            FileManager.default.fileExists(atPath: policyFile.path)
        }
        return (server, port, policyFile)
    }

    static func connect(port: Int, policy: URL, key: String?) async throws -> BlindAIClient {
        let p = try AttestationPolicy.load(contentsOf: policy)
        var client: BlindAIClient?
        try await eventually(60, "an attested connection") {
            client = try await BlindAIClient.connect(to: "127.0.0.1:\(port)", policy: p, apiKey: key)
            return true
        }
        return client!
    }

    @Test func libraryAgainstServeProcess() async throws {
        let dir = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let keys = dir.appendingPathComponent("keys.txt")
        try "alice:\(TestKeys.alice)\n".write(to: keys, atomically: true, encoding: .utf8)
        let (server, port, policyFile) = try await Self.startServer(in: dir, extra: ["--api-keys", keys.path])
        defer { server.stop() }

        // The policy names the SHA-384 of the server executable, allows the simulated TEE, and pins its chip.
        let policy = try AttestationPolicy.load(contentsOf: policyFile)
        let exe = try Data(contentsOf: try blindaiExecutable())
        #expect(policy.snp?.measurements == [SHA384.hash(data: exe).map { String(format: "%02x", $0) }.joined()])
        #expect(policy.allowSimulated)
        #expect(policy.snp?.chipIDs?.count == 1)
        #expect(server.output.contains("SIMULATED"))

        let client = try await Self.connect(port: port, policy: policyFile, key: TestKeys.alice)
        do {
            #expect(await client.attestation.claims.simulated)
            let digits = try await client.uploadModel(at: repositoryRoot.appendingPathComponent("demo/digits.onnx"))
            #expect(digits.name == "digits")
            _ = try await client.uploadModel(try TestModels.allTypes(), name: "types")
            let logits = try await client.predict(model: "digits", inputs: ["image": try TestModels.sample("digit_3_0")])["logits"]
            let v = try #require(logits).floats()
            #expect(v.indices.max { v[$0] < v[$1] } == 3)
            let out = try await client.predict(model: "types", inputs: [
                "x_INT64": try Tensor([Int64(5), -5]), "x_FP64": try Tensor([0.5]), "x_BOOL": try Tensor([true]),
                "x_BYTES": try Tensor(strings: ["a"]), "x_FP32": try Tensor([Float(1)]), "x_FP16": try Tensor(datatype: .fp16, shape: [1], data: Data([0x00, 0x3C])),
                "x_BF16": try Tensor(datatype: .bf16, shape: [1], data: Data([0x80, 0x3F])), "x_INT8": try Tensor([Int8(1)]), "x_INT16": try Tensor([Int16(1)]),
                "x_INT32": try Tensor([Int32(1)]), "x_UINT8": try Tensor([UInt8(1)]), "x_UINT16": try Tensor([UInt16(1)]),
                "x_UINT32": try Tensor([UInt32(1)]), "x_UINT64": try Tensor([UInt64(1)]),
            ])
            #expect(try out["sum"]?.values(as: Int64.self) == [10, -10])
            #expect(try out["y_BYTES"]?.strings() == ["a"])
            #expect(Set(try await client.models().map(\.name)) == ["digits", "types"])
            try await client.unloadModel("digits")
            try await client.unloadModel("types")
            #expect(try await client.models().isEmpty)
        } catch {
            await client.close()
            throw error
        }
        await client.close()
    }

    /// `blindai serve --model-repository`, `blindai predict --model-sha256 --receipt`, then `blindai receipt verify` once the
    /// server has stopped (docs/receipts.md).
    @Test func operatorModelsAndReceiptsFromTheCommandLine() async throws {
        let dir = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let repository = dir.appendingPathComponent("models")
        try FileManager.default.createDirectory(at: repository.appendingPathComponent("scale/1"), withIntermediateDirectories: true)
        let model = try TestModels.scale()
        try model.write(to: repository.appendingPathComponent("scale/1/model.onnx"))
        let digest = SHA256.hash(data: model).map { String(format: "%02x", $0) }.joined()
        let (server, port, policyFile) = try await Self.startServer(in: dir, extra: ["--model-repository", repository.path])
        // The written policy pins the operator's model.
        #expect(try AttestationPolicy.load(contentsOf: policyFile).operatorModels == [.init(name: "scale", sha256: digest)])
        let exe = try blindaiExecutable()
        let env = ["BLINDAI_SERVER": "127.0.0.1:\(port)", "BLINDAI_POLICY": policyFile.path]
        try Tensor([Float(1), 2.5]).npy().write(to: dir.appendingPathComponent("x.npy"))
        var predict = try await runCommand(exe, ["predict", "scale", "--input", "x=x.npy", "--model-sha256", digest, "--receipt", "receipt.json",
                                                 "--output-dir", "out"], directory: dir, environment: env)
        let deadline = Date().addingTimeInterval(60)
        while predict.output.contains("connection failed"), Date() < deadline {
            try await Task.sleep(for: .milliseconds(200))
            predict = try await runCommand(exe, ["predict", "scale", "--input", "x=x.npy", "--model-sha256", digest, "--receipt", "receipt.json",
                                             "--output-dir", "out"], directory: dir, environment: env)
        }
        #expect(predict.status == 0, "\(predict.output)")
        #expect(predict.output.contains("sha256 \(digest)"), "\(predict.output)")
        let wrongDigest = String(repeating: "ab", count: 32)
        let refused = try await runCommand(exe, ["predict", "scale", "--input", "x=x.npy", "--model-sha256", wrongDigest], directory: dir, environment: env)
        #expect(refused.status != 0)
        #expect(refused.output.contains("412") || refused.output.contains("model_digest_mismatch"), "\(refused.output)")
        server.stop()

        // The server is gone: the receipt verifies with the tensors, and not with another output.
        let verify = try await runCommand(exe, ["receipt", "verify", "receipt.json", "--policy", policyFile.path, "--input", "x=x.npy",
                                                "--output", "y=out/y.npy"], directory: dir)
        #expect(verify.status == 0, "\(verify.output)")
        #expect(verify.output.contains(digest), "\(verify.output)")
        try Tensor([Float(2), 5.5]).npy().write(to: dir.appendingPathComponent("other.npy"))
        let tampered = try await runCommand(exe, ["receipt", "verify", "receipt.json", "--policy", policyFile.path, "--output", "y=other.npy"], directory: dir)
        #expect(tampered.status != 0)
        #expect(tampered.output.contains("receipt_output_mismatch"), "\(tampered.output)")
    }

    /// `blindai serve` killed and started again on the same port: a new TLS key (and, simulated, a new platform).
    @Test func restartedServeProcessFailsLoudly() async throws {
        let dir = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let (first, port, firstPolicy) = try await Self.startServer(in: dir)
        let client = try await Self.connect(port: port, policy: firstPolicy, key: nil)
        do {
            _ = try await client.uploadModel(try TestModels.scale(), name: "scale")
            first.stop()
            let (second, _, secondPolicy) = try await Self.startServer(in: dir, port: port)
            defer { second.stop() }
            // Wait until the new process accepts attested connections (with its own policy).
            await (try Self.connect(port: port, policy: secondPolicy, key: nil)).close()

            var sawKeyChange = false
            for _ in 0..<3 {
                do {
                    _ = try await client.models()
                } catch BlindAIClientError.serverKeyChanged {
                    sawKeyChange = true
                    break
                } catch BlindAIClientError.connection {
                    continue
                }
            }
            #expect(sawKeyChange)
            // Attesting again runs, and refuses: a restarted simulated TEE is a new platform (new root and chip),
            // which the first server's policy does not name; the root pin is checked first.
            do {
                try await client.reconnect()
                Issue.record("the old policy accepted a new simulated platform")
            } catch BlindAIClientError.attestation(let e) {
                #expect(e.code == .simulatedRootNotPinned)
            }
            await #expect(throws: BlindAIClientError.self) { _ = try await client.models() }
        } catch {
            await client.close()
            throw error
        }
        await client.close()
    }

    @Test func autoRefusesToStartWithoutATEE() async throws {
        // This machine is no confidential VM (the test is skipped if it is).
        guard !FileManager.default.fileExists(atPath: "/sys/kernel/config/tsm/report"), !FileManager.default.fileExists(atPath: "/dev/sev-guest")
        else { return }
        let dir = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let (status, output) = try await runCommand(try blindaiExecutable(), ["serve", "--port", "\(try freePort())", "--metrics-port", "0"], directory: dir)
        #expect(status != 0)
        #expect(output.contains("--tee simulated"), "\(output)")
    }

    /// Issue 10, item 4: `blindai attestation verify --quote` without a policy requires the PCK CRL, the Root CA CRL and
    /// the QE identity (dcap-qvl set C, real collateral with one file removed); `--report --collateral` reads AMD's CRL.
    @Test func attestationVerifyRequiresTDXRevocation() async throws {
        let vectors = repositoryRoot.appendingPathComponent("Tests/BlindAIAttestationTests/Vectors")
        let dir = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let full = vectors.appendingPathComponent("tdx/dcap-qvl/collateral_v4_b0c06f")
        let partial = dir.appendingPathComponent("collateral")
        try FileManager.default.copyItem(at: full, to: partial)
        try FileManager.default.removeItem(at: partial.appendingPathComponent("pck_crl_platform.der"))
        let quote = vectors.appendingPathComponent("tdx/dcap-qvl/tdx_quote_v4_b0c06f.dat").path
        let exe = try blindaiExecutable()
        let at = ["--at", "2025-07-01T00:00:00Z"]
        let ok = try await runCommand(exe, ["attestation", "verify", "--quote", quote, "--collateral", full.path] + at, directory: dir)
        #expect(ok.status == 0, "\(ok.output)")
        for collateral in [[], ["--collateral", partial.path]] {
            let refused = try await runCommand(exe, ["attestation", "verify", "--quote", quote] + collateral + at, directory: dir)
            #expect(refused.status != 0)
            #expect(refused.output.contains("verification failed: collateral_missing"), "\(refused.output)")
        }
        // SEV-SNP: a CRL that the ARK did not issue (Intel's Root CA CRL) is refused.
        let report = ["--report", vectors.appendingPathComponent("sev-snp/milan/virtee_report_milan.bin").path,
                      "--vcek", vectors.appendingPathComponent("sev-snp/milan/virtee_vcek_milan.der").path, "--at", "2024-01-01T00:00:00Z"]
        let crl = vectors.appendingPathComponent("tdx/go-tdx-guest/collateral/root_ca_crl.der").path
        let badCRL = try await runCommand(exe, ["attestation", "verify"] + report + ["--collateral", crl], directory: dir)
        #expect(badCRL.output.contains("verification failed: crl_invalid"), "\(badCRL.output)")
        let noCRL = try await runCommand(exe, ["attestation", "verify"] + report, directory: dir)
        #expect(noCRL.status == 0, "\(noCRL.output)")
        #expect(noCRL.output.contains("checkedCRL"), "\(noCRL.output)")
    }

    /// `blindai demo` from a directory that is not the repository: the demo model and samples are embedded.
    @Test func demoCommand() async throws {
        let dir = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let (status, output) = try await runCommand(try blindaiExecutable(), ["demo"], directory: dir)
        #expect(status == 0, "\(output)")
        #expect(output.contains("predicted 7 with probability"), "\(output)")
        #expect(output.contains("true label 7 (correct)"), "\(output)")
        #expect(output.contains("measurement_not_allowed"), "\(output)")
        #expect(output.contains("19 of 20 correct"), "\(output)")
        #expect(output.contains("server stopped"), "\(output)")
    }
}
