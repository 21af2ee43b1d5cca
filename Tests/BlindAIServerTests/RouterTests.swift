import BlindAIProtocol
import BlindAIServer
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Testing

/// The OIP v2 endpoints, run in-process through the router (no sockets).
@Suite struct RouterTests {
    @Test func healthAndServerMetadata() async throws {
        let server = try makeServer()
        try await server.makeApplication().test(.router) { client throws in
            try await client.execute(uri: "/v2/health/live", method: .get) { r throws in
                #expect(r.status == .ok)
                #expect(String(buffer: r.body) == #"{"live":true}"#)
            }
            try await client.execute(uri: "/v2/health/ready", method: .get) { r throws in #expect(r.status == .ok) }
            try await client.execute(uri: "/v2", method: .get) { r throws in
                let m = try decode(ServerMetadataResponse.self, r)
                #expect(m.name == "blindai")
                #expect(m.extensions.contains("binary_tensor_data"))
                #expect(m.extensions.contains("model_repository"))
                #expect(!m.extensions.contains("blindai_attestation"))
            }
            try await client.execute(uri: "/v2/nothing/here", method: .get) { r throws in
                #expect(r.status == .notFound)
                #expect(errorMessage(r) == "not found")
            }
        }
    }

    @Test func uploadMetadataReadyInferUnload() async throws {
        let server = try makeServer()
        try await server.makeApplication().test(.router) { client throws in
            let r = try await client.upload("add_relu", as: "adder")
            #expect(r.status == .created)
            let up = try decode(ModelUploadResponse.self, r)
            #expect(up.name == "adder")
            #expect(up.version == "1")
            #expect(up.size == (try Fixture.data("add_relu")).count)
            #expect(up.sha256.count == 64)
            #expect(up.inputs == [TensorMetadata(name: "a", datatype: "FP32", shape: [-1, 3]), TensorMetadata(name: "b", datatype: "FP32", shape: [-1, 3])])

            try await client.execute(uri: "/v2/models/adder", method: .get) { r throws in
                let m = try decode(ModelMetadataResponse.self, r)
                #expect(m.platform == "onnx")
                #expect(m.versions == ["1"])
                #expect(m.outputs.map(\.name) == ["sum", "relu"])
                #expect(m.outputs[0].shape == [-1, 3])
            }
            try await client.execute(uri: "/v2/models/adder/versions/1", method: .get) { r throws in #expect(r.status == .ok) }
            try await client.execute(uri: "/v2/models/adder/versions/7", method: .get) { r throws in #expect(r.status == .notFound) }
            try await client.execute(uri: "/v2/models/adder/ready", method: .get) { r throws in #expect(r.status == .ok) }
            try await client.execute(uri: "/v2/models/adder/versions/1/ready", method: .get) { r throws in #expect(r.status == .ok) }
            try await client.execute(uri: "/v2/models/nope/ready", method: .get) { r throws in #expect(r.status == .notFound) }
            try await client.execute(uri: "/v2/models/nope", method: .get) { r throws in #expect(r.status == .notFound) }

            let ir = try await client.infer("adder", addRequest(id: "my-id", batch: 2))
            #expect(ir.status == .ok)
            #expect(ir.headers[.contentType] == "application/json")
            let resp = try decode(InferenceResponse.self, ir)
            #expect(resp.id == "my-id")
            #expect(resp.modelName == "adder")
            #expect(resp.modelVersion == "1")
            #expect(resp.outputs.map(\.name) == ["sum", "relu"])
            #expect(resp.outputs[0].shape == [2, 3])
            #expect(resp.outputs[0].datatype == "FP32")
            #expect(floats(resp.outputs[0]) == [-0.5, 0.5, 1.5, 2.5, 3.5, 4.5])
            #expect(floats(resp.outputs[1]) == [0, 0.5, 1.5, 2.5, 3.5, 4.5])

            let v1 = try await client.infer("adder", addRequest(), version: "1")
            #expect(v1.status == .ok)

            // Requested outputs only.
            var req = addRequest()
            req.outputs = [RequestOutput(name: "relu")]
            let only = try decode(InferenceResponse.self, try await client.infer("adder", req))
            #expect(only.outputs.map(\.name) == ["relu"])

            // Index, unload, gone.
            try await client.execute(uri: "/v2/repository/index", method: .post) { r throws in
                let idx = try decode([RepositoryIndexEntry].self, r)
                #expect(idx == [RepositoryIndexEntry(name: "adder", version: "1", state: "READY", reason: "")])
            }
            try await client.execute(uri: "/v2/repository/index", method: .post, body: body(#"{"ready": true}"#)) { r throws in
                #expect(try decode([RepositoryIndexEntry].self, r).count == 1)
            }
            try await client.execute(uri: "/v2/repository/models/adder/unload", method: .post) { r throws in #expect(r.status == .ok) }
            try await client.execute(uri: "/v2/models/adder/ready", method: .get) { r throws in #expect(r.status == .notFound) }
            let gone = try await client.infer("adder", addRequest())
            #expect(gone.status == .notFound)
            try await client.execute(uri: "/v2/repository/models/adder/unload", method: .post) { r throws in #expect(r.status == .notFound) }
        }
    }

    @Test func nestedJSONDataAndReplacement() async throws {
        let server = try makeServer()
        try await server.makeApplication().test(.router) { client throws in
            try await client.upload("add_relu", as: "m")
            let nested = """
                {"inputs":[{"name":"a","shape":[2,3],"datatype":"FP32","data":[[1,2,3],[4,5,6]]},
                           {"name":"b","shape":[2,3],"datatype":"FP32","data":[1,1,1,1,1,1]}],
                 "outputs":[{"name":"sum"}]}
                """
            let r = try await client.execute(uri: "/v2/models/m/infer", method: .post, body: body(nested))
            #expect(r.status == .ok)
            let resp = try decode(InferenceResponse.self, r)
            #expect(resp.id == nil)
            #expect(floats(resp.outputs[0]) == [2, 3, 4, 5, 6, 7])

            // Replacing the name with another model bumps the version; the old version is gone.
            let rep = try await client.upload("scale", as: "m")
            #expect(rep.status == .ok)
            let up = try decode(ModelUploadResponse.self, rep)
            #expect(up.replaced)
            #expect(up.version == "2")
            let req = InferenceRequest(inputs: [RequestInput(name: "x", shape: [4], datatype: "FP32", data: .float32([1, 2, 3, 4]))])
            let s = try decode(InferenceResponse.self, try await client.infer("m", req))
            #expect(floats(s.outputs[0]) == [2, 4, 6, 8])
            try await client.execute(uri: "/v2/models/m/versions/1", method: .get) { r throws in #expect(r.status == .notFound) }
        }
    }

    /// Every OIP datatype the engine supports, in one request, in JSON and then in binary.
    @Test func everyDatatypeJSONAndBinary() async throws {
        let server = try makeServer()
        try await server.makeApplication().test(.router) { client throws in
            try await client.upload("all_types", as: "types")
            let inputs: [RequestInput] = [
                RequestInput(name: "x_bool", shape: [3], datatype: "BOOL", data: .bool([true, false, true])),
                RequestInput(name: "x_uint8", shape: [3], datatype: "UINT8", data: .uint64([0, 128, 255])),
                RequestInput(name: "x_uint16", shape: [2], datatype: "UINT16", data: .uint64([0, 65535])),
                RequestInput(name: "x_uint32", shape: [2], datatype: "UINT32", data: .uint64([7, 4_294_967_295])),
                RequestInput(name: "x_uint64", shape: [2], datatype: "UINT64", data: .uint64([1, UInt64.max])),
                RequestInput(name: "x_int8", shape: [2], datatype: "INT8", data: .int64([-128, 127])),
                RequestInput(name: "x_int16", shape: [2], datatype: "INT16", data: .int64([-32768, 32767])),
                RequestInput(name: "x_int32", shape: [2], datatype: "INT32", data: .int64([-5, 2_147_483_647])),
                RequestInput(name: "x_int64", shape: [2], datatype: "INT64", data: .int64([Int64.min, Int64.max])),
                RequestInput(name: "x_fp16", shape: [2], datatype: "FP16", data: .float32([0.5, -2])),
                RequestInput(name: "x_fp32", shape: [3], datatype: "FP32", data: .float32([1.25, .infinity, -3])),
                RequestInput(name: "x_fp64", shape: [2], datatype: "FP64", data: .float64([1e300, -0.125])),
                RequestInput(name: "x_bytes", shape: [2], datatype: "BYTES", data: .string(["héllo", ""])),
            ]
            let r = try await client.infer("types", InferenceRequest(id: "all", inputs: inputs))
            #expect(r.status == .ok, "\(errorMessage(r))")
            let resp = try decode(InferenceResponse.self, r)
            let out = Dictionary(uniqueKeysWithValues: resp.outputs.map { ($0.name, $0) })
            #expect(out.count == 13)
            for input in inputs {
                let o = try #require(out["y_" + input.name.dropFirst(2)])
                #expect(o.datatype == input.datatype)
                #expect(o.shape == input.shape)
                if input.datatype.hasPrefix("FP") {
                    #expect(o.data.map(numbers) == input.data.map(numbers), "\(input.name)")
                } else {
                    #expect(o.data?.scalars == input.data?.scalars, "\(input.name)")
                }
            }

            // The same in binary, with binary outputs.
            var binaries: [Data] = []
            var binInputs: [RequestInput] = []
            func add(_ name: String, _ type: String, _ shape: [Int64], _ bytes: Data) {
                binInputs.append(RequestInput(name: name, shape: shape, datatype: type, parameters: ["binary_data_size": .int(Int64(bytes.count))]))
                binaries.append(bytes)
            }
            add("x_bool", "BOOL", [3], Data([1, 0, 1]))
            add("x_uint8", "UINT8", [3], Data([0, 128, 255]))
            add("x_uint16", "UINT16", [2], rawBytes([UInt16(0), 65535]))
            add("x_uint32", "UINT32", [2], rawBytes([UInt32(7), UInt32.max]))
            add("x_uint64", "UINT64", [2], rawBytes([UInt64(1), UInt64.max]))
            add("x_int8", "INT8", [2], rawBytes([Int8.min, Int8.max]))
            add("x_int16", "INT16", [2], rawBytes([Int16.min, Int16.max]))
            add("x_int32", "INT32", [2], rawBytes([Int32(-5), Int32.max]))
            add("x_int64", "INT64", [2], rawBytes([Int64.min, Int64.max]))
            add("x_fp16", "FP16", [2], rawBytes([Float16(0.5), Float16(-2)]))
            add("x_fp32", "FP32", [3], rawBytes([Float(1.25), .infinity, -3]))
            add("x_fp64", "FP64", [2], rawBytes([1e300, -0.125]))
            add("x_bytes", "BYTES", [2], BinaryFraming.encodeBytesElements([Array("héllo".utf8), []]))
            let req = InferenceRequest(id: "bin", parameters: ["binary_data_output": .bool(true)], inputs: binInputs)
            let br = try await client.inferBinary("types", req, binary: binaries)
            #expect(br.status == .ok, "\(errorMessage(br))")
            #expect(br.headers[.contentType] == "application/octet-stream")
            let hl = try #require(br.headers[.inferenceHeader].flatMap { Int($0) })
            let (bresp, bin) = try InferenceResponse.decode(body: Data(buffer: br.body), headerLength: hl)
            #expect(bresp.id == "bin")
            for (i, input) in binInputs.enumerated() {
                let name = "y_" + input.name.dropFirst(2)
                #expect(bin[name] == binaries[i], "\(name)")
                let o = try #require(bresp.outputs.first { $0.name == name })
                #expect(o.data == nil)
                #expect(o.parameters?["binary_data_size"] == .int(Int64(binaries[i].count)))
            }

            // Mixed: one output binary, the rest JSON.
            var mixed = InferenceRequest(inputs: binInputs)
            mixed.outputs = [RequestOutput(name: "y_fp32", parameters: ["binary_data": .bool(true)]), RequestOutput(name: "y_int8")]
            let mr = try await client.inferBinary("types", mixed, binary: binaries)
            let mhl = try #require(mr.headers[.inferenceHeader].flatMap { Int($0) })
            let (mresp, mbin) = try InferenceResponse.decode(body: Data(buffer: mr.body), headerLength: mhl)
            #expect(mbin["y_fp32"] == binaries[10])
            #expect(mresp.outputs[1].data?.scalars == [.int(-128), .int(127)])
        }
    }

    @Test func bfloat16JSONAndBinary() async throws {
        let server = try makeServer()
        try await server.makeApplication().test(.router) { client throws in
            try await client.upload("bf16", as: "bf")
            let r = try await client.infer("bf", InferenceRequest(inputs: [RequestInput(name: "x", shape: [3], datatype: "BF16", data: .float32([1.5, -2, 0.1]))]))
            #expect(r.status == .ok, "\(errorMessage(r))")
            let o = try decode(InferenceResponse.self, r).outputs[0]
            #expect(o.datatype == "BF16")
            // 0.1 rounds to the nearest bfloat16, 0.10009765625.
            #expect(numbers(try #require(o.data)).map { Float($0) } == [1.5, -2, 0.10009765625])
            let bits = rawBytes([UInt16(0x3FC0), 0xC000])
            let req = InferenceRequest(parameters: ["binary_data_output": .bool(true)],
                                       inputs: [RequestInput(name: "x", shape: [2], datatype: "BF16", parameters: ["binary_data_size": .int(4)])])
            let br = try await client.inferBinary("bf", req, binary: [bits])
            let hl = try #require(br.headers[.inferenceHeader].flatMap { Int($0) })
            #expect(try InferenceResponse.decode(body: Data(buffer: br.body), headerLength: hl).binary["y"] == bits)
        }
    }

    /// Uploads in progress (even stalled ones) never stop inference, on other models or on the version being replaced.
    @Test func inferenceContinuesDuringAnUpload() async throws {
        let server = try makeServer()
        try await server.repository.loadFixture("add_relu", as: "m")
        try await server.repository.loadFixture("scale", as: "other")
        let (stream, source) = AsyncStream<ByteBuffer>.makeStream()
        let replacement = Array(try Fixture.data("scale"))
        let upload = Task { try await server.upload(name: "m", principal: .open, shared: nil, declaredLength: nil, body: stream) }
        source.yield(ByteBuffer(bytes: replacement.prefix(10)))
        for _ in 0..<2000 where await server.repository.uploadsInProgress == 0 { try await Task.sleep(for: .milliseconds(5)) }
        try await server.makeApplication().test(.router) { client throws in
            #expect(try await client.infer("m", addRequest()).status == .ok)
            let x = InferenceRequest(inputs: [RequestInput(name: "x", shape: [4], datatype: "FP32", data: .float32([1, 2, 3, 4]))])
            #expect(try await client.infer("other", x).status == .ok)
            try await client.execute(uri: "/v2/repository/index", method: .post) { r throws in
                #expect(try decode([RepositoryIndexEntry].self, r).map(\.state) == ["READY", "READY"])
            }
        }
        source.yield(ByteBuffer(bytes: replacement.dropFirst(10)))
        source.finish()
        #expect(try await upload.value.version == "2")
        #expect(try await server.repository.lookup(name: "m", version: nil, principal: .open).inputs.map(\.name) == ["x"])
    }

    @Test func badRequests() async throws {
        let server = try makeServer { $0.maxRequestBytes = 4096; $0.maxTensorElements = 1000 }
        try await server.makeApplication().test(.router) { client throws in
            try await client.upload("add_relu", as: "m")
            try await client.upload("all_types", as: "types")
            func expectStatus(_ raw: String, _ status: HTTPResponse.Status, _ contains: String, sourceLocation: SourceLocation = #_sourceLocation) async throws {
                let r = try await client.execute(uri: "/v2/models/m/infer", method: .post, body: body(raw))
                #expect(r.status == status, "\(raw)", sourceLocation: sourceLocation)
                #expect(errorMessage(r).contains(contains), "\(errorMessage(r))", sourceLocation: sourceLocation)
            }
            try await expectStatus("not json", .badRequest, "malformed")
            try await expectStatus(#"{"inputs": 3}"#, .badRequest, "inputs")
            try await expectStatus(#"{"inputs":[{"name":"a","shape":[1,3],"datatype":"FP32","data":[1,2,3]}]}"#, .badRequest, "'b' is required")
            try await expectStatus(#"{"inputs":[{"name":"a","shape":[1,3],"datatype":"FP32","data":[1,2]},{"name":"b","shape":[1,3],"datatype":"FP32","data":[1,2,3]}]}"#, .badRequest, "needs 3 elements, got 2")
            try await expectStatus(#"{"inputs":[{"name":"a","shape":[1,3],"datatype":"INT32","data":[1,2,3]},{"name":"b","shape":[1,3],"datatype":"FP32","data":[1,2,3]}]}"#, .badRequest, "must be FP32")
            try await expectStatus(#"{"inputs":[{"name":"a","shape":[1,3],"datatype":"FP99","data":[1,2,3]}]}"#, .badRequest, "unknown datatype")
            try await expectStatus(#"{"inputs":[{"name":"zz","shape":[1],"datatype":"FP32","data":[1]}]}"#, .badRequest, "no input named 'zz'")
            try await expectStatus(#"{"inputs":[{"name":"a","shape":[-1,3],"datatype":"FP32","data":[1,2,3]}]}"#, .badRequest, "invalid dimension")
            try await expectStatus(#"{"inputs":[{"name":"a","shape":[1,3],"datatype":"FP32","data":["x",2,3]},{"name":"b","shape":[1,3],"datatype":"FP32","data":[1,2,3]}]}"#, .badRequest, "string element")
            try await expectStatus(#"{"inputs":[{"name":"a","shape":[1,4],"datatype":"FP32","data":[1,2,3,4]},{"name":"b","shape":[1,4],"datatype":"FP32","data":[1,2,3,4]}]}"#, .badRequest, "shape")
            try await expectStatus(#"{"inputs":[{"name":"a","shape":[1,3],"datatype":"FP32","data":[1,2,3]},{"name":"b","shape":[1,3],"datatype":"FP32","data":[1,2,3]}],"outputs":[{"name":"nope"}]}"#, .badRequest, "no output named 'nope'")
            // Shape bomb: the declared shape is checked against the tensor limits before anything is allocated.
            try await expectStatus(#"{"inputs":[{"name":"a","shape":[100000,100000],"datatype":"FP32","data":[1]},{"name":"b","shape":[1,3],"datatype":"FP32","data":[1,2,3]}]}"#, .contentTooLarge, "over the limit")
            // Body over the request limit.
            let big = String(repeating: " ", count: 5000)
            try await expectStatus(big, .contentTooLarge, "over the limit of 4096 bytes")

            // Out-of-range integers, bad booleans.
            let t = try await client.infer("types", InferenceRequest(inputs: [RequestInput(name: "x_uint8", shape: [1], datatype: "UINT8", data: .int64([256]))]))
            #expect(t.status == .badRequest)
            #expect(errorMessage(t).contains("UInt8"))

            // Binary framing errors: declared sizes must match the shape and the body exactly.
            let a = RequestInput(name: "a", shape: [1, 3], datatype: "FP32", parameters: ["binary_data_size": .int(12)])
            let b = RequestInput(name: "b", shape: [1, 3], datatype: "FP32", parameters: ["binary_data_size": .int(8)])
            let r1 = try await client.inferBinary("m", InferenceRequest(inputs: [a, b]), binary: [Data(count: 12), Data(count: 8)])
            #expect(r1.status == .badRequest)
            #expect(errorMessage(r1).contains("needs 12 bytes"))
            let b12 = RequestInput(name: "b", shape: [1, 3], datatype: "FP32", parameters: ["binary_data_size": .int(12)])
            let r2 = try await client.inferBinary("m", InferenceRequest(inputs: [a, b12]), binary: [Data(count: 12), Data(count: 8)])
            #expect(r2.status == .badRequest)
            #expect(errorMessage(r2).contains("remain"))
            let r3 = try await client.inferBinary("m", InferenceRequest(inputs: [a, b12]), binary: [Data(count: 12), Data(count: 16)])
            #expect(r3.status == .badRequest)
            #expect(errorMessage(r3).contains("no tensor declares"))
            var h = HTTPFields()
            h[.inferenceHeader] = "99999"
            let r4 = try await client.execute(uri: "/v2/models/m/infer", method: .post, headers: h, body: body("{}"))
            #expect(r4.status == .badRequest)
            h[.inferenceHeader] = "abc"
            let r5 = try await client.execute(uri: "/v2/models/m/infer", method: .post, headers: h, body: body("{}"))
            #expect(r5.status == .badRequest)
            let bytesBad = RequestInput(name: "x_bytes", shape: [2], datatype: "BYTES", parameters: ["binary_data_size": .int(6)])
            let r6 = try await client.inferBinary("types", InferenceRequest(inputs: [bytesBad]), binary: [Data([1, 0, 0, 0, 65, 9])])
            #expect(r6.status == .badRequest)

            // Unknown model.
            let r7 = try await client.infer("missing", addRequest())
            #expect(r7.status == .notFound)
        }
    }

    @Test func invalidUploads() async throws {
        let server = try makeServer { $0.maxModelBytes = 1000 }
        try await server.makeApplication().test(.router) { client throws in
            let garbage = try await client.execute(uri: "/v2/repository/models/x", method: .put, body: body("{ this is not onnx }"))
            #expect(garbage.status == .badRequest)
            let truncated = try Fixture.data("add_relu").prefix(100)
            let t = try await client.execute(uri: "/v2/repository/models/x", method: .put, body: ByteBuffer(bytes: truncated))
            #expect(t.status == .badRequest, "\(errorMessage(t))")
            let empty = try await client.execute(uri: "/v2/repository/models/x", method: .put)
            #expect(empty.status == .badRequest)
            let tooBig = try await client.upload("slow", as: "x")
            #expect(tooBig.status == .contentTooLarge)
            let badName = try await client.upload("add_relu", as: "..hidden")
            #expect(badName.status == .badRequest)
            try await client.execute(uri: "/v2/repository/index", method: .post) { r throws in
                #expect(try decode([RepositoryIndexEntry].self, r).isEmpty)
            }
        }
        #expect(await server.repository.count == 0)
        #expect(await server.repository.uploadsInProgress == 0)
    }

    /// Triton's `load_model(name, files={"file:1/model.onnx": bytes})`: the file inline, base64, in parameters.
    @Test func tritonStyleInlineLoad() async throws {
        let server = try makeServer()
        try await server.makeApplication().test(.router) { client throws in
            let b64 = try Fixture.data("add_relu").base64EncodedString()
            let req = RepositoryModelRequest(parameters: ["config": .string("{}"), "file:1/model.onnx": .string(b64)])
            let r = try await client.execute(uri: "/v2/repository/models/triton/load", method: .post, body: body(req))
            #expect(r.status == .ok, "\(errorMessage(r))")
            #expect(try decode(ModelUploadResponse.self, r).inputs.count == 2)
            #expect(try await client.infer("triton", addRequest()).status == .ok)
            // Load without a file: a no-op for a loaded model, 404 otherwise.
            let again = try await client.execute(uri: "/v2/repository/models/triton/load", method: .post)
            #expect(again.status == .ok)
            let none = try await client.execute(uri: "/v2/repository/models/other/load", method: .post)
            #expect(none.status == .notFound)
            let notB64 = RepositoryModelRequest(parameters: ["file:1/model.onnx": .string("!!!")])
            let bad = try await client.execute(uri: "/v2/repository/models/x/load", method: .post, body: body(notB64))
            #expect(bad.status == .badRequest)
        }
    }

    @Test func attestationEndpoint() async throws {
        struct FakeProvider: AttestationProvider {
            func evidence(nonce: [UInt8], tls: TLSPublicIdentity, claims: ServerClaims) async throws -> AttestationEvidence {
                AttestationEvidence(contentType: "application/x-test-evidence", body: Data(nonce + tls.subjectPublicKeyInfoDER))
            }
        }
        let none = try makeServer()
        try await none.makeApplication().test(.router) { client throws in
            let r = try await client.execute(uri: "/v2/attestation", method: .post, body: body(AttestationRequest(nonce: Data(count: 32).base64EncodedString())))
            #expect(r.status == .notImplemented)
            #expect(errorMessage(r).contains("not configured"))
        }
        let server = try makeServer(tls: true, attestation: FakeProvider())
        let spki = try #require(server.tlsIdentity).subjectPublicKeyInfoDER
        try await server.makeApplication().test(.router) { client throws in
            let nonce = Data((0..<32).map { UInt8($0) })
            let r = try await client.execute(uri: "/v2/attestation", method: .post, body: body(AttestationRequest(nonce: nonce.base64EncodedString())))
            #expect(r.status == .ok)
            #expect(r.headers[.contentType] == "application/x-test-evidence")
            #expect(Data(buffer: r.body) == nonce + Data(spki))
            let short = try await client.execute(uri: "/v2/attestation", method: .post, body: body(AttestationRequest(nonce: Data(count: 16).base64EncodedString())))
            #expect(short.status == .badRequest)
            let garbage = try await client.execute(uri: "/v2/attestation", method: .post, body: body("nonce"))
            #expect(garbage.status == .badRequest)
            try await client.execute(uri: "/v2", method: .get) { r throws in
                #expect(try decode(ServerMetadataResponse.self, r).extensions.contains("blindai_attestation"))
            }
        }
    }
}
