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

            // Bob cannot see, run, replace or unload it; the name is taken.
            #expect(try await client.infer("alices", addRequest(), key: Keys.bob).status == .notFound)
            try await client.execute(uri: "/v2/models/alices", method: .get, headers: bearer(Keys.bob)) { r throws in #expect(r.status == .notFound) }
            try await client.execute(uri: "/v2/models/alices/ready", method: .get) { r throws in #expect(r.status == .notFound) }
            let replace = try await client.upload("scale", as: "alices", key: Keys.bob)
            #expect(replace.status == .forbidden)
            try await client.execute(uri: "/v2/repository/models/alices/unload", method: .post, headers: bearer(Keys.bob)) { r throws in #expect(r.status == .notFound) }
            try await client.execute(uri: "/v2/repository/index", method: .post, headers: bearer(Keys.bob)) { r throws in
                #expect(try decode([RepositoryIndexEntry].self, r).isEmpty)
            }
            // The failed replacement left Alice's model untouched.
            let meta = try await client.execute(uri: "/v2/models/alices", method: .get, headers: bearer(Keys.alice))
            #expect(try decode(ModelMetadataResponse.self, meta).inputs.count == 2)

            // An admin sees and may run and replace it; the owner stays Alice.
            #expect(try await client.infer("alices", addRequest(), key: Keys.admin).status == .ok)
            try await client.execute(uri: "/v2/repository/index", method: .post, headers: bearer(Keys.admin)) { r throws in
                #expect(try decode([RepositoryIndexEntry].self, r).map(\.name) == ["alices"])
            }
            #expect(try await client.upload("add_relu", as: "alices", key: Keys.admin).status == .ok)
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
            #expect(try await client.upload("scale", as: "pub", key: Keys.bob).status == .forbidden)
            try await client.execute(uri: "/v2/repository/models/pub/unload", method: .post, headers: bearer(Keys.bob)) { r throws in #expect(r.status == .forbidden) }
            // The owner can make it private again (replacement keeps the setting unless given).
            #expect(try await client.upload("add_relu", as: "pub", key: Keys.alice).status == .ok)
            #expect(try await client.infer("pub", addRequest(), key: Keys.bob).status == .ok)
            #expect(try await client.upload("add_relu", as: "pub", key: Keys.alice, query: "?visibility=private").status == .ok)
            #expect(try await client.infer("pub", addRequest(), key: Keys.bob).status == .notFound)
            #expect(try await client.upload("add_relu", as: "pub", key: Keys.alice, query: "?shared=maybe").status == .badRequest)
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
