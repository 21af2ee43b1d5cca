import BlindAIServer
import Foundation
import Hummingbird

/// Runs an `InferenceServer` in this process on its configured address (port 0: an ephemeral port) until
/// `stop()`: the demo and the tests use it.
public final class InProcessServer: Sendable {
    public let server: InferenceServer
    /// The port the server listens on.
    public let port: Int
    private let task: Task<Void, any Error>

    private init(server: InferenceServer, port: Int, task: Task<Void, any Error>) {
        self.server = server
        self.port = port
        self.task = task
    }

    /// Starts the server and returns once it listens.
    public static func start(_ server: InferenceServer) async throws -> InProcessServer {
        let (ports, continuation) = AsyncStream<Int>.makeStream()
        let app = try server.makeApplication { channel in
            continuation.yield(channel.localAddress?.port ?? 0)
            continuation.finish()
        }
        let task = Task {
            defer { continuation.finish() }
            try await app.runService(gracefulShutdownSignals: [])
        }
        var iterator = ports.makeAsyncIterator()
        guard let port = await iterator.next(), port > 0 else {
            let result = await task.result
            if case .failure(let error) = result { throw error }
            throw TEESetupError("the server stopped before listening")
        }
        return InProcessServer(server: server, port: port, task: task)
    }

    /// Stops listening, closes connections, and stops the server's worker pools.
    public func stop() async {
        task.cancel()
        _ = await task.result
        await server.shutdown()
    }
}
