import BlindAIAttestation
import BlindAIAttestationProducer
@testable import BlindAIClient
@testable import BlindAICommands
import BlindAIServer
import BlindAIServerAttestation
import Crypto
import Foundation
import Testing

@Suite struct ClientTensorTests {
    @Test func npyRoundTripsEveryType() throws {
        let tensors: [Tensor] = [
            try Tensor([Float(1), -2.5, 3], shape: [3, 1]), try Tensor([1.0, 2.0]), try Tensor([Int64.min, 0, Int64.max]),
            try Tensor([Int32(-1)]), try Tensor([Int16(-1)]), try Tensor([Int8(-1)]), try Tensor([UInt8(200)]), try Tensor([UInt16(60000)]),
            try Tensor([UInt32.max]), try Tensor([UInt64.max]), try Tensor([true, false]), try Tensor(strings: ["ab", "ç", ""]),
            try Tensor(datatype: .fp16, shape: [2], data: Data([0x00, 0x3C, 0x00, 0xC0])), try Tensor([Float](), shape: [0, 4]),
            try Tensor([Float(7)], shape: []),
        ]
        for t in tensors {
            #expect(try Tensor(npy: try t.npy()) == t, "\(t)")
        }
    }

    @Test func readsTheDemoSamples() throws {
        let t = try TestModels.sample("digit_7_0")
        #expect(t.datatype == .fp32)
        #expect(t.shape == [1, 1, 8, 8])
        let v = try t.floats()
        #expect(v.allSatisfy { $0 >= 0 && $0 <= 1 })
        #expect(v.contains { $0 > 0.5 })
    }

    @Test func npyHeaderIsAlignedAndReadableByNumPyConventions() throws {
        let data = try Tensor([Float(1), 2], shape: [1, 2]).npy()
        let headerLength = Int(data[8]) | Int(data[9]) << 8
        #expect((10 + headerLength) % 64 == 0)
        let header = String(decoding: data[10..<(10 + headerLength)], as: UTF8.self)
        #expect(header.hasPrefix("{'descr': '<f4', 'fortran_order': False, 'shape': (1, 2), }"))
        #expect(header.hasSuffix("\n"))
    }

    @Test func rejectsBadInput() {
        #expect(throws: BlindAIClientError.self) { try Tensor([Float(1), 2, 3], shape: [2, 2]) }
        #expect(throws: BlindAIClientError.self) { try Tensor(datatype: .int32, shape: [2], data: Data(count: 7)) }
        #expect(throws: BlindAIClientError.self) { try Tensor(npy: Data("not npy".utf8)) }
        #expect(throws: BlindAIClientError.self) { try Tensor([Float(1)]).values(as: Int64.self) }
    }

    @Test func conversions() throws {
        #expect(try Tensor([Int32(3), -4]).floats() == [3, -4])
        #expect(try Tensor(datatype: .bf16, shape: [1], data: Data([0x80, 0xBF])).floats() == [-1])
        #expect(Tensor.floatFromHalf(0x7C00) == .infinity)
        #expect(Tensor.halfFromFloat(1) == 0x3C00)
        #expect(Tensor.halfFromFloat(-2) == 0xC000)
        #expect(try Tensor(datatype: .fp16, shape: [1], json: .float32([0.5])).floats() == [0.5])
        #expect(try Tensor(datatype: .int64, shape: [2], json: .scalars([.int(1), .double(2)])).values(as: Int64.self) == [1, 2])
    }

    @Test func serverAddresses() throws {
        #expect(try ServerAddress(parsing: "localhost:8000") == ServerAddress(host: "localhost", port: 8000))
        #expect(try ServerAddress(parsing: "example.org") == ServerAddress(host: "example.org", port: 8000))
        #expect(try ServerAddress(parsing: "https://10.0.0.1:9443/") == ServerAddress(host: "10.0.0.1", port: 9443))
        #expect(try ServerAddress(parsing: "[::1]:8000").authority == "[::1]:8000")
        #expect(throws: BlindAIClientError.self) { try ServerAddress(parsing: "http://x:1") }
        #expect(throws: BlindAIClientError.self) { try ServerAddress(parsing: "x:99999") }
        #expect(throws: BlindAIClientError.self) { try ServerAddress(parsing: "") }
    }

    @Test func modelNames() throws {
        #expect(BlindAIClient.modelName(forFile: URL(fileURLWithPath: "/x/resnet 18.onnx")) == "resnet_18")
        #expect(BlindAIClient.modelName(forFile: URL(fileURLWithPath: "/x/.hidden.onnx")) == "hidden")
        #expect(throws: BlindAIClientError.self) { try BlindAIClient.validateModelName("a/b") }
        #expect(throws: BlindAIClientError.self) { try BlindAIClient.validateModelName("-a") }
        try BlindAIClient.validateModelName("resnet18_v1.2-x")
    }

    @Test func topK() throws {
        let logits = try Tensor([Float(0), 2, 1, 0, 0, 5], shape: [2, 3])
        let rows = try #require(try TopK.rank(logits, k: 2))
        #expect(rows.map { $0.map(\.index) } == [[1, 2], [2, 0]])
        let e1: Double = Foundation.exp(1.0)
        let e2: Double = Foundation.exp(2.0)
        let expected: Double = (e2 + e1) / (1 + e2 + e1)
        let got: Double = rows[0][0].probability + rows[0][1].probability
        #expect(abs(got - expected) < 1e-9)
        let probabilities = try Tensor([Float(0.1), 0.7, 0.2], shape: [1, 3])
        #expect(try TopK.rank(probabilities, k: 1)?.first?.first?.probability == Double(Float(0.7)))
        #expect(try TopK.rank(try Tensor([Int64(1)]), k: 1) == nil)
    }
}

@Suite struct KeyPinTests {
    @Test func firstKeyBecomesCandidateThenPinned() throws {
        let a = try TLSIdentity.generate()
        let b = try TLSIdentity.generate()
        let pin = TLSKeyPin()
        try pin.admit(certificateDER: a.certificateDER)
        try pin.admit(certificateDER: a.certificateDER)
        #expect(throws: PinViolation.self) { try pin.admit(certificateDER: b.certificateDER) }
        pin.pin()
        #expect(pin.isPinned)
        do {
            try pin.admit(certificateDER: b.certificateDER)
            Issue.record("another key was admitted")
        } catch PinViolation.keyChanged(let pinned, let presented, let attested) {
            #expect(pinned == a.spkiSHA256)
            #expect(presented == b.spkiSHA256)
            #expect(attested)
        }
        #expect(pin.connectionCount == 2)
        #expect(pin.subjectPublicKeyInfo == a.subjectPublicKeyInfoDER)
    }
}

@Suite struct ServerAttestationTests {
    @Test func autoRefusesWithoutTEE() async throws {
        let dir = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        for mode in [TEEMode.auto, .sevSNP, .tdx] {
            do {
                _ = try await TEESetup.make(mode: mode, configFSRoot: dir.appendingPathComponent("no-tsm"), sevGuestPath: dir.appendingPathComponent("no-sev").path)
                Issue.record("\(mode) started without a TEE")
            } catch let e as TEESetupError {
                #expect(e.message.contains("--tee simulated"))
            }
        }
    }

    /// Issue 10, item 3: a TLS key from a file existed outside the VM; a real TEE refuses it at start, before probing.
    @Test func realTEERefusesTLSKeyFromFile() async throws {
        let dir = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let device = dir.appendingPathComponent("sev-guest")
        _ = FileManager.default.createFile(atPath: device.path, contents: Data())
        for mode in [TEEMode.auto, .sevSNP, .tdx] {
            do {
                _ = try await TEESetup.make(mode: mode, tlsKeyFromFile: true, configFSRoot: dir.appendingPathComponent("no-tsm"), sevGuestPath: device.path)
                Issue.record("\(mode) started with a TLS key from a file")
            } catch let e as TEESetupError {
                #expect(e.message.contains("--tls-cert/--tls-key cannot be used with a real TEE"))
            }
        }
        // The simulated TEE still starts (it proves nothing); its claims say the key came from a file.
        let exe = dir.appendingPathComponent("server-binary")
        try Data("build".utf8).write(to: exe)
        let setup = try await TEESetup.make(mode: .simulated, executable: exe, tlsKeyFromFile: true)
        #expect(setup.attestationProvider(tlsKeyGeneratedInMemory: false).attributes[ClaimsDocument.tlsKeyOriginAttribute] == "false")
    }

    @Test func autoPicksSEVGuestDevice() async throws {
        let dir = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let device = dir.appendingPathComponent("sev-guest")
        _ = FileManager.default.createFile(atPath: device.path, contents: Data())
        let setup = try await TEESetup.make(mode: .auto, configFSRoot: dir.appendingPathComponent("no-tsm"), sevGuestPath: device.path)
        #expect(setup.tee == .sevSNP)
        #expect(setup.backend == device.path)
        #expect(setup.provider is SEVGuestDeviceProvider)
        await #expect(throws: TEESetupError.self) {
            _ = try await TEESetup.make(mode: .tdx, configFSRoot: dir.appendingPathComponent("no-tsm"), sevGuestPath: device.path)
        }
    }

    @Test func simulatedMeasuresTheExecutable() async throws {
        let dir = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let exe = dir.appendingPathComponent("server-binary")
        let bytes = Data("pretend server build 7".utf8)
        try bytes.write(to: exe)
        let setup = try await TEESetup.make(mode: .simulated, executable: exe)
        let trust = try await setup.trustPolicy()
        let expected = SHA384.hash(data: bytes).map { String(format: "%02x", $0) }.joined()
        #expect(trust.measurement == expected)
        #expect(trust.simulated)
        let policy = try AttestationPolicy.load(json: Data(trust.json.utf8))
        #expect(policy.allowSimulated)
        #expect(policy.snp?.measurements == [expected])
        #expect(policy.snp?.chipIDs == [trust.chipID!])
        #expect(policy.simulatedRootKeys == [try #require(setup.simulated?.rootKeySHA256)])
        #expect(trust.simulatedRootKeySHA256 == setup.simulated?.rootKeySHA256)
        #expect(policy.maxEvidenceAgeSeconds == 300)
        #expect(trust.summary.contains("SIMULATED"))
        await #expect(throws: TEESetupError.self) { _ = try await TEESetup.make(mode: .simulated, certificatesDirectory: dir, executable: exe) }
        // The default executable is this process's.
        #expect(FileManager.default.fileExists(atPath: try TEESetup.currentExecutable().path))
    }

    @Test func realTEEPolicies() throws {
        let m = String(repeating: "1f", count: 48)
        let snp = try AttestationPolicy.load(json: Data(TrustPolicyJSON.snp(measurement: m, simulated: false, chipID: nil, maxEvidenceAgeSeconds: 60).utf8))
        #expect(!snp.allowSimulated)
        #expect(snp.snp?.measurements == [m])
        #expect(snp.tdx == nil)
        let tdx = try AttestationPolicy.load(json: Data(TrustPolicyJSON.tdx(mrtd: m, maxEvidenceAgeSeconds: 60).utf8))
        #expect(tdx.tdx?.measurements?.first?.mrtd == m)
        #expect(tdx.snp == nil)
    }

    /// The adapter's evidence verifies with the channel binding of the server's TLS key, and not with another key.
    @Test func providerBindsTheTLSKey() async throws {
        let identity = try TLSIdentity.generate()
        let provider = TEESetup.simulated(TestTEE.shared).attestationProvider()
        let nonce = ChannelBindingExpectation.freshNonce()
        let evidence = try await provider.evidence(nonce: nonce, tls: identity.publicInfo, claims: ServerClaims())
        #expect(evidence.contentType == "application/json")
        let bundle = try EvidenceBundle.decode(json: evidence.body)
        let doc = try ClaimsDocument.decode([UInt8](bundle.claims ?? Data()))
        #expect(doc.attributes["serverVersion"] == BlindAIServerVersion.current)
        #expect(doc.tee == .sevSNP)
        let policy = try await TestTEE.policy()
        let claims = try await AttestationVerifier(policy: policy).verify(
            bundle: bundle, binding: ChannelBindingExpectation(nonce: nonce, tlsSubjectPublicKeyInfo: identity.subjectPublicKeyInfoDER))
        #expect(claims.channelBound)
        let other = try TLSIdentity.generate()
        await #expect(throws: AttestationError.self) {
            _ = try await AttestationVerifier(policy: policy).verify(
                bundle: bundle, binding: ChannelBindingExpectation(nonce: nonce, tlsSubjectPublicKeyInfo: other.subjectPublicKeyInfoDER))
        }
        await #expect(throws: ServerError.self) { _ = try await provider.evidence(nonce: [1, 2, 3], tls: identity.publicInfo, claims: ServerClaims()) }
    }

    @Test func operatorCertificates() throws {
        let dir = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        #expect(throws: TEESetupError.self) { try SNPCertificateFiles.load(directory: dir) }
        let tee = TestTEE.shared
        try Data(tee.vcekDER).write(to: dir.appendingPathComponent("vcek.der"))
        #expect(try SNPCertificateFiles.load(directory: dir) == [tee.vcekDER])
        func pem(_ der: [UInt8]) -> String {
            "-----BEGIN CERTIFICATE-----\n" + Data(der).base64EncodedString(options: .lineLength64Characters) + "\n-----END CERTIFICATE-----\n"
        }
        try (pem(tee.askDER) + pem(tee.arkDER)).write(to: dir.appendingPathComponent("cert_chain.pem"), atomically: true, encoding: .utf8)
        #expect(try SNPCertificateFiles.load(directory: dir) == [tee.vcekDER, tee.askDER, tee.arkDER])
    }

    @Test func embeddedDemoAssetsMatchTheFiles() throws {
        #expect(Data(base64Encoded: DemoAssets.digitsONNX, options: .ignoreUnknownCharacters) == (try TestModels.digits()),
                "run scripts/embed-demo-assets.py")
        let files = try FileManager.default.contentsOfDirectory(atPath: repositoryRoot.appendingPathComponent("demo/samples").path)
            .filter { $0.hasSuffix(".npy") }.sorted()
        #expect(DemoAssets.samples.map(\.name) == files)
        for s in DemoAssets.samples {
            #expect(Data(base64Encoded: s.npy) == (try Data(contentsOf: repositoryRoot.appendingPathComponent("demo/samples/\(s.name)"))))
        }
    }
}

/// The client's tensor, for files that also import the engine's (whose `Tensor` would be ambiguous there).
typealias ClientTensor = Tensor
