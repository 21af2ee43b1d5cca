import BlindAIAttestation
import BlindAIClient
import BlindAIServerAttestation
import Foundation
import Testing

/// README's "Quick tour": its `blindai` command lines, run as written (the built executable for `blindai`) against a
/// live `blindai serve` process, with a small model that has ResNet18's interface so that it is fast. Only the
/// address differs: the server gets a free port (`--port`, and `--metrics-port 0`), the client commands get it through
/// `BLINDAI_SERVER`.
@Suite(.serialized) struct ReadmeTourTests {
    /// The `blindai ...` lines of the Quick tour's shell blocks.
    static func tourCommands() throws -> [String] {
        let readme = try String(contentsOf: repositoryRoot.appendingPathComponent("README.md"), encoding: .utf8)
        guard let start = readme.range(of: "## Quick tour") else { throw TestFailure("README has no Quick tour section") }
        let rest = readme[start.upperBound...]
        let section = rest.range(of: "\n## ").map { rest[..<$0.lowerBound] } ?? rest
        var commands: [String] = []
        var inShell = false
        for line in section.split(separator: "\n", omittingEmptySubsequences: false) {
            if line.hasPrefix("```") {
                inShell = !inShell && line.hasPrefix("```sh")
                continue
            }
            if inShell, line.hasPrefix("blindai ") { commands.append(String(line)) }
        }
        return commands
    }

    /// Splits a command line on spaces (the tour's commands need no quoting).
    static func words(_ line: String) -> [String] { line.split(separator: " ").map(String.init) }

    @Test func tourCommandsWorkAsWritten() async throws {
        let commands = try Self.tourCommands()
        let serve = try #require(commands.first { $0.hasPrefix("blindai serve") })
        let clientCommands = commands.filter { !$0.hasPrefix("blindai serve") }
        #expect(clientCommands.count >= 5, "\(commands)")

        let dir = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        try TestModels.tinyResNetInterface().write(to: dir.appendingPathComponent("resnet18.onnx"))
        var pixels = [Float](repeating: 0, count: 3 * 224 * 224)
        for i in pixels.indices { pixels[i] = Float((i * 31) % 255) / 255 }
        try Tensor(pixels, shape: [1, 3, 224, 224]).npy().write(to: dir.appendingPathComponent("image.npy"))

        let exe = try blindaiExecutable()
        let port = try freePort()
        let server = try ChildProcess(exe, Array(Self.words(serve).dropFirst()) + ["--host", "127.0.0.1", "--port", "\(port)", "--metrics-port", "0"],
                                      directory: dir)
        defer { server.stop() }
        try await eventually(90, "the server's policy file (output: \(server.output))") {
            FileManager.default.fileExists(atPath: dir.appendingPathComponent("policy.json").path)
        }
        let environment = ["BLINDAI_SERVER": "127.0.0.1:\(port)"]
        // The first command also waits for the server to listen.
        var outputs: [String: String] = [:]
        for (i, command) in clientCommands.enumerated() {
            var result = try await runCommand(exe, Array(Self.words(command).dropFirst()), directory: dir, environment: environment)
            if i == 0 {
                let deadline = Date().addingTimeInterval(60)
                while result.status != 0, result.output.contains("connection failed"), Date() < deadline {
                    try await Task.sleep(for: .milliseconds(200))
                    result = try await runCommand(exe, Array(Self.words(command).dropFirst()), directory: dir, environment: environment)
                }
            }
            #expect(result.status == 0, "\(command):\n\(result.output)\nserver:\n\(server.output)")
            outputs[Self.words(command)[1]] = result.output
        }
        #expect(outputs["attest"]?.contains("is trusted") == true, "\(outputs["attest"] ?? "")")
        #expect(outputs["attest"]?.contains("SIMULATED") == true)
        #expect(outputs["upload"]?.contains("Uploaded 'resnet18'") == true, "\(outputs["upload"] ?? "")")
        #expect(outputs["predict"]?.contains("top 5: class ") == true, "\(outputs["predict"] ?? "")")
        #expect(outputs["models"]?.contains("resnet18") == true, "\(outputs["models"] ?? "")")
        #expect(outputs["unload"]?.contains("Unloaded 'resnet18'") == true, "\(outputs["unload"] ?? "")")
    }

    @Test func cliErrorsSayWhatToDo() async throws {
        let dir = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let exe = try blindaiExecutable()
        let noPolicy = try await runCommand(exe, ["models"], directory: dir, environment: ["BLINDAI_POLICY": ""])
        #expect(noPolicy.status != 0)
        #expect(noPolicy.output.contains("--policy FILE"), "\(noPolicy.output)")

        let (server, port, policyFile) = try await SeparateProcessTests.startServer(in: dir)
        defer { server.stop() }
        // A policy for another measurement: refused, and nothing is sent.
        var text = try String(contentsOf: policyFile, encoding: .utf8)
        let policy = try AttestationPolicy.load(contentsOf: policyFile)
        text = text.replacingOccurrences(of: policy.snp!.measurements![0], with: String(repeating: "0", count: 96))
        let wrong = dir.appendingPathComponent("wrong.json")
        try text.write(to: wrong, atomically: true, encoding: .utf8)
        let env = ["BLINDAI_SERVER": "127.0.0.1:\(port)"]
        var refused = try await runCommand(exe, ["attest", "--policy", wrong.path], directory: dir, environment: env)
        let deadline = Date().addingTimeInterval(60)
        while refused.output.contains("connection failed"), Date() < deadline {
            try await Task.sleep(for: .milliseconds(200))
            refused = try await runCommand(exe, ["attest", "--policy", wrong.path], directory: dir, environment: env)
        }
        #expect(refused.status != 0)
        #expect(refused.output.contains("measurement_not_allowed"), "\(refused.output)")
        #expect(refused.output.contains("NOT trusted"), "\(refused.output)")

        // --json and --allow-simulated (which warns).
        let json = try await runCommand(exe, ["attest", "--policy", policyFile.path, "--json", "--allow-simulated"], directory: dir, environment: env)
        #expect(json.status == 0, "\(json.output)")
        #expect(json.output.contains("warning: --allow-simulated"))
        #expect(json.output.contains("\"tlsKeySHA256\""))

        let missing = try await runCommand(exe, ["predict", "nothing", "--input", "x=missing.npy", "--policy", policyFile.path], directory: dir, environment: env)
        #expect(missing.status != 0)
        #expect(missing.output.contains("missing.npy"), "\(missing.output)")
        let unknown = try await runCommand(exe, ["unload", "nothing", "--policy", policyFile.path], directory: dir, environment: env)
        #expect(unknown.status != 0)
        #expect(unknown.output.contains("HTTP 404"), "\(unknown.output)")
    }
}

/// README's Swift snippet, as written except the address.
@Suite struct ReadmeSwiftSnippetTests {
    @Test func swiftSnippet() async throws {
        let dir = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        try TestModels.tinyResNetInterface().write(to: dir.appendingPathComponent("resnet18.onnx"))
        try Tensor([Float](repeating: 0.25, count: 3 * 224 * 224), shape: [1, 3, 224, 224]).npy().write(to: dir.appendingPathComponent("image.npy"))
        let trust = try await BlindAIServerAttestationPolicyText.simulated()
        try trust.write(to: dir.appendingPathComponent("policy.json"), atomically: true, encoding: .utf8)
        try await withServer(try makeAttestedServer(keys: false)) { running in
            let address = "localhost:\(running.port)"
            let path = { (name: String) in dir.appendingPathComponent(name).path }

            let policy = try AttestationPolicy.load(contentsOf: URL(fileURLWithPath: path("policy.json")))
            let client = try await BlindAIClient.connect(to: address, policy: policy)
            print("attested measurement:", await client.attestation.claims.measurement)

            let model = try await client.uploadModel(at: URL(fileURLWithPath: path("resnet18.onnx")), name: "resnet18")
            let image = try Tensor(npyFile: URL(fileURLWithPath: path("image.npy")))
            let outputs = try await client.predict(model: model.name, inputs: ["input": image])
            let logits = try outputs["logits"]!.floats()
            print("predicted class:", logits.indices.max { logits[$0] < logits[$1] }!)

            try await client.unloadModel("resnet18")
            await client.close()
            #expect(logits.count == 1000)
        }
    }
}

enum BlindAIServerAttestationPolicyText {
    static func simulated() async throws -> String { try await TEESetup.simulated(TestTEE.shared).trustPolicy().json }
}
