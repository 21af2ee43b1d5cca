import AsyncHTTPClient
import BlindAIProtocol
import BlindAIServer
import Foundation
import NIOCore
import NIOPosix
import Testing

/// What happens on the connection itself: interim `100 Continue` answers, and clients that go away while their
/// inference runs.
@Suite(.serialized) struct ConnectionTests {
    /// Sends `head` on a raw TCP connection, then `body` only once the server has answered `100 Continue`
    /// (or at once when `waitForContinue` is false); returns everything the server sent, in order.
    func exchange(port: Int, head: String, body: [UInt8], waitForContinue: Bool) async throws -> String {
        let channel = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .connect(host: "127.0.0.1", port: port) { channel in
                channel.eventLoop.makeCompletedFuture {
                    try NIOAsyncChannel<ByteBuffer, ByteBuffer>(wrappingChannelSynchronously: channel)
                }
            }
        return try await channel.executeThenClose { inbound, outbound in
            var received = ""
            var iterator = inbound.makeAsyncIterator()
            try await outbound.write(ByteBuffer(string: head))
            if waitForContinue {
                while !received.contains("\r\n\r\n") {
                    guard let chunk = try await iterator.next() else { return received }
                    received += String(buffer: chunk)
                }
                guard received.hasPrefix("HTTP/1.1 100") else { return received }
                try await outbound.write(ByteBuffer(bytes: body))
            }
            // Read until the final response is complete (its Content-Length says how much) or the server closes.
            while true {
                if let final = received.range(of: "HTTP/1.1 2") ?? received.range(of: "HTTP/1.1 4"),
                   let end = received[final.lowerBound...].range(of: "\r\n\r\n") {
                    let headers = received[final.lowerBound..<end.lowerBound].lowercased()
                    if let line = headers.split(separator: "\r\n").first(where: { $0.hasPrefix("content-length:") }),
                       let n = Int(line.dropFirst("content-length:".count).trimmingCharacters(in: .whitespaces)),
                       received.utf8.count - received[..<end.upperBound].utf8.count >= n {
                        return received
                    }
                }
                guard let chunk = try await iterator.next() else { return received }
                received += String(buffer: chunk)
            }
        }
    }

    @Test func expectContinueIsAnswered() async throws {
        let model = try Fixture.data("add_relu")
        let server = try makeServer { $0.maxModelBytes = 256 << 10; $0.maxRequestBytes = 64 << 10 }
        try await withLiveServer(server) { base, _ in
            let port = Int(base.split(separator: ":").last!)!
            // An upload whose client waits for 100 Continue before sending the model.
            let head = "PUT /v2/repository/models/m HTTP/1.1\r\nHost: localhost\r\nContent-Length: \(model.count)\r\nExpect: 100-continue\r\n\r\n"
            let answer = try await exchange(port: port, head: head, body: Array(model), waitForContinue: true)
            #expect(answer.hasPrefix("HTTP/1.1 100 Continue\r\n"), "\(answer.prefix(80))")
            #expect(answer.contains("HTTP/1.1 201"), "\(answer.prefix(200))")
            #expect(try await server.repository.lookup(name: "m", version: nil, principal: .open).byteSize == model.count)

            // A declared length over every limit: no 100, the final refusal comes without the body being sent.
            let tooBig = "PUT /v2/repository/models/n HTTP/1.1\r\nHost: localhost\r\nContent-Length: \(1 << 30)\r\nExpect: 100-continue\r\n\r\n"
            let refused = try await exchange(port: port, head: tooBig, body: [], waitForContinue: false)
            #expect(!refused.contains("HTTP/1.1 100"))
            #expect(refused.hasPrefix("HTTP/1.1 413"), "\(refused.prefix(80))")

            // The limit is the route's: an inference body over --max-request-size gets no 100 (even though an
            // upload of that size would).
            let bigInference = "POST /v2/models/m/infer HTTP/1.1\r\nHost: localhost\r\nContent-Length: \(100 << 10)\r\nExpect: 100-continue\r\n\r\n"
            let refusedInference = try await exchange(port: port, head: bigInference, body: [], waitForContinue: false)
            #expect(!refusedInference.contains("HTTP/1.1 100"))
            #expect(refusedInference.hasPrefix("HTTP/1.1 413"), "\(refusedInference.prefix(80))")

            // Without the expectation nothing changes: no interim response.
            let plain = "GET /v2/health/ready HTTP/1.1\r\nHost: localhost\r\nContent-Length: 0\r\n\r\n"
            let ready = try await exchange(port: port, head: plain, body: [], waitForContinue: false)
            #expect(ready.hasPrefix("HTTP/1.1 200"), "\(ready.prefix(80))")
        }
        await server.shutdown()
    }

    /// A client that closes its connection while its inference runs stops that inference: the worker is free
    /// long before the run would have ended, and the server keeps serving.
    @Test func disconnectStopsTheInference() async throws {
        let server = try makeServer { $0.concurrentInferences = 1; $0.requestTimeout = .seconds(120) }
        try await server.repository.loadFixture("heavy", as: "heavy")
        let m = Int(Double(try await LiveTests().calibrate(server)) * 1.8)  // 1.8³ ≈ 6: about 9 s of work
        try await withLiveServer(server) { base, client in
            let (req, x) = heavyRequest(side: m)
            let (payload, h) = try binaryBody(req, [x])
            let gone = HTTPClient(eventLoopGroupProvider: .singleton)
            let request = Task { try await gone.send(base + "/v2/models/heavy/infer", .POST, headers: h, body: payload, timeout: .seconds(120)) }
            for _ in 0..<4000 where server.inferencePool.runningCount < 1 { try await Task.sleep(for: .milliseconds(5)) }
            #expect(server.inferencePool.runningCount == 1)
            let start = ContinuousClock.now
            request.cancel()
            _ = await request.result
            try await gone.shutdown()
            for _ in 0..<1000 where server.inferencePool.runningCount > 0 { try await Task.sleep(for: .milliseconds(5)) }
            let stopped = ContinuousClock.now - start
            #expect(server.inferencePool.runningCount == 0)
            #expect(stopped < .seconds(3), "the inference went on for \(stopped) after its client left")
            // The one worker is free again: a small request is answered at once.
            let (small, sx) = heavyRequest(side: 4)
            let (smallPayload, sh) = try binaryBody(small, [sx])
            #expect(try await client.send(base + "/v2/models/heavy/infer", .POST, headers: sh, body: smallPayload).status == 200)
        }
        await server.shutdown()
    }
}
