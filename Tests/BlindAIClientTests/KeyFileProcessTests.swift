import Foundation
import Testing

/// `blindai serve` refuses, at start, a key file in which one secret is listed under two key ids.
@Suite struct KeyFileProcessTests {
    @Test func serveRefusesASecretUnderTwoKeyIds() async throws {
        let dir = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let keys = dir.appendingPathComponent("keys")
        // A copy-paste error: Bob's line was copied for the admin key and only the id changed.
        try "alice:alice-secret-0123456789\nbob:bob-secret-0123456789ab\nops:bob-secret-0123456789ab:admin\n"
            .write(to: keys, atomically: true, encoding: .utf8)
        let server = try ChildProcess(try blindaiExecutable(), [
            "serve", "--tee", "simulated", "--host", "127.0.0.1", "--port", "\(try freePort())", "--metrics-port", "0",
            "--api-keys", keys.path,
        ], directory: dir)
        // Bounded: a server that accepted the file would run until stopped.
        let deadline = ContinuousClock.now + .seconds(60)
        while server.process.isRunning && ContinuousClock.now < deadline { try await Task.sleep(for: .milliseconds(50)) }
        let started = server.process.isRunning
        server.stop()
        #expect(!started, "the server started with the key file")
        let (status, output) = (server.process.terminationStatus, server.output)
        #expect(status != 0)
        #expect(output.contains("API keys 'bob' and 'ops' have the same secret"), "\(output)")
    }
}
