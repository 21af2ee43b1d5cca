import BlindAIProtocol
import BlindAITensor
@testable import BlindAIServer
import Foundation
import NIOCore
import Testing

/// The pieces without sockets: the upload state machine, API keys, the protocol types.
@Suite struct UploadStateMachineTests {
    @Test func happyPath() {
        var m = UploadStateMachine(maxBytes: 100, declaredLength: 30)
        #expect(m.initialAction == nil)
        #expect(m.received(10) == .store)
        #expect(m.received(20) == .store)
        #expect(m.state == .receiving(bytes: 30))
        #expect(m.bodyEnded() == .validate)
        #expect(m.validated(nil) == .load)
        #expect(m.state == .loading(bytes: 30))
        #expect(m.loaded(nil) == .register)
        #expect(m.registered(nil) == nil)
        #expect(m.state == .ready(bytes: 30))
        #expect(m.isFinished)
        #expect(m.interrupted(ServerError(.badRequest, "late")) == nil)
    }

    @Test func overTheLimitWhileStreaming() {
        var m = UploadStateMachine(maxBytes: 100)
        #expect(m.received(60) == .store)
        guard case .abort(let e) = m.received(41) else { Issue.record("expected abort"); return }
        #expect(e.code == .payloadTooLarge)
        // Nothing more is accepted after a failure.
        guard case .abort = m.received(1) else { Issue.record("expected abort"); return }
        guard case .abort = m.bodyEnded() else { Issue.record("expected abort"); return }
        #expect(m.isFinished)
    }

    @Test func declaredLengthIsCheckedNotTrusted() {
        let tooBig = UploadStateMachine(maxBytes: 100, declaredLength: 101)
        guard case .abort(let e)? = tooBig.initialAction else { Issue.record("expected abort"); return }
        #expect(e.code == .payloadTooLarge)

        var longer = UploadStateMachine(maxBytes: 100, declaredLength: 10)
        guard case .abort(let e2) = longer.received(11) else { Issue.record("expected abort"); return }
        #expect(e2.code == .badRequest)

        var shorter = UploadStateMachine(maxBytes: 100, declaredLength: 10)
        #expect(shorter.received(5) == .store)
        guard case .abort(let e3) = shorter.bodyEnded() else { Issue.record("expected abort"); return }
        #expect(e3.code == .badRequest)

        // A lying small Content-Length cannot smuggle in more than the limit either.
        var lying = UploadStateMachine(maxBytes: 100, declaredLength: nil)
        #expect(lying.received(Int.max) != .store)
    }

    @Test func failuresAtEachStage() {
        var empty = UploadStateMachine(maxBytes: 100)
        guard case .abort = empty.bodyEnded() else { Issue.record("empty body accepted"); return }

        var invalid = UploadStateMachine(maxBytes: 100)
        _ = invalid.received(5)
        _ = invalid.bodyEnded()
        #expect(invalid.validated(ServerError(.badRequest, "not onnx")) == .abort(ServerError(.badRequest, "not onnx")))

        var loadFails = UploadStateMachine(maxBytes: 100)
        _ = loadFails.received(5)
        _ = loadFails.bodyEnded()
        _ = loadFails.validated(nil)
        #expect(loadFails.loaded(ServerError(.badRequest, "bad graph")) == .abort(ServerError(.badRequest, "bad graph")))
        #expect(loadFails.state == .failed(ServerError(.badRequest, "bad graph")))

        var disconnect = UploadStateMachine(maxBytes: 100)
        _ = disconnect.received(5)
        #expect(disconnect.interrupted(ServerError(.badRequest, "gone")) == .abort(ServerError(.badRequest, "gone")))
        guard case .abort = disconnect.bodyEnded() else { Issue.record("expected abort"); return }

        var refused = UploadStateMachine(maxBytes: 100)
        _ = refused.received(5)
        _ = refused.bodyEnded()
        _ = refused.validated(nil)
        _ = refused.loaded(nil)
        #expect(refused.registered(ServerError(.insufficientStorage, "full")) == .abort(ServerError(.insufficientStorage, "full")))
    }

    @Test func eventsOutOfOrderFail() {
        var m = UploadStateMachine(maxBytes: 100)
        guard case .abort(let e) = m.loaded(nil) else { Issue.record("expected abort"); return }
        #expect(e.code == .internal)
    }

    @Test func validator() {
        #expect(UploadValidator.check(firstBytes: [0x08, 0x08]) == nil)
        #expect(UploadValidator.check(firstBytes: Array("{\"a\":1}".utf8)) != nil)
        #expect(UploadValidator.check(firstBytes: [UInt8]()) != nil)
        #expect(UploadValidator.check(firstBytes: [0x00]) != nil)
    }
}

@Suite struct APIKeyTests {
    @Test func parsingAndAuthentication() throws {
        let store = try Keys.store()
        #expect(store.count == 3)
        #expect(store.adminCount == 1)
        #expect(store.authenticate(secret: Keys.alice) == .key(id: "alice", admin: false))
        #expect(store.authenticate(secret: Keys.admin) == .key(id: "root", admin: true))
        #expect(store.authenticate(secret: Keys.alice + "x") == nil)
        #expect(store.authenticate(secret: "") == nil)
    }

    @Test func badFiles() {
        #expect(throws: ServerError.self) { try APIKeyStore(parsing: "alice:short") }
        #expect(throws: ServerError.self) { try APIKeyStore(parsing: "alice:\(Keys.alice):root") }
        #expect(throws: ServerError.self) { try APIKeyStore(parsing: "a:\(Keys.alice)\na:\(Keys.bob)") }
        #expect(throws: ServerError.self) { try APIKeyStore(parsing: "bad id:\(Keys.alice)") }
        #expect(throws: ServerError.self) { try APIKeyStore(parsing: "# only a comment\n") }
    }

    /// The same secret under two ids (the second an admin) is refused, not resolved to the last entry.
    @Test func aSecretUnderTwoIdsIsRefused() {
        #expect(throws: ServerError(.badRequest, "API keys 'alice' and 'root' have the same secret: give each key its own secret")) {
            try APIKeyStore(parsing: "alice:\(Keys.alice)\nbob:\(Keys.bob)\nroot:\(Keys.alice):admin")
        }
        #expect(throws: ServerError.self) {
            try APIKeyStore(keys: [.init(id: "a", secret: Keys.bob), .init(id: "b", secret: Keys.bob)])
        }
    }

    @Test func authorizationHeader() throws {
        let open = Authenticator(keys: nil)
        #expect(try open.principal(authorization: nil) == .open)
        #expect(try open.principal(authorization: "Bearer whatever") == .open)
        let auth = Authenticator(keys: try Keys.store())
        #expect(try auth.principal(authorization: nil) == .anonymous)
        #expect(try auth.principal(authorization: "Bearer \(Keys.bob)") == .key(id: "bob", admin: false))
        #expect(try auth.principal(authorization: "bearer \(Keys.bob)") == .key(id: "bob", admin: false))
        #expect(throws: ServerError.self) { try auth.principal(authorization: "Bearer nope-nope-nope-nope") }
        #expect(throws: ServerError.self) { try auth.principal(authorization: "Token \(Keys.bob)") }
    }
}

@Suite struct ProtocolTests {
    func decodeData(_ json: String) throws -> TensorData {
        try JSONDecoder().decode(TensorData.self, from: Data(json.utf8))
    }

    @Test func tensorDataFlatNestedAndMixed() throws {
        #expect(try decodeData("[1, 2, 3]").scalars == [.int(1), .int(2), .int(3)])
        #expect(try decodeData("[[1, 2], [3, 4]]").scalars == [.int(1), .int(2), .int(3), .int(4)])
        #expect(try decodeData("[[[true]], [[false]]]").scalars == [.bool(true), .bool(false)])
        #expect(try decodeData("[1.5, 2, -3e2]").scalars == [.double(1.5), .double(2), .double(-300)])
        #expect(try decodeData("[0.5, 1.5]").scalars == [.double(0.5), .double(1.5)])
        #expect(try decodeData("[18446744073709551615]").scalars == [.uint(UInt64.max)])
        #expect(try decodeData(#"["a", "NaN"]"#).scalars == [.string("a"), .string("NaN")])
        #expect(try decodeData("7").scalars == [.int(7)])
        #expect(try decodeData("[]").count == 0)
        #expect(throws: (any Error).self) { try decodeData(#"[{"a": 1}]"#) }
        #expect(throws: (any Error).self) { try decodeData(#"[null]"#) }
        let deep = String(repeating: "[", count: 40) + "1" + String(repeating: "]", count: 40)
        #expect(throws: (any Error).self) { try decodeData(deep) }
    }

    @Test func nonFiniteFloatsAreStrings() throws {
        let json = String(decoding: try JSONEncoder().encode(TensorData.float32([1, .nan, .infinity, -.infinity])), as: UTF8.self)
        #expect(json == #"[1,"NaN","Infinity","-Infinity"]"#)
        #expect(TensorData.nonFiniteValue("-inf") == -.infinity)
    }

    @Test func binaryFraming() throws {
        let json = Data(#"{"x":1}"#.utf8)
        let (body, n) = BinaryFraming.assemble(json: json, binary: [Data([1, 2, 3]), Data([4])])
        let (j, bin) = try BinaryFraming.split(body, headerLength: n)
        #expect(j == json)
        let s = try BinaryFraming.slices(of: bin, sizes: [("a", 3), ("json", nil), ("b", 1)])
        #expect(s["a"] == Data([1, 2, 3]))
        #expect(s["b"] == Data([4]))
        #expect(throws: ProtocolError.self) { try BinaryFraming.slices(of: bin, sizes: [("a", 3)]) }
        #expect(throws: ProtocolError.self) { try BinaryFraming.slices(of: bin, sizes: [("a", 5)]) }
        #expect(throws: ProtocolError.self) { try BinaryFraming.split(body, headerLength: body.count + 1) }

        let strings = BinaryFraming.encodeBytesElements([Array("ab".utf8), [], [0xFF]])
        #expect(strings == Data([2, 0, 0, 0, 97, 98, 0, 0, 0, 0, 1, 0, 0, 0, 0xFF]))
        #expect(try BinaryFraming.decodeBytesElements(strings, count: 3) == [Data("ab".utf8), Data(), Data([0xFF])])
        #expect(throws: ProtocolError.self) { try BinaryFraming.decodeBytesElements(strings, count: 2) }
        #expect(throws: ProtocolError.self) { try BinaryFraming.decodeBytesElements(strings, count: 4) }
        #expect(throws: ProtocolError.self) { try BinaryFraming.decodeBytesElements(Data([9, 0, 0, 0, 1]), count: 1) }
    }

    @Test func parameterValues() throws {
        let p = try JSONDecoder().decode(Parameters.self, from: Data(#"{"a": true, "b": 3, "c": 1.5, "d": "x"}"#.utf8))
        #expect(p == ["a": .bool(true), "b": .int(3), "c": .double(1.5), "d": .string("x")])
        #expect(ParameterValue.string("true").boolValue == true)
    }

    @Test func sizeAndDurationFlags() {
        #expect(ServerLauncher.parseBytes("64MiB") == 64 << 20)
        #expect(ServerLauncher.parseBytes("1g") == 1 << 30)
        #expect(ServerLauncher.parseBytes("123") == 123)
        #expect(ServerLauncher.parseBytes("12 parsecs") == nil)
        #expect(ServerLauncher.parseDuration("500ms") == .milliseconds(500))
        #expect(ServerLauncher.parseDuration("2m") == .seconds(120))
        #expect(ServerLauncher.parseDuration("1.5") == .milliseconds(1500))
    }

    @Test func engineErrorsMapTo400Or413() {
        #expect(ServerError(engine: .init(.memoryLimit, "big")).code == .payloadTooLarge)
        #expect(ServerError(engine: .init(.shapeMismatch, "s")).code == .badRequest)
        #expect(ServerError(engine: .init(.invalidModel, "m")).code == .badRequest)
        #expect(ServerError(engine: .init(.cancelled, "c")).code == .timeout)
        struct Secret: Error {}
        #expect(ServerError.wrap(Secret()) == ServerError(.internal, "internal error"))
    }
}

@Suite struct WorkerPoolTests {
    @Test func admissionQueueDeadlineAndCancellation() async throws {
        let pool = WorkerPool(name: "test-pool", threads: 1, maxQueued: 1)
        let r1 = try pool.reserve()
        let r2 = try pool.reserve()
        #expect(throws: ServerError.self) { try pool.reserve() }
        let busy = Task { try await pool.run(r1) { flag in
            // Busy until cancelled (bounded), so a loaded machine cannot make it finish before the checks below.
            let end = Date().addingTimeInterval(60)
            while Date() < end && !flag.isCancelled { usleep(1000) }
            return flag.isCancelled ? 0 : 1
        } }
        for _ in 0..<2000 where pool.runningCount == 0 { try await Task.sleep(for: .milliseconds(5)) }
        #expect(pool.runningCount == 1)
        // A job still waiting at its deadline fails at once, without waiting for the busy worker.
        let start = ContinuousClock.now
        await #expect(throws: ServerError(.timeout, "the request waited longer than the request timeout for a worker")) {
            try await pool.run(r2, deadline: .now + .milliseconds(100)) { _ in 2 }
        }
        #expect(ContinuousClock.now - start < .seconds(5))
        #expect(pool.reservedCount == 1)
        // Cancelling the caller sets the job's flag; the job stops early.
        busy.cancel()
        #expect(try await busy.value == 0)
        #expect(pool.reservedCount == 0)
        // The pool still works.
        #expect(try await pool.run(try pool.reserve()) { _ in 3 } == 3)
        await pool.shutdown()
        #expect(throws: ServerError.self) { try pool.reserve() }
    }
}

/// An inference body is gathered so that its binary tensors can be used in place.
@Suite struct RequestBodyTests {
    static func chunks(_ data: Data, sizes: [Int]) -> AsyncStream<ByteBuffer> {
        AsyncStream { c in
            var rest = data[...]
            for n in sizes where !rest.isEmpty {
                c.yield(ByteBuffer(bytes: rest.prefix(n)))
                rest = rest.dropFirst(n)
            }
            if !rest.isEmpty { c.yield(ByteBuffer(bytes: rest)) }
            c.finish()
        }
    }

    @Test func binaryTensorsAreUsedInPlace() async throws {
        let server = try makeServer()
        let header = Data(#"{"inputs":[{"x":1}]}"#.utf8)   // 19 bytes: the binary part starts unaligned
        let floats: [Float] = (0..<1000).map { Float($0) * 0.5 }
        let payload = header + floats.withUnsafeBytes { Data($0) }

        let body = try await server.collectRequestBody(Self.chunks(payload, sizes: [7, 1000, 50]), limit: 1 << 20, lease: server.bodyBudget.lease(),
                                                       expected: payload.count, alignedAt: header.count)
        #expect(body == payload)
        let (_, binary) = try BinaryFraming.split(body, headerLength: header.count)
        let t = try TensorCoding.fromBinary(binary, name: "x", dataType: .float32, oip: .fp32, shape: [1000], count: 1000, limits: .default)
        #expect(!t.storage.ownsMemory)
        #expect(Int(bitPattern: t.storage.base) % 64 == 0)
        #expect(t.scalars(as: Float.self) == floats)

        // Length not declared (chunked): gathered as it comes, the tensor is a copy with the same values.
        let plain = try await server.collectRequestBody(Self.chunks(payload, sizes: [3]), limit: 1 << 20, lease: server.bodyBudget.lease())
        let (_, binary2) = try BinaryFraming.split(plain, headerLength: header.count)
        let t2 = try TensorCoding.fromBinary(binary2, name: "x", dataType: .float32, oip: .fp32, shape: [1000], count: 1000, limits: .default)
        #expect(t2.scalars(as: Float.self) == floats)

        // The tensor limits still apply to a tensor used in place.
        #expect(throws: EngineError.self) {
            _ = try TensorCoding.fromBinary(binary, name: "x", dataType: .float32, oip: .fp32, shape: [1000], count: 1000,
                                            limits: TensorLimits(maxTensorBytes: 1000))
        }
        await server.shutdown()
    }

    @Test func aBodyLongerThanDeclaredIsRefused() async throws {
        let server = try makeServer()
        let payload = Data(repeating: 1, count: 300)
        await #expect(throws: ServerError.self) {
            _ = try await server.collectRequestBody(Self.chunks(payload, sizes: [100]), limit: 1 << 20, lease: server.bodyBudget.lease(), expected: 200, alignedAt: 10)
        }
        await server.shutdown()
    }
}

/// Error codes are growable structs, so the HTTP boundary's mapping has a `default:`; this test is what keeps
/// every defined code on its own status.
@Suite struct ErrorCodeStatusTests {
    @Test func everyServerCodeHasItsStatus() {
        #expect(ServerError.Code.allCases.count == Set(ServerError.Code.allCases).count)
        for code in ServerError.Code.allCases where code != .internal {
            #expect(code.httpStatus.code != 500, "\(code) falls through to 500")
        }
        #expect(ServerError.Code.internal.httpStatus.code == 500)
    }

    @Test func codesAreSnakeCase() {
        let codes = ServerError.Code.allCases.map(\.rawValue) + EngineError.Code.allCases.map(\.rawValue)
        for c in codes {
            #expect(c.range(of: "^[a-z][a-z0-9]*(_[a-z0-9]+)*$", options: .regularExpression) != nil, "\(c)")
        }
    }
}
