import Foundation
import Hummingbird
import Logging
import ServiceLifecycle

/// Runs an `InferenceServer` in this process on its configured address (port 0: an ephemeral port) until
/// `stop()`: the demo and the tests use it.
public final class InProcessServer: Sendable {
    public let server: InferenceServer
    /// The port the server listens on.
    public let port: Int
    private let group: ServiceGroup
    private let task: Task<Void, any Error>

    private init(server: InferenceServer, port: Int, group: ServiceGroup, task: Task<Void, any Error>) {
        self.server = server
        self.port = port
        self.group = group
        self.task = task
    }

    /// Starts the server and returns once it listens.
    public static func start(_ server: InferenceServer, logger: Logger = Logger(label: "blindai.in-process")) async throws -> InProcessServer {
        let (ports, continuation) = AsyncStream<Int>.makeStream()
        let app = try server.makeApplication { channel in
            continuation.yield(channel.localAddress?.port ?? 0)
            continuation.finish()
        }
        var groupLogger = logger
        groupLogger.logLevel = .error
        let group = ServiceGroup(configuration: .init(services: [app], gracefulShutdownSignals: [], logger: groupLogger))
        let task = Task {
            defer { continuation.finish() }
            try await group.run()
        }
        var iterator = ports.makeAsyncIterator()
        guard let port = await iterator.next(), port > 0 else {
            let result = await task.result
            if case .failure(let error) = result { throw error }
            throw ServerError(.unavailable, "the server stopped before listening")
        }
        return InProcessServer(server: server, port: port, group: group, task: task)
    }

    /// Stops listening, closes connections gracefully, and stops the server's worker pools. A connection a client
    /// keeps open is closed with a TLS close_notify, which can wait for the server's TLS shutdown timeout (5 s).
    public func stop() async {
        await group.triggerGracefulShutdown()
        _ = await task.result
        await server.shutdown()
    }
}
