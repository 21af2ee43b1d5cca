import AsyncHTTPClient
import BlindAIProtocol
@testable import BlindAIServer
import Foundation
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import Testing

/// A raw TCP client that sends `head`, then `chunk` every `interval` until the server answers and closes (or
/// `maxChunks` were sent), reading all the while. Returns what the server sent and whether it closed the
/// connection (rather than the client giving up).
func trickle(port: Int, head: String, chunk: [UInt8] = [0x20], interval: Duration, maxChunks: Int) async throws -> (answer: String, serverClosed: Bool) {
    let channel = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
        .connect(host: "127.0.0.1", port: port) { channel in
            channel.eventLoop.makeCompletedFuture {
                try NIOAsyncChannel<ByteBuffer, ByteBuffer>(wrappingChannelSynchronously: channel)
            }
        }
    let raw = channel.channel
    let gaveUp = NIOLockedValueBox(false)
    return try await channel.executeThenClose { inbound, outbound in
        try await outbound.write(ByteBuffer(string: head))
        let writer = Task {
            for _ in 0..<maxChunks {
                try await Task.sleep(for: interval)
                try await outbound.write(ByteBuffer(bytes: chunk))
            }
            // Everything sent and no close from the server: give up (the test then fails on `serverClosed`).
            gaveUp.withLockedValue { $0 = true }
            raw.close(promise: nil)
        }
        var answer = ""
        do {
            for try await part in inbound { answer += String(buffer: part) }
        } catch {
            // A reset after the answer is a close too.
        }
        writer.cancel()
        return (answer, !gaveUp.withLockedValue { $0 })
    }
}

/// Slow and stalled request bodies: held to a total deadline and a minimum rate, holding no worker or upload slot
/// while they arrive.
@Suite(.serialized) struct SlowClientTests {
    static func port(_ base: String) -> Int { Int(base.split(separator: ":").last!)! }

    /// One worker, no queue, one upload slot: a client trickling an inference body and one trickling an upload
    /// used to hold them (every other inference and upload got 429 until the idle timeout, which each byte resets).
    /// Now both are answered while the tricklers trickle, and each trickler gets 408 and a closed connection at its
    /// deadline, leaving no slot, name or budget behind.
    @Test func tricklingBodiesHoldNoSlotAndAreCutOff() async throws {
        let server = try makeServer {
            $0.concurrentInferences = 1; $0.queueLength = 0; $0.concurrentUploads = 1
            $0.bodyGracePeriod = .seconds(5); $0.minBodyBytesPerSecond = 1000; $0.bodyTimeout = .seconds(20)
        }
        try await server.repository.loadFixture("add_relu", as: "m")
        try await withLiveServer(server) { base, client in
            let port = Self.port(base)
            let infer = "POST /v2/models/m/infer HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: 400\r\n\r\n{"
            let put = "PUT /v2/repository/models/slow HTTP/1.1\r\nHost: localhost\r\nContent-Length: 5000\r\n\r\n\u{8}"
            let start = ContinuousClock.now
            let tricklers = [infer, put].map { head in
                Task { try await trickle(port: port, head: head, interval: .milliseconds(100), maxChunks: 300) }
            }
            try await Task.sleep(for: .milliseconds(300))
            // Both bodies are being received now; the only worker and the only upload slot stay free.
            let json = try JSONEncoder().encode(addRequest(id: "fast"))
            let r = try await client.send(base + "/v2/models/m/infer", .POST, body: json)
            #expect(r.status == 200, "\(r.error)")
            let up = try await client.send(base + "/v2/repository/models/other", .PUT, body: try Fixture.data("scale"))
            #expect(up.status == 201, "\(up.error)")
            #expect(ContinuousClock.now - start < .seconds(5), "the tricklers were cut off before the check: lengthen the grace period")

            for t in tricklers {
                let (answer, closed) = try await t.value
                #expect(answer.hasPrefix("HTTP/1.1 408"), "\(answer.prefix(120))")
                #expect(answer.contains("body_timeout") || answer.contains("too slowly"), "\(answer)")
                #expect(closed, "the server did not close the trickling connection")
            }
            #expect(server.inferencePool.reservedCount == 0)
            #expect(server.loadPool.reservedCount == 0)
            #expect(server.bodyBudget.bytesInUse == 0)
            #expect(await server.repository.uploadsInProgress == 0)
            await #expect(throws: ServerError.self) { try await server.repository.lookup(name: "slow", version: nil, principal: .open) }
        }
        await server.shutdown()
    }

    /// A body fast enough for the rate rule but longer than the total deadline is cut off at the total deadline;
    /// a route that answered without reading the body (404) does not keep draining a trickle past its deadline.
    @Test func totalDeadlineAndDrainedBodies() async throws {
        let server = try makeServer {
            $0.bodyGracePeriod = .milliseconds(200); $0.minBodyBytesPerSecond = 100; $0.bodyTimeout = .milliseconds(1500)
        }
        try await withLiveServer(server) { base, _ in
            let port = Self.port(base)
            let head = "PUT /v2/repository/models/big HTTP/1.1\r\nHost: localhost\r\nContent-Length: 1000000\r\n\r\n\u{8}"
            let (answer, closed) = try await trickle(port: port, head: head, chunk: [UInt8](repeating: 1, count: 100),
                                                     interval: .milliseconds(50), maxChunks: 400)
            #expect(answer.hasPrefix("HTTP/1.1 408"), "\(answer.prefix(120))")
            #expect(answer.contains("did not arrive within 1.500 s"), "\(answer)")
            #expect(closed)

            let unknown = "POST /v2/models/nothing/infer HTTP/1.1\r\nHost: localhost\r\nContent-Length: 1000\r\n\r\n{"
            let (early, earlyClosed) = try await trickle(port: port, head: unknown, interval: .milliseconds(50), maxChunks: 400)
            #expect(early.hasPrefix("HTTP/1.1 404"), "\(early.prefix(120))")
            #expect(earlyClosed, "the drained trickle was not cut off")
            #expect(server.bodyBudget.bytesInUse == 0)
        }
        await server.shutdown()
    }

    /// Bodies held in memory count against one budget for all requests: over it while others hold it, 503 with
    /// Retry-After; a body that alone needs more than the budget, 413. Nothing is held once requests end.
    @Test func bodyBudget() async throws {
        let model = try Fixture.data("add_relu")
        let budget = model.count * 2
        let server = try makeServer { $0.maxBufferedBodyBytes = budget }
        try await server.makeApplication().test(.router) { client throws in
            let held = server.bodyBudget.lease()
            try held.grow(by: budget - model.count / 2)
            let busy = try await client.upload("add_relu", as: "m")
            #expect(busy.status == .serviceUnavailable, "\(errorMessage(busy))")
            #expect(busy.headers[.retryAfter] == "1")
            #expect(errorMessage(busy).contains("retry later"))
            held.release()
            #expect(try await client.upload("add_relu", as: "m").status == .created)
            #expect(try await client.infer("m", addRequest()).status == .ok)
            try held.grow(by: budget - 10)
            let busyInfer = try await client.infer("m", addRequest())
            #expect(busyInfer.status == .serviceUnavailable, "\(errorMessage(busyInfer))")
            held.release()

            // An inline load's base64 body alone is over the budget.
            let b64 = Data(repeating: UInt8(ascii: "A"), count: budget + 4).base64EncodedString()
            let load = RepositoryModelRequest(parameters: ["file:1/model.onnx": .string(b64)])
            let tooBig = try await client.execute(uri: "/v2/repository/models/x/load", method: .post, body: body(load))
            #expect(tooBig.status == .contentTooLarge, "\(errorMessage(tooBig))")
            #expect(errorMessage(tooBig).contains("request bodies"))
        }
        #expect(server.bodyBudget.bytesInUse == 0)
    }
}

@Suite struct BodyPaceTests {
    let pace = BodyPace(total: .seconds(600), grace: .seconds(10), minBytesPerSecond: 64 << 10)

    @Test func deadlineGrowsWithTheBytesReceived() {
        #expect(pace.deadline(received: 0) == .seconds(10))
        #expect(pace.deadline(received: 64 << 10) == .seconds(11))
        #expect(pace.deadline(received: (64 << 10) * 5 / 2) == .seconds(12.5))
        // Capped by the total deadline, without overflow.
        #expect(pace.deadline(received: 1 << 40) == .seconds(600))
        #expect(pace.deadline(received: Int.max) == .seconds(600))
        #expect(BodyPace(total: .seconds(5), grace: .seconds(1), minBytesPerSecond: 0).deadline(received: 0) == .seconds(5))
    }

    @Test func tricklersAreLateAndSteadyClientsAreNot() {
        // One byte a second: late once the grace period is spent.
        #expect(!pace.isLate(elapsed: .seconds(9), received: 9))
        #expect(pace.isLate(elapsed: .seconds(10.001), received: 10))
        // 1 MiB/s for 100 s: far ahead of 64 KiB/s.
        #expect(!pace.isLate(elapsed: .seconds(100), received: 100 << 20))
        // A fast start then a stall: the bytes sent earn time, then the deadline passes.
        #expect(!pace.isLate(elapsed: .seconds(20), received: 1 << 20))
        #expect(pace.isLate(elapsed: .seconds(27), received: 1 << 20))
        // However fast, never past the total deadline.
        #expect(pace.isLate(elapsed: .seconds(600), received: 1 << 40))
    }

    @Test func errorsSayWhichRule() {
        #expect(pace.error(elapsed: .seconds(11), received: 11).code == .bodyTimeout)
        #expect(pace.error(elapsed: .seconds(11), received: 11).message.contains("too slowly"))
        #expect(pace.error(elapsed: .seconds(600), received: 1 << 30).message.contains("did not arrive within 600 s"))
    }
}

@Suite struct BodyBudgetTests {
    @Test func leasesShareOneLimit() throws {
        let budget = BodyBudget(limit: 1000)
        let a = budget.lease()
        try a.grow(by: 600)
        let b = budget.lease()
        #expect(throws: ServerError(.unavailable, "the server holds as many request bodies in memory as it may (1000 bytes); retry later")) {
            try b.grow(by: 500)
        }
        #expect(b.bytes == 0)
        try b.grow(by: 400)
        #expect(budget.bytesInUse == 1000)
        // A request that alone needs more than the budget: 413, whatever the others hold.
        a.release()
        #expect(throws: ServerError(.payloadTooLarge, "the request needs more than the 1000 bytes the server may hold for request bodies")) {
            try b.grow(by: 601)
        }
        b.shrink(by: 100)
        #expect(budget.bytesInUse == 300)
        do {
            let c = budget.lease()
            try c.grow(by: 700)
            #expect(budget.bytesInUse == 1000)
        }
        // A dropped lease gives its bytes back.
        #expect(budget.bytesInUse == 300)
    }
}

/// A provider that blocks its thread (as configfs-tsm writes, ioctls and quote-service calls do) until released,
/// recording the threads it ran on.
final class BlockingProvider: AttestationProvider {
    let gate = DispatchSemaphore(value: 0)
    let entered = NIOLockedValueBox(0)
    let released = NIOLockedValueBox(false)
    /// The executor the calls should run on, and whether each call did.
    let executor = NIOLockedValueBox<BlockingExecutor?>(nil)
    let onExecutor = NIOLockedValueBox<[Bool]>([])

    func evidence(nonce: [UInt8], tls: TLSPublicIdentity, claims: ServerClaims) async throws -> AttestationEvidence {
        block()
        return AttestationEvidence(contentType: "application/octet-stream", body: Data(nonce))
    }

    private func block() {
        let owned = executor.withLockedValue { $0?.ownsCurrentThread() ?? false }
        onExecutor.withLockedValue { $0.append(owned) }
        entered.withLockedValue { $0 += 1 }
        // Bounded so that a failing run ends instead of hanging.
        _ = gate.wait(timeout: .now() + 20)
    }

    func release(_ n: Int) {
        released.withLockedValue { $0 = true }
        for _ in 0..<n { gate.signal() }
    }
}

@Suite(.serialized) struct AttestationExecutorTests {
    /// Attestation needs no key. Its provider calls block: they run on the attestation threads (never on the
    /// Swift concurrency pool, whose few threads they used to hold, stalling every route), and past one running
    /// and one waiting the next request gets 429 at once. Health checks answer while the provider is blocked.
    @Test func blockingProviderCallsRunOnTheirOwnBoundedThreads() async throws {
        let provider = BlockingProvider()
        let server = try makeServer(tls: true, attestation: provider) { $0.attestationThreads = 1; $0.attestationQueueLength = 1 }
        provider.executor.withLockedValue { $0 = server.attestationExecutor }
        try await withLiveServer(server) { base, client in
            let request = try JSONEncoder().encode(AttestationRequest(nonce: Data(count: 32).base64EncodedString()))
            let first = (0..<2).map { _ in Task { try await client.send(base + "/v2/attestation", .POST, body: request) } }
            for _ in 0..<2000 where provider.entered.withLockedValue({ $0 }) < 1 || server.attestationExecutor.admittedCount < 2 {
                try await Task.sleep(for: .milliseconds(5))
            }
            #expect(server.attestationExecutor.admittedCount == 2)
            let refused = try await client.send(base + "/v2/attestation", .POST, body: request)
            #expect(refused.status == 429, "\(refused.error)")
            #expect(refused.headers.first(name: "retry-after") == "1")
            for _ in 0..<4 {
                #expect(try await client.send(base + "/v2/health/ready").status == 200)
                #expect(try await client.send(base + "/v2").status == 200)
            }
            #expect(!provider.released.withLockedValue { $0 }, "the health checks answered only after the provider was released")
            #expect(provider.entered.withLockedValue { $0 } == 1, "a second provider call ran beside the first")
            provider.release(2)
            for t in first { #expect(try await t.value.status == 200) }
            #expect(provider.onExecutor.withLockedValue { $0 } == [true, true], "a provider call ran on another thread")
            #expect(server.attestationExecutor.admittedCount == 0)
        }
        await server.shutdown()
    }

    @Test func executorAdmission() async throws {
        let executor = BlockingExecutor(name: "test-exec", threads: 1, maxQueued: 0)
        #expect(try await executor.run { executor.ownsCurrentThread() })
        #expect(!executor.ownsCurrentThread())
        let gate = DispatchSemaphore(value: 0)
        let running = Task { try await executor.run { _ = gate.wait(timeout: .now() + 20); return 1 } }
        for _ in 0..<2000 where executor.admittedCount < 1 { try await Task.sleep(for: .milliseconds(5)) }
        await #expect(throws: ServerError.self) { try await executor.run { 2 } }
        gate.signal()
        #expect(try await running.value == 1)
        #expect(try await executor.run { 3 } == 3)
        executor.shutdown()
        await #expect(throws: ServerError(.unavailable, "the server is shutting down")) { try await executor.run { 4 } }
    }
}
