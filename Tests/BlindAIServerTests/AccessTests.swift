import BlindAIProtocol
import BlindAIServer
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import NIOCore
import Testing

/// API keys, ownership, shared and private models, repository limits, interrupted uploads.
@Suite struct AccessTests {
    @Test func keysAreRequiredForUploadUnloadAndInference() async throws {
        let server = try makeServer(keys: true)
        try await server.makeApplication().test(.router) { client throws in
            // Health and server metadata stay open.
            try await client.execute(uri: "/v2/health/ready", method: .get) { r throws in #expect(r.status == .ok) }
            try await client.execute(uri: "/v2", method: .get) { r throws in #expect(r.status == .ok) }

            let anon = try await client.upload("add_relu", as: "m")
            #expect(anon.status == .unauthorized)
            #expect(anon.headers[.wwwAuthenticate] == "Bearer")
            let wrong = try await client.upload("add_relu", as: "m", key: "not-a-valid-secret-at-all")
            #expect(wrong.status == .unauthorized)
            #expect(errorMessage(wrong) == "invalid API key")
            let malformed = try await client.execute(uri: "/v2/repository/models/m", method: .put, headers: headers([(.authorization, "Basic abc")]), body: body("x"))
            #expect(malformed.status == .unauthorized)

            #expect(try await client.upload("add_relu", as: "m", key: Keys.alice).status == .created)
            #expect(try await client.infer("m", addRequest()).status == .unauthorized)
            #expect(try await client.infer("m", addRequest(), key: Keys.alice).status == .ok)
            let unloadAnon = try await client.execute(uri: "/v2/repository/models/m/unload", method: .post)
            #expect(unloadAnon.status == .unauthorized)
            let loadAnon = try await client.execute(uri: "/v2/repository/models/m/load", method: .post)
            #expect(loadAnon.status == .unauthorized)
        }
    }

    @Test func privateModelsBelongToTheirOwner() async throws {
        let server = try makeServer(keys: true)
        try await server.makeApplication().test(.router) { client throws in
            let up = try await client.upload("add_relu", as: "alices", key: Keys.alice)
            #expect(try decode(ModelUploadResponse.self, up).shared == false)

            // Bob cannot see, run, replace or unload it; his own "alices" would be another model.
            #expect(try await client.infer("alices", addRequest(), key: Keys.bob).status == .notFound)
            try await client.execute(uri: "/v2/models/alices", method: .get, headers: bearer(Keys.bob)) { r throws in #expect(r.status == .notFound) }
            try await client.execute(uri: "/v2/models/alices/ready", method: .get) { r throws in #expect(r.status == .notFound) }
            #expect(try await client.upload("scale", as: "alice:alices", key: Keys.bob).status == .forbidden)
            try await client.execute(uri: "/v2/repository/models/alices/unload", method: .post, headers: bearer(Keys.bob)) { r throws in #expect(r.status == .notFound) }
            try await client.execute(uri: "/v2/repository/index", method: .post, headers: bearer(Keys.bob)) { r throws in
                #expect(try decode([RepositoryIndexEntry].self, r).isEmpty)
            }
            // The failed replacement left Alice's model untouched.
            let meta = try await client.execute(uri: "/v2/models/alices", method: .get, headers: bearer(Keys.alice))
            #expect(try decode(ModelMetadataResponse.self, meta).inputs.count == 2)

            // An admin sees and may run and replace it by its full name; the owner stays Alice.
            #expect(try await client.infer("alice:alices", addRequest(), key: Keys.admin).status == .ok)
            #expect(try await client.infer("alices", addRequest(), key: Keys.admin).status == .notFound)
            try await client.execute(uri: "/v2/repository/index", method: .post, headers: bearer(Keys.admin)) { r throws in
                #expect(try decode([RepositoryIndexEntry].self, r).map(\.name) == ["alice:alices"])
            }
            #expect(try await client.upload("add_relu", as: "alice:alices", key: Keys.admin).status == .ok)
            #expect(try await client.infer("alices", addRequest(), key: Keys.alice).status == .ok)
            #expect(try await client.upload("add_relu", as: "alices", key: Keys.alice).status == .ok)
            try await client.execute(uri: "/v2/repository/models/alices/unload", method: .post, headers: bearer(Keys.alice)) { r throws in #expect(r.status == .ok) }
        }
    }

    @Test func sharedModelsCanBeRunByAnyKey() async throws {
        let server = try makeServer(keys: true)
        try await server.makeApplication().test(.router) { client throws in
            let up = try await client.upload("add_relu", as: "pub", key: Keys.alice, query: "?shared=true")
            #expect(try decode(ModelUploadResponse.self, up).shared)
            #expect(try await client.infer("pub", addRequest(), key: Keys.bob).status == .ok)
            // Anonymous callers may see a shared model but not run it.
            try await client.execute(uri: "/v2/models/pub", method: .get) { r throws in #expect(r.status == .ok) }
            #expect(try await client.infer("pub", addRequest()).status == .unauthorized)
            // Sharing does not give the right to replace or unload.
            #expect(try await client.upload("scale", as: "alice:pub", key: Keys.bob).status == .forbidden)
            try await client.execute(uri: "/v2/repository/models/pub/unload", method: .post, headers: bearer(Keys.bob)) { r throws in #expect(r.status == .forbidden) }
            // The owner can make it private again (replacement keeps the setting unless given).
            #expect(try await client.upload("add_relu", as: "pub", key: Keys.alice).status == .ok)
            #expect(try await client.infer("pub", addRequest(), key: Keys.bob).status == .ok)
            #expect(try await client.upload("add_relu", as: "pub", key: Keys.alice, query: "?visibility=private").status == .ok)
            #expect(try await client.infer("pub", addRequest(), key: Keys.bob).status == .notFound)
            #expect(try await client.upload("add_relu", as: "pub", key: Keys.alice, query: "?shared=maybe").status == .badRequest)
        }
    }

    /// Each key has its own namespace: for Bob, Alice's private model and her upload in progress answer exactly
    /// as a name nobody uses, on every route (PUT and load create Bob's own model in both cases). Shared names
    /// are unique among shared models; admins and explicit `owner:name` reach other namespaces.
    @Test func otherKeysModelsAreIndistinguishableFromUnknownNames() async throws {
        let server = try makeServer(keys: true)
        let alice = Principal.key(id: "alice", admin: false)
        try await server.makeApplication().test(.router) { client throws in
            #expect(try await client.upload("add_relu", as: "alices", key: Keys.alice).status == .created)
            let ticket = try await server.repository.beginUpload(name: "inprogress", principal: alice)

            /// Status and message of one request on `name`, with the name itself blanked out.
            func answer(_ method: HTTPRequest.Method, _ path: String, _ name: String, key: String?, body b: ByteBuffer? = nil) async throws -> String {
                let r = try await client.execute(uri: path.replacingOccurrences(of: "{}", with: name), method: method, headers: bearer(key), body: b)
                return "\(r.status.code) \(String(buffer: r.body).replacingOccurrences(of: name, with: "{}"))"
            }
            let infer = try body(addRequest())
            let routes: [(HTTPRequest.Method, String, ByteBuffer?)] = [
                (.get, "/v2/models/{}", nil), (.get, "/v2/models/{}/versions/1", nil),
                (.get, "/v2/models/{}/ready", nil), (.get, "/v2/models/{}/versions/1/ready", nil),
                (.post, "/v2/models/{}/infer", infer), (.post, "/v2/models/{}/versions/1/infer", infer),
                (.post, "/v2/repository/models/{}/load", nil), (.post, "/v2/repository/models/{}/unload", nil),
            ]
            for key in [Keys.bob, nil] {
                for (method, path, b) in routes {
                    let unknown = try await answer(method, path, "nobodys", key: key, body: b)
                    #expect(unknown.hasPrefix("40"), "\(path): \(unknown)")
                    for taken in ["alices", "inprogress"] {
                        #expect(try await answer(method, path, taken, key: key, body: b) == unknown, "\(method) \(path) on \(taken)")
                    }
                    #expect(try await answer(method, path, "alice:alices", key: key, body: b) == answer(method, path, "alice:nobodys", key: key, body: b))
                }
            }
            // Writing: Bob's PUT and inline load of those names create his own models, as for an unused name; a
            // full name in Alice's namespace is refused whether or not it exists.
            for name in ["alices", "inprogress", "nobodys"] {
                let up = try await client.upload("scale", as: name, key: Keys.bob)
                #expect(up.status == .created, "\(name): \(errorMessage(up))")
            }
            let load = RepositoryModelRequest(parameters: ["file:1/model.onnx": .string(try Fixture.data("scale").base64EncodedString())])
            for name in ["alices2", "nobodys2"] {
                #expect(try await answer(.post, "/v2/repository/models/{}/load", name, key: Keys.bob, body: body(load)).hasPrefix("200"))
            }
            for name in ["alice:alices", "alice:nobodys"] {
                #expect(try await client.upload("scale", as: name, key: Keys.bob).status == .forbidden)
            }
            try await client.execute(uri: "/v2/repository/index", method: .post, headers: bearer(Keys.bob)) { r throws in
                #expect(try decode([RepositoryIndexEntry].self, r).map(\.name) == ["alices", "alices2", "inprogress", "nobodys", "nobodys2"])
            }
            // Alice's model is untouched (two inputs; Bob's "scale" has one) and her upload still pending.
            let meta = try await client.execute(uri: "/v2/models/alices", method: .get, headers: bearer(Keys.alice))
            #expect(try decode(ModelMetadataResponse.self, meta).inputs.count == 2)
            #expect(try await client.infer("alices", addRequest(), key: Keys.alice).status == .ok)
            try await client.execute(uri: "/v2/repository/index", method: .post, headers: bearer(Keys.alice)) { r throws in
                #expect(try decode([RepositoryIndexEntry].self, r).map(\.name) == ["alices", "inprogress"])
            }
            // The admin sees both namespaces, by full name.
            try await client.execute(uri: "/v2/repository/index", method: .post, headers: bearer(Keys.admin)) { r throws in
                #expect(try decode([RepositoryIndexEntry].self, r).map(\.name)
                        == ["alice:alices", "alice:inprogress", "bob:alices", "bob:alices2", "bob:inprogress", "bob:nobodys", "bob:nobodys2"])
            }
            await server.repository.abort(ticket)

            // Shared names: unique among shared models, reachable by their bare name from every namespace.
            #expect(try await client.upload("add_relu", as: "pub", key: Keys.alice, query: "?shared=true").status == .created)
            let clash = try await client.upload("add_relu", as: "pub", key: Keys.bob, query: "?shared=true")
            #expect(clash.status == .conflict)
            #expect(try await client.infer("pub", addRequest(), key: Keys.bob).status == .ok)
            try await client.execute(uri: "/v2/models/pub", method: .get) { r throws in #expect(r.status == .ok) }
            // Bob's own private "pub" comes first for Bob; others still reach Alice's.
            #expect(try await client.upload("scale", as: "pub", key: Keys.bob).status == .created)
            try await client.execute(uri: "/v2/models/pub", method: .get, headers: bearer(Keys.bob)) { r throws in
                #expect(try decode(ModelMetadataResponse.self, r).inputs.count == 1)
            }
            try await client.execute(uri: "/v2/models/alice:pub", method: .get, headers: bearer(Keys.bob)) { r throws in
                #expect(try decode(ModelMetadataResponse.self, r).inputs.count == 2)
            }
            try await client.execute(uri: "/v2/models/pub", method: .get, headers: bearer(Keys.admin)) { r throws in
                #expect(try decode(ModelMetadataResponse.self, r).inputs.count == 2)
            }
        }
    }

    @Test func repositoryLimits() async throws {
        let size = try Fixture.data("add_relu").count
        let server = try makeServer { $0.maxModels = 2; $0.maxTotalModelBytes = size * 2 + 10 }
        try await server.makeApplication().test(.router) { client throws in
            #expect(try await client.upload("add_relu", as: "one").status == .created)
            #expect(try await client.upload("add_relu", as: "two").status == .created)
            let three = try await client.upload("scale", as: "three")
            #expect(three.status.code == 507)
            // Replacing is allowed at the limit.
            #expect(try await client.upload("add_relu", as: "two").status == .ok)
            try await client.execute(uri: "/v2/repository/models/one/unload", method: .post) { r throws in #expect(r.status == .ok) }
            #expect(try await client.upload("scale", as: "three").status == .created)
        }
        let memory = try makeServer { $0.maxTotalModelBytes = size + 10 }
        try await memory.makeApplication().test(.router) { client throws in
            #expect(try await client.upload("add_relu", as: "one").status == .created)
            #expect(try await client.upload("add_relu", as: "two").status.code == 507)
        }
        #expect(await memory.repository.count == 1)
    }

    /// A body that delivers some bytes and then fails, as a client that disconnects mid-upload.
    struct BrokenBody: AsyncSequence, Sendable {
        typealias Element = ByteBuffer
        let bytes: [UInt8]
        struct Disconnected: Error {}
        struct AsyncIterator: AsyncIteratorProtocol {
            var sent = false
            let bytes: [UInt8]
            mutating func next() async throws -> ByteBuffer? {
                if sent { throw Disconnected() }
                sent = true
                return ByteBuffer(bytes: bytes)
            }
        }
        func makeAsyncIterator() -> AsyncIterator { AsyncIterator(bytes: bytes) }
    }

    @Test func interruptedUploadLeavesThePreviousVersion() async throws {
        let server = try makeServer()
        let original = try Fixture.data("add_relu")
        let first = try await server.upload(name: "m", principal: .open, shared: nil, declaredLength: nil, body: SingleBuffer(bytes: Array(original)))
        #expect(first.version == "1")

        let replacement = try Fixture.data("scale")
        await #expect(throws: ServerError.self) {
            try await server.upload(name: "m", principal: .open, shared: nil, declaredLength: replacement.count, body: BrokenBody(bytes: Array(replacement.prefix(40))))
        }
        let m = try await server.repository.lookup(name: "m", version: nil, principal: .open)
        #expect(m.version == 1)
        #expect(m.inputs.map(\.name) == ["a", "b"])
        #expect(await server.repository.uploadsInProgress == 0)

        // A short body (Content-Length larger than what arrived) is refused too.
        await #expect(throws: ServerError.self) {
            try await server.upload(name: "m", principal: .open, shared: nil, declaredLength: replacement.count + 5, body: SingleBuffer(bytes: Array(replacement)))
        }
        // An interrupted first upload registers nothing.
        await #expect(throws: ServerError.self) {
            try await server.upload(name: "fresh", principal: .open, shared: nil, declaredLength: nil, body: BrokenBody(bytes: Array(original.prefix(10))))
        }
        await #expect(throws: ServerError.self) {
            try await server.repository.lookup(name: "fresh", version: nil, principal: .open)
        }
        #expect(await server.repository.count == 1)
        #expect(server.loadPool.reservedCount == 0)
    }

    @Test func concurrentUploadOfTheSameNameConflicts() async throws {
        let server = try makeServer()
        let ticket = try await server.repository.beginUpload(name: "busy", principal: .open)
        await #expect(throws: ServerError(.conflict, "an upload of model 'busy' is already in progress")) {
            try await server.upload(name: "busy", principal: .open, shared: nil, declaredLength: nil, body: SingleBuffer(bytes: Array(try Fixture.data("add_relu"))))
        }
        try await server.makeApplication().test(.router) { client throws in
            let r = try await client.upload("add_relu", as: "busy")
            #expect(r.status == .conflict)
            try await client.execute(uri: "/v2/repository/index", method: .post) { r throws in
                #expect(try decode([RepositoryIndexEntry].self, r) == [RepositoryIndexEntry(name: "busy", version: nil, state: "LOADING", reason: "upload in progress")])
            }
        }
        await server.repository.abort(ticket)
        #expect(try await server.upload(name: "busy", principal: .open, shared: nil, declaredLength: nil,
                                        body: SingleBuffer(bytes: Array(try Fixture.data("add_relu")))).version == "1")
    }
}

struct SingleBuffer: AsyncSequence, Sendable {
    typealias Element = ByteBuffer
    let bytes: [UInt8]
    struct AsyncIterator: AsyncIteratorProtocol {
        var bytes: [UInt8]?
        mutating func next() async throws -> ByteBuffer? {
            defer { bytes = nil }
            return bytes.map { ByteBuffer(bytes: $0) }
        }
    }
    func makeAsyncIterator() -> AsyncIterator { AsyncIterator(bytes: bytes) }
}
