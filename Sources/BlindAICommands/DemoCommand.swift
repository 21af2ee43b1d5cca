import ArgumentParser
import BlindAIAttestation
import BlindAIClient
import BlindAIServer
import BlindAIServerAttestation
import Foundation
import Logging

/// `blindai demo`: the whole tour in one process, with nothing else installed.
struct DemoCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "demo",
        abstract: "Tour: start a server in the simulated TEE, attest it, upload the digits model, predict, unload, stop.",
        discussion: """
            Everything runs in this process on a loopback port. The TEE is SIMULATED (this machine need not be a \
            confidential VM), so the attestation shown proves nothing; the verification path is the production one.
            """)

    @Option(name: .customLong("sample"), help: "Which embedded held-out sample to show in detail (digit_<label>_<k>, k = 0 or 1).")
    var sample = "digit_7_0"

    func run() async throws {
        guard let chosen = DemoAssets.samples.first(where: { $0.name == sample + ".npy" || $0.name == sample }) else {
            throw ValidationError("--sample must be one of \(DemoAssets.samples.map { String($0.name.dropLast(4)) }.joined(separator: ", "))")
        }
        guard let model = Data(base64Encoded: DemoAssets.digitsONNX, options: .ignoreUnknownCharacters) else {
            throw CLIError(message: "the embedded demo model is corrupt")
        }

        print("BlindAI demo: a client sends data to a model only after verifying, by remote attestation, the server that runs it.\n")

        // 1. The server, in the simulated TEE, on an ephemeral loopback port.
        let setup = try await TEESetup.make(mode: .simulated)
        let trust = try await setup.trustPolicy()
        let apiKey = "demo-" + (0..<24).map { _ in String("abcdefghijklmnopqrstuvwxyz0123456789".randomElement()!) }.joined()
        var configuration = ServerConfiguration()
        configuration.host = "127.0.0.1"
        configuration.port = 0
        configuration.metricsPort = nil
        var logger = Logger(label: "blindai.demo.server")
        logger.logLevel = .error
        let server = InferenceServer(
            configuration: configuration, apiKeys: try APIKeyStore(keys: [.init(id: "demo", secret: apiKey)]),
            tlsIdentity: try TLSIdentity.generate(), attestation: setup.attestationProvider(), logger: logger)
        let running = try await InProcessServer.start(server)
        do {
            try await tour(running: running, trust: trust, apiKey: apiKey, model: model, sample: chosen)
        } catch {
            await running.stop()
            if let e = error as? BlindAIClientError { throw CLIError(message: e.description) }
            throw error
        }
        await running.stop()
        print("6. Stop     server stopped; its TLS key and the model existed only in its memory.")
    }

    func tour(running: InProcessServer, trust: ServerTrustPolicy, apiKey: String, model: Data, sample: (name: String, npy: String)) async throws {
        let address = "127.0.0.1:\(running.port)"
        print("1. Server   listening on \(address), in a SIMULATED SEV-SNP TEE (development only: simulated evidence proves nothing)")
        print("            its TLS key was generated in memory; the simulated report measures this executable (SHA-384)")
        if let exe = try? TEESetup.currentExecutable() { print("            \(exe.path)") }

        // 2. Attestation with the policy the server printed.
        let policy = try AttestationPolicy.load(json: Data(trust.json.utf8))
        var wrong = policy
        wrong.snp?.measurements = [String(repeating: "0", count: 96)]
        do {
            let impostor = try await BlindAIClient.connect(to: address, policy: wrong, apiKey: apiKey)
            await impostor.close()
            throw CLIError(message: "a client expecting another measurement accepted the server")
        } catch BlindAIClientError.attestation(let e) {
            print("2. Attest   a client whose policy expects another measurement refuses the server (\(e.code.rawValue)) and sends nothing")
        }
        let client = try await BlindAIClient.connect(to: address, policy: policy, apiKey: apiKey)
        do {
            try await steps(client: client, model: model, sample: sample)
        } catch {
            await client.close()
            throw error
        }
        await client.close()
    }

    func steps(client: BlindAIClient, model: Data, sample: (name: String, npy: String)) async throws {
        let a = await client.attestation
        let c = a.claims
        print("            a client with the server's policy verified, before sending anything:")
        print("             TEE kind        \(c.tee == .tdx ? "Intel TDX" : "AMD SEV-SNP")\(c.simulated ? " (simulated root, accepted because the policy allows it)" : "")")
        if let snp = c.snp {
            print("             report          version \(snp.reportVersion), \(snp.product.rawValue), signature chain VCEK <- ASK <- ARK checked, debug \(c.debug ? "ON" : "off"), VMPL \(snp.vmpl)")
        }
        print("             measurement     \(c.measurement.prefix(32))… allowed by the policy")
        print("             TLS key         bound: the report data commits to this connection's key (SHA-256 \(a.tlsKeySHA256.prefix(16))…),")
        print("                             the client's fresh nonce and the claims document; the key is pinned for the session")
        if let doc = a.claimsDocument {
            print("             claims          \(doc.attributes["server"] ?? "?") \(doc.attributes["serverVersion"] ?? "?"), issued \(doc.issuedAt)")
        }

        // 3. Upload.
        let uploaded = try await client.uploadModel(model, name: "digits")
        let io = (uploaded.inputs.map(describe) + ["->"] + uploaded.outputs.map(describe)).joined(separator: " ")
        print("3. Upload   digits.onnx (\(formatBytes(Int64(uploaded.size))), SHA-256 \(uploaded.sha256.prefix(16))…): \(io)")

        // 4. Predictions on held-out images.
        guard let npy = Data(base64Encoded: sample.npy) else { throw CLIError(message: "the embedded sample is corrupt") }
        let image = try Tensor(npy: npy)
        let label = Self.label(of: sample.name)
        let logits = try await client.predict(model: "digits", inputs: ["image": image])["logits"]
        guard let logits, let best = try TopK.rank(logits, k: 3)?.first else {
            throw CLIError(message: "the model returned no logits")
        }
        print("4. Predict  \(sample.name) (a held-out 8x8 image of a \(label), never seen in training):")
        print("             predicted \(best[0].index) with probability \(String(format: "%.1f", best[0].probability * 100))%; true label \(label) \(best[0].index == label ? "(correct)" : "(wrong)")")
        print("             next: " + best.dropFirst().map { "\($0.index) (\(String(format: "%.1f", $0.probability * 100))%)" }.joined(separator: ", "))

        // All embedded samples in one batch.
        var pixels: [Float] = []
        var labels: [Int] = []
        for s in DemoAssets.samples {
            guard let d = Data(base64Encoded: s.npy) else { continue }
            pixels += try Tensor(npy: d).floats()
            labels.append(Self.label(of: s.name))
        }
        let batch = try Tensor(pixels, shape: [labels.count, 1, 8, 8])
        guard let batchLogits = try await client.predict(model: "digits", inputs: ["image": batch])["logits"],
            let rows = try TopK.rank(batchLogits, k: 1)
        else { throw CLIError(message: "the model returned no logits") }
        let correct = zip(rows, labels).filter { $0.0.first?.index == $0.1 }.count
        let misses = zip(zip(rows, labels), DemoAssets.samples).filter { $0.0.0.first?.index != $0.0.1 }
            .map { "\($0.1.name) read as \($0.0.0.first?.index ?? -1)" }
        print("             batch of all \(labels.count) embedded held-out samples: \(correct) of \(labels.count) correct\(misses.isEmpty ? "" : " (\(misses.joined(separator: ", ")))")")

        // 5. Unload.
        try await client.unloadModel("digits")
        let left = try await client.models()
        print("5. Unload   digits unloaded; the server now holds \(left.count) model\(left.count == 1 ? "" : "s")")
    }

    static func label(of sampleName: String) -> Int {
        // digit_<label>_<k>.npy
        let parts = sampleName.split(separator: "_")
        return parts.count >= 2 ? Int(parts[1]) ?? -1 : -1
    }
}
